//! Nodes: paged queries and lookups here; state transitions guarded by the row's version in
//! `transitions.rs`.

use crate::connection::write_transaction;
use crate::schema::nodes;
use crate::sqlite_bulk::{self, SqliteRows, bind_values};
use crate::time::{from_micros, to_micros};
use crate::{
    DbConnection, Result, StorageError, deployment_rows, deployments, events as event_log,
};
use diesel::prelude::*;
use diesel::query_builder::AstPass;
#[cfg(feature = "postgres")]
use diesel::sql_types::Array;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use netorch_domain::DomainError;
use netorch_domain::{
    DeploymentId, NewEvent, Node, NodeId, NodeRef, NodeState, NodeTrigger, TelemetryOrigin,
    Timestamp,
};
use std::collections::{BTreeMap, HashSet};

#[derive(Queryable, Selectable)]
#[diesel(table_name = nodes)]
pub(crate) struct NodeRow {
    id: i64,
    deployment_id: i64,
    name: String,
    state: String,
    hostname: Option<String>,
    ip_address: Option<String>,
    attempt: i32,
    failure_reason: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
    state_changed_at: i64,
    check_after: Option<i64>,
    remediations: i32,
    remediated_at: Option<i64>,
}

impl TryFrom<NodeRow> for Node {
    type Error = StorageError;

    fn try_from(row: NodeRow) -> Result<Self> {
        Ok(Node {
            id: NodeId(row.id),
            deployment_id: DeploymentId(row.deployment_id),
            name: row.name,
            state: row.state.parse()?,
            hostname: row.hostname,
            ip_address: row.ip_address,
            attempt: u32::try_from(row.attempt).map_err(|_| StorageError::CorruptRow {
                table: "nodes",
                detail: format!("negative attempt {}", row.attempt),
            })?,
            failure_reason: row.failure_reason,
            version: row.version,
            created_at: from_micros("nodes", row.created_at)?,
            updated_at: from_micros("nodes", row.updated_at)?,
            state_changed_at: from_micros("nodes", row.state_changed_at)?,
            // A failed node is looked at again only for its automatic retry.
            retry_at: match row.check_after {
                Some(at) if row.state == NodeState::Failed.as_str() => {
                    Some(from_micros("nodes", at)?)
                }
                _ => None,
            },
            remediations: u32::try_from(row.remediations).map_err(|_| {
                StorageError::CorruptRow {
                    table: "nodes",
                    detail: format!("negative remediations {}", row.remediations),
                }
            })?,
            remediated_at: row
                .remediated_at
                .map(|at| from_micros("nodes", at))
                .transpose()?,
        })
    }
}

/// Rows as domain nodes; a row the domain cannot represent is an error.
fn into_nodes(rows: Vec<NodeRow>) -> Result<Vec<Node>> {
    rows.into_iter().map(Node::try_from).collect()
}

/// Which nodes of a deployment to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFilter {
    /// Only nodes in this state.
    pub state: Option<NodeState>,
    /// Nodes to skip (in ascending id order).
    pub skip: i64,
    /// At most this many nodes; `None` for all.
    pub limit: Option<i64>,
}

/// A page of nodes and how many match the filter in all.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePage {
    /// The nodes of this page, ascending id.
    pub nodes: Vec<Node>,
    /// How many nodes match the filter, over all pages.
    pub total: i64,
}

