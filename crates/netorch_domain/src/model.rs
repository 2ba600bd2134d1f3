//! Deployments, nodes and audit events as stored.

use crate::{
    AlertRules, DeploymentId, EventId, EventType, NodeId, NodeState, RolloutPolicy, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A named set of nodes taken through their lifecycle together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Database id.
    pub id: DeploymentId,
    /// Operator-chosen name (1 to 255 characters; not unique).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// How many nodes the deployment has, decommissioning ones aside: set at creation and by
    /// scaling.
    pub target_node_count: u32,
    /// How its rollout is paced and guarded.
    pub rollout: RolloutPolicy,
    /// Where its telemetry comes from (chosen at creation).
    pub telemetry: TelemetryOrigin,
    /// What makes it alert.
    pub alert_rules: AlertRules,
    /// Which provisioner drives its nodes, with its parameters (chosen at creation).
    pub provisioning: crate::Provisioning,
    /// Its self-healing policy; `None` (the default): off.
    pub remediation: Option<crate::Remediation>,
    /// Why remediation is stopped, while too many of its nodes are unhealthy.
    pub remediation_stopped: Option<crate::RemediationStop>,
    /// Since when its rollout is paused (by an operator or by `max_failure_percent`); `None`
    /// while it runs.
    pub paused_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What it takes to create a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDeployment {
    /// Operator-chosen name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// How many nodes to create, all at once, in `PENDING`.
    pub target_node_count: u32,
    /// How its rollout is paced and guarded (the default: all at once, unguarded).
    pub rollout: RolloutPolicy,
    /// Where its telemetry comes from (the default: the telemetry workers sample it).
    pub telemetry: TelemetryOrigin,
    /// What makes it alert (the default: bottlenecks).
    pub alert_rules: AlertRules,
    /// Which provisioner drives its nodes (the default: the workers' built-in `simulator`).
    pub provisioning: crate::Provisioning,
    /// Its self-healing policy (the default: off).
    pub remediation: Option<crate::Remediation>,
}

impl NewDeployment {
    /// A deployment of `target_node_count` nodes named `name`, without a description, rolled
    /// out all at once (the API's defaults); set the other fields as needed.
    pub fn new(name: impl Into<String>, target_node_count: u32) -> Self {
        NewDeployment {
            name: name.into(),
            description: None,
            target_node_count,
            rollout: RolloutPolicy::default(),
            telemetry: TelemetryOrigin::default(),
            alert_rules: AlertRules::default(),
            provisioning: crate::Provisioning::default(),
            remediation: None,
        }
    }
}

/// Where a deployment's telemetry comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelemetryOrigin {
    /// The telemetry workers sample each running node every interval, from their
    /// `TelemetrySource` (the simulated hardware, unless an embedding program gives its own);
    /// collectors may push besides.
    #[default]
    Simulated,
    /// Only what collectors push: the telemetry workers write nothing for it, so its reports,
    /// series and alerts show only real readings.
    Pushed,
}

impl TelemetryOrigin {
    /// Both origins.
    pub const ALL: [TelemetryOrigin; 2] = [TelemetryOrigin::Simulated, TelemetryOrigin::Pushed];

    /// The lower-case name used in the API and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            TelemetryOrigin::Simulated => "simulated",
            TelemetryOrigin::Pushed => "pushed",
        }
    }
}

impl std::str::FromStr for TelemetryOrigin {
    type Err = crate::DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TelemetryOrigin::ALL
            .into_iter()
            .find(|origin| origin.as_str() == s)
            .ok_or_else(|| crate::DomainError::UnknownTelemetryOrigin(s.to_owned()))
    }
}

/// What an operator changes on a deployment (`PATCH`): each field that is `Some` is set, the
/// rest kept; for a field that may be unset, `Some(None)` unsets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new node count: nodes are added (`PENDING`) or the newest decommissioned.
    pub target_node_count: Option<u32>,
    /// A new description, or none.
    pub description: Option<Option<String>>,
    /// A new `max_in_flight`, or no limit.
    pub max_in_flight: Option<Option<u32>>,
    /// A new `max_failure_percent`, or no limit.
    pub max_failure_percent: Option<Option<f64>>,
    /// A new `max_retries`.
    pub max_retries: Option<u32>,
    /// A new `phase_timeout_seconds`, or no limit.
    pub phase_timeout_seconds: Option<Option<u32>>,
    /// New alert rules, replacing the old ones whole.
    pub alert_rules: Option<AlertRules>,
    /// A new self-healing policy, or none (off).
    pub remediation: Option<Option<crate::Remediation>>,
}

