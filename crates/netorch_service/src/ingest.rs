//! Stores what a collector's protocol carried ([`Batch`]), by the one mapping every protocol
//! shares (`netorch_domain::ingest`): each point's deployment and node resolved from its labels,
//! a node's metrics read at the same instant assembled into one sample, a reading whose metrics
//! have not all arrived kept waiting for the request that brings the rest, and every refused
//! point counted with its reason. A point already stored is stored once (a sender's retry).

use crate::ServiceError;
use chrono::SubsecRound;
use netorch_domain::ingest::{Accepted, Batch, Point, Protocol, Refusal, Refusals, shorten};
use netorch_domain::{DeploymentId, MetricKind, NewSample, NodeId, Timestamp};
use netorch_storage::ingest::{self as store, DeploymentMatch, PartialSample};
use netorch_storage::{DbConnection, StorageError};
use std::collections::{BTreeMap, HashMap};

/// What became of a batch's points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Points accepted: stored in a sample, already stored (a retry), or waiting for their
    /// reading's other metrics.
    pub accepted: u64,
    /// Samples new in the database.
    pub new_samples: u64,
    /// Readings still waiting for some metric.
    pub waiting: u64,
    /// Points refused, by reason.
    pub refused: Refusals,
}

/// One node's reading at one instant, as far as the batch brought it; each metric's first value
/// kept (as a stored sample is).
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    metrics: [Option<f64>; 3],
    points: u64,
}

/// Stores `batch` for the caller whose key reaches `scope` (`None`: every deployment), with
/// readings from `accepted`'s range; `now` stamps waiting readings.
pub fn ingest(
    conn: &mut DbConnection,
    protocol: Protocol,
    batch: Batch,
    scope: Option<&[DeploymentId]>,
    accepted: Accepted,
    now: Timestamp,
) -> Result<Ingested, ServiceError> {
    let Batch { points, refused } = batch;
    let mut outcome = Ingested {
        refused,
        ..Ingested::default()
    };
    let points: Vec<Point> = points
        .into_iter()
        .filter(|p| match accepted.check(p.metric, p.at, p.value) {
            Ok(()) => true,
            Err(reason) => {
                outcome.refused.add(reason, 1, || describe(p));
                false
            }
        })
        // Samples are kept to the microsecond: two points a few nanoseconds apart are one
        // reading (grouped by what is stored, not by what was sent).
        .map(|mut p| {
            p.at = p.at.trunc_subsecs(6);
            p
        })
        .collect();
    let labels: Vec<&str> = points.iter().map(|p| p.deployment.as_str()).collect();
    let deployments = store::resolve_deployments(conn, &labels)?;
    let mut by_deployment: BTreeMap<DeploymentId, Vec<Point>> = BTreeMap::new();
    for point in points {
        let refusal = match (deployments.get(&point.deployment), scope) {
            (Some(DeploymentMatch::One(id)), None) => {
                by_deployment.entry(*id).or_default().push(point);
                continue;
            }
            (Some(DeploymentMatch::One(id)), Some(reach)) if reach.contains(id) => {
                by_deployment.entry(*id).or_default().push(point);
                continue;
            }
            // A key limited to some deployments learns nothing of the others: whether a label
            // names one, none or several, it is refused alike.
            (_, Some(_)) => Refusal::ForbiddenDeployment,
            (None, None) => Refusal::UnknownDeployment,
            (Some(DeploymentMatch::Ambiguous), None) => Refusal::AmbiguousDeployment,
        };
        outcome.refused.add(refusal, 1, || describe(&point));
    }
    for (deployment, points) in by_deployment {
        store_for(conn, protocol, deployment, points, now, &mut outcome)?;
    }
    Ok(outcome)
}

