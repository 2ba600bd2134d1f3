//! Reads across deployments: a page of a listing (searched, filtered by status, ordered), every
//! id, how many there are, and the fleet at a glance from their counters.

use super::{DeploymentRow, StateCountsRow};
use crate::schema::deployments;
use crate::{DbConnection, Result};
use diesel::prelude::*;
use netorch_domain::{
    Deployment, DeploymentId, DeploymentListing, DeploymentSort, DeploymentStatus, NodeState,
    NodeStateCounts,
};

/// Deployments newest first (descending id), `skip` then at most `limit`, each with its
/// per-state counters.
pub fn list(
    conn: &mut DbConnection,
    skip: i64,
    limit: i64,
) -> Result<Vec<(Deployment, NodeStateCounts)>> {
    // Not boxed: diesel keeps this query prepared (a dashboard reads it every 3 s).
    let rows: Vec<(DeploymentRow, StateCountsRow)> = on_backend!(conn, |inner| {
        deployments::table
            .order(deployments::id.desc())
            .offset(skip)
            .limit(limit)
            .select((DeploymentRow::as_select(), StateCountsRow::as_select()))
            .load(inner)?
    });
    rows.into_iter()
        .map(|(row, counts)| Ok((Deployment::try_from(row)?, counts.into())))
        .collect()
}

/// A `LIKE` pattern matching the texts that contain `text`, with `\\` escaping the pattern's
/// own characters (`%`, `_`, `\\`) so that they match themselves. Its case is left to SQL's
/// `lower`, applied to both sides, so that both engines fold the name and the search alike.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL's `lower`: ASCII letters on SQLite, every letter on PostgreSQL.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The deployments `listing` holds, in its order, `skip` then at most `limit`, each with its
/// per-state counters. The status is decided from the counters as
/// [`DeploymentStatus::of`] decides it, in SQL, so that a page of a filtered listing is read
/// as one page.
pub fn list_where(
    conn: &mut DbConnection,
    listing: &DeploymentListing,
    skip: i64,
    limit: i64,
) -> Result<Vec<(Deployment, NodeStateCounts)>> {
    use deployments::dsl as d;
    if *listing == DeploymentListing::default() {
        return list(conn, skip, limit);
    }
    let pattern = listing.name_contains.as_deref().map(like_pattern);
    let rows: Vec<(DeploymentRow, StateCountsRow)> = on_backend!(conn, |inner| {
        let mut query = deployments::table
            .select((DeploymentRow::as_select(), StateCountsRow::as_select()))
            .into_boxed();
        if let Some(pattern) = &pattern {
            query = query.filter(lower(d::name).like(lower(pattern.clone())).escape('\\'));
        }
        // Unfinished: a node pending, in a phase, waiting for its automatic retry or being
        // decommissioned (Progress::of and DeploymentStatus::of).
        let unfinished = d::pending_nodes
            .gt(0)
            .or(d::provisioning_nodes.gt(0))
            .or(d::configuring_nodes.gt(0))
            .or(d::retrying_nodes.gt(0))
            .or(d::decommissioning_nodes.gt(0));
        query = match listing.status {
            None => query,
            Some(DeploymentStatus::Progressing) => {
                query.filter(unfinished.and(d::paused_at.is_null()))
            }
            Some(DeploymentStatus::Paused) => {
                query.filter(unfinished.and(d::paused_at.is_not_null()))
            }
            Some(DeploymentStatus::Degraded) => {
                query.filter(unfinished.eq(false).and(d::failed_nodes.gt(0)))
            }
            Some(DeploymentStatus::Complete) => {
                query.filter(unfinished.eq(false).and(d::failed_nodes.eq(0)))
            }
        };
        query = match listing.sort {
            DeploymentSort::Newest => query.order(d::id.desc()),
            DeploymentSort::Oldest => query.order(d::id.asc()),
            DeploymentSort::Name => query.order((lower(d::name).asc(), d::id.desc())),
            DeploymentSort::MostFailed => query.order((d::failed_nodes.desc(), d::id.desc())),
        };
        query.offset(skip).limit(limit).load(inner)?
    });
    rows.into_iter()
        .map(|(row, counts)| Ok((Deployment::try_from(row)?, counts.into())))
        .collect()
}

/// Every deployment's id, ascending.
pub fn all_ids(conn: &mut DbConnection) -> Result<Vec<DeploymentId>> {
    let ids: Vec<i64> = deployments::table
        .select(deployments::id)
        .order(deployments::id)
        .load(conn)?;
    Ok(ids.into_iter().map(DeploymentId).collect())
}

/// How many deployments exist.
pub fn count(conn: &mut DbConnection) -> Result<i64> {
    Ok(deployments::table.count().get_result(conn)?)
}

/// The whole fleet at a glance, from the counters each deployment row keeps (never by
/// counting nodes): for the metrics an operator graphs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetSummary {
    /// Nodes in each state, summed over every deployment.
    pub nodes: NodeStateCounts,
    /// How many deployments have each status, in the order of [`DeploymentStatus::ALL`].
    pub deployments: [u64; DeploymentStatus::ALL.len()],
}

impl FleetSummary {
    /// How many deployments have `status`.
    pub fn deployments_with(&self, status: DeploymentStatus) -> u64 {
        DeploymentStatus::ALL
            .iter()
            .position(|s| *s == status)
            .map_or(0, |i| self.deployments[i])
    }
}

/// Reads the [`FleetSummary`]: one pass over the deployments table, whatever the number of
/// nodes.
pub fn fleet_summary(conn: &mut DbConnection) -> Result<FleetSummary> {
    let rows: Vec<(Option<i64>, StateCountsRow)> = deployments::table
        .select((deployments::paused_at, StateCountsRow::as_select()))
        .load(conn)?;
    let mut fleet = FleetSummary::default();
    for (paused_at, row) in rows {
        let counts = NodeStateCounts::from(row);
        let status = DeploymentStatus::of(paused_at.is_some(), &counts);
        if let Some(i) = DeploymentStatus::ALL.iter().position(|s| *s == status) {
            fleet.deployments[i] += 1;
        }
        for state in NodeState::ALL {
            fleet.nodes.add(state, counts.get(state));
        }
        fleet.nodes.retrying += counts.retrying;
    }
    Ok(fleet)
}