impl DeploymentChanges {
    /// `deployment` with the changes made, its node count aside (scaling is storage's work).
    pub fn applied_to(&self, deployment: &Deployment) -> Deployment {
        let mut after = deployment.clone();
        if let Some(name) = &self.name {
            after.name.clone_from(name);
        }
        if let Some(description) = &self.description {
            after.description.clone_from(description);
        }
        after.rollout = self.applied_to_policy(deployment.rollout);
        if let Some(rules) = &self.alert_rules {
            after.alert_rules.clone_from(rules);
        }
        if let Some(remediation) = self.remediation {
            after.remediation = remediation;
        }
        after
    }

    /// `policy` with the rollout settings changed.
    pub fn applied_to_policy(&self, mut policy: RolloutPolicy) -> RolloutPolicy {
        if let Some(value) = self.max_in_flight {
            policy.max_in_flight = value;
        }
        if let Some(value) = self.max_failure_percent {
            policy.max_failure_percent = value;
        }
        if let Some(value) = self.max_retries {
            policy.max_retries = value;
        }
        if let Some(value) = self.phase_timeout_seconds {
            policy.phase_timeout_seconds = value;
        }
        policy
    }

    /// The fields whose value the changes alter, with their new values (the
    /// `DEPLOYMENT_UPDATED` event's `changes`); empty when nothing would change.
    pub fn changed_fields(
        &self,
        deployment: &Deployment,
    ) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let after = self.applied_to(deployment);
        let (old, new) = (&deployment.rollout, &after.rollout);
        let mut changed = serde_json::Map::new();
        let mut note = |field: &str, differs: bool, value: serde_json::Value| {
            if differs {
                changed.insert(field.to_owned(), value);
            }
        };
        note(
            "name",
            after.name != deployment.name,
            json!(excerpt(&after.name)),
        );
        note(
            "description",
            after.description != deployment.description,
            json!(after.description.as_deref().map(excerpt)),
        );
        note(
            "max_in_flight",
            new.max_in_flight != old.max_in_flight,
            json!(new.max_in_flight),
        );
        note(
            "max_failure_percent",
            new.max_failure_percent != old.max_failure_percent,
            json!(new.max_failure_percent),
        );
        note(
            "max_retries",
            new.max_retries != old.max_retries,
            json!(new.max_retries),
        );
        note(
            "phase_timeout_seconds",
            new.phase_timeout_seconds != old.phase_timeout_seconds,
            json!(new.phase_timeout_seconds),
        );
        note(
            "alert_rules",
            after.alert_rules != deployment.alert_rules,
            json!(after.alert_rules),
        );
        note(
            "remediation",
            after.remediation != deployment.remediation,
            json!(after.remediation),
        );
        changed
    }
}

/// The most characters of a text an event's metadata copies: an event records what changed,
/// and a long value (a description) is cut to this many characters and `…`, so that no change
/// makes the audit log, which every reader of it pages through, grow by the size of a request.
pub const EVENT_TEXT_MAX_CHARS: usize = 256;

/// `text` as an event's metadata records it: whole up to [`EVENT_TEXT_MAX_CHARS`] characters,
/// else its first that many and `…`.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EVENT_TEXT_MAX_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}\u{2026}", &text[..cut]),
    }
}

/// One switch or router of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Database id, unique across all deployments.
    pub id: NodeId,
    /// The deployment it belongs to.
    pub deployment_id: DeploymentId,
    /// Its name within the deployment, `node-001`, `node-002`, ... (the API's `node_id`).
    pub name: String,
    /// Where it is in its lifecycle.
    pub state: NodeState,
    /// `switch-{deployment}-{NNN}`, set at creation.
    pub hostname: Option<String>,
    /// Assigned when provisioning starts.
    pub ip_address: Option<String>,
    /// How many times it has been retried, by an operator or automatically (0 at first).
    pub attempt: u32,
    /// Why it failed; `None` unless `FAILED`.
    pub failure_reason: Option<String>,
    /// Bumped by every change; guarded updates compare it to detect a lost race.
    pub version: i64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it entered its current state.
    pub state_changed_at: Timestamp,
    /// For a `FAILED` node its deployment will retry by itself: when. `None` otherwise.
    pub retry_at: Option<Timestamp>,
    /// How many times self-healing has re-provisioned it (the simulator's fault rule reads it).
    pub remediations: u32,
    /// When self-healing last re-provisioned it: an alert whose condition was first seen
    /// before then does not remediate it again.
    pub remediated_at: Option<Timestamp>,
}

