//! Nodes: paged queries, and state transitions guarded by the row's version.

use crate::connection::write_transaction;
use crate::schema::nodes;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError, deployments, events as event_log};
use diesel::prelude::*;
use netorch_domain::{DeploymentId, NewEvent, Node, NodeId, NodeState, NodeTrigger, Timestamp};

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
        })
    }
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
    deployments::ensure_exists(conn, deployment)?;
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
    let nodes = matching()
        .order(nodes::id.asc())
        .limit(filter.limit.unwrap_or(i64::MAX))
        .offset(filter.skip.max(0))
        .select(NodeRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Node::try_from)
        .collect::<Result<Vec<_>>>()?;
    // Without paging the page is the whole set: no second query.
    let total = if filter.skip <= 0 && filter.limit.is_none() {
        nodes.len() as i64
    } else {
        matching().count().get_result(conn)?
    };
    Ok(NodePage { nodes, total })
}

/// One node of a deployment; [`StorageError::DeploymentNotFound`] or
/// [`StorageError::NodeNotFound`] when either is absent.
pub fn get(conn: &mut DbConnection, deployment: DeploymentId, node: NodeId) -> Result<Node> {
    let row = nodes::table
        .filter(nodes::id.eq(node.get()))
        .filter(nodes::deployment_id.eq(deployment.get()))
        .select(NodeRow::as_select())
        .first(conn)
        .optional()?;
    match row {
        Some(row) => Node::try_from(row),
        None => {
            deployments::ensure_exists(conn, deployment)?;
            Err(StorageError::NodeNotFound)
        }
    }
}

/// Which of `ids` are nodes of `deployment`.
pub fn ids_in_deployment(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    ids: &[NodeId],
) -> Result<std::collections::HashSet<NodeId>> {
    let mut found = std::collections::HashSet::with_capacity(ids.len());
    let mut raw: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    raw.sort_unstable();
    raw.dedup();
    // Chunked to stay under SQLite's bound-parameter limit.
    for chunk in raw.chunks(10_000) {
        let rows: Vec<i64> = nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::id.eq_any(chunk))
            .select(nodes::id)
            .load(conn)?;
        found.extend(rows.into_iter().map(NodeId));
    }
    Ok(found)
}

/// What a transition sets besides the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeChange {
    /// A new IP address (kept as it is when `None`).
    pub ip_address: Option<String>,
    /// Why the node failed (cleared by any transition into a state other than `FAILED`).
    pub failure_reason: Option<String>,
}

/// Applies `trigger` to `node` as it was read, if nobody changed it since: one guarded
/// `UPDATE ... WHERE id = ? AND version = ?` and its audit event, in one transaction.
///
/// Returns the updated node, or `None` when the row's version moved on (another worker or an
/// operator got there first; re-read and decide again). An illegal trigger for the node's state
/// is [`StorageError::Domain`] and changes nothing.
pub fn transition(
    conn: &mut DbConnection,
    node: &Node,
    trigger: NodeTrigger,
    change: &NodeChange,
    now: Timestamp,
) -> Result<Option<Node>> {
    let to = node.state.apply(trigger)?;
    let attempt = if trigger == NodeTrigger::Retry {
        node.attempt + 1
    } else {
        node.attempt
    };
    let failure_reason = if to == NodeState::Failed {
        change.failure_reason.clone()
    } else {
        None
    };
    let at = to_micros(now);
    write_transaction(conn, |conn| {
        let target = nodes::table
            .filter(nodes::id.eq(node.id.get()))
            .filter(nodes::version.eq(node.version));
        let updated = diesel::update(target)
            .set((
                nodes::state.eq(to.as_str()),
                nodes::attempt.eq(attempt as i32),
                nodes::failure_reason.eq(failure_reason.as_deref()),
                nodes::ip_address.eq(change.ip_address.as_deref().or(node.ip_address.as_deref())),
                nodes::version.eq(node.version + 1),
                nodes::updated_at.eq(at),
                nodes::state_changed_at.eq(at),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Ok(None);
        }
        let event = if trigger == NodeTrigger::Retry {
            // An operator's retry is one event that says both what was asked and what changed.
            NewEvent::node_retry(node.deployment_id, node.id, attempt, now)
                .with_metadata("from_state", node.state.as_str())
                .with_metadata("to_state", to.as_str())
        } else {
            NewEvent::state_change(node.deployment_id, node.id, node.state, to, attempt, now)
        };
        let event = match &failure_reason {
            Some(reason) => event.with_metadata("failure_reason", reason.as_str()),
            None => event,
        };
        event_log::insert(conn, &event)?;
        Ok(Some(Node {
            state: to,
            attempt,
            failure_reason,
            ip_address: change
                .ip_address
                .clone()
                .or_else(|| node.ip_address.clone()),
            version: node.version + 1,
            updated_at: now,
            state_changed_at: now,
            ..node.clone()
        }))
    })
}

/// An operator's retry of a failed node: `FAILED` → `PENDING`, attempt + 1, one `NODE_RETRY`
/// event. Any other state is [`StorageError::Domain`] with the allowed actions.
pub fn retry(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: NodeId,
    now: Timestamp,
) -> Result<Node> {
    // Read and write in one write transaction: on SQLite nobody can move the node in between;
    // on PostgreSQL a concurrent change makes the guarded update miss, and we read again.
    write_transaction(conn, |conn| {
        loop {
            let current = get(conn, deployment, node)?;
            if let Some(updated) = transition(
                conn,
                &current,
                NodeTrigger::Retry,
                &NodeChange::default(),
                now,
            )? {
                return Ok(updated);
            }
        }
    })
}
