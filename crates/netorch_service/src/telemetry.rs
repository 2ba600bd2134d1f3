//! Telemetry samples: a deployment's read back, and those a collector pushes stored all or
//! nothing.

use crate::ServiceError;
use crate::nodes::NodeMatch;
use netorch_domain::{
    DeploymentId, Metrics, NewSample, NodeId, NodeRef, TelemetrySample, Timestamp,
};
use netorch_storage::{DbConnection, deployments, nodes, telemetry};

pub use netorch_storage::telemetry::TelemetryQuery;

/// The deployment's samples, newest first, as `query` narrows them, and only those of the node
/// `node` names if given (by id or name: a name no node of the deployment has finds none).
/// `Storage(DeploymentNotFound)` when the deployment does not exist (a deleted one's samples
/// are gone with it).
pub fn read(
    conn: &mut DbConnection,
    mut query: TelemetryQuery,
    node: Option<&NodeRef>,
) -> Result<Vec<TelemetrySample>, ServiceError> {
    deployments::ensure_exists(conn, query.deployment)?;
    match NodeMatch::of(conn, query.deployment, node)? {
        NodeMatch::Every => {}
        NodeMatch::Only(id) => query.node = Some(id),
        NodeMatch::Nothing => return Ok(Vec::new()),
    }
    Ok(telemetry::query(conn, &query)?)
}

/// A sample a collector sends.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedSample {
    /// The node: its id, or its name within the deployment.
    pub node: NodeRef,
    /// When it was read; `None` stamps it with the time the push arrives.
    pub timestamp: Option<Timestamp>,
    /// The readings.
    pub metrics: Metrics,
}

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every sample is stored: this many were new (a repeated node and time is stored once,
    /// the first kept).
    Stored(usize),
    /// Nothing is stored: these samples (their indexes in the push) name nodes that are not
    /// the deployment's.
    UnknownNodes(Vec<usize>),
}

/// Stores `samples` for `deployment`, all or nothing, stamping those without a time with
/// `now`. Names are resolved in the same connection, and the insert checks again, under the
/// deployment's lock, that every node is one of it (a node cannot be deleted in between).
/// `Storage(DeploymentNotFound)` when the deployment does not exist.
pub fn push(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    samples: &[PushedSample],
    now: Timestamp,
) -> Result<PushOutcome, ServiceError> {
    let names: Vec<&str> = samples
        .iter()
        .filter_map(|s| match &s.node {
            NodeRef::Name(name) => Some(name.as_str()),
            NodeRef::Id(_) => None,
        })
        .collect();
    let named = if names.is_empty() {
        Default::default()
    } else {
        nodes::ids_by_name(conn, deployment, &names)?
    };
    let mut unnamed = Vec::new();
    let stored: Vec<NewSample> = samples
        .iter()
        .enumerate()
        .filter_map(|(index, sample)| {
            let id: Option<NodeId> = match &sample.node {
                NodeRef::Id(id) => Some(*id),
                NodeRef::Name(name) => named.get(name).copied(),
            };
            if id.is_none() {
                unnamed.push(index);
            }
            id.map(|node_id| NewSample {
                node_id,
                deployment_id: deployment,
                timestamp: sample.timestamp.unwrap_or(now),
                metrics: sample.metrics,
            })
        })
        .collect();
    if !unnamed.is_empty() {
        // Still a missing deployment for a deployment that does not exist, as for ids.
        deployments::ensure_exists(conn, deployment)?;
        return Ok(PushOutcome::UnknownNodes(unnamed));
    }
    Ok(
        match telemetry::insert_for_deployment(conn, deployment, &stored)? {
            Ok(count) => PushOutcome::Stored(count),
            Err(strangers) => PushOutcome::UnknownNodes(strangers),
        },
    )
}
