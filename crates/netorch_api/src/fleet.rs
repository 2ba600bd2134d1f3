//! `/fleet`: the whole fleet at a glance (nodes by state, deployments by status, open alerts),
//! for the dashboard's totals and anyone who wants three numbers without paging.

use crate::ApiState;
use crate::alerts::output::AlertCountsOut;
use crate::http::blocking::with_db;
use crate::http::choice::counts_schema;
use crate::http::error::ApiError;
use crate::http::operation::{Access, Operation, Resource};
use actix_web::{HttpResponse, web};
use netorch_domain::{Action, DeploymentStatus, NodeState};
use netorch_service::fleet::{self, FleetTotals};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::schema::Schema;
use utoipa::{OpenApi, ToSchema};

/// The fleet's operation and its part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[Operation::get("/fleet", Access::Needs(Action::Read), |r| {
        r.to(fleet_totals)
    })],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(fleet_totals))]
struct Doc;

/// The fleet's totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetOut {
    /// Every deployment, and how many have each status.
    pub deployments: FleetDeploymentsOut,
    /// Every node of every deployment, and how many are in each state.
    pub nodes: FleetNodesOut,
    /// Unresolved alerts: firing (by severity) and pending.
    pub alerts: AlertCountsOut,
}

/// Deployments by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetDeploymentsOut {
    /// All deployments.
    pub total: u64,
    /// How many have each status (every status named, 0 included).
    #[schema(schema_with = by_status_schema)]
    pub by_status: BTreeMap<&'static str, u64>,
}

/// Nodes by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetNodesOut {
    /// All nodes, decommissioning ones included.
    pub total: u64,
    /// How many are in each state (every state named, 0 included).
    #[schema(schema_with = by_state_schema)]
    pub by_state: BTreeMap<&'static str, u64>,
}

impl From<FleetTotals> for FleetOut {
    fn from(totals: FleetTotals) -> Self {
        let summary = &totals.summary;
        let by_status: BTreeMap<_, _> = DeploymentStatus::ALL
            .iter()
            .map(|s| (s.as_str(), summary.deployments_with(*s)))
            .collect();
        let by_state: BTreeMap<_, _> = NodeState::ALL
            .iter()
            .map(|s| (s.as_str(), summary.nodes.get(*s)))
            .collect();
        FleetOut {
            deployments: FleetDeploymentsOut {
                total: by_status.values().sum(),
                by_status,
            },
            nodes: FleetNodesOut {
                total: summary.nodes.total(),
                by_state,
            },
            alerts: AlertCountsOut::from(&totals.open_alerts),
        }
    }
}

fn by_status_schema() -> Schema {
    counts_schema::<DeploymentStatus>("Deployments with each status")
}

fn by_state_schema() -> Schema {
    counts_schema::<NodeState>("Nodes in each state")
}

/// The fleet's totals
///
/// Deployments by status, nodes by state and open alerts, across every deployment: read from
/// the counters each deployment keeps and one count of the alerts, so it costs the same for a
/// hundred nodes as for a million.
#[utoipa::path(get, path = "/fleet", tag = "deployments", responses((status = 200, body = FleetOut)))]
pub async fn fleet_totals(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let totals = with_db(&state, |conn| Ok(fleet::totals(conn)?)).await?;
    Ok(HttpResponse::Ok().json(FleetOut::from(totals)))
}
