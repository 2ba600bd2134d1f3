//! Audit events: what the log records and how each kind of event is phrased.

use crate::{DeploymentId, DomainError, NodeId, NodeState, NodeStateCounts, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;
use std::str::FromStr;

/// The kinds of audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// A deployment and its nodes were created.
    DeploymentCreated,
    /// A deployment was deleted with its nodes and samples; its events, this one last, stay.
    DeploymentDeleted,
    /// A node changed state.
    StateChange,
    /// An operator retried a failed node.
    NodeRetry,
    /// The lifecycle worker retried a failed node by itself (`max_retries`).
    NodeAutoRetried,
    /// A node's phase took longer than `phase_timeout_seconds`; the node failed.
    NodeTimedOut,
    /// A deployment's rollout paused: by an operator, or because too many nodes failed.
    DeploymentPaused,
    /// A deployment's rollout resumed.
    DeploymentResumed,
    /// An operator changed a deployment's name, description or rollout settings.
    DeploymentUpdated,
    /// An operator changed a deployment's node count.
    DeploymentScaled,
    /// A decommissioned node was released and removed.
    NodeDecommissioned,
    /// An alert fired.
    AlertFiring,
    /// A firing alert resolved.
    AlertResolved,
    /// An operator acknowledged a firing alert.
    AlertAcknowledged,
    /// An operator took an acknowledgement back.
    AlertUnacknowledged,
    /// An operator silenced alerts.
    SilenceCreated,
    /// A silence ended, at its time or expired early by an operator.
    SilenceExpired,
    /// Self-healing re-provisioned a running node whose alert had fired for long enough.
    NodeRemediated,
    /// Self-healing stopped for a deployment: too many of its nodes are unhealthy.
    RemediationStopped,
    /// Self-healing went on again: few enough unhealthy nodes for its policy (turning the
    /// policy off clears a stop too, recorded by its `DEPLOYMENT_UPDATED`).
    RemediationResumed,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 20] = [
        EventType::DeploymentCreated,
        EventType::DeploymentDeleted,
        EventType::StateChange,
        EventType::NodeRetry,
        EventType::NodeAutoRetried,
        EventType::NodeTimedOut,
        EventType::DeploymentPaused,
        EventType::DeploymentResumed,
        EventType::DeploymentUpdated,
        EventType::DeploymentScaled,
        EventType::NodeDecommissioned,
        EventType::AlertFiring,
        EventType::AlertResolved,
        EventType::AlertAcknowledged,
        EventType::AlertUnacknowledged,
        EventType::SilenceCreated,
        EventType::SilenceExpired,
        EventType::NodeRemediated,
        EventType::RemediationStopped,
        EventType::RemediationResumed,
    ];

    /// The upper-case name used in the API and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::DeploymentCreated => "DEPLOYMENT_CREATED",
            EventType::DeploymentDeleted => "DEPLOYMENT_DELETED",
            EventType::StateChange => "STATE_CHANGE",
            EventType::NodeRetry => "NODE_RETRY",
            EventType::NodeAutoRetried => "NODE_AUTO_RETRIED",
            EventType::NodeTimedOut => "NODE_TIMED_OUT",
            EventType::DeploymentPaused => "DEPLOYMENT_PAUSED",
            EventType::DeploymentResumed => "DEPLOYMENT_RESUMED",
            EventType::DeploymentUpdated => "DEPLOYMENT_UPDATED",
            EventType::DeploymentScaled => "DEPLOYMENT_SCALED",
            EventType::NodeDecommissioned => "NODE_DECOMMISSIONED",
            EventType::AlertFiring => "ALERT_FIRING",
            EventType::AlertResolved => "ALERT_RESOLVED",
            EventType::AlertAcknowledged => "ALERT_ACKNOWLEDGED",
            EventType::AlertUnacknowledged => "ALERT_UNACKNOWLEDGED",
            EventType::SilenceCreated => "SILENCE_CREATED",
            EventType::SilenceExpired => "SILENCE_EXPIRED",
            EventType::NodeRemediated => "NODE_REMEDIATED",
            EventType::RemediationStopped => "REMEDIATION_STOPPED",
            EventType::RemediationResumed => "REMEDIATION_RESUMED",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| DomainError::UnknownEventType(s.to_owned()))
    }
}

/// Why a deployment's rollout paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// `POST /deployments/{id}/pause`.
    Operator,
    /// More than `max_failure_percent` of the finished nodes failed.
    FailureLimit,
}

impl PauseReason {
    /// The name recorded in the event's metadata.
    pub const fn as_str(self) -> &'static str {
        match self {
            PauseReason::Operator => "operator",
            PauseReason::FailureLimit => "max_failure_percent",
        }
    }
}

/// An event about to be written to the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The deployment concerned.
    pub deployment_id: Option<DeploymentId>,
    /// The node concerned, for node events.
    pub node_id: Option<NodeId>,
    /// What happened.
    pub event_type: EventType,
    /// A sentence for humans.
    pub message: String,
    /// Structured details.
    pub metadata: Map<String, Value>,
    /// When it happened.
    pub created_at: Timestamp,
}

