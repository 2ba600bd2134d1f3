use crate::{NodeState, NodeTrigger, OperatorAction};

/// Everything the domain model can refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// The node's state machine has no transition for this trigger in the node's current state.
    /// `allowed_actions` lists what an operator may do instead (the API turns this into a 409).
    #[error("cannot {trigger} a node in state {from}")]
    IllegalTransition {
        /// The state the node is in.
        from: NodeState,
        /// What was attempted.
        trigger: NodeTrigger,
        /// The operator actions the current state does allow.
        allowed_actions: Vec<OperatorAction>,
    },
    /// A string that names no node state.
    #[error("unknown node state {0:?}")]
    UnknownNodeState(String),
    /// A string that names no event type.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// A string that names no API key role.
    #[error("unknown role {0:?}: use viewer, collector, operator or admin")]
    UnknownRole(String),
    /// A string that names no worker kind.
    #[error("unknown worker kind {0:?}")]
    UnknownWorkerKind(String),
    /// A string that names no telemetry origin.
    #[error("unknown telemetry origin {0:?}")]
    UnknownTelemetryOrigin(String),
    /// A telemetry metric outside what any real device can report.
    #[error("{metric} {reason} (got {value})")]
    InvalidMetric {
        /// The metric's field name, as in the API (`latency_ms`, ...).
        metric: &'static str,
        /// The offending value.
        value: f64,
        /// Why it is refused, phrased to follow the metric's name.
        reason: &'static str,
    },
}
