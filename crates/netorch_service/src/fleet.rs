//! The whole fleet at a glance: nodes by state, deployments by status and open alerts, read
//! from the counters the deployment rows keep and one grouped count of the alerts, whatever the
//! number of nodes.

use crate::ServiceError;
use netorch_domain::alert::OpenAlertCounts;
use netorch_storage::deployments::FleetSummary;
use netorch_storage::{DbConnection, alerts, deployments};

/// The fleet's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetTotals {
    /// Nodes by state and deployments by status.
    pub summary: FleetSummary,
    /// Unresolved alerts by state (pending or firing) and severity.
    pub open_alerts: OpenAlertCounts,
}

/// Reads the totals: two reads, each of one moment (a dashboard's glance needs no more).
pub fn totals(conn: &mut DbConnection) -> Result<FleetTotals, ServiceError> {
    Ok(FleetTotals {
        summary: deployments::fleet_summary(conn)?,
        open_alerts: OpenAlertCounts::new(alerts::open_counts(conn)?),
    })
}
