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
    /// A string that names no provisioner phase or run outcome.
    #[error("unknown {field} {value:?}")]
    UnknownValue {
        /// What it was meant to name.
        field: &'static str,
        /// What it said.
        value: String,
    },
    /// A string that names no telemetry origin.
    #[error("unknown telemetry origin {0:?}")]
    UnknownTelemetryOrigin(String),
    /// A method name that is neither `robust` nor `zscore`.
    #[error("unknown method {0:?}: use robust or zscore")]
    UnknownMethod(String),
    /// A string that names no metric.
    #[error("unknown metric {0:?}: use latency_ms, throughput_gbps or error_rate")]
    UnknownMetric(String),
    /// A string that names no severity.
    #[error("unknown severity {0:?}: use critical, warning or info")]
    UnknownSeverity(String),
    /// A string that names no comparison.
    #[error("unknown comparison {0:?}: use >, >=, < or <=")]
    UnknownComparison(String),
    /// A string that names no threshold scope.
    #[error("unknown scope {0:?}: use node or fleet")]
    UnknownScope(String),
    /// A string that names no alert state.
    #[error("unknown alert state {0:?}: use pending, firing or resolved")]
    UnknownAlertState(String),
    /// A string that names no alert.
    #[error("unknown alert name {0:?}")]
    UnknownAlertName(String),
    /// A string that names no silence state.
    #[error("unknown silence state {0:?}: use pending, active or expired")]
    UnknownSilenceState(String),
    /// A string that names no receiver kind.
    #[error("unknown receiver kind {0:?}: use alertmanager, webhook or pagerduty")]
    UnknownReceiverKind(String),
    /// A string that names no notification action.
    #[error("unknown notification action {0:?}")]
    UnknownNotificationAction(String),
    /// A string that names no notification state.
    #[error("unknown notification state {0:?}: use pending, delivered or failed")]
    UnknownNotificationState(String),
    /// A receiver that cannot work.
    #[error("invalid receiver: {0}")]
    InvalidReceiver(String),
    /// A silence matcher that cannot be used.
    #[error("invalid matcher: {0}")]
    InvalidMatcher(String),
    /// A remediation policy out of range.
    #[error("invalid remediation: {0}")]
    InvalidRemediation(String),
    /// A silence that would end before it starts, or has already ended.
    #[error("a silence must end after it starts and after now")]
    InvalidSilenceTimes,
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
