//! What every write path does to the row of a deployment it writes under: checks that it
//! exists, locks it first, in the one lock order ([`crate::locks`]), and keeps its per-state
//! node counters. Apart from the deployments repository, so that the nodes and telemetry
//! writers call this and not it (and the repository, which scales through the nodes' writer,
//! is not imported back).

use crate::schema::deployments;
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use netorch_domain::{DeploymentId, NodeState};

/// Moves `delta` of the deployment's failed nodes into (`> 0`) or out of (`< 0`) the count of
/// those waiting for an automatic retry. Called by the transaction that schedules or ends one.
pub(crate) fn adjust_retrying_count(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    delta: i64,
) -> Result<()> {
    use deployments::dsl as d;
    diesel::update(deployments::table.find(deployment.get()))
        .set(d::retrying_nodes.eq(d::retrying_nodes + delta))
        .execute(conn)?;
    Ok(())
}

/// Moves `delta` nodes of `deployment` into (`delta > 0`) or out of (`< 0`) `state` in the
/// deployment's counters. Called by the transaction that changes the nodes' states.
pub(crate) fn adjust_state_count(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    state: NodeState,
    delta: i64,
) -> Result<()> {
    use deployments::dsl as d;
    let target = deployments::table.find(deployment.get());
    let update = diesel::update(target);
    // Every node change goes with a state change, so the node version moves here too.
    let bump = d::nodes_version.eq(d::nodes_version + 1);
    match state {
        NodeState::Pending => update
            .set((d::pending_nodes.eq(d::pending_nodes + delta), bump))
            .execute(conn),
        NodeState::Provisioning => update
            .set((
                d::provisioning_nodes.eq(d::provisioning_nodes + delta),
                bump,
            ))
            .execute(conn),
        NodeState::Configuring => update
            .set((d::configuring_nodes.eq(d::configuring_nodes + delta), bump))
            .execute(conn),
        NodeState::Running => update
            .set((d::running_nodes.eq(d::running_nodes + delta), bump))
            .execute(conn),
        NodeState::Failed => update
            .set((d::failed_nodes.eq(d::failed_nodes + delta), bump))
            .execute(conn),
        NodeState::Decommissioning => update
            .set((
                d::decommissioning_nodes.eq(d::decommissioning_nodes + delta),
                bump,
            ))
            .execute(conn),
    }?;
    Ok(())
}

/// What a write path is about to do under the deployments it locks with [`lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentLock {
    /// Add rows that belong to the deployment (samples): any number of writers at once, but
    /// no delete until they commit (PostgreSQL `FOR KEY SHARE`).
    AddRows,
    /// Change its nodes and counters: one writer at a time per deployment, and no delete
    /// (`FOR NO KEY UPDATE`).
    ChangeNodes,
    /// Delete it: waits for every writer above, and they for it (`FOR UPDATE`).
    Delete,
}

/// Locks the deployments `ids` until the end of the current write transaction, in ascending id
/// order, and returns those that exist.
///
/// Every write path that touches a deployment's rows calls this first, before any node, sample
/// or event, so that all of them take locks in one order ([`crate::locks`]: deployments by
/// id, then nodes, then the event log's lock) and cannot deadlock each other; and so that
/// nothing is written for a deployment once its delete has committed: a writer that comes
/// after the delete finds it gone and writes nothing for it, a delete that comes after a
/// writer waits for it to commit and then deletes what it wrote. On SQLite the write transaction already holds the database's one
/// write lock, and this only reads which deployments exist.
pub fn lock(
    conn: &mut DbConnection,
    ids: &[DeploymentId],
    mode: DeploymentLock,
) -> Result<std::collections::BTreeSet<DeploymentId>> {
    let mut wanted: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(std::collections::BTreeSet::new());
    }
    #[cfg(feature = "postgres")]
    let wanted_for_advisory = wanted.clone();
    let query = deployments::table
        .filter(deployments::id.eq_any(wanted))
        .order(deployments::id.asc())
        .select(deployments::id);
    let found: Vec<i64> = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => query.load(inner)?,
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => {
            // First a heavyweight advisory lock per deployment, shared by writers and exclusive
            // for a delete: its queue is first come, first served, so a waiting delete holds
            // off new writers. Row locks alone are not fair: writers' KEY SHARE locks, each
            // compatible with the last, can overlap forever and starve the delete.
            for id in &wanted_for_advisory {
                let sql = match mode {
                    DeploymentLock::Delete => "SELECT pg_advisory_xact_lock($1, $2)",
                    _ => "SELECT pg_advisory_xact_lock_shared($1, $2)",
                };
                diesel::sql_query(sql)
                    .bind::<diesel::sql_types::Integer, _>(crate::locks::DEPLOYMENT_CLASS)
                    .bind::<diesel::sql_types::Integer, _>(crate::locks::deployment_key(*id))
                    .execute(inner)?;
            }
            match mode {
                DeploymentLock::AddRows => query.for_key_share().load(inner)?,
                DeploymentLock::ChangeNodes => query.for_no_key_update().load(inner)?,
                DeploymentLock::Delete => query.for_update().load(inner)?,
            }
        }
    };
    let _ = mode;
    Ok(found.into_iter().map(DeploymentId).collect())
}

/// Fails with [`StorageError::DeploymentNotFound`] unless the deployment exists.
pub fn ensure_exists(conn: &mut DbConnection, id: DeploymentId) -> Result<()> {
    let found: Vec<i64> = on_backend!(conn, |inner| {
        deployments::table
            .filter(deployments::id.eq(id.get()))
            .select(deployments::id)
            .load(inner)?
    });
    found
        .first()
        .map(|_| ())
        .ok_or(StorageError::DeploymentNotFound)
}
