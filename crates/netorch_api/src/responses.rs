//! The JSON shapes of the API's answers, converted from domain types with `From`. Each is
//! what its handler serializes and what the OpenAPI document shows; fields that hold one of a
//! closed list of names are documented with that list, taken from the enum.

use crate::choice;
use chrono::{DateTime, Utc};
use netorch_analytics::{Bottleneck, BottleneckReport};
use netorch_domain::{
    Deployment, DeploymentStatus, Event, MetricSummary, Node, NodeStateCounts, Progress,
    Resolution, TelemetrySample, WorkerHeartbeat,
};
use netorch_storage::rollups::SeriesBucket;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Timestamps in responses: UTC, no offset, microseconds (`2026-11-27T22:14:44.048438`).
///
/// Written digit by digit into a fixed buffer: chrono's `format` interprets its pattern on every
/// call and `format!` pads each field through the formatter, which together were a sixth of the
/// cost of building a listing of 200 nodes (four timestamps each).
pub fn timestamp(at: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    fn put(buf: &mut [u8], mut value: u32) {
        for slot in buf.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    // A leap second shows as nanoseconds past 10^9; keep it within the second.
    let micros = (at.nanosecond() / 1_000).min(999_999);
    let year = at.year();
    if !(0..=9999).contains(&year) {
        // Outside four digits: the general path (never for times netorch stores).
        return format!(
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}",
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
    }
    let mut buf = *b"0000-00-00T00:00:00.000000";
    put(&mut buf[0..4], year.unsigned_abs());
    put(&mut buf[5..7], at.month());
    put(&mut buf[8..10], at.day());
    put(&mut buf[11..13], at.hour());
    put(&mut buf[14..16], at.minute());
    put(&mut buf[17..19], at.second());
    put(&mut buf[20..26], micros);
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds_and_no_offset() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T22:14:44.048438Z").expect("valid");
        assert_eq!(timestamp(at.to_utc()), "2026-11-27T22:14:44.048438");
        let whole = DateTime::parse_from_rfc3339("2027-01-05T03:04:05Z").expect("valid");
        assert_eq!(timestamp(whole.to_utc()), "2027-01-05T03:04:05.000000");
        let early = DateTime::parse_from_rfc3339("0001-02-03T04:05:06.000007Z").expect("valid");
        assert_eq!(timestamp(early.to_utc()), "0001-02-03T04:05:06.000007");
        let late = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z").expect("valid");
        assert_eq!(timestamp(late.to_utc()), "9999-12-31T23:59:59.999999");
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
            .expect("leap second")
            .and_utc();
        assert_eq!(timestamp(leap), "2016-12-31T23:59:59.999999");
    }
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInfo {
    /// Always "Network Deployment & Telemetry Orchestrator".
    pub service: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// Where the API explorer is.
    pub docs: &'static str,
    /// Where the health check is.
    pub health: &'static str,
}

/// Who the caller is and what they may do: what a client such as the dashboard shows or hides
/// its actions by.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerOut {
    /// The API key's name, or `anonymous` with auth off.
    pub actor: String,
    /// The key's role (`admin` with auth off: anyone may do anything).
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    /// Whether the server asks for keys (false: auth is off).
    pub keys_required: bool,
    /// What the role may do.
    pub may: PermissionsOut,
    /// The ids of the deployments the key is limited to (`keys create --deployment`); null:
    /// every deployment. A limited key reaches only requests about those deployments (and
    /// this one).
    pub deployments: Option<Vec<i64>>,
}

/// What a role may do, one flag per kind of request.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionsOut {
    /// Every `GET`.
    pub read: bool,
    /// `POST /deployments/{id}/telemetry`.
    pub push_telemetry: bool,
    /// Create, change, pause, resume and retry.
    pub change: bool,
    /// `DELETE /deployments/{id}`.
    pub delete: bool,
}

impl CallerOut {
    /// `actor` with `role`, limited to `deployments` if given, on a server that asks for keys
    /// or not.
    pub fn new(
        actor: String,
        role: netorch_domain::Role,
        deployments: Option<&[netorch_domain::DeploymentId]>,
        keys_required: bool,
    ) -> Self {
        use netorch_domain::Action;
        CallerOut {
            actor,
            role: role.as_str(),
            keys_required,
            deployments: deployments.map(|ids| ids.iter().map(|id| id.get()).collect()),
            may: PermissionsOut {
                read: role.may(Action::Read),
                push_telemetry: role.may(Action::PushTelemetry),
                change: role.may(Action::Change),
                delete: role.may(Action::Delete),
            },
        }
    }
}

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
    /// How many of its nodes are in each state.
    pub node_states: NodeStatesOut,
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
    /// The deployment as its counters show it.
    pub fn new(d: Deployment, counts: &NodeStateCounts) -> Self {
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
            node_states: (*counts).into(),
        }
    }
}

