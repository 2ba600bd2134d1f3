//! Deployments: create (with all their nodes), get, change, pause, resume, delete; the reads
//! across deployments (listings, counts, the fleet's summary) are in `listing.rs`. The lock and
//! the counters every write path applies to a deployment's row are in [`crate::deployment_rows`].

use crate::connection::write_transaction;
use crate::deployment_rows::{DeploymentLock, adjust_state_count, lock};
use crate::nodes::{NodeChange, TransitionPlan};
use crate::schema::{deployments, nodes, telemetry_samples};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError, events as event_log};

mod listing;

pub use crate::deployment_rows::ensure_exists;
use diesel::prelude::*;
pub use listing::{FleetSummary, all_ids, count, fleet_summary, list, list_where};
use netorch_domain::{
    AlertRules, Deployment, DeploymentChanges, DeploymentId, NewDeployment, NewEvent, NodeState,
    NodeStateCounts, NodeTrigger, PauseReason, RolloutPolicy, Timestamp, hostname, node_name,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = deployments)]
struct DeploymentRow {
    id: i64,
    name: String,
    description: Option<String>,
    target_node_count: i32,
    created_at: i64,
    updated_at: i64,
    max_in_flight: Option<i32>,
    max_failure_percent: Option<f64>,
    max_retries: i32,
    phase_timeout_seconds: Option<i32>,
    paused_at: Option<i64>,
    telemetry_origin: String,
    alert_rules: String,
    provisioner: String,
    provisioner_parameters: String,
    remediation: Option<String>,
    remediation_stopped: Option<String>,
}

/// A non-negative integer column as the domain's `u32`.
fn unsigned(column: &'static str, value: i32) -> Result<u32> {
    u32::try_from(value).map_err(|_| StorageError::CorruptRow {
        table: "deployments",
        detail: format!("negative {column} {value}"),
    })
}

impl TryFrom<DeploymentRow> for Deployment {
    type Error = StorageError;

    fn try_from(row: DeploymentRow) -> Result<Self> {
        Ok(Deployment {
            id: DeploymentId(row.id),
            name: row.name,
            description: row.description,
            target_node_count: unsigned("target_node_count", row.target_node_count)?,
            rollout: RolloutPolicy {
                max_in_flight: row
                    .max_in_flight
                    .map(|v| unsigned("max_in_flight", v))
                    .transpose()?,
                max_failure_percent: row.max_failure_percent,
                max_retries: unsigned("max_retries", row.max_retries)?,
                phase_timeout_seconds: row
                    .phase_timeout_seconds
                    .map(|v| unsigned("phase_timeout_seconds", v))
                    .transpose()?,
            },
            telemetry: row
                .telemetry_origin
                .parse()
                .map_err(|e: netorch_domain::DomainError| StorageError::CorruptRow {
                    table: "deployments",
                    detail: e.to_string(),
                })?,
            alert_rules: serde_json::from_str(&row.alert_rules).map_err(|e| {
                StorageError::CorruptRow {
                    table: "deployments",
                    detail: format!("alert_rules: {e}"),
                }
            })?,
            provisioning: netorch_domain::Provisioning {
                profile: row.provisioner,
                parameters: serde_json::from_str(&row.provisioner_parameters).map_err(|e| {
                    StorageError::CorruptRow {
                        table: "deployments",
                        detail: format!("provisioner_parameters: {e}"),
                    }
                })?,
            },
            remediation: row
                .remediation
                .as_deref()
                .map(|text| json_column("remediation", text))
                .transpose()?,
            remediation_stopped: row
                .remediation_stopped
                .as_deref()
                .map(|text| json_column("remediation_stopped", text))
                .transpose()?,
            paused_at: row
                .paused_at
                .map(|at| from_micros("deployments", at))
                .transpose()?,
            created_at: from_micros("deployments", row.created_at)?,
            updated_at: from_micros("deployments", row.updated_at)?,
        })
    }
}

/// A JSON column's value, or why the row is corrupt.
fn json_column<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StorageError::CorruptRow {
        table: "deployments",
        detail: format!("{column}: {e}"),
    })
}

