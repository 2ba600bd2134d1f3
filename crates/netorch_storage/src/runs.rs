//! Runs of external provisioners (`provisioner_runs`): one row per node phase, with the lease
//! of the worker running its program, so that any number of workers run each phase once at a
//! time, take over a phase whose worker died, and record each result once.
//!
//! **The key.** A run is for one pass of a node through one phase: the node, the phase and the
//! moment the node entered it (`phase_started_at`, the node's `state_changed_at`). A node
//! retried goes through its phases again, with new moments, so new runs.
//!
//! **The lease.** [`claim`] inserts the run for its holder (a second worker's insert does
//! nothing), or takes over a run not finished whose lease has expired (its worker died or
//! stalled): the guarded update starts it again under the new holder. [`renew`] extends a
//! holder's leases; [`finish`] records the result only while the run is unfinished and held
//! by the caller, so a worker that lost its run cannot overwrite the new holder's result, and
//! a result is recorded once. In the same transaction it makes the node due for the lifecycle
//! (`check_after = now`), which applies the result through the node's guarded transition.
//!
//! Architecture Invariant: a run's result is recorded at most once, by its lease holder
//! (`finish` is guarded by holder and `outcome IS NULL` in its `WHERE`), and moves its node at
//! most once (the node's transition is guarded by its version, and matched to the run by
//! `phase_started_at`).

use crate::connection::write_transaction;
use crate::nodes::NodeRow;
use crate::schema::{deployments, nodes, provisioner_runs};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use netorch_domain::provisioning::{RUN_OUTPUT_MAX_BYTES, RUNS_KEPT_PER_NODE, tail};
use netorch_domain::{
    DeploymentId, Node, NodeId, NodeState, Phase, ProvisionerRun, Provisioning, RunOutcome,
    Timestamp,
};
use std::collections::{HashMap, HashSet};

#[derive(Queryable, Selectable)]
#[diesel(table_name = provisioner_runs)]
struct RunRow {
    id: i64,
    node_id: i64,
    deployment_id: i64,
    profile: String,
    phase: String,
    phase_started_at: i64,
    attempt: i32,
    starts: i32,
    holder: String,
    lease_until: i64,
    started_at: i64,
    finished_at: Option<i64>,
    outcome: Option<String>,
    exit_code: Option<i32>,
    message: Option<String>,
    address: Option<String>,
    stdout: String,
    stderr: String,
}

fn corrupt(detail: String) -> StorageError {
    StorageError::CorruptRow {
        table: "provisioner_runs",
        detail,
    }
}

impl TryFrom<RunRow> for ProvisionerRun {
    type Error = StorageError;

    fn try_from(row: RunRow) -> Result<Self> {
        let at = |micros| from_micros("provisioner_runs", micros);
        Ok(ProvisionerRun {
            id: row.id,
            node_id: NodeId(row.node_id),
            deployment_id: DeploymentId(row.deployment_id),
            profile: row.profile,
            phase: row.phase.parse().map_err(|e| corrupt(format!("{e}")))?,
            phase_started_at: at(row.phase_started_at)?,
            attempt: u32::try_from(row.attempt).map_err(|e| corrupt(e.to_string()))?,
            starts: u32::try_from(row.starts).map_err(|e| corrupt(e.to_string()))?,
            holder: row.holder,
            lease_until: at(row.lease_until)?,
            started_at: at(row.started_at)?,
            finished_at: row.finished_at.map(at).transpose()?,
            outcome: row
                .outcome
                .map(|o| o.parse::<RunOutcome>())
                .transpose()
                .map_err(|e| corrupt(format!("{e}")))?,
            exit_code: row.exit_code,
            message: row.message,
            address: row.address,
            stdout: row.stdout,
            stderr: row.stderr,
        })
    }
}

/// A process a run started, as recorded so that a worker taking the run over on the same host
/// can tell whether it still runs (same pid, same start time) and kill it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProcess {
    /// The host: its name and boot id.
    pub host: String,
    /// The process id (also its process group's: runs start in a group of their own).
    pub pid: i64,
    /// Its start time, in clock ticks since boot (`/proc/PID/stat`), which tells a pid reused
    /// by another process apart.
    pub started: i64,
}