impl DeploymentDetail {
    /// The deployment with its counters.
    pub fn new(d: Deployment, counts: NodeStateCounts) -> Self {
        DeploymentDetail {
            deployment: DeploymentOut::new(d, &counts),
            current_node_count: counts.total(),
        }
    }
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

fn node_state_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::NodeState>("The node's lifecycle state")
}

fn method_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_analytics::Method>("The method used")
}

fn event_type_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::EventType>("What happened")
}

fn role_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::Role>("The caller's role")
}

fn worker_kind_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::WorkerKind>("The loop's kind")
}

fn reasons_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(choice::schema::<
            netorch_analytics::MetricKind,
        >(
            "A metric whose score reached the threshold",
        )))
        .into()
}

/// A node.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeOut {
    /// Numeric id.
    pub id: i64,
    /// Its deployment.
    pub deployment_id: i64,
    /// Its name within the deployment: `node-001`, ...
    pub node_id: String,
    /// The node's lifecycle state.
    #[schema(schema_with = node_state_schema)]
    pub state: &'static str,
    /// `switch-{deployment}-{NNN}`.
    pub hostname: Option<String>,
    /// Assigned when provisioning starts.
    pub ip_address: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// When it entered its state.
    pub state_changed_at: String,
    /// Retries so far (0 at first).
    pub attempt: u32,
    /// Why it failed; null unless `FAILED`.
    pub failure_reason: Option<String>,
    /// When a `FAILED` node is retried by itself (`max_retries`); null otherwise.
    pub retry_at: Option<String>,
}

impl From<Node> for NodeOut {
    fn from(n: Node) -> Self {
        NodeOut {
            id: n.id.get(),
            deployment_id: n.deployment_id.get(),
            node_id: n.name,
            state: n.state.as_str(),
            hostname: n.hostname,
            ip_address: n.ip_address,
            created_at: timestamp(n.created_at),
            updated_at: timestamp(n.updated_at),
            state_changed_at: timestamp(n.state_changed_at),
            attempt: n.attempt,
            failure_reason: n.failure_reason,
            retry_at: n.retry_at.map(timestamp),
        }
    }
}

/// A page of nodes.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    /// The nodes, ascending id.
    pub nodes: Vec<NodeOut>,
    /// How many nodes match the filter over all pages.
    pub total: i64,
}

impl From<netorch_storage::nodes::NodePage> for NodeList {
    fn from(page: netorch_storage::nodes::NodePage) -> Self {
        NodeList {
            nodes: page.nodes.into_iter().map(NodeOut::from).collect(),
            total: page.total,
        }
    }
}

/// A telemetry sample.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleOut {
    /// Id.
    pub id: i64,
    /// The node's numeric id.
    pub node_id: i64,
    /// Its deployment.
    pub deployment_id: i64,
    /// When it was read.
    pub timestamp: String,
    /// Milliseconds.
    pub latency_ms: f64,
    /// Gb/s.
    pub throughput_gbps: f64,
    /// Percent.
    pub error_rate: f64,
}

impl From<TelemetrySample> for SampleOut {
    fn from(s: TelemetrySample) -> Self {
        SampleOut {
            id: s.id.get(),
            node_id: s.node_id.get(),
            deployment_id: s.deployment_id.get(),
            timestamp: timestamp(s.timestamp),
            latency_ms: s.metrics.latency_ms,
            throughput_gbps: s.metrics.throughput_gbps,
            error_rate: s.metrics.error_rate,
        }
    }
}

/// A page of samples, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleList {
    /// The samples.
    pub samples: Vec<SampleOut>,
    /// How many samples this page holds.
    pub total: usize,
}

/// The answer to a push.
#[derive(Debug, Serialize, ToSchema)]
pub struct TelemetryAccepted {
    /// Samples accepted (all of the request's).
    pub accepted: usize,
    /// Of those, how many were new (a repeated node and timestamp is stored once).
    pub stored: usize,
}

/// Per-metric scores of a bottleneck, positive when worse than the fleet.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoresOut {
    /// Latency score.
    pub latency_ms: f64,
    /// Throughput score (low throughput scores high).
    pub throughput_gbps: f64,
    /// Error-rate score.
    pub error_rate: f64,
}

