//! Self-healing's pass over one deployment ([`pass`]): in one write transaction under the
//! deployment's lock, reads its firing node alerts and the nodes on their way back from a
//! remediation, asks the domain's [`decide`] what to do, and does it: re-provisions nodes
//! (`RUNNING → PENDING`, attempt + 1, a `NODE_REMEDIATED` event naming the alert), or records
//! why remediation stopped (`REMEDIATION_STOPPED`), or that it goes on again
//! (`REMEDIATION_RESUMED`).
//!
//! Under the lock, two workers' passes over one deployment run one after the other, and the
//! second sees the first's nodes on their way back: `max_concurrent` holds across workers.

use crate::deployment_rows::{DeploymentLock, adjust_state_count, lock};
use crate::schema::{alerts, deployments, nodes};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError, events as event_log, write_transaction};
use diesel::prelude::*;
use netorch_domain::remediation::{Decision, FiringNodeAlert, decide};
use netorch_domain::{
    AlertId, AlertState, DeploymentId, NewEvent, NodeId, NodeState, NodeTrigger, RemediationStop,
    Timestamp,
};
use std::collections::{BTreeSet, HashMap};

/// What one pass did for a deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassOutcome {
    /// The nodes sent back to `PENDING`.
    pub remediated: Vec<NodeId>,
    /// Why remediation is stopped after the pass, if it is.
    pub stopped: Option<RemediationStop>,
}

/// The states of a node on its way back from a remediation (and `FAILED` with a retry coming).
const RETURNING: [NodeState; 3] = [
    NodeState::Pending,
    NodeState::Provisioning,
    NodeState::Configuring,
];

/// Self-healing's pass over `deployment` at `now`; `None` when it is gone or has no
/// remediation policy (found with a read, without a write transaction). A deployment whose rollout is paused is left as it is: an operator who
/// paused it wants nothing changed.
pub fn pass(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    now: Timestamp,
) -> Result<Option<PassOutcome>> {
    // A read first: most deployments have no policy, and their pass costs no write.
    let policy: Option<Option<String>> = deployments::table
        .find(deployment.get())
        .select(deployments::remediation)
        .first(conn)
        .optional()?;
    if policy.flatten().is_none() {
        return Ok(None);
    }
    write_transaction(conn, |conn| {
        if lock(conn, &[deployment], DeploymentLock::ChangeNodes)?.is_empty() {
            return Ok(None);
        }
        let (found, counts) = crate::deployments::get_with_counts(conn, deployment)?;
        let Some(policy) = found.remediation else {
            return Ok(None);
        };
        if found.paused_at.is_some() {
            return Ok(Some(PassOutcome {
                remediated: Vec::new(),
                stopped: found.remediation_stopped,
            }));
        }
        let firing = firing_node_alerts(conn, deployment)?;
        let returning = returning(conn, deployment)?;
        match decide(&policy, &firing, &returning, counts.kept(), now) {
            Decision::Stop { unhealthy, total } => {
                let stop = RemediationStop {
                    since: found.remediation_stopped.map_or(now, |s| s.since),
                    unhealthy,
                    total,
                    max_unhealthy_percent: policy.max_unhealthy_percent,
                };
                if found.remediation_stopped != Some(stop) {
                    set_stopped(conn, deployment, Some(&stop))?;
                }
                if found.remediation_stopped.is_none() {
                    event_log::insert(
                        conn,
                        &NewEvent::remediation_stopped(deployment, &stop, now),
                    )?;
                    log::warn!("deployment {deployment}: {}", stop.reason());
                }
                Ok(Some(PassOutcome {
                    remediated: Vec::new(),
                    stopped: Some(stop),
                }))
            }
            Decision::Remediate(chosen) => {
                let mut events = Vec::new();
                if found.remediation_stopped.is_some() {
                    set_stopped(conn, deployment, None)?;
                    let unhealthy: BTreeSet<NodeId> = firing
                        .iter()
                        .map(|f| f.node)
                        .chain(returning.iter().copied())
                        .collect();
                    events.push(NewEvent::remediation_resumed(
                        deployment,
                        unhealthy.len() as u64,
                        counts.kept(),
                        now,
                    ));
                }
                let mut remediated = Vec::new();
                for candidate in &chosen {
                    if let Some(event) = remediate(conn, deployment, candidate, &policy, now)? {
                        remediated.push(candidate.node);
                        events.push(event);
                    }
                }
                if !remediated.is_empty() {
                    let moved = remediated.len() as i64;
                    adjust_state_count(conn, deployment, NodeState::Running, -moved)?;
                    adjust_state_count(conn, deployment, NodeState::Pending, moved)?;
                }
                event_log::insert_many(conn, &events)?;
                Ok(Some(PassOutcome {
                    remediated,
                    stopped: None,
                }))
            }
        }
    })
}

/// What the pass reads of an alert: id, `active_since`, fingerprint, `starts_at`, node.
type AlertFields = (i64, i64, String, Option<i64>, Option<i64>);

