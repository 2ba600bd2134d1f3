//! A deployment's nodes: listed, one by id or name, and a failed one retried.

use crate::ServiceError;
use netorch_domain::{DeploymentId, Node, NodeId, NodeRef, Timestamp};
use netorch_storage::{DbConnection, deployments, nodes};

pub use netorch_storage::nodes::{NodeFilter, NodePage};

/// The deployment's nodes in ascending id order, filtered and paged.
pub fn list(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    filter: &NodeFilter,
) -> Result<NodePage, ServiceError> {
    Ok(nodes::list(conn, deployment, filter)?)
}

/// A number that changes whenever a node of the deployment does (state, attempt, a node
/// added or removed): a listing read at one version is the listing until it changes, which is
/// what a cache of listings keys on.
pub fn version(conn: &mut DbConnection, deployment: DeploymentId) -> Result<i64, ServiceError> {
    Ok(deployments::nodes_version(conn, deployment)?)
}

/// The node `node` names (its id, or its name within the deployment).
pub fn get(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: &NodeRef,
) -> Result<Node, ServiceError> {
    let id = nodes::resolve(conn, deployment, node)?;
    Ok(nodes::get(conn, deployment, id)?)
}

/// Sends a `FAILED` node back to `PENDING` for another attempt, with a `NODE_RETRIED` event;
/// any other state is a `Storage(Domain(..))` error naming the actions it allows.
pub fn retry(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: &NodeRef,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<Node, ServiceError> {
    let id = nodes::resolve(conn, deployment, node)?;
    Ok(nodes::retry(conn, deployment, id, actor, now)?)
}

/// What a filter by node (`node`, if any) keeps of `deployment`: every node (`Every`), the
/// one it names (`Only`), or none, when it names no node of the deployment.
pub(crate) enum NodeMatch {
    Every,
    Only(NodeId),
    Nothing,
}

impl NodeMatch {
    pub(crate) fn of(
        conn: &mut DbConnection,
        deployment: DeploymentId,
        node: Option<&NodeRef>,
    ) -> Result<Self, ServiceError> {
        Ok(match node {
            None => NodeMatch::Every,
            Some(node) => match nodes::lookup(conn, deployment, node)? {
                Some(id) => NodeMatch::Only(id),
                None => NodeMatch::Nothing,
            },
        })
    }
}

/// How many of a node's provisioner runs are shown: all those kept.
pub const RUNS_SHOWN: i64 = netorch_domain::provisioning::RUNS_KEPT_PER_NODE;

/// A node's provisioner runs (its external provisioner's programs, one per phase it went
/// through), newest first: the last [`RUNS_SHOWN`].
pub fn runs(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: &NodeRef,
) -> Result<Vec<netorch_domain::ProvisionerRun>, ServiceError> {
    let id = nodes::resolve(conn, deployment, node)?;
    Ok(netorch_storage::runs::for_node(conn, id, RUNS_SHOWN)?)
}