/// A bottleneck node.
#[derive(Debug, Serialize, ToSchema)]
pub struct BottleneckOut {
    /// Numeric node id.
    pub node_id: i64,
    /// Its name: `node-009`.
    pub node_identifier: String,
    /// Its deployment.
    pub deployment_id: i64,
    /// Mean latency over the window.
    pub latency_ms: f64,
    /// Mean throughput over the window.
    pub throughput_gbps: f64,
    /// Mean error rate over the window.
    pub error_rate: f64,
    /// `0.4 latency + 0.4 throughput + 0.2 error rate` over the positive scores.
    pub deviation_score: f64,
    /// Its newest sample in the window.
    pub timestamp: String,
    /// Per-metric scores.
    pub scores: ScoresOut,
    /// The metrics whose score reached the threshold.
    #[schema(schema_with = reasons_schema)]
    pub reasons: Vec<&'static str>,
    /// Samples of the node in the window.
    pub sample_count: u64,
}

impl BottleneckOut {
    /// The API shape of `b`, with the node's name and deployment.
    pub fn new(b: &Bottleneck, node_identifier: String, deployment_id: i64) -> Self {
        BottleneckOut {
            node_id: b.node_id.get(),
            node_identifier,
            deployment_id,
            latency_ms: b.means.latency_ms,
            throughput_gbps: b.means.throughput_gbps,
            error_rate: b.means.error_rate,
            deviation_score: b.deviation_score,
            timestamp: timestamp(b.newest_sample),
            scores: ScoresOut {
                latency_ms: b.scores.latency_ms,
                throughput_gbps: b.scores.throughput_gbps,
                error_rate: b.scores.error_rate,
            },
            reasons: b.reasons.iter().map(|r| r.as_str()).collect(),
            sample_count: b.sample_count,
        }
    }
}

/// The bottleneck report.
#[derive(Debug, Serialize, ToSchema)]
pub struct BottleneckReportOut {
    /// The deployment.
    pub deployment_id: i64,
    /// When the analysis ran (the end of the window).
    pub detected_at: String,
    /// The bottlenecks, highest deviation score first.
    pub bottlenecks: Vec<BottleneckOut>,
    /// How many.
    pub total_bottlenecks: usize,
    /// The window, in minutes before `detected_at`.
    pub analysis_window_minutes: i64,
    /// The method used.
    #[schema(schema_with = method_schema)]
    pub method: &'static str,
    /// The score at which a node counts.
    pub threshold: f64,
    /// Nodes with samples in the window.
    pub nodes_analyzed: usize,
    /// Samples in the window.
    pub samples_analyzed: u64,
}

impl BottleneckReportOut {
    /// The API shape of `report`; `names` maps node ids to names.
    pub fn new(
        report: &BottleneckReport,
        deployment_id: i64,
        detected_at: DateTime<Utc>,
        analysis_window_minutes: i64,
        names: &std::collections::HashMap<netorch_domain::NodeId, String>,
    ) -> Self {
        let bottlenecks: Vec<BottleneckOut> = report
            .bottlenecks
            .iter()
            .map(|b| {
                // A node removed since its samples were taken is named by its id.
                let name = names
                    .get(&b.node_id)
                    .cloned()
                    .unwrap_or_else(|| b.node_id.to_string());
                BottleneckOut::new(b, name, deployment_id)
            })
            .collect();
        BottleneckReportOut {
            deployment_id,
            detected_at: timestamp(detected_at),
            total_bottlenecks: bottlenecks.len(),
            bottlenecks,
            analysis_window_minutes,
            method: report.config.method.as_str(),
            threshold: report.config.threshold,
            nodes_analyzed: report.nodes_analyzed,
            samples_analyzed: report.samples_analyzed,
        }
    }
}

/// An audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Id, increasing in order of occurrence.
    pub id: i64,
    /// The deployment.
    pub deployment_id: Option<i64>,
    /// The node, for node events.
    pub node_id: Option<i64>,
    /// What happened.
    #[schema(schema_with = event_type_schema)]
    pub event_type: &'static str,
    /// A sentence for humans.
    pub message: String,
    /// Details (`from_state`, `to_state`, `attempt`, ...).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// When it happened.
    pub created_at: String,
}

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        EventOut {
            id: e.id.get(),
            deployment_id: e.deployment_id.map(|d| d.get()),
            node_id: e.node_id.map(|n| n.get()),
            event_type: e.event_type.as_str(),
            message: e.message,
            metadata: e.metadata,
            created_at: timestamp(e.created_at),
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Events in order of occurrence.
    pub events: Vec<EventOut>,
    /// Pass as `after` for the next page; null when this page was the last. A page ends at
    /// `limit` events or at 1 MiB of JSON, whichever comes first.
    pub next_after: Option<i64>,
}

/// One worker loop's liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerOut {
    /// The worker process's name.
    pub name: String,
    /// The loop's kind.
    #[schema(schema_with = worker_kind_schema)]
    pub kind: &'static str,
    /// Its last finished tick.
    pub last_heartbeat: String,
    /// Whether it is running: not stopped, and its last tick within three of its intervals.
    pub alive: bool,
    /// When it stopped cleanly; null while it runs (or if it died without saying so).
    pub stopped_at: Option<String>,
}