/// How many nodes of a deployment are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStateCounts {
    /// Nodes in `PENDING`.
    pub pending: u64,
    /// Nodes in `PROVISIONING`.
    pub provisioning: u64,
    /// Nodes in `CONFIGURING`.
    pub configuring: u64,
    /// Nodes in `RUNNING`.
    pub running: u64,
    /// Nodes in `FAILED`.
    pub failed: u64,
    /// Nodes in `DECOMMISSIONING`.
    pub decommissioning: u64,
    /// Of the failed nodes, those waiting for an automatic retry (not a state of its own:
    /// counted in `failed` too).
    pub retrying: u64,
}

impl NodeStateCounts {
    /// The counter for `state`.
    pub fn get(&self, state: NodeState) -> u64 {
        match state {
            NodeState::Pending => self.pending,
            NodeState::Provisioning => self.provisioning,
            NodeState::Configuring => self.configuring,
            NodeState::Running => self.running,
            NodeState::Failed => self.failed,
            NodeState::Decommissioning => self.decommissioning,
        }
    }

    /// Adds `count` nodes in `state`.
    pub fn add(&mut self, state: NodeState, count: u64) {
        let counter = match state {
            NodeState::Pending => &mut self.pending,
            NodeState::Provisioning => &mut self.provisioning,
            NodeState::Configuring => &mut self.configuring,
            NodeState::Running => &mut self.running,
            NodeState::Failed => &mut self.failed,
            NodeState::Decommissioning => &mut self.decommissioning,
        };
        *counter += count;
    }

    /// All nodes counted, decommissioning ones included.
    pub fn total(&self) -> u64 {
        NodeState::ALL.into_iter().map(|s| self.get(s)).sum()
    }

    /// The nodes the deployment keeps: all but the decommissioning ones.
    pub fn kept(&self) -> u64 {
        self.total() - self.decommissioning
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Database id; ids increase in order of occurrence.
    pub id: EventId,
    /// The deployment concerned (kept after the deployment is deleted).
    pub deployment_id: Option<DeploymentId>,
    /// The node concerned, for node events.
    pub node_id: Option<NodeId>,
    /// What happened.
    pub event_type: EventType,
    /// A sentence for humans.
    pub message: String,
    /// Structured details; always a JSON object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// When it happened.
    pub created_at: Timestamp,
}

/// The name of the `index`-th node of a deployment (1-based): `node-001`, ..., `node-1000`.
pub fn node_name(index: u32) -> String {
    format!("node-{index:03}")
}

/// A node as a request names it: by its numeric id, or by its name within its deployment
/// (`node-001`), the `node_id` field of the node's own JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeRef {
    /// The node's numeric id, unique across deployments.
    Id(NodeId),
    /// The node's name, unique within its deployment.
    Name(String),
}

impl NodeRef {
    /// Whether `text` has the shape of a node name: `node-` and digits.
    pub fn is_name(text: &str) -> bool {
        text.strip_prefix("node-")
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Id(id) => write!(f, "{id}"),
            NodeRef::Name(name) => f.write_str(name),
        }
    }
}

/// The hostname of the `index`-th node of a deployment: `switch-{deployment}-{NNN}`.
pub fn hostname(deployment: DeploymentId, index: u32) -> String {
    format!("switch-{deployment}-{index:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_zero_padded_to_three_digits() {
        assert_eq!(node_name(1), "node-001");
        assert_eq!(node_name(42), "node-042");
        assert_eq!(node_name(1000), "node-1000");
        assert_eq!(hostname(DeploymentId(7), 9), "switch-7-009");
    }

    #[test]
    fn events_copy_long_texts_cut_to_an_excerpt() {
        assert_eq!(excerpt("rack 4"), "rack 4");
        let exact = "é".repeat(EVENT_TEXT_MAX_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let long = "é".repeat(7 * 1024 * 1024);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EVENT_TEXT_MAX_CHARS + 1);
        assert!(cut.ends_with('\u{2026}'));
        let deployment = Deployment {
            id: DeploymentId(1),
            name: "edge".into(),
            description: None,
            target_node_count: 1,
            rollout: RolloutPolicy::default(),
            telemetry: TelemetryOrigin::Simulated,
            alert_rules: AlertRules::default(),
            provisioning: crate::Provisioning::default(),
            remediation: None,
            remediation_stopped: None,
            paused_at: None,
            created_at: chrono::DateTime::from_timestamp(0, 0).expect("valid"),
            updated_at: chrono::DateTime::from_timestamp(0, 0).expect("valid"),
        };
        let changes = DeploymentChanges {
            description: Some(Some(long)),
            ..DeploymentChanges::default()
        };
        let changed = changes.changed_fields(&deployment);
        assert_eq!(changed["description"], serde_json::json!(cut));
    }

    #[test]
    fn node_names_have_a_shape() {
        for name in ["node-001", "node-1000", "node-0"] {
            assert!(NodeRef::is_name(name), "{name}");
        }
        for other in ["node-", "node-1a", "Node-001", "17", "node--1", ""] {
            assert!(!NodeRef::is_name(other), "{other}");
        }
        assert_eq!(NodeRef::Name(node_name(7)).to_string(), "node-007");
        assert_eq!(NodeRef::Id(NodeId(7)).to_string(), "7");
    }

    #[test]
    fn counts_add_up() {
        let mut counts = NodeStateCounts::default();
        counts.add(NodeState::Running, 3);
        counts.add(NodeState::Failed, 1);
        counts.add(NodeState::Running, 2);
        assert_eq!(counts.get(NodeState::Running), 5);
        assert_eq!(counts.get(NodeState::Pending), 0);
        assert_eq!(counts.total(), 6);
    }
}

