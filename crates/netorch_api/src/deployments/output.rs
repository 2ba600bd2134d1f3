//! A deployment as the API answers it: with its progress and its nodes' states.

use crate::alerts::output::AlertCountsOut;
use crate::http::choice;
use crate::http::shapes::timestamp;
use netorch_domain::alert::OpenAlertCounts;
use netorch_domain::{Deployment, DeploymentStatus, NodeStateCounts, Progress};
use serde::Serialize;
use utoipa::ToSchema;

/// A deployment.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentOut {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// How many nodes it has (set at creation and by scaling), decommissioning ones aside.
    pub target_node_count: u32,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Where the rollout stands as a whole.
    #[schema(schema_with = deployment_status_schema)]
    pub status: &'static str,
    /// How many nodes are finished (`RUNNING`, or `FAILED` with no automatic retry coming).
    pub progress: ProgressOut,
    /// Since when the rollout is paused; null while it runs.
    pub paused_at: Option<String>,
    /// Most nodes in a phase at once; null for no limit.
    pub max_in_flight: Option<u32>,
    /// Failed share of finished nodes, in percent, past which the rollout pauses; null: never.
    pub max_failure_percent: Option<f64>,
    /// Automatic retries per node (0: none).
    pub max_retries: u32,
    /// Longest a phase may take, in seconds; null for no limit.
    pub phase_timeout_seconds: Option<u32>,
    /// Where its telemetry comes from.
    #[schema(schema_with = telemetry_origin_schema)]
    pub telemetry_origin: &'static str,
    /// What makes it alert, every field shown.
    #[schema(schema_with = crate::alerts::rules::schema)]
    pub alert_rules: netorch_domain::AlertRules,
    /// The provisioner profile that drives its nodes (`simulator`: the workers' built-in one).
    pub provisioner: String,
    /// The settings handed to every run of its provisioner's program.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Its self-healing policy; null: off.
    pub remediation: Option<super::remediation::RemediationOut>,
    /// Why self-healing re-provisions nothing now (too many unhealthy nodes); null while it
    /// does not stop.
    pub remediation_stopped: Option<super::remediation::RemediationStoppedOut>,
    /// How many of its nodes are in each state.
    pub node_states: NodeStatesOut,
    /// Its unresolved alerts, counted (the alerts themselves: `GET
    /// /deployments/{id}/alerts`).
    pub alerts: AlertCountsOut,
}

/// A rollout's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressOut {
    /// Nodes finished.
    pub finished: u64,
    /// All the deployment's nodes.
    pub total: u64,
}

impl DeploymentOut {
    /// The deployment as its counters show it, with its open alerts counted.
    pub fn new(d: Deployment, counts: &NodeStateCounts, alerts: &OpenAlertCounts) -> Self {
        let progress = Progress::of(counts);
        DeploymentOut {
            id: d.id.get(),
            name: d.name,
            description: d.description,
            target_node_count: d.target_node_count,
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
            status: DeploymentStatus::of(d.paused_at.is_some(), counts).as_str(),
            progress: ProgressOut {
                finished: progress.finished,
                total: progress.total,
            },
            paused_at: d.paused_at.map(timestamp),
            max_in_flight: d.rollout.max_in_flight,
            max_failure_percent: d.rollout.max_failure_percent,
            max_retries: d.rollout.max_retries,
            phase_timeout_seconds: d.rollout.phase_timeout_seconds,
            telemetry_origin: d.telemetry.as_str(),
            alert_rules: d.alert_rules.clone(),
            provisioner: d.provisioning.profile,
            parameters: d.provisioning.parameters,
            remediation: d.remediation.map(Into::into),
            remediation_stopped: d.remediation_stopped.map(Into::into),
            node_states: (*counts).into(),
            alerts: alerts.into(),
        }
    }
}

impl From<netorch_service::deployments::DeploymentState> for DeploymentDetail {
    fn from(found: netorch_service::deployments::DeploymentState) -> Self {
        DeploymentDetail::new(found.deployment, found.nodes, &found.alerts)
    }
}

impl DeploymentDetail {
    /// The deployment with its counters.
    pub fn new(d: Deployment, counts: NodeStateCounts, alerts: &OpenAlertCounts) -> Self {
        DeploymentDetail {
            deployment: DeploymentOut::new(d, &counts, alerts),
            current_node_count: counts.total(),
        }
    }
}

fn telemetry_origin_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::TelemetryOrigin>(
        "`simulated`: sampled by the telemetry workers; `pushed`: only what collectors push",
    )
}

fn deployment_status_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::DeploymentStatus>("Where the rollout stands")
}

/// How many nodes are in each state.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeStatesOut {
    /// Nodes in `PENDING`.
    #[serde(rename = "PENDING")]
    pub pending: u64,
    /// Nodes in `PROVISIONING`.
    #[serde(rename = "PROVISIONING")]
    pub provisioning: u64,
    /// Nodes in `CONFIGURING`.
    #[serde(rename = "CONFIGURING")]
    pub configuring: u64,
    /// Nodes in `RUNNING`.
    #[serde(rename = "RUNNING")]
    pub running: u64,
    /// Nodes in `FAILED`.
    #[serde(rename = "FAILED")]
    pub failed: u64,
    /// Nodes in `DECOMMISSIONING`.
    #[serde(rename = "DECOMMISSIONING")]
    pub decommissioning: u64,
}

impl From<NodeStateCounts> for NodeStatesOut {
    fn from(c: NodeStateCounts) -> Self {
        NodeStatesOut {
            pending: c.pending,
            provisioning: c.provisioning,
            configuring: c.configuring,
            running: c.running,
            failed: c.failed,
            decommissioning: c.decommissioning,
        }
    }
}

/// A deployment with its node count.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentDetail {
    /// The deployment.
    #[serde(flatten)]
    pub deployment: DeploymentOut,
    /// How many nodes it has, decommissioning ones included.
    pub current_node_count: u64,
}