impl WorkerOut {
    /// The API shape of `h` at `now`.
    pub fn new(h: &WorkerHeartbeat, now: DateTime<Utc>) -> Self {
        WorkerOut {
            name: h.name.clone(),
            kind: h.kind.as_str(),
            last_heartbeat: timestamp(h.last_heartbeat),
            alive: h.is_alive(now),
            stopped_at: h.stopped_at.map(timestamp),
        }
    }
}

/// The service's overall state in `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    /// The database answers and a lifecycle and a telemetry loop are alive.
    Healthy,
    /// Something needs an operator: the database does not answer, or no lifecycle or no
    /// telemetry loop has reported within three of its intervals (deployments then stop
    /// moving or stop collecting telemetry). The API itself still answers.
    Degraded,
}

/// Whether the database answers, in `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseStatus {
    /// It answered a query just now.
    Healthy,
    /// It did not answer (no connection within the pool's timeout, or the query failed).
    Unhealthy,
    /// It answers reads, but writes fail for lack of space (a full disk): every write is
    /// answered 507 until space is freed, which is noticed by itself.
    #[serde(rename = "writes_failing")]
    WritesFailing,
}

/// `GET /health`: always 200; read `status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, or `degraded` when the database or a kind of worker loop is missing.
    pub status: ServiceStatus,
    /// Now.
    pub timestamp: String,
    /// Whether the database answers.
    pub database: DatabaseStatus,
    /// How many deployments exist.
    pub active_deployments: i64,
    /// Whether a lifecycle and a telemetry loop are both alive.
    pub active_workers: bool,
    /// The worker loops that reported recently, alive or not.
    pub workers: Vec<WorkerOut>,
}

/// Whether the server should get traffic, in `GET /ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessStatus {
    /// The database answers: send traffic.
    Ready,
    /// The database does not answer: send traffic elsewhere.
    Unavailable,
    /// The server is shutting down: it finishes what it has, send new traffic elsewhere.
    Draining,
    /// Writes fail for lack of space: send traffic elsewhere until space is freed.
    #[serde(rename = "writes_failing")]
    WritesFailing,
}

/// `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` (200); `unavailable`, `writes_failing` or `draining` (503).
    pub status: ReadinessStatus,
}

/// One metric over a bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricOut {
    /// The mean of the bucket's samples.
    pub mean: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl From<&MetricSummary> for MetricOut {
    fn from(m: &MetricSummary) -> Self {
        MetricOut {
            mean: m.mean,
            min: m.min,
            max: m.max,
        }
    }
}

/// One bucket of a series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesBucketOut {
    /// The bucket's start (for raw samples, the sample's time), UTC.
    pub timestamp: String,
    /// Samples in the bucket.
    pub count: u64,
    /// Nodes with samples in the bucket (1 in a node's series).
    pub nodes: u64,
    /// Latency, milliseconds.
    pub latency_ms: MetricOut,
    /// Throughput, Gb/s.
    pub throughput_gbps: MetricOut,
    /// Error rate, percent.
    pub error_rate: MetricOut,
}

impl From<&SeriesBucket> for SeriesBucketOut {
    fn from(b: &SeriesBucket) -> Self {
        SeriesBucketOut {
            timestamp: timestamp(b.start),
            count: b.summary.count,
            nodes: b.nodes,
            latency_ms: MetricOut::from(&b.summary.latency_ms),
            throughput_gbps: MetricOut::from(&b.summary.throughput_gbps),
            error_rate: MetricOut::from(&b.summary.error_rate),
        }
    }
}

/// A series: a node's or a fleet's telemetry in buckets, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesOut {
    /// The deployment.
    pub deployment_id: i64,
    /// The node, in a node's series; absent in a fleet's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    /// The step asked for.
    #[schema(schema_with = step_schema)]
    pub step: &'static str,
    /// What the buckets are: `raw` (samples) or the rollup read (`1m`, `1h`). Coarser than
    /// `step` where the range reaches past the retention of the step's tier.
    #[schema(schema_with = resolution_schema)]
    pub resolution: &'static str,
    /// From (inclusive), UTC.
    pub start_time: String,
    /// Until (inclusive), UTC.
    pub end_time: String,
    /// The buckets, oldest first.
    pub buckets: Vec<SeriesBucketOut>,
}

fn step_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_service::series::SeriesStep>("The step asked for")
}

fn resolution_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            std::iter::once("raw")
                .chain(Resolution::ALL.iter().map(|r| r.as_str()))
                .collect::<Vec<_>>(),
        ))
        .description(Some("What the buckets are"))
        .into()
}