/// The deployment's firing node alerts, each with its node as it is now (alerts of nodes
/// since removed, or being decommissioned, left out: those are not the deployment's any more,
/// and its total leaves them out too).
fn firing_node_alerts(
    conn: &mut DbConnection,
    deployment: DeploymentId,
) -> Result<Vec<FiringNodeAlert>> {
    let alerts: Vec<AlertFields> = alerts::table
        .filter(alerts::deployment_id.eq(deployment.get()))
        .filter(alerts::state.eq(AlertState::Firing.as_str()))
        .filter(alerts::node_id.is_not_null())
        .select((
            alerts::id,
            alerts::active_since,
            alerts::fingerprint,
            alerts::starts_at,
            alerts::node_id,
        ))
        .load(conn)?;
    let ids: Vec<i64> = alerts.iter().filter_map(|a| a.4).collect();
    let mut found: HashMap<i64, (String, i64, Option<i64>)> = HashMap::new();
    // Chunked to stay under SQLite's bound-parameter limit.
    for chunk in ids.chunks(10_000) {
        let rows: Vec<(i64, String, i64, Option<i64>)> = nodes::table
            .filter(nodes::id.eq_any(chunk))
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::state.ne(NodeState::Decommissioning.as_str()))
            .select((
                nodes::id,
                nodes::state,
                nodes::version,
                nodes::remediated_at,
            ))
            .load(conn)?;
        found.extend(
            rows.into_iter()
                .map(|(id, state, version, alert)| (id, (state, version, alert))),
        );
    }
    let mut firing = Vec::with_capacity(alerts.len());
    for (alert, active_since, fingerprint, starts_at, node) in alerts {
        // A firing alert has fired (`starts_at` is set with its state) and is a node's.
        let (Some(node), Some(starts_at)) = (node, starts_at) else {
            continue;
        };
        let Some((state, version, remediated_at)) = found.get(&node) else {
            continue;
        };
        firing.push(FiringNodeAlert {
            alert: AlertId(alert),
            active_since: from_micros("alerts", active_since)?,
            fingerprint,
            firing_since: from_micros("alerts", starts_at)?,
            node: NodeId(node),
            state: state.parse()?,
            version: *version,
            remediated_at: remediated_at
                .map(|at| from_micros("nodes", at))
                .transpose()?,
        });
    }
    Ok(firing)
}

/// The deployment's nodes on their way back from a remediation: in a phase, or failed with an
/// automatic retry coming (`check_after` set).
fn returning(conn: &mut DbConnection, deployment: DeploymentId) -> Result<BTreeSet<NodeId>> {
    let in_phase = nodes::state.eq_any(RETURNING.map(NodeState::as_str).to_vec());
    let retrying = nodes::state
        .eq(NodeState::Failed.as_str())
        .and(nodes::check_after.is_not_null());
    let ids: Vec<i64> = nodes::table
        .filter(nodes::deployment_id.eq(deployment.get()))
        .filter(nodes::remediated_at.is_not_null())
        .filter(in_phase.or(retrying))
        .select(nodes::id)
        .load(conn)?;
    Ok(ids.into_iter().map(NodeId).collect())
}

fn set_stopped(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    stop: Option<&RemediationStop>,
) -> Result<()> {
    let text = stop
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
    diesel::update(deployments::table.find(deployment.get()))
        .set(deployments::remediation_stopped.eq(text))
        .execute(conn)?;
    Ok(())
}

/// Sends one running node back to `PENDING` if it is still as the pass read it (a guarded
/// update on its version); its `NODE_REMEDIATED` event, or `None` when it moved meanwhile.
fn remediate(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    candidate: &FiringNodeAlert,
    policy: &netorch_domain::Remediation,
    now: Timestamp,
) -> Result<Option<NewEvent>> {
    // The lifecycle table is the one source of what may happen.
    let to = candidate.state.apply(NodeTrigger::Remediate)?;
    let at = to_micros(now);
    use nodes::dsl as n;
    let moved: Vec<(String, i32)> = on_backend!(conn, |inner| {
        diesel::update(
            n::nodes
                .filter(n::id.eq(candidate.node.get()))
                .filter(n::version.eq(candidate.version))
                .filter(n::state.eq(candidate.state.as_str())),
        )
        .set((
            n::state.eq(to.as_str()),
            n::attempt.eq(n::attempt + 1),
            n::version.eq(n::version + 1),
            n::failure_reason.eq(None::<String>),
            n::updated_at.eq(at),
            n::state_changed_at.eq(at),
            n::check_after.eq(None::<i64>),
            n::remediations.eq(n::remediations + 1),
            n::remediated_at.eq(Some(at)),
        ))
        .returning((n::name, n::attempt))
        .get_results(inner)?
    });
    let Some((name, attempt)) = moved.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some(NewEvent::node_remediated(
        deployment,
        candidate.node,
        &name,
        u32::try_from(attempt).unwrap_or_default(),
        (&candidate.fingerprint, candidate.alert),
        policy.after_seconds,
        now,
    )))
}