/// Stores one deployment's points.
fn store_for(
    conn: &mut DbConnection,
    protocol: Protocol,
    deployment: DeploymentId,
    points: Vec<Point>,
    now: Timestamp,
    outcome: &mut Ingested,
) -> Result<(), ServiceError> {
    let labels: Vec<&str> = points.iter().map(|p| p.node.as_str()).collect();
    let nodes = store::resolve_nodes(conn, deployment, &labels)?;
    // A node label that names nothing may be a deployment deleted since it was resolved (its
    // nodes went with it): then every point is of a deployment that does not exist.
    if points.iter().any(|p| !nodes.contains_key(&p.node))
        && let Err(StorageError::DeploymentNotFound) =
            netorch_storage::deployment_rows::ensure_exists(conn, deployment)
    {
        let first = points.first().map(describe).unwrap_or_default();
        outcome
            .refused
            .add(Refusal::UnknownDeployment, points.len() as u64, || first);
        return Ok(());
    }
    let mut readings: HashMap<(NodeId, Timestamp), Reading> = HashMap::new();
    let mut first_of: HashMap<NodeId, Point> = HashMap::new();
    for point in points {
        let Some(node) = nodes.get(&point.node).copied() else {
            outcome
                .refused
                .add(Refusal::UnknownNode, 1, || describe(&point));
            continue;
        };
        let reading = readings.entry((node, point.at)).or_default();
        let slot = &mut reading.metrics[metric_index(point.metric)];
        slot.get_or_insert(point.value);
        reading.points += 1;
        first_of.entry(node).or_insert(point);
    }
    let mut complete = Vec::new();
    let mut parts = Vec::new();
    for (&(node_id, timestamp), reading) in &readings {
        let [latency_ms, throughput_gbps, error_rate] = reading.metrics;
        let part = PartialSample {
            node_id,
            timestamp,
            latency_ms,
            throughput_gbps,
            error_rate,
        };
        match part.complete(deployment) {
            Some(sample) => complete.push(sample),
            None => parts.push(part),
        }
    }
    // In time order, as collectors send, so that the rollups see each minute's samples together.
    complete.sort_by_key(|s: &NewSample| (s.timestamp, s.node_id));
    parts.sort_by_key(|p| (p.timestamp, p.node_id));
    let stored = match store::store(conn, deployment, &complete, &parts, protocol.as_str(), now) {
        Ok(stored) => stored,
        Err(StorageError::DeploymentNotFound) => {
            // Deleted since it was resolved.
            let n = readings.values().map(|r| r.points).sum();
            let first = first_of.values().next().map(describe).unwrap_or_default();
            outcome.refused.add(Refusal::UnknownDeployment, n, || first);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for (&(node, _), reading) in &readings {
        if stored.strangers.contains(&node) {
            let first = first_of.get(&node).map(describe).unwrap_or_default();
            outcome
                .refused
                .add(Refusal::UnknownNode, reading.points, || first);
        } else {
            outcome.accepted += reading.points;
        }
    }
    outcome.new_samples += stored.new_samples as u64;
    outcome.waiting += stored.waiting as u64;
    Ok(())
}

fn metric_index(metric: MetricKind) -> usize {
    match metric {
        MetricKind::LatencyMs => 0,
        MetricKind::ThroughputGbps => 1,
        MetricKind::ErrorRate => 2,
    }
}

/// A point as a refusal names it: `latency_ms of node "node-999" of deployment "4" at
/// 2026-12-07T01:02:03Z`.
fn describe(point: &Point) -> String {
    format!(
        "{} of node {:?} of deployment {:?} at {}",
        point.metric.as_str(),
        shorten(&point.node),
        shorten(&point.deployment),
        point
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Deletes the readings that have waited since before `received_before` for metrics that never
/// came: how many, by protocol name (counted as refused, reason `incomplete`).
pub fn expire_waiting(
    conn: &mut DbConnection,
    received_before: Timestamp,
) -> Result<BTreeMap<String, u64>, ServiceError> {
    Ok(store::expire(conn, received_before)?)
}

/// How long a reading waits for its other metrics before [`expire_waiting`] deletes it: long
/// enough for a sender's retries of a shard that failed (Prometheus backs off up to 5 s by
/// default, vmagent up to a minute) and short against the raw retention.
pub const WAIT_FOR_METRICS: chrono::Duration = chrono::Duration::minutes(10);