/// A deployment's nodes in ascending id order, filtered and paged; fails with
/// [`StorageError::DeploymentNotFound`] for an unknown deployment.
pub fn list(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    filter: &NodeFilter,
) -> Result<NodePage> {
    deployment_rows::ensure_exists(conn, deployment)?;
    let (rows, total): (Vec<NodeRow>, Option<i64>) = on_backend!(conn, |inner| {
        let matching = || {
            let mut query = nodes::table
                .filter(nodes::deployment_id.eq(deployment.get()))
                .into_boxed();
            if let Some(state) = filter.state {
                query = query.filter(nodes::state.eq(state.as_str()));
            }
            query
        };
        // SQLite has no OFFSET without LIMIT, hence the explicit "no limit".
        let rows = matching()
            .order(nodes::id.asc())
            .limit(filter.limit.unwrap_or(i64::MAX))
            .offset(filter.skip.max(0))
            .select(NodeRow::as_select())
            .load(inner)?;
        // Without paging the page is the whole set: no second query.
        let total = if filter.skip <= 0 && filter.limit.is_none() {
            None
        } else {
            Some(matching().count().get_result(inner)?)
        };
        (rows, total)
    });
    let nodes = into_nodes(rows)?;
    let total = total.unwrap_or(nodes.len() as i64);
    Ok(NodePage { nodes, total })
}

/// One node of a deployment; [`StorageError::DeploymentNotFound`] or
/// [`StorageError::NodeNotFound`] when either is absent.
pub fn get(conn: &mut DbConnection, deployment: DeploymentId, node: NodeId) -> Result<Node> {
    let row: Option<NodeRow> = on_backend!(conn, |inner| {
        nodes::table
            .filter(nodes::id.eq(node.get()))
            .filter(nodes::deployment_id.eq(deployment.get()))
            .select(NodeRow::as_select())
            .load(inner)?
            .pop()
    });
    match row {
        Some(row) => Node::try_from(row),
        None => {
            deployment_rows::ensure_exists(conn, deployment)?;
            Err(StorageError::NodeNotFound)
        }
    }
}

/// The id of the node `node` names in `deployment`: an id is taken as it is (whether it is a
/// node of the deployment is for the caller's query to find out), a name is looked up.
/// [`StorageError::NodeNotFound`] when no node of the deployment has that name,
/// [`StorageError::DeploymentNotFound`] when the deployment does not exist.
pub fn resolve(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: &NodeRef,
) -> Result<NodeId> {
    match lookup(conn, deployment, node)? {
        Some(id) => Ok(id),
        None => {
            deployment_rows::ensure_exists(conn, deployment)?;
            Err(StorageError::NodeNotFound)
        }
    }
}

/// [`resolve`] without the errors: an id as it is, a name's node in `deployment`, or `None`
/// when no node of it has that name (whether the deployment exists or not). For filters.
pub fn lookup(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: &NodeRef,
) -> Result<Option<NodeId>> {
    let name = match node {
        NodeRef::Id(id) => return Ok(Some(*id)),
        NodeRef::Name(name) => name.as_str(),
    };
    let id: Option<i64> = on_backend!(conn, |inner| {
        nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::name.eq(name))
            .select(nodes::id)
            .load(inner)?
            .pop()
    });
    Ok(id.map(NodeId))
}

/// Which of `ids` are nodes of `deployment`.
pub fn ids_in_deployment(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    ids: &[NodeId],
) -> Result<std::collections::HashSet<NodeId>> {
    Ok(names(conn, deployment, ids)?.into_keys().collect())
}

/// Up to `limit` of the deployment's newest nodes that are not decommissioning, newest first:
/// the next to decommission when it is scaled down.
pub fn newest_kept(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    limit: i64,
) -> Result<Vec<Node>> {
    nodes::table
        .filter(nodes::deployment_id.eq(deployment.get()))
        .filter(nodes::state.ne(NodeState::Decommissioning.as_str()))
        .order(nodes::id.desc())
        .limit(limit)
        .select(NodeRow::as_select())
        .load(conn)
        .map_err(Into::into)
        .and_then(into_nodes)
}

/// A decommissioning node the provisioner has released, to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    node: NodeId,
    deployment: DeploymentId,
    name: String,
    outcome: Option<String>,
}

impl Removal {
    /// Removes `node`; `outcome` is why its release went wrong, if it did (it is removed
    /// anyway: the deployment no longer wants it).
    pub fn new(node: &Node, outcome: Option<String>) -> Self {
        Removal {
            node: node.id,
            deployment: node.deployment_id,
            name: node.name.clone(),
            outcome,
        }
    }
}

