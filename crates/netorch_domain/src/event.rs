//! Audit events: what the log records and how each kind of event is phrased.

use crate::{DeploymentId, DomainError, NodeId, NodeState, Timestamp};
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
    /// A deployment was deleted with its nodes, samples and events (this event survives it).
    DeploymentDeleted,
    /// A node changed state.
    StateChange,
    /// An operator retried a failed node.
    NodeRetry,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 4] = [
        EventType::DeploymentCreated,
        EventType::DeploymentDeleted,
        EventType::StateChange,
        EventType::NodeRetry,
    ];

    /// The upper-case name used in the API and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::DeploymentCreated => "DEPLOYMENT_CREATED",
            EventType::DeploymentDeleted => "DEPLOYMENT_DELETED",
            EventType::StateChange => "STATE_CHANGE",
            EventType::NodeRetry => "NODE_RETRY",
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

fn object(value: Value) -> Map<String, Value> {
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
        from: NodeState,
        to: NodeState,
        attempt: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::StateChange,
            message: format!("Node {node} transitioned from {from} to {to}"),
            metadata: object(json!({
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
        attempt: u32,
        now: Timestamp,
    ) -> Self {
        NewEvent {
            deployment_id: Some(deployment),
            node_id: Some(node),
            event_type: EventType::NodeRetry,
            message: format!("Node {node} retried (attempt {attempt})"),
            metadata: object(json!({"attempt": attempt})),
            created_at: now,
        }
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
    fn state_change_metadata_names_both_states_and_the_attempt() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let event = NewEvent::state_change(
            DeploymentId(3),
            NodeId(17),
            NodeState::Configuring,
            NodeState::Failed,
            1,
            now,
        );
        assert_eq!(event.event_type, EventType::StateChange);
        assert_eq!(
            Value::Object(event.metadata),
            json!({"from_state": "CONFIGURING", "to_state": "FAILED", "attempt": 1})
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
