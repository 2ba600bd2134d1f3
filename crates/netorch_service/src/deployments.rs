//! Deployments: create, list, read, change, pause, resume and delete. Each change is recorded
//! in the audit log under `actor` (`None`: the system), at `now`.

use crate::ServiceError;
use netorch_domain::alert::OpenAlertCounts;
use netorch_domain::{
    Deployment, DeploymentChanges, DeploymentId, DeploymentListing, NewDeployment, NodeStateCounts,
    PauseReason, Timestamp,
};
use netorch_storage::{DbConnection, alerts, deployments};
use std::collections::HashMap;

/// A deployment with how many of its nodes are in each state and how many of its alerts are
/// open, as of the read.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentState {
    /// The deployment.
    pub deployment: Deployment,
    /// Its nodes per state.
    pub nodes: NodeStateCounts,
    /// Its unresolved alerts by state and severity.
    pub alerts: OpenAlertCounts,
}

/// The deployments as read, each with its open alerts: one grouped read for them all.
fn with_alerts(
    conn: &mut DbConnection,
    found: Vec<(Deployment, NodeStateCounts)>,
) -> Result<Vec<DeploymentState>, ServiceError> {
    let ids: Vec<DeploymentId> = found.iter().map(|(d, _)| d.id).collect();
    let mut rows: HashMap<DeploymentId, Vec<_>> = HashMap::new();
    for (id, state, severity, count) in alerts::open_counts_of(conn, &ids)? {
        rows.entry(id).or_default().push((state, severity, count));
    }
    Ok(found
        .into_iter()
        .map(|(deployment, nodes)| DeploymentState {
            alerts: OpenAlertCounts::new(rows.remove(&deployment.id).unwrap_or_default()),
            deployment,
            nodes,
        })
        .collect())
}

/// One deployment as read, with its open alerts.
fn with_alerts_of(
    conn: &mut DbConnection,
    found: (Deployment, NodeStateCounts),
) -> Result<DeploymentState, ServiceError> {
    let mut one = with_alerts(conn, vec![found])?;
    // `with_alerts` answers one state per deployment it is given, and it was given one.
    Ok(one.remove(0))
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
    // A new deployment has no alert yet.
    Ok(DeploymentState {
        deployment,
        nodes,
        alerts: OpenAlertCounts::default(),
    })
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
    with_alerts(conn, found)
}

/// One deployment; `Storage(DeploymentNotFound)` when there is none.
pub fn get(conn: &mut DbConnection, id: DeploymentId) -> Result<DeploymentState, ServiceError> {
    let found = deployments::get_with_counts(conn, id)?;
    with_alerts_of(conn, found)
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
    let changed = deployments::update(conn, id, changes, actor, now)?;
    with_alerts_of(conn, changed)
}

/// Pauses its rollout at an operator's request: no node leaves `PENDING` until it is
/// resumed. Pausing a paused deployment changes nothing.
pub fn pause(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<DeploymentState, ServiceError> {
    let paused = deployments::pause(conn, id, PauseReason::Operator, actor, now)?;
    with_alerts_of(conn, paused)
}

/// Resumes a paused rollout; a deployment that is not paused is left as it is.
pub fn resume(
    conn: &mut DbConnection,
    id: DeploymentId,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<DeploymentState, ServiceError> {
    let resumed = deployments::resume(conn, id, actor, now)?;
    with_alerts_of(conn, resumed)
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
