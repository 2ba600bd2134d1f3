//! The domain model of netorch: what a deployment, a node, a telemetry sample and an audit event
//! are, and the node lifecycle as an explicit state machine.
//!
//! This crate is pure. It performs no I/O, never reads the clock (every function that needs the
//! time takes it as a parameter) and knows nothing of databases, HTTP or async runtimes, so every
//! other crate can depend on it and its logic is tested without any of them.

mod access;
pub mod alert;
mod detection;
mod error;
mod event;
mod hardware;
mod ids;
pub mod ingest;
mod listing;
mod model;
pub mod provisioning;
pub mod remediation;
mod rollout;
mod state;
mod telemetry;

pub use access::{Action, ApiKey, Role};
pub use alert::{Alert, AlertRules, AlertState, Severity, Silence};
/// The time library of every timestamp here ([`Timestamp`] is a `chrono::DateTime<Utc>`), for
/// programs that use these types without naming their own version of it.
pub use chrono;
pub use detection::{Method, MetricKind};
pub use error::DomainError;
pub use event::{EventType, NewEvent, PauseReason};
pub use hardware::{Phase, PhaseStatus, Provisioner, TelemetrySource};
pub use ids::{
    AlertId, DeploymentId, EventId, NodeId, NotificationId, ReceiverId, SampleId, SilenceId,
};
pub use listing::{DeploymentListing, DeploymentSort};
pub use model::{
    Deployment, DeploymentChanges, EVENT_TEXT_MAX_CHARS, Event, NewDeployment, Node, NodeRef,
    NodeStateCounts, TelemetryOrigin, WorkerHeartbeat, WorkerKind, excerpt, hostname, node_name,
};
pub use provisioning::{ProvisionerRun, Provisioning, RunOutcome};
pub use remediation::{Remediation, RemediationStop};
pub use rollout::{
    DeploymentStatus, MIN_FAILURE_SAMPLE, Progress, RETRY_BACKOFF_BASE, RETRY_BACKOFF_MAX,
    RolloutPolicy,
};
pub use state::{NodeState, NodeTrigger, OperatorAction, TRANSITIONS, Transition};
pub use telemetry::{
    MetricSummary, Metrics, NewSample, Resolution, SampleSummary, TelemetrySample,
};

/// Timestamps everywhere in netorch: UTC, microsecond precision.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
