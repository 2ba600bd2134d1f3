//! Deployments: create, list, read, change, pause, resume and delete. Each change is recorded
//! in the audit log under `actor` (`None`: the system), at `now`.

use crate::ServiceError;
use netorch_domain::{
    Deployment, DeploymentChanges, DeploymentId, DeploymentListing, NewDeployment, NodeStateCounts,
    PauseReason, Timestamp,
};
use netorch_storage::{DbConnection, deployments};

/// A deployment with how many of its nodes are in each state, as of the read.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentState {
    /// The deployment.
    pub deployment: Deployment,
    /// Its nodes per state.
    pub nodes: NodeStateCounts,
}

impl From<(Deployment, NodeStateCounts)> for DeploymentState {
    fn from((deployment, nodes): (Deployment, NodeStateCounts)) -> Self {
        DeploymentState { deployment, nodes }
    }
}

/// A page of a listing: `skip` items, then at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to skip.
    pub skip: i64,
    /// At most this many.
    pub limit: i64,
}

impl Page {
    /// The first `limit` items.
    pub fn first(limit: i64) -> Self {
        Page { skip: 0, limit }
    }

    /// The page after this one, for a caller that received `received` items of it.
    pub fn next(self, received: usize) -> Self {
        Page {
            skip: self.skip + received as i64,
            ..self
        }
    }
}

impl Default for Page {
    /// The first 100, as the API's default.
    fn default() -> Self {
        Page::first(100)
    }
}

/// Creates the deployment and all its nodes, in `PENDING` (the lifecycle worker takes them
/// from there), with a `DEPLOYMENT_CREATED` event; all or nothing.
pub fn create(
    conn: &mut DbConnection,
    new: &NewDeployment,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<DeploymentState, ServiceError> {
    let deployment = deployments::create(conn, new, actor, now)?;
    // Every node of a new deployment is pending.
    let nodes = NodeStateCounts {
        pending: u64::from(deployment.target_node_count),
        ..NodeStateCounts::default()
    };
    Ok(DeploymentState { deployment, nodes })
}

/// Deployments, newest first.
pub fn list(conn: &mut DbConnection, page: Page) -> Result<Vec<DeploymentState>, ServiceError> {
    list_where(conn, &DeploymentListing::default(), page)
}

/// A page of the deployments `listing` holds (a name search, a status), in its order.
pub fn list_where(
    conn: &mut DbConnection,
    listing: &DeploymentListing,
    page: Page,
) -> Result<Vec<DeploymentState>, ServiceError> {
    let found = deployments::list_where(conn, listing, page.skip, page.limit)?;
    Ok(found.into_iter().map(DeploymentState::from).collect())
}

/// One deployment; `Storage(DeploymentNotFound)` when there is none.
pub fn get(conn: &mut DbConnection, id: DeploymentId) -> Result<DeploymentState, ServiceError> {
    Ok(deployments::get_with_counts(conn, id)?.into())
}

/// Changes its name, description, rollout settings or size (absent fields are kept), with a
/// `DEPLOYMENT_UPDATED` event listing the fields whose value changed (none: no event) and a
/// `DEPLOYMENT_SCALED` one for a new size.
pub fn update(
    conn: &mut DbConnection,
    id: DeploymentId,
    changes: &DeploymentChanges,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<DeploymentState, ServiceError> {
    Ok(deployments::update(conn, id, changes, actor, now)?.into())
}

/// Pauses its rollout at an operator's request: no node leaves `PENDING` until it is
/// resumed. Pausing a paused deployment changes nothing.
pub fn pause(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<DeploymentState, ServiceError> {
    Ok(deployments::pause(conn, id, PauseReason::Operator, actor, now)?.into())
}

/// Resumes a paused rollout; a deployment that is not paused is left as it is.
pub fn resume(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<DeploymentState, ServiceError> {
    Ok(deployments::resume(conn, id, actor, now)?.into())
}

/// Deletes it with its nodes and samples; its events stay, a `DEPLOYMENT_DELETED` one last.
pub fn delete(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<(), ServiceError> {
    Ok(deployments::delete(conn, id, actor, now)?)
}

/// How many deployments exist.
pub fn count(conn: &mut DbConnection) -> Result<i64, ServiceError> {
    Ok(deployments::count(conn)?)
}