/// A remediation policy as its column stores it, checked.
pub(crate) fn stored_remediation(
    remediation: Option<&netorch_domain::Remediation>,
) -> Result<Option<String>> {
    remediation
        .map(|policy| {
            policy
                .check()
                .map_err(|e| StorageError::InvalidInput(e.to_string()))?;
            serde_json::to_string(policy).map_err(|e| StorageError::InvalidInput(e.to_string()))
        })
        .transpose()
}

/// The per-state node counters a deployment row keeps.
#[derive(Queryable, Selectable)]
#[diesel(table_name = deployments)]
struct StateCountsRow {
    pending_nodes: i64,
    provisioning_nodes: i64,
    configuring_nodes: i64,
    running_nodes: i64,
    failed_nodes: i64,
    retrying_nodes: i64,
    decommissioning_nodes: i64,
}

impl From<StateCountsRow> for NodeStateCounts {
    fn from(counts: StateCountsRow) -> Self {
        NodeStateCounts {
            pending: counts.pending_nodes.unsigned_abs(),
            provisioning: counts.provisioning_nodes.unsigned_abs(),
            configuring: counts.configuring_nodes.unsigned_abs(),
            running: counts.running_nodes.unsigned_abs(),
            failed: counts.failed_nodes.unsigned_abs(),
            decommissioning: counts.decommissioning_nodes.unsigned_abs(),
            retrying: counts.retrying_nodes.unsigned_abs(),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = deployments)]
#[diesel(treat_none_as_default_value = false)]
struct NewDeploymentRow<'a> {
    name: &'a str,
    description: Option<&'a str>,
    target_node_count: i32,
    created_at: i64,
    updated_at: i64,
    pending_nodes: i64,
    max_in_flight: Option<i32>,
    max_failure_percent: Option<f64>,
    max_retries: i32,
    phase_timeout_seconds: Option<i32>,
    telemetry_origin: &'static str,
    alert_rules: String,
    provisioner: &'a str,
    provisioner_parameters: String,
    remediation: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = nodes)]
#[diesel(treat_none_as_default_value = false)]
struct NewNodeRow {
    deployment_id: i64,
    name: String,
    state: &'static str,
    hostname: Option<String>,
    ip_address: Option<String>,
    attempt: i32,
    failure_reason: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
    state_changed_at: i64,
    check_after: Option<i64>,
}

/// Rows per multi-row INSERT of nodes: 11 columns stay under SQLite's 32,766 bound parameters.
const NODE_INSERT_CHUNK: usize = 2_000;

/// Adds the nodes numbered `indices` to the deployment, in `PENDING` (the caller counts
/// them).
fn insert_nodes(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    indices: std::ops::RangeInclusive<u32>,
    at: i64,
) -> Result<()> {
    let rows: Vec<NewNodeRow> = indices
        .map(|index| NewNodeRow {
            deployment_id: deployment.get(),
            name: node_name(index),
            state: NodeState::Pending.as_str(),
            hostname: Some(hostname(deployment, index)),
            ip_address: None,
            attempt: 0,
            failure_reason: None,
            version: 0,
            created_at: at,
            updated_at: at,
            state_changed_at: at,
            // Pending nodes are started per deployment (the lifecycle worker), not scheduled.
            check_after: None,
        })
        .collect();
    for chunk in rows.chunks(NODE_INSERT_CHUNK) {
        on_backend!(conn, |inner| {
            diesel::insert_into(nodes::table)
                .values(chunk)
                .execute(inner)?
        });
    }
    Ok(())
}

/// The number in the name of the deployment's newest node (`node-012`: 12), 0 without nodes:
/// nodes are numbered in the order they are made, so the newest has the highest number.
fn highest_node_index(conn: &mut DbConnection, deployment: DeploymentId) -> Result<u32> {
    let newest: Option<String> = nodes::table
        .filter(nodes::deployment_id.eq(deployment.get()))
        .order(nodes::id.desc())
        .select(nodes::name)
        .first(conn)
        .optional()?;
    let Some(name) = newest else { return Ok(0) };
    name.strip_prefix("node-")
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| StorageError::CorruptRow {
            table: "nodes",
            detail: format!("node name {name:?} has no number"),
        })
}

