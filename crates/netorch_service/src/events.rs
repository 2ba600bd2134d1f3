//! The audit log: a deployment's events, which outlive it.

use crate::ServiceError;
use crate::nodes::NodeMatch;
use netorch_domain::{DeploymentId, Event, EventId, NodeRef};
use netorch_storage::{DbConnection, events};

pub use netorch_storage::events::EventQuery;

/// A page of the events `query` selects, in order of occurrence, and only those of the node
/// `node` names in `deployment` if given. A name is looked up among the deployment's nodes;
/// once it is deleted, only ids find its nodes' events.
pub fn list(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    mut query: EventQuery,
    node: Option<&NodeRef>,
) -> Result<Vec<Event>, ServiceError> {
    match NodeMatch::of(conn, deployment, node)? {
        NodeMatch::Every => {}
        NodeMatch::Only(id) => query.node = Some(id),
        NodeMatch::Nothing => return Ok(Vec::new()),
    }
    Ok(events::list(conn, &query)?)
}

/// The cursor from which the last `count` events of `deployment` follow (`None`: from its
/// first), for a reader that wants only the tail of the log.
pub fn cursor_before_last(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    count: i64,
) -> Result<Option<EventId>, ServiceError> {
    Ok(events::cursor_before_last(conn, deployment, count)?)
}

/// A page of a deployment's events for a reader following the log live.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowedPage {
    /// The events after the cursor, oldest first.
    pub events: Vec<Event>,
    /// Whether the deployment existed when the page was read: once it does not, the page
    /// holds its `DEPLOYMENT_DELETED` event if that lies after the cursor, and nothing more
    /// will follow.
    pub deployment_exists: bool,
}

/// At most `limit` events of `deployment` after `after` (from its first when `None`), for a
/// reader following the log.
pub fn follow(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    after: Option<EventId>,
    limit: i64,
) -> Result<FollowedPage, ServiceError> {
    // Existence first: a delete commits its DEPLOYMENT_DELETED event with it, so once the
    // deployment is seen gone, the read below sees that event. (The other order could see the
    // events before the delete, then the deployment gone, and end without its event.)
    let deployment_exists = match netorch_storage::deployments::ensure_exists(conn, deployment) {
        Ok(()) => true,
        Err(netorch_storage::StorageError::DeploymentNotFound) => false,
        Err(e) => return Err(e.into()),
    };
    let query = EventQuery {
        after,
        limit,
        ..EventQuery::of_deployment(deployment)
    };
    Ok(FollowedPage {
        events: events::list(conn, &query)?,
        deployment_exists,
    })
}