/// The metadata key naming who caused an event through the API.
const ACTOR: &str = "actor";

pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        // Only called with `json!({...})` literals below.
        _ => Map::new(),
    }
}

impl NewEvent {
    /// `DEPLOYMENT_CREATED`.
    pub fn deployment_created(
        deployment: DeploymentId,
        name: &str,
        node_count: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::DeploymentCreated,
            message: format!("Deployment '{name}' created with {node_count} nodes"),
            metadata: object(json!({"name": name, "target_node_count": node_count})),
            created_at: now,
        }
    }

    /// `DEPLOYMENT_DELETED`.
    pub fn deployment_deleted(
        deployment: DeploymentId,
        name: &str,
        node_count: u64,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::DeploymentDeleted,
            message: format!("Deployment '{name}' deleted with {node_count} nodes"),
            metadata: object(json!({"name": name, "node_count": node_count})),
            created_at: now,
        }
    }

    /// `STATE_CHANGE` of a node, from `from` to `to`, in its `attempt`-th lifecycle.
    pub fn state_change(
        deployment: DeploymentId,
        node: NodeId,
        name: &str,
        from: NodeState,
        to: NodeState,
        attempt: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::StateChange,
            message: format!("{name} transitioned from {from} to {to}"),
            metadata: object(json!({
                "node_name": name,
                "from_state": from.as_str(),
                "to_state": to.as_str(),
                "attempt": attempt,
            })),
            created_at: now,
        }
    }

    /// `NODE_RETRY`: an operator sent a failed node back to `PENDING`; `attempt` is the new one.
    pub fn node_retry(
        deployment: DeploymentId,
        node: NodeId,
        name: &str,
        attempt: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::NodeRetry,
            message: format!("{name} retried (attempt {attempt})"),
            metadata: object(json!({"node_name": name, "attempt": attempt})),
            created_at: now,
        }
    }

    /// `NODE_AUTO_RETRIED`: the lifecycle worker sent a failed node back to `PENDING` after
    /// waiting `backoff`; `attempt` is the new one.
    pub fn node_auto_retried(
        deployment: DeploymentId,
        node: NodeId,
        name: &str,
        attempt: u32,
        max_retries: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::NodeAutoRetried,
            message: format!(
                "{name} retried automatically (attempt {attempt} of at most {max_retries})"
            ),
            metadata: object(json!({
                "node_name": name,
                "attempt": attempt,
                "max_retries": max_retries,
            })),
            created_at: now,
        }
    }

    /// `NODE_TIMED_OUT`: a node spent longer than `timeout_seconds` in `phase_state` and failed.
    pub fn node_timed_out(
        deployment: DeploymentId,
        node: NodeId,
        name: &str,
        phase_state: NodeState,
        timeout_seconds: u32,
        attempt: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::NodeTimedOut,
            message: format!("{name} timed out in {phase_state} after {timeout_seconds} s"),
            metadata: object(json!({
                "node_name": name,
                "from_state": phase_state.as_str(),
                "to_state": NodeState::Failed.as_str(),
                "timeout_seconds": timeout_seconds,
                "attempt": attempt,
            })),
            created_at: now,
        }
    }

    /// `DEPLOYMENT_PAUSED`, with why (`"operator"` or `"max_failure_percent"`); the counts
    /// say how far the rollout had come.
    pub fn deployment_paused(
        deployment: DeploymentId,
        reason: PauseReason,
        counts: &NodeStateCounts,
        now: Timestamp,
    ) -> Self {
        let message = match reason {
            PauseReason::Operator => format!("Deployment {deployment} paused by an operator"),
            PauseReason::FailureLimit => format!(
                "Deployment {deployment} paused: {} of {} finished nodes failed",
                counts.failed,
                counts.running + counts.failed
            ),
        };
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::DeploymentPaused,
            message,
            metadata: object(json!({
                "reason": reason.as_str(),
                "failed_nodes": counts.failed,
                "finished_nodes": counts.running + counts.failed,
                "pending_nodes": counts.pending,
            })),
            created_at: now,
        }
    }

    /// `DEPLOYMENT_RESUMED`.
    pub fn deployment_resumed(deployment: DeploymentId, now: Timestamp) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::DeploymentResumed,
            message: format!("Deployment {deployment} resumed"),
            metadata: Map::new(),
            created_at: now,
        }
    }

    /// `DEPLOYMENT_UPDATED`: `changes` maps each changed field to its new value.
    pub fn deployment_updated(
        deployment: DeploymentId,
        changes: Map<String, Value>,
        now: Timestamp,
    ) -> Self {
        let fields: Vec<&str> = changes.keys().map(String::as_str).collect();
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::DeploymentUpdated,
            message: format!("Deployment {deployment} updated: {}", fields.join(", ")),
            metadata: object(json!({ "changes": changes })),
            created_at: now,
        }
    }

    /// `DEPLOYMENT_SCALED` from `from` to `to` nodes: `added` new pending nodes, or
    /// `decommissioned` of the newest.
    pub fn deployment_scaled(
        deployment: DeploymentId,
        from: u32,
        to: u32,
        added: u32,
        decommissioned: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::DeploymentScaled,
            message: format!("Deployment {deployment} scaled from {from} to {to} nodes"),
            metadata: object(json!({
                "from_node_count": from,
                "to_node_count": to,
                "added_nodes": added,
                "decommissioned_nodes": decommissioned,
            })),
            created_at: now,
        }
    }

    /// `NODE_DECOMMISSIONED`: the node was released and removed; `outcome` is the
    /// provisioner's failure reason if the release did not go well.
    pub fn node_decommissioned(
        deployment: DeploymentId,
        node: NodeId,
        name: &str,
        outcome: Option<&str>,
        now: Timestamp,
    ) -> Self {
        let mut metadata = object(json!({"node_name": name}));
        if let Some(reason) = outcome {
            metadata.insert("failure_reason".into(), reason.into());
        }
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::NodeDecommissioned,
            message: format!("{name} decommissioned and removed"),
            metadata,
            created_at: now,
        }
    }

    /// `NODE_REMEDIATED`: self-healing sent a running node back to `PENDING` (reason
    /// `remediation`); `attempt` is the new one, `alert` the alert that had fired for
    /// `after_seconds`, named by its fingerprint and id.
    pub fn node_remediated(
        deployment: DeploymentId,
        node: NodeId,
        name: &str,
        attempt: u32,
        alert: (&str, crate::AlertId),
        after_seconds: u32,
        now: Timestamp,
    ) -> Self {
        let (fingerprint, alert_id) = alert;
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::NodeRemediated,
            message: format!(
                "{name} re-provisioned by self-healing: alert {fingerprint} fired for at least \
                 {after_seconds} s (attempt {attempt})"
            ),
            metadata: object(json!({
                "node_name": name,
                "reason": "remediation",
                "from_state": NodeState::Running.as_str(),
                "to_state": NodeState::Pending.as_str(),
                "attempt": attempt,
                "alert_fingerprint": fingerprint,
                "alert_id": alert_id.get(),
                "after_seconds": after_seconds,
            })),
            created_at: now,
        }
    }

    /// `REMEDIATION_STOPPED`: too many of the deployment's nodes are unhealthy.
    pub fn remediation_stopped(
        deployment: DeploymentId,
        stop: &crate::RemediationStop,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::RemediationStopped,
            message: format!("Deployment {deployment}: {}", stop.reason()),
            metadata: object(json!({
                "unhealthy_nodes": stop.unhealthy,
                "total_nodes": stop.total,
                "max_unhealthy_percent": stop.max_unhealthy_percent,
            })),
            created_at: now,
        }
    }

    /// `REMEDIATION_RESUMED`: self-healing goes on (few enough unhealthy nodes for its policy,
    /// as it is now); `unhealthy` of `total` now.
    pub fn remediation_resumed(
        deployment: DeploymentId,
        unhealthy: u64,
        total: u64,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: None,
            event_type: EventType::RemediationResumed,
            message: format!(
                "Deployment {deployment}: remediation resumed, {unhealthy} of {total} nodes \
                 unhealthy"
            ),
            metadata: object(json!({"unhealthy_nodes": unhealthy, "total_nodes": total})),
            created_at: now,
        }
    }

    /// The same event caused by `actor` through the API (an API key's name, or `anonymous`),
    /// recorded as its metadata's `actor`; `None` leaves it as it is (the workers' events).
    pub fn by(self, actor: Option<&str>) -> Self {
        match actor {
            Some(actor) => self.with_metadata(ACTOR, actor),
            None => self,
        }
    }

    /// Who caused the event through the API, if anyone (see [`NewEvent::by`]).
    pub fn actor(&self) -> Option<&str> {
        self.metadata.get(ACTOR).and_then(Value::as_str)
    }

    /// Adds one metadata entry (for example a failure reason).
    pub fn with_metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn state_change_names_the_node_both_states_and_the_attempt() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let event = NewEvent::state_change(
            DeploymentId(3),
            NodeId(17),
            "node-004",
            NodeState::Configuring,
            NodeState::Failed,
            1,
            now,
        );
        assert_eq!(event.event_type, EventType::StateChange);
        // A person reads the name the node page is titled with; the id stays in `node_id`.
        assert_eq!(
            event.message,
            "node-004 transitioned from CONFIGURING to FAILED"
        );
        assert_eq!(event.node_id, Some(NodeId(17)));
        assert_eq!(
            Value::Object(event.metadata),
            json!({"node_name": "node-004", "from_state": "CONFIGURING", "to_state": "FAILED", "attempt": 1})
        );
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        assert!("STATE_CHANGED".parse::<EventType>().is_err());
    }
}