/// Scales the deployment (locked by the caller, `counts` read under that lock) from the nodes
/// it keeps to `target`: adds pending nodes numbered on, or decommissions the newest nodes
/// that are not decommissioning yet. Returns its `DEPLOYMENT_SCALED` event.
fn scale(
    conn: &mut DbConnection,
    deployment: &Deployment,
    counts: &NodeStateCounts,
    target: u32,
    now: Timestamp,
) -> Result<NewEvent> {
    let id = deployment.id;
    let stored_target = stored_int(target, "target_node_count")?;
    let kept = u32::try_from(counts.kept()).unwrap_or(u32::MAX);
    let (added, decommissioned) = if target > kept {
        let first = highest_node_index(conn, id)? + 1;
        let added = target - kept;
        insert_nodes(conn, id, first..=first + (added - 1), to_micros(now))?;
        adjust_state_count(conn, id, NodeState::Pending, i64::from(added))?;
        (added, 0)
    } else {
        // Every node write locks the deployment first, and the caller holds it: nobody else
        // moves these nodes now, so every planned transition applies.
        let newest = crate::nodes::newest_kept(conn, id, i64::from(kept - target))?;
        let plans: Vec<TransitionPlan> = newest
            .iter()
            .map(|node| {
                TransitionPlan::new(node, NodeTrigger::Decommission, NodeChange::default())
                    .map(|plan| plan.with_check_after(now))
            })
            .collect::<std::result::Result<_, _>>()?;
        let done = crate::nodes::apply_transitions(conn, &plans, now)?.len();
        (0, u32::try_from(done).unwrap_or(u32::MAX))
    };
    use deployments::dsl as d;
    diesel::update(deployments::table.find(id.get()))
        .set((
            d::target_node_count.eq(stored_target),
            d::updated_at.eq(to_micros(now)),
        ))
        .execute(conn)?;
    Ok(NewEvent::deployment_scaled(
        id,
        deployment.target_node_count,
        target,
        added,
        decommissioned,
        now,
    ))
}

/// A `u32` setting as its `INTEGER` column; over `i32::MAX` is refused.
fn stored_int(value: u32, name: &str) -> Result<i32> {
    i32::try_from(value).map_err(|_| {
        StorageError::InvalidInput(format!("{name} must be at most {}, got {value}", i32::MAX))
    })
}

/// [`stored_int`] for a setting that may be unset.
fn stored_u32(value: Option<u32>, name: &str) -> Result<Option<i32>> {
    value.map(|v| stored_int(v, name)).transpose()
}

/// Alert rules as their column holds them, once they are checked.
fn stored_rules(rules: &AlertRules) -> Result<String> {
    rules.check().map_err(|problems| {
        let said: Vec<String> = problems
            .iter()
            .map(|p| format!("alert_rules.{}: {}", p.field.join("."), p.message))
            .collect();
        StorageError::InvalidInput(said.join("; "))
    })?;
    serde_json::to_string(rules).map_err(|e| StorageError::InvalidInput(e.to_string()))
}

