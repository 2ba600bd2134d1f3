//! A node's provisioner runs: what its external provisioner's programs did, phase by phase,
//! so that an operator can see why a node failed (docs/PROVISIONERS.md).

use crate::ApiState;
use crate::http::blocking::with_db;
use crate::http::choice;
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::Valid;
use crate::http::input::paths::NodePath;
use crate::http::operation::{Access, Operation, Resource};
use crate::http::shapes::timestamp;
use actix_web::{HttpResponse, web};
use netorch_domain::{Action, ProvisionerRun};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// The runs' operation and its part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[Operation::get(
        "/deployments/{deployment_id}/nodes/{node_id}/runs",
        Access::Needs(Action::Read),
        |r| r.to(list_runs),
    )],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(list_runs))]
struct Doc;

fn phase_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::Phase>(
        "The phase: `provision` (PROVISIONING), `configure` (CONFIGURING) or `release` \
         (DECOMMISSIONING)",
    )
}

fn outcome_schema() -> utoipa::openapi::schema::Schema {
    choice::nullable_schema::<netorch_domain::RunOutcome>("How it ended: null while it runs")
}

/// One run of a provisioner's program for one phase of a node.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    /// Its id (increasing).
    pub id: i64,
    /// The provisioner profile that ran it.
    pub profile: String,
    /// The phase.
    #[schema(schema_with = phase_schema)]
    pub phase: &'static str,
    /// The node's attempt it was for (0 at first).
    pub attempt: u32,
    /// When the node entered the phase.
    pub phase_started_at: String,
    /// How many times the program was started for it: more than 1 when a worker stopped
    /// mid-run and another ran it again.
    pub starts: u32,
    /// The worker that ran it last.
    pub worker: String,
    /// When the program was last started.
    pub started_at: String,
    /// When it ended; null while it runs.
    pub finished_at: Option<String>,
    /// How it ended.
    #[schema(schema_with = outcome_schema)]
    pub outcome: Option<&'static str>,
    /// The program's exit status, when it exited.
    pub exit_code: Option<i32>,
    /// What it said, or why it failed (the node's failure reason when it failed).
    pub message: Option<String>,
    /// The address it reported (provision).
    pub address: Option<String>,
    /// The end of its standard output (at most 32 KiB).
    pub stdout: String,
    /// The end of its standard error (at most 32 KiB).
    pub stderr: String,
}

impl From<ProvisionerRun> for RunOut {
    fn from(run: ProvisionerRun) -> Self {
        RunOut {
            id: run.id,
            profile: run.profile,
            phase: run.phase.as_str(),
            attempt: run.attempt,
            phase_started_at: timestamp(run.phase_started_at),
            starts: run.starts,
            worker: run.holder,
            started_at: timestamp(run.started_at),
            finished_at: run.finished_at.map(timestamp),
            outcome: run.outcome.map(|o| o.as_str()),
            exit_code: run.exit_code,
            message: run.message,
            address: run.address,
            stdout: run.stdout,
            stderr: run.stderr,
        }
    }
}

/// A node's runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// Newest first: the last 20 (older ones are deleted as new ones start). Empty for a node
    /// of the built-in `simulator` profile, which runs no program.
    pub runs: Vec<RunOut>,
}

/// List a node's provisioner runs
///
/// What the external provisioner's program did in each phase the node went through, newest
/// first, with the end of its output: why a node failed, in the program's own words.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes/{node_id}/runs", tag = "nodes",
    params(NodePath),
    responses(
        (status = 200, body = RunList),
        (status = 404, description = "No such deployment or node", body = ErrorDetail),
    )
)]
pub async fn list_runs(
    state: web::Data<ApiState>,
    Valid(NodePath { deployment, node }): Valid<NodePath>,
) -> Result<HttpResponse, ApiError> {
    let runs = with_db(&state, move |conn| {
        Ok(netorch_service::nodes::runs(conn, deployment, &node)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(RunList {
        runs: runs.into_iter().map(RunOut::from).collect(),
    }))
}