/// A node phase that wants a run: no run yet, or one whose holder's lease expired.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedRun {
    /// The node, as it is now.
    pub node: Node,
    /// The phase it is in.
    pub phase: Phase,
    /// Its deployment's name.
    pub deployment_name: String,
    /// Its deployment's provisioner profile and parameters.
    pub provisioning: Provisioning,
    /// Its deployment's `phase_timeout_seconds`.
    pub phase_timeout_seconds: Option<u32>,
    /// The run to take over, when a worker began one and stopped renewing its lease.
    pub abandoned: Option<(i64, Option<RunProcess>)>,
}

/// What `wanted` reads of a node phase's run: id, phase, outcome, lease, host, pid, pid start.
type RunKeyFields = (
    i64,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// The states a node runs a provisioner's program in.
const PHASE_STATES: [&str; 3] = ["PROVISIONING", "CONFIGURING", "DECOMMISSIONING"];

/// Up to `limit` node phases of deployments using `profile` that want a run at `now`, lowest
/// node id first: the node is in a phase and no run of that phase is finished or held under a
/// live lease.
pub fn wanted(
    conn: &mut DbConnection,
    profile: &str,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<WantedRun>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    type DeploymentFields = (i64, String, String, Option<i32>);
    let found: Vec<DeploymentFields> = deployments::table
        .filter(deployments::provisioner.eq(profile))
        .filter(
            deployments::provisioning_nodes
                .gt(0)
                .or(deployments::configuring_nodes.gt(0))
                .or(deployments::decommissioning_nodes.gt(0)),
        )
        .select((
            deployments::id,
            deployments::name,
            deployments::provisioner_parameters,
            deployments::phase_timeout_seconds,
        ))
        .load(conn)?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = found.iter().map(|d| d.0).collect();
    let now_us = to_micros(now);
    let rows: Vec<(NodeRow, Option<RunKeyFields>)> = nodes::table
        .left_join(
            provisioner_runs::table.on(provisioner_runs::node_id
                .eq(nodes::id)
                .and(provisioner_runs::phase_started_at.eq(nodes::state_changed_at))),
        )
        .filter(nodes::deployment_id.eq_any(&ids))
        .filter(nodes::state.eq_any(PHASE_STATES))
        .filter(
            provisioner_runs::id
                .nullable()
                .is_null()
                .or(provisioner_runs::outcome
                    .is_null()
                    .and(provisioner_runs::lease_until.nullable().le(now_us))),
        )
        .order(nodes::id.asc())
        .limit(limit)
        .select((
            NodeRow::as_select(),
            (
                provisioner_runs::id,
                provisioner_runs::phase,
                provisioner_runs::outcome,
                provisioner_runs::lease_until,
                provisioner_runs::host,
                provisioner_runs::pid,
                provisioner_runs::pid_started,
            )
                .nullable(),
        ))
        .load(conn)?;
    let by_id: HashMap<i64, &DeploymentFields> = found.iter().map(|d| (d.0, d)).collect();
    let mut wanted = Vec::with_capacity(rows.len());
    for (row, run) in rows {
        let node = Node::try_from(row)?;
        let Some(phase) = Phase::of(node.state) else {
            continue;
        };
        let Some((_, name, parameters, timeout)) = by_id.get(&node.deployment_id.get()) else {
            continue;
        };
        let abandoned = match run {
            // A run of another phase that began at the same instant is not this one's.
            Some((_, run_phase, ..)) if run_phase != phase.as_str() => continue,
            Some((id, _, _, _, host, pid, started)) => Some((
                id,
                match (host, pid, started) {
                    (Some(host), Some(pid), Some(started)) => {
                        Some(RunProcess { host, pid, started })
                    }
                    _ => None,
                },
            )),
            None => None,
        };
        wanted.push(WantedRun {
            node,
            phase,
            deployment_name: name.clone(),
            provisioning: Provisioning {
                profile: profile.to_owned(),
                parameters: serde_json::from_str(parameters)
                    .map_err(|e| corrupt(format!("provisioner_parameters: {e}")))?,
            },
            phase_timeout_seconds: timeout.and_then(|t| u32::try_from(t).ok()),
            abandoned,
        });
    }
    Ok(wanted)
}

/// Claims `wanted`'s run for `holder` until `lease_until`: inserts it, or takes over the
/// abandoned run it names if its lease is still expired. Returns the run's id, or `None` when
/// another worker claimed it first. The node's runs beyond the newest
/// [`RUNS_KEPT_PER_NODE`] are deleted.
pub fn claim(
    conn: &mut DbConnection,
    wanted: &WantedRun,
    holder: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Option<i64>> {
    let (now_us, until_us) = (to_micros(now), to_micros(lease_until));
    let node = &wanted.node;
    write_transaction(conn, |conn| {
        // The node may have moved on since `wanted` read it (timed out, deleted): no run then.
        let current: Option<(String, i64)> = nodes::table
            .filter(nodes::id.eq(node.id.get()))
            .select((nodes::state, nodes::state_changed_at))
            .first(conn)
            .optional()?;
        if current
            != Some((
                node.state.as_str().to_owned(),
                to_micros(node.state_changed_at),
            ))
        {
            return Ok(None);
        }
        if let Some((id, _)) = &wanted.abandoned {
            let taken = diesel::update(
                provisioner_runs::table
                    .filter(provisioner_runs::id.eq(*id))
                    .filter(provisioner_runs::outcome.is_null())
                    .filter(provisioner_runs::lease_until.le(now_us)),
            )
            .set((
                provisioner_runs::holder.eq(holder),
                provisioner_runs::lease_until.eq(until_us),
                provisioner_runs::starts.eq(provisioner_runs::starts + 1),
                provisioner_runs::started_at.eq(now_us),
                provisioner_runs::host.eq(None::<String>),
                provisioner_runs::pid.eq(None::<i64>),
                provisioner_runs::pid_started.eq(None::<i64>),
            ))
            .execute(conn)?;
            return Ok((taken == 1).then_some(*id));
        }
        let values = (
            provisioner_runs::node_id.eq(node.id.get()),
            provisioner_runs::deployment_id.eq(node.deployment_id.get()),
            provisioner_runs::profile.eq(&wanted.provisioning.profile),
            provisioner_runs::phase.eq(wanted.phase.as_str()),
            provisioner_runs::phase_started_at.eq(to_micros(node.state_changed_at)),
            provisioner_runs::attempt.eq(i32::try_from(node.attempt).unwrap_or(i32::MAX)),
            provisioner_runs::holder.eq(holder),
            provisioner_runs::lease_until.eq(until_us),
            provisioner_runs::started_at.eq(now_us),
        );
        let inserted = on_backend!(conn, |inner| diesel::insert_into(provisioner_runs::table)
            .values(values)
            .on_conflict_do_nothing()
            .execute(inner))?;
        if inserted == 0 {
            return Ok(None);
        }
        let id: i64 = provisioner_runs::table
            .filter(provisioner_runs::node_id.eq(node.id.get()))
            .filter(provisioner_runs::phase.eq(wanted.phase.as_str()))
            .filter(provisioner_runs::phase_started_at.eq(to_micros(node.state_changed_at)))
            .select(provisioner_runs::id)
            .first(conn)?;
        let keep: Vec<i64> = provisioner_runs::table
            .filter(provisioner_runs::node_id.eq(node.id.get()))
            .order(provisioner_runs::id.desc())
            .limit(RUNS_KEPT_PER_NODE)
            .select(provisioner_runs::id)
            .load(conn)?;
        if let Some(oldest_kept) = keep.last() {
            diesel::delete(
                provisioner_runs::table
                    .filter(provisioner_runs::node_id.eq(node.id.get()))
                    .filter(provisioner_runs::id.lt(oldest_kept)),
            )
            .execute(conn)?;
        }
        Ok(Some(id))
    })
}

/// Records the process `holder` started for run `id`.
pub fn record_process(
    conn: &mut DbConnection,
    id: i64,
    holder: &str,
    process: &RunProcess,
) -> Result<()> {
    diesel::update(
        provisioner_runs::table
            .filter(provisioner_runs::id.eq(id))
            .filter(provisioner_runs::holder.eq(holder))
            .filter(provisioner_runs::outcome.is_null()),
    )
    .set((
        provisioner_runs::host.eq(&process.host),
        provisioner_runs::pid.eq(process.pid),
        provisioner_runs::pid_started.eq(process.started),
    ))
    .execute(conn)?;
    Ok(())
}

/// Extends `holder`'s leases on `ids`, the unfinished runs it is running, to `lease_until`
/// (only those: a run of the same name it does not track, a previous process's, lapses).
/// Returns how many it still holds.
pub fn renew(
    conn: &mut DbConnection,
    holder: &str,
    ids: &[i64],
    lease_until: Timestamp,
) -> Result<usize> {
    let mut held = 0;
    for chunk in ids.chunks(10_000) {
        held += diesel::update(
            provisioner_runs::table
                .filter(provisioner_runs::id.eq_any(chunk))
                .filter(provisioner_runs::holder.eq(holder))
                .filter(provisioner_runs::outcome.is_null()),
        )
        .set(provisioner_runs::lease_until.eq(to_micros(lease_until)))
        .execute(conn)?;
    }
    Ok(held)
}

/// Gives up `holder`'s leases on `ids` at `now` (a clean stop): another worker takes the runs
/// over at once.
pub fn release(conn: &mut DbConnection, holder: &str, ids: &[i64], now: Timestamp) -> Result<()> {
    renew(conn, holder, ids, now).map(drop)
}

/// How a run ended, as its holder records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFinish {
    /// The outcome.
    pub outcome: RunOutcome,
    /// The exit status, when the program exited.
    pub exit_code: Option<i32>,
    /// What it said or why it failed.
    pub message: Option<String>,
    /// The address it reported.
    pub address: Option<String>,
    /// Its standard output (its end is kept).
    pub stdout: String,
    /// Its standard error (its end is kept).
    pub stderr: String,
}

/// Records run `id`'s end at `now`, if `holder` still holds it unfinished, and makes its node
/// due for the lifecycle when the node is still in that phase (`node` entered it at
/// `phase_started_at`). A succeeded provisioning whose address another node has (or was
/// reported for another node still provisioning) is recorded as failed, since addresses are
/// unique. Returns whether the result was recorded.
pub fn finish(
    conn: &mut DbConnection,
    id: i64,
    holder: &str,
    node: NodeId,
    phase_started_at: Timestamp,
    finish: &RunFinish,
    now: Timestamp,
) -> Result<bool> {
    let now_us = to_micros(now);
    write_transaction(conn, |conn| {
        // PostgreSQL's text holds no NUL, and a program may print one: shown as U+FFFD.
        let clean = |text: &str| text.replace('\0', "\u{FFFD}");
        let mut finish = RunFinish {
            outcome: finish.outcome,
            exit_code: finish.exit_code,
            message: finish.message.as_deref().map(clean),
            address: finish.address.as_deref().map(clean),
            stdout: clean(&finish.stdout),
            stderr: clean(&finish.stderr),
        };
        if let (RunOutcome::Succeeded, Some(address)) = (finish.outcome, &finish.address)
            && let Some(other) = address_taken(conn, address, node)?
        {
            finish.outcome = RunOutcome::Failed;
            finish.message = Some(format!(
                "the address {address} it reported is node {other}'s already"
            ));
        }
        let recorded = diesel::update(
            provisioner_runs::table
                .filter(provisioner_runs::id.eq(id))
                .filter(provisioner_runs::holder.eq(holder))
                .filter(provisioner_runs::outcome.is_null()),
        )
        .set((
            provisioner_runs::outcome.eq(finish.outcome.as_str()),
            provisioner_runs::finished_at.eq(now_us),
            provisioner_runs::exit_code.eq(finish.exit_code),
            provisioner_runs::message.eq(finish.message.as_deref()),
            provisioner_runs::address.eq(finish.address.as_deref()),
            provisioner_runs::stdout.eq(tail(&finish.stdout, RUN_OUTPUT_MAX_BYTES)),
            provisioner_runs::stderr.eq(tail(&finish.stderr, RUN_OUTPUT_MAX_BYTES)),
        ))
        .execute(conn)?;
        if recorded == 0 {
            return Ok(false);
        }
        diesel::update(
            nodes::table
                .filter(nodes::id.eq(node.get()))
                .filter(nodes::state_changed_at.eq(to_micros(phase_started_at)))
                .filter(nodes::state.eq_any(PHASE_STATES)),
        )
        .set(nodes::check_after.eq(now_us))
        .execute(conn)?;
        Ok(true)
    })
}

/// Another node that has `address`, or was reported it by a provisioning not yet applied.
fn address_taken(conn: &mut DbConnection, address: &str, node: NodeId) -> Result<Option<i64>> {
    let holder: Option<i64> = nodes::table
        .filter(nodes::ip_address.eq(address))
        .filter(nodes::id.ne(node.get()))
        .select(nodes::id)
        .first(conn)
        .optional()?;
    if holder.is_some() {
        return Ok(holder);
    }
    Ok(provisioner_runs::table
        .inner_join(nodes::table)
        .filter(provisioner_runs::address.eq(address))
        .filter(provisioner_runs::outcome.eq(RunOutcome::Succeeded.as_str()))
        .filter(provisioner_runs::node_id.ne(node.get()))
        .filter(nodes::state.eq(NodeState::Provisioning.as_str()))
        .filter(provisioner_runs::phase_started_at.eq(nodes::state_changed_at))
        .select(nodes::id)
        .first(conn)
        .optional()?)
}

/// Of `runs` (a node and when it entered the phase a run is for), those whose node is still in
/// that pass through a phase, each with its deployment's `phase_timeout_seconds` as it is now:
/// a run not among them is no longer wanted.
pub fn still_wanted(
    conn: &mut DbConnection,
    runs: &[(NodeId, Timestamp)],
) -> Result<HashMap<(NodeId, Timestamp), Option<u32>>> {
    let mut found = HashMap::with_capacity(runs.len());
    for chunk in runs.chunks(10_000) {
        let ids: Vec<i64> = chunk.iter().map(|(node, _)| node.get()).collect();
        let rows: Vec<(i64, i64, Option<i32>)> = nodes::table
            .inner_join(deployments::table)
            .filter(nodes::id.eq_any(&ids))
            .filter(nodes::state.eq_any(PHASE_STATES))
            .select((
                nodes::id,
                nodes::state_changed_at,
                deployments::phase_timeout_seconds,
            ))
            .load(conn)?;
        let current: HashMap<(i64, i64), Option<i32>> = rows
            .into_iter()
            .map(|(id, since, timeout)| ((id, since), timeout))
            .collect();
        for (node, since) in chunk {
            if let Some(timeout) = current.get(&(node.get(), to_micros(*since))) {
                let timeout = timeout.and_then(|t| u32::try_from(t).ok());
                found.insert((*node, *since), timeout);
            }
        }
    }
    Ok(found)
}

/// The finished runs of `nodes`' current phases (each node as it is now): what the lifecycle
/// applies. A node whose phase has no finished run is absent.
pub fn results(
    conn: &mut DbConnection,
    nodes: &[&Node],
) -> Result<HashMap<NodeId, ProvisionerRun>> {
    let mut found = HashMap::new();
    for chunk in nodes.chunks(5_000) {
        let ids: Vec<i64> = chunk.iter().map(|node| node.id.get()).collect();
        let since: HashSet<i64> = chunk
            .iter()
            .map(|node| to_micros(node.state_changed_at))
            .collect();
        let since: Vec<i64> = since.into_iter().collect();
        let rows: Vec<RunRow> = provisioner_runs::table
            .filter(provisioner_runs::node_id.eq_any(&ids))
            .filter(provisioner_runs::phase_started_at.eq_any(&since))
            .filter(provisioner_runs::outcome.is_not_null())
            .select(RunRow::as_select())
            .load(conn)?;
        let wanted: HashMap<i64, &Node> = chunk.iter().map(|node| (node.id.get(), *node)).collect();
        for row in rows {
            let run = ProvisionerRun::try_from(row)?;
            if let Some(node) = wanted.get(&run.node_id.get())
                && run.phase_started_at == node.state_changed_at
                && Phase::of(node.state) == Some(run.phase)
            {
                found.insert(run.node_id, run);
            }
        }
    }
    Ok(found)
}

/// A node's runs, newest first, at most `limit`.
pub fn for_node(conn: &mut DbConnection, node: NodeId, limit: i64) -> Result<Vec<ProvisionerRun>> {
    provisioner_runs::table
        .filter(provisioner_runs::node_id.eq(node.get()))
        .order(provisioner_runs::id.desc())
        .limit(limit)
        .select(RunRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ProvisionerRun::try_from)
        .collect()
}

/// How many runs are unfinished, across all workers and profiles (for metrics and tests).
pub fn count_running(conn: &mut DbConnection) -> Result<i64> {
    Ok(provisioner_runs::table
        .filter(provisioner_runs::outcome.is_null())
        .count()
        .get_result(conn)?)
}