/// The kinds of loop that report heartbeats: the three worker loops, and each server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerKind {
    /// Moves nodes through their lifecycle.
    Lifecycle,
    /// Collects telemetry from running nodes.
    Telemetry,
    /// Evaluates alert rules.
    Alerts,
    /// A `netorch-server`'s presence: how the servers sharing a database count each other (a
    /// rate limit is shared among the live ones).
    Server,
}

impl WorkerKind {
    /// Every kind.
    pub const ALL: [WorkerKind; 4] = [
        WorkerKind::Lifecycle,
        WorkerKind::Telemetry,
        WorkerKind::Alerts,
        WorkerKind::Server,
    ];

    /// The worker loops: a fleet needs one of each alive to move, collect and alert.
    pub const LOOPS: [WorkerKind; 3] = [
        WorkerKind::Lifecycle,
        WorkerKind::Telemetry,
        WorkerKind::Alerts,
    ];

    /// The lower-case name used in the API and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkerKind::Lifecycle => "lifecycle",
            WorkerKind::Telemetry => "telemetry",
            WorkerKind::Alerts => "alerts",
            WorkerKind::Server => "server",
        }
    }
}

impl std::str::FromStr for WorkerKind {
    type Err = crate::DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| crate::DomainError::UnknownWorkerKind(s.to_owned()))
    }
}

/// The last sign of life of one worker loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerHeartbeat {
    /// The worker's name (unique per process).
    pub name: String,
    /// Which loop.
    pub kind: WorkerKind,
    /// How often the loop ticks.
    pub interval: std::time::Duration,
    /// When the loop started.
    pub started_at: Timestamp,
    /// When the loop last finished a tick.
    pub last_heartbeat: Timestamp,
    /// When the loop stopped cleanly; `None` while it runs (or if it died without saying so).
    pub stopped_at: Option<Timestamp>,
}

impl WorkerHeartbeat {
    /// A worker is alive until it stops, and while its last heartbeat is at most three
    /// intervals old.
    pub fn is_alive(&self, now: Timestamp) -> bool {
        if self.stopped_at.is_some() {
            return false;
        }
        let allowed =
            chrono::Duration::from_std(self.interval * 3).unwrap_or(chrono::Duration::MAX);
        now.signed_duration_since(self.last_heartbeat) <= allowed
    }
}

#[cfg(test)]
mod heartbeat_tests {
    use super::*;
    use chrono::DateTime;
    use std::time::Duration;

    #[test]
    fn a_worker_is_alive_for_three_intervals_after_its_heartbeat() {
        let beat = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
        let heartbeat = WorkerHeartbeat {
            name: "w".into(),
            kind: WorkerKind::Telemetry,
            interval: Duration::from_secs(5),
            started_at: beat,
            last_heartbeat: beat,
            stopped_at: None,
        };
        assert!(heartbeat.is_alive(beat + chrono::Duration::seconds(15)));
        assert!(!heartbeat.is_alive(beat + chrono::Duration::milliseconds(15_001)));
        let stopped = WorkerHeartbeat {
            stopped_at: Some(beat),
            ..heartbeat
        };
        assert!(!stopped.is_alive(beat), "a stopped loop is not alive");
    }
}