/// Deletes the nodes of `removals` that are still `DECOMMISSIONING`, each with a
/// `NODE_DECOMMISSIONED` event, keeping the deployments' counters, in one transaction. Their
/// samples, rollups and events stay. Returns the nodes removed.
pub fn remove_decommissioned(
    conn: &mut DbConnection,
    removals: &[Removal],
    now: Timestamp,
) -> Result<Vec<NodeId>> {
    if removals.is_empty() {
        return Ok(Vec::new());
    }
    let deployment_ids: Vec<DeploymentId> = removals.iter().map(|r| r.deployment).collect();
    write_transaction(conn, |conn| {
        deployment_rows::lock(
            conn,
            &deployment_ids,
            deployment_rows::DeploymentLock::ChangeNodes,
        )?;
        let mut removed: HashSet<i64> = HashSet::new();
        let ids: Vec<i64> = removals.iter().map(|r| r.node.get()).collect();
        for chunk in ids.chunks(10_000) {
            let gone: Vec<i64> = on_backend!(conn, |inner| {
                diesel::delete(
                    nodes::table
                        .filter(nodes::id.eq_any(chunk))
                        .filter(nodes::state.eq(NodeState::Decommissioning.as_str())),
                )
                .returning(nodes::id)
                .get_results(inner)?
            });
            removed.extend(gone);
        }
        let mut per_deployment: BTreeMap<DeploymentId, i64> = BTreeMap::new();
        let mut events = Vec::new();
        for removal in removals.iter().filter(|r| removed.contains(&r.node.get())) {
            *per_deployment.entry(removal.deployment).or_default() += 1;
            events.push(NewEvent::node_decommissioned(
                removal.deployment,
                removal.node,
                &removal.name,
                removal.outcome.as_deref(),
                now,
            ));
        }
        for (deployment, count) in per_deployment {
            deployment_rows::adjust_state_count(
                conn,
                deployment,
                NodeState::Decommissioning,
                -count,
            )?;
        }
        event_log::insert_many(conn, &events)?;
        Ok(removed.into_iter().map(NodeId).collect())
    })
}

/// Up to `limit` of the deployment's `PENDING` nodes, lowest id first: the next to start.
pub fn pending(conn: &mut DbConnection, deployment: DeploymentId, limit: i64) -> Result<Vec<Node>> {
    nodes::table
        .filter(nodes::deployment_id.eq(deployment.get()))
        .filter(nodes::state.eq(NodeState::Pending.as_str()))
        .order(nodes::id.asc())
        .limit(limit)
        .select(NodeRow::as_select())
        .load(conn)
        .map_err(Into::into)
        .and_then(into_nodes)
}

/// The nodes holding any of `addresses`, by address.
pub fn holding_addresses(
    conn: &mut DbConnection,
    addresses: &[&str],
) -> Result<std::collections::HashMap<String, NodeId>> {
    let mut found = std::collections::HashMap::new();
    for chunk in addresses.chunks(10_000) {
        let rows: Vec<(Option<String>, i64)> = nodes::table
            .filter(nodes::ip_address.eq_any(chunk))
            .select((nodes::ip_address, nodes::id))
            .load(conn)?;
        for (address, id) in rows {
            if let Some(address) = address {
                found.insert(address, NodeId(id));
            }
        }
    }
    Ok(found)
}