/// Creates a deployment and all its nodes, in `PENDING`, with a `DEPLOYMENT_CREATED` event, in
/// one transaction: either everything exists afterwards or nothing does.
pub fn create(
    conn: &mut DbConnection,
    new: &NewDeployment,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<Deployment> {
    let count = i32::try_from(new.target_node_count)
        .ok()
        .filter(|count| *count >= 1)
        .ok_or_else(|| {
            StorageError::InvalidInput(format!(
                "target_node_count must be from 1 to {}, got {}",
                i32::MAX,
                new.target_node_count
            ))
        })?;
    let at = to_micros(now);
    write_transaction(conn, |conn| {
        let values = NewDeploymentRow {
            name: &new.name,
            description: new.description.as_deref(),
            target_node_count: count,
            created_at: at,
            updated_at: at,
            pending_nodes: i64::from(count),
            max_in_flight: stored_u32(new.rollout.max_in_flight, "max_in_flight")?,
            max_failure_percent: new.rollout.max_failure_percent,
            max_retries: stored_int(new.rollout.max_retries, "max_retries")?,
            phase_timeout_seconds: stored_u32(
                new.rollout.phase_timeout_seconds,
                "phase_timeout_seconds",
            )?,
            telemetry_origin: new.telemetry.as_str(),
            alert_rules: stored_rules(&new.alert_rules)?,
            provisioner: &new.provisioning.profile,
            provisioner_parameters: serde_json::Value::Object(new.provisioning.parameters.clone())
                .to_string(),
            remediation: stored_remediation(new.remediation.as_ref())?,
        };
        let row: DeploymentRow = on_backend!(conn, |inner| {
            diesel::insert_into(deployments::table)
                .values(&values)
                .returning(DeploymentRow::as_returning())
                .get_result(inner)?
        });
        let deployment = Deployment::try_from(row)?;
        insert_nodes(conn, deployment.id, 1..=new.target_node_count, at)?;
        event_log::insert(
            conn,
            &NewEvent::deployment_created(
                deployment.id,
                &deployment.name,
                new.target_node_count,
                now,
            )
            .by(actor),
        )?;
        Ok(deployment)
    })
}

/// One deployment, or [`StorageError::DeploymentNotFound`].
pub fn get(conn: &mut DbConnection, id: DeploymentId) -> Result<Deployment> {
    let row: Option<DeploymentRow> = on_backend!(conn, |inner| {
        deployments::table
            .filter(deployments::id.eq(id.get()))
            .select(DeploymentRow::as_select())
            .load(inner)?
            .pop()
    });
    row.ok_or(StorageError::DeploymentNotFound)
        .and_then(Deployment::try_from)
}

/// The deployment's node version: a number that every transaction changing any of its nodes
/// (a transition, a retry) raises, in the same commit. Two reads that return the same version
/// saw the same nodes in between, so a listing read between them can be reused for as long as
/// the version stays. [`DeploymentNotFound`](StorageError::DeploymentNotFound) when absent.
pub fn nodes_version(conn: &mut DbConnection, id: DeploymentId) -> Result<i64> {
    let found: Vec<i64> = on_backend!(conn, |inner| {
        deployments::table
            .filter(deployments::id.eq(id.get()))
            .select(deployments::nodes_version)
            .load(inner)?
    });
    found
        .first()
        .copied()
        .ok_or(StorageError::DeploymentNotFound)
}

/// A deployment and how many of its nodes are in each state, in one read.
pub fn get_with_counts(
    conn: &mut DbConnection,
    id: DeploymentId,
) -> Result<(Deployment, NodeStateCounts)> {
    // Run on the inner connection: diesel's statement cache only keeps queries it can key
    // by type, which queries built for the multi-backend are not (docs/PERFORMANCE.md).
    let row: Option<(DeploymentRow, StateCountsRow)> = on_backend!(conn, |inner| {
        // `load`, not `first`: diesel does not reuse the prepared statement of a query with a
        // LIMIT, and this is the API's hottest read.
        deployments::table
            .filter(deployments::id.eq(id.get()))
            .select((DeploymentRow::as_select(), StateCountsRow::as_select()))
            .load(inner)?
            .pop()
    });
    let (row, counts) = row.ok_or(StorageError::DeploymentNotFound)?;
    Ok((Deployment::try_from(row)?, counts.into()))
}

/// How many of the deployment's nodes are in each state, from the counters the deployment row
/// keeps; [`DeploymentNotFound`](StorageError::DeploymentNotFound) for an unknown deployment.
pub fn node_state_counts(conn: &mut DbConnection, id: DeploymentId) -> Result<NodeStateCounts> {
    get_with_counts(conn, id).map(|(_, counts)| counts)
}

/// The same counts computed from the nodes themselves (a scan of the deployment's nodes): what
/// the counters must always equal. For tests and for operators checking a database.
pub fn count_node_states(conn: &mut DbConnection, id: DeploymentId) -> Result<NodeStateCounts> {
    let rows: Vec<(String, i64)> = nodes::table
        .filter(nodes::deployment_id.eq(id.get()))
        .group_by(nodes::state)
        .select((nodes::state, diesel::dsl::count_star()))
        .load(conn)?;
    let mut counts = NodeStateCounts::default();
    for (state, count) in rows {
        let state: NodeState = state.parse()?;
        counts.add(state, count.unsigned_abs());
    }
    let retrying: i64 = nodes::table
        .filter(nodes::deployment_id.eq(id.get()))
        .filter(nodes::state.eq(NodeState::Failed.as_str()))
        .filter(nodes::check_after.is_not_null())
        .count()
        .get_result(conn)?;
    counts.retrying = retrying.unsigned_abs();
    Ok(counts)
}

/// The deployments whose rollout may start pending nodes now: some pending, not paused;
/// ascending id.
pub fn with_nodes_to_start(conn: &mut DbConnection) -> Result<Vec<DeploymentId>> {
    let ids: Vec<i64> = deployments::table
        .filter(deployments::pending_nodes.gt(0))
        .filter(deployments::paused_at.is_null())
        .order(deployments::id.asc())
        .select(deployments::id)
        .load(conn)?;
    Ok(ids.into_iter().map(DeploymentId).collect())
}

/// Those of `ids` that exist (what the lifecycle reads of the deployments of a batch of nodes:
/// their rollout policies and provisioners).
pub fn by_ids(
    conn: &mut DbConnection,
    ids: &[DeploymentId],
) -> Result<std::collections::HashMap<DeploymentId, Deployment>> {
    let mut wanted: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = std::collections::HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(10_000) {
        let rows: Vec<DeploymentRow> = deployments::table
            .filter(deployments::id.eq_any(chunk))
            .select(DeploymentRow::as_select())
            .load(conn)?;
        for row in rows {
            let deployment = Deployment::try_from(row)?;
            found.insert(deployment.id, deployment);
        }
    }
    Ok(found)
}

/// Pauses the deployment's rollout at `now` with a `DEPLOYMENT_PAUSED` event, unless it is
/// paused already (then nothing changes). Returns the deployment and its counters as they are
/// afterwards. [`DeploymentNotFound`](StorageError::DeploymentNotFound) when absent.
pub fn pause(
    conn: &mut DbConnection,
    id: DeploymentId,
    reason: PauseReason,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<(Deployment, NodeStateCounts)> {
    pause_or_resume(conn, id, Some(reason), actor, now)
}

/// Resumes a paused rollout with a `DEPLOYMENT_RESUMED` event; a deployment that is not paused
/// is left as it is. Returns it as it is afterwards.
pub fn resume(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<(Deployment, NodeStateCounts)> {
    pause_or_resume(conn, id, None, actor, now)
}

/// Pauses the rollout (`Some` reason) or resumes it (`None`), with its event, unless it is so
/// already.
fn pause_or_resume(
    conn: &mut DbConnection,
    id: DeploymentId,
    pause: Option<PauseReason>,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<(Deployment, NodeStateCounts)> {
    write_transaction(conn, |conn| {
        let (deployment, counts) = lock_for_change(conn, id)?;
        if deployment.paused_at.is_some() == pause.is_some() {
            return Ok((deployment, counts));
        }
        set_paused(conn, id, pause.is_some(), now)?;
        let event = match pause {
            Some(reason) => NewEvent::deployment_paused(id, reason, &counts, now),
            None => NewEvent::deployment_resumed(id, now),
        };
        event_log::insert(conn, &event.by(actor))?;
        get_with_counts(conn, id)
    })
}

/// Locks the deployment to change it or its nodes ([`DeploymentLock::ChangeNodes`], until the
/// end of the current write transaction) and reads it with its counters;
/// [`DeploymentNotFound`](StorageError::DeploymentNotFound) when absent.
pub fn lock_for_change(
    conn: &mut DbConnection,
    id: DeploymentId,
) -> Result<(Deployment, NodeStateCounts)> {
    if lock(conn, &[id], DeploymentLock::ChangeNodes)?.is_empty() {
        return Err(StorageError::DeploymentNotFound);
    }
    get_with_counts(conn, id)
}

/// Pauses (`paused`) or resumes the rollout at `now`.
fn set_paused(
    conn: &mut DbConnection,
    id: DeploymentId,
    paused: bool,
    now: Timestamp,
) -> Result<()> {
    use deployments::dsl as d;
    let at = to_micros(now);
    diesel::update(deployments::table.find(id.get()))
        .set((d::paused_at.eq(paused.then_some(at)), d::updated_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

/// Pauses, for `max_failure_percent`, those of `ids` whose failed share is now over it and
/// that are not paused yet. Called by the transaction that has just failed some of their
/// nodes, after their counters moved.
pub(crate) fn pause_if_failing(
    conn: &mut DbConnection,
    ids: &[DeploymentId],
    now: Timestamp,
) -> Result<()> {
    for &id in ids {
        let (deployment, counts) = match get_with_counts(conn, id) {
            Ok(found) => found,
            Err(StorageError::DeploymentNotFound) => continue,
            Err(e) => return Err(e),
        };
        if deployment.paused_at.is_none() && deployment.rollout.failure_limit_exceeded(&counts) {
            set_paused(conn, id, true, now)?;
            event_log::insert(
                conn,
                &NewEvent::deployment_paused(id, PauseReason::FailureLimit, &counts, now),
            )?;
            log::warn!(
                "deployment {id} paused: {} of {} finished nodes failed (max_failure_percent {})",
                counts.failed,
                counts.running + counts.failed,
                deployment.rollout.max_failure_percent.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Changes the deployment's name, description and rollout settings as `changes` says, with a
/// `DEPLOYMENT_UPDATED` event naming the fields that changed value (none changed: no write, no
/// event). Returns it as it is afterwards.
pub fn update(
    conn: &mut DbConnection,
    id: DeploymentId,
    changes: &DeploymentChanges,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<(Deployment, NodeStateCounts)> {
    write_transaction(conn, |conn| {
        let (before, counts) = lock_for_change(conn, id)?;
        if let Some(target) = changes
            .target_node_count
            .filter(|t| *t != before.target_node_count)
        {
            let event = scale(conn, &before, &counts, target, now)?;
            event_log::insert(conn, &event.by(actor))?;
        }
        let after = changes.applied_to(&before);
        let changed = changes.changed_fields(&before);
        if changed.is_empty() {
            return get_with_counts(conn, id);
        }
        use deployments::dsl as d;
        let rollout = &after.rollout;
        diesel::update(deployments::table.find(id.get()))
            .set((
                d::name.eq(&after.name),
                d::description.eq(after.description.as_deref()),
                d::max_in_flight.eq(stored_u32(rollout.max_in_flight, "max_in_flight")?),
                d::max_failure_percent.eq(rollout.max_failure_percent),
                d::max_retries.eq(stored_int(rollout.max_retries, "max_retries")?),
                d::phase_timeout_seconds.eq(stored_u32(
                    rollout.phase_timeout_seconds,
                    "phase_timeout_seconds",
                )?),
                d::alert_rules.eq(stored_rules(&after.alert_rules)?),
                d::remediation.eq(stored_remediation(after.remediation.as_ref())?),
                d::updated_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        if after.remediation.is_none() && before.remediation_stopped.is_some() {
            // Off: nothing is stopped any more (its alert resolves at the next evaluation).
            diesel::update(deployments::table.find(id.get()))
                .set(d::remediation_stopped.eq(None::<String>))
                .execute(conn)?;
        }
        event_log::insert(
            conn,
            &NewEvent::deployment_updated(id, changed, now).by(actor),
        )?;
        get_with_counts(conn, id)
    })
}

/// Deletes a deployment with its nodes and samples, and records a `DEPLOYMENT_DELETED` event,
/// in one transaction. The audit log is append-only: the deployment's events outlive it (who
/// created it, changed it, retried its nodes and deleted it), and are expired by age only
/// ([`crate::retention::expire_events_chunk`]). No event of it is recorded after this one: every writer
/// takes the deployment's lock and finds it gone.
///
/// The deployment is locked first ([`lock`]): a push or a worker tick writing for it either
/// commits before and has its rows deleted here, or comes after and finds it gone.
pub fn delete(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    write_transaction(conn, |conn| {
        if lock(conn, &[id], DeploymentLock::Delete)?.is_empty() {
            return Err(StorageError::DeploymentNotFound);
        }
        let (deployment, counts) = get_with_counts(conn, id)?;
        // No partition made while its rows go: they would move out of this delete's sight.
        crate::partitions::hold_off_maintenance(conn)?;
        diesel::delete(
            telemetry_samples::table.filter(telemetry_samples::deployment_id.eq(id.get())),
        )
        .execute(conn)?;
        crate::rollups::delete_deployment(conn, id)?;
        crate::ingest::delete_deployment(conn, id)?;
        // Its alerts end with it (their history stays, as its events do).
        crate::alerts::resolve_for_deleted(conn, id, now)?;
        // Nodes go by the foreign key's ON DELETE CASCADE.
        diesel::delete(deployments::table.find(id.get())).execute(conn)?;
        event_log::insert(
            conn,
            &NewEvent::deployment_deleted(id, &deployment.name, counts.total(), now).by(actor),
        )?;
        Ok(())
    })
}