/// The nodes due for the lifecycle worker at `now` (their `check_after` has come: nodes in a
/// phase, and failed nodes whose automatic retry is due),
/// longest-waiting first, after `after` (a previous page's end), at most `limit`; with the
/// cursor after the last one.
pub fn due_for_lifecycle(
    conn: &mut DbConnection,
    now: Timestamp,
    after: Option<DueCursor>,
    limit: i64,
) -> Result<(Vec<Node>, Option<DueCursor>)> {
    let mut query = nodes::table
        .filter(nodes::check_after.le(to_micros(now)))
        .into_boxed();
    if let Some(DueCursor { check_after, id }) = after {
        query = query.filter(
            nodes::check_after
                .gt(check_after)
                .or(nodes::check_after.eq(check_after).and(nodes::id.gt(id))),
        );
    }
    let rows: Vec<NodeRow> = query
        .order((nodes::check_after.asc(), nodes::id.asc()))
        .limit(limit)
        .select(NodeRow::as_select())
        .load(conn)?;
    let cursor = rows.last().and_then(|row| {
        row.check_after.map(|check_after| DueCursor {
            check_after,
            id: row.id,
        })
    });
    Ok((into_nodes(rows)?, cursor))
}

/// How many nodes are due for the lifecycle at `now` (a range count over the `check_after`
/// index): the backlog left when a tick stopped at its limit.
pub fn count_due(conn: &mut DbConnection, now: Timestamp) -> Result<u64> {
    let count: i64 = nodes::table
        .filter(nodes::check_after.le(to_micros(now)))
        .count()
        .get_result(conn)?;
    Ok(count.unsigned_abs())
}

/// Where a page of [`due_for_lifecycle`] ended: the next page starts after it, so a walk over
/// the due nodes in several short transactions reads each node at most once, even a node whose
/// phase is not over yet and stays due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueCursor {
    check_after: i64,
    id: i64,
}

/// Running nodes with ids above `after`, ascending, at most `limit`, of every deployment whose
/// telemetry the workers sample (not those whose telemetry is only pushed): one page of the
/// telemetry worker's walk over the fleet.
pub fn running_page(
    conn: &mut DbConnection,
    after: Option<NodeId>,
    limit: i64,
) -> Result<Vec<Node>> {
    use crate::schema::deployments as d;
    let pushed_only = d::table
        .filter(d::telemetry_origin.eq(TelemetryOrigin::Pushed.as_str()))
        .select(d::id);
    nodes::table
        .filter(nodes::state.eq(NodeState::Running.as_str()))
        .filter(nodes::id.gt(after.map_or(i64::MIN, NodeId::get)))
        .filter(nodes::deployment_id.ne_all(pushed_only))
        .order(nodes::id.asc())
        .limit(limit)
        .select(NodeRow::as_select())
        .load(conn)
        .map_err(Into::into)
        .and_then(into_nodes)
}

/// The names (`node-001`, ...) of those of `ids` that are nodes of `deployment`.
pub fn names(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    ids: &[NodeId],
) -> Result<std::collections::HashMap<NodeId, String>> {
    let mut raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    raw.sort_unstable();
    raw.dedup();
    let mut found = std::collections::HashMap::with_capacity(raw.len());
    // Chunked to stay under SQLite's bound-parameter limit.
    for chunk in raw.chunks(10_000) {
        let rows: Vec<(i64, String)> = nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::id.eq_any(chunk))
            .select((nodes::id, nodes::name))
            .load(conn)?;
        found.extend(rows.into_iter().map(|(id, name)| (NodeId(id), name)));
    }
    Ok(found)
}

/// The ids of the nodes of `deployment` with the given names; a name no node of it has is
/// absent from the map.
pub fn ids_by_name(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    names: &[&str],
) -> Result<std::collections::HashMap<String, NodeId>> {
    let mut wanted: Vec<&str> = names.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = std::collections::HashMap::with_capacity(wanted.len());
    // Chunked to stay under SQLite's bound-parameter limit.
    for chunk in wanted.chunks(10_000) {
        let rows: Vec<(i64, String)> = nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::name.eq_any(chunk))
            .select((nodes::id, nodes::name))
            .load(conn)?;
        found.extend(rows.into_iter().map(|(id, name)| (name, NodeId(id))));
    }
    Ok(found)
}

mod transitions;

pub use transitions::{NodeChange, TransitionPlan, apply_transitions, retry, transition};
