//! Deployments: create, list, get, change, pause, resume and delete.

mod input;
mod output;
mod remediation;

pub use input::*;
pub use output::*;

use crate::ApiState;
use crate::http::auth::Actor;
use crate::http::blocking::{with_db, with_write};
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::Valid;
use crate::http::input::paths::DeploymentPath;
use crate::http::operation::{Access, Operation, Resource, Verb};
use crate::http::paging::page_len;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::Action;
use netorch_service::deployments::{self, DeploymentState, Page};
use utoipa::OpenApi;

/// The deployments' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource {
    for_server: with_node_limit,
    ..Resource::new(
        &[
            Operation::write(Verb::Post, "/deployments", Action::Change, "written", |r| {
                r.to(create_deployment)
            }),
            Operation::get("/deployments", Access::Needs(Action::Read), |r| {
                r.to(list_deployments)
            }),
            Operation::get(
                "/deployments/{deployment_id}",
                Access::Needs(Action::Read),
                |r| r.to(get_deployment),
            ),
            Operation::write(
                Verb::Patch,
                "/deployments/{deployment_id}",
                Action::Change,
                "written",
                |r| r.to(patch_deployment),
            ),
            Operation::write(
                Verb::Delete,
                "/deployments/{deployment_id}",
                Action::Delete,
                "deleted",
                |r| r.to(delete_deployment),
            ),
            Operation::write(
                Verb::Post,
                "/deployments/{deployment_id}/pause",
                Action::Change,
                "written",
                |r| r.to(pause_deployment),
            ),
            Operation::write(
                Verb::Post,
                "/deployments/{deployment_id}/resume",
                Action::Change,
                "written",
                |r| r.to(resume_deployment),
            ),
        ],
        Doc::openapi,
    )
};

#[derive(OpenApi)]
#[openapi(paths(
    create_deployment,
    list_deployments,
    get_deployment,
    patch_deployment,
    pause_deployment,
    resume_deployment,
    delete_deployment
))]
struct Doc;

/// The create and `PATCH` bodies as this server takes them: with its largest deployment.
fn with_node_limit(document: &mut utoipa::openapi::OpenApi, state: &ApiState) {
    use utoipa::ToSchema;
    if let Some(components) = document.components.as_mut() {
        components.schemas.insert(
            DeploymentCreate::name().into_owned(),
            DeploymentCreate::schema_for(
                state.max_nodes_per_deployment(),
                state.provisioner_profiles(),
            )
            .into(),
        );
        components.schemas.insert(
            DeploymentPatch::name().into_owned(),
            DeploymentPatch::schema_for(state.max_nodes_per_deployment()).into(),
        );
    }
}

/// Create a deployment
///
/// Creates the deployment and all its nodes at once, in `PENDING`; the lifecycle worker takes
/// them from there. Answers 201 with the deployment.
#[utoipa::path(
    post, path = "/deployments", tag = "deployments",
    request_body = DeploymentCreate,
    responses(
        (status = 201, description = "Created, with all its nodes in PENDING", body = DeploymentOut),
    )
)]
pub async fn create_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentCreate(new)): Valid<DeploymentCreate>,
) -> Result<HttpResponse, ApiError> {
    let created = with_write(&state, move |conn| {
        Ok(deployments::create(conn, &new, Some(&actor.0), Utc::now())?)
    })
    .await?;
    let DeploymentState {
        deployment,
        nodes,
        alerts,
    } = created;
    log::info!(
        "deployment {} '{}' created with {} nodes",
        deployment.id,
        deployment.name,
        deployment.target_node_count
    );
    Ok(HttpResponse::Created().json(DeploymentOut::new(deployment, &nodes, &alerts)))
}

/// List deployments
///
/// Newest first, paged with `skip` and `limit`; `name`, `status` and `sort` search, filter and
/// order them (the page is of what they keep). A page holds at most `limit` deployments and at
/// most 1 MiB of JSON (long descriptions): ask for the next one from `skip` plus the number
/// received, until a page is empty.
#[utoipa::path(
    get, path = "/deployments", tag = "deployments",
    params(ListDeployments),
    responses(
        (status = 200, body = Vec<DeploymentOut>),
    )
)]
pub async fn list_deployments(
    state: web::Data<ApiState>,
    Valid(ListDeployments {
        skip,
        limit,
        listing,
    }): Valid<ListDeployments>,
) -> Result<HttpResponse, ApiError> {
    let list = with_db(&state, move |conn| {
        Ok(deployments::list_where(
            conn,
            &listing,
            Page { skip, limit },
        )?)
    })
    .await?;
    let mut page: Vec<DeploymentOut> = list
        .into_iter()
        .map(|found| DeploymentOut::new(found.deployment, &found.nodes, &found.alerts))
        .collect();
    page.truncate(page_len(&page));
    Ok(HttpResponse::Ok().json(page))
}

/// Get a deployment
///
/// The deployment with its node count and how many nodes are in each state.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}", tag = "deployments",
    params(DeploymentPath),
    responses(
        (status = 200, body = DeploymentDetail),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn get_deployment(
    state: web::Data<ApiState>,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    let found = with_db(&state, move |conn| Ok(deployments::get(conn, deployment)?)).await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::from(found)))
}

/// Change a deployment
///
/// Changes its name, description or rollout settings; absent fields are kept, `null` removes
/// a limit. A change to the rollout settings applies from the lifecycle worker's next tick. A
/// `DEPLOYMENT_UPDATED` event lists the fields whose value changed (none: no event).
#[utoipa::path(
    patch, path = "/deployments/{deployment_id}", tag = "deployments",
    params(DeploymentPath),
    request_body = DeploymentPatch,
    responses(
        (status = 200, description = "The deployment as changed", body = DeploymentDetail),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn patch_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentPatch {
        deployment,
        changes,
    }): Valid<DeploymentPatch>,
) -> Result<HttpResponse, ApiError> {
    let changed = with_write(&state, move |conn| {
        Ok(deployments::update(
            conn,
            deployment,
            &changes,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::from(changed)))
}

/// Pause a rollout
///
/// No node leaves `PENDING` until the rollout is resumed; nodes already in a phase finish it,
/// failed nodes still get their automatic retries (back to `PENDING`). Pausing a paused
/// deployment changes nothing. A `DEPLOYMENT_PAUSED` event records it.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/pause", tag = "deployments",
    params(DeploymentPath),
    responses(
        (status = 200, description = "The deployment, paused", body = DeploymentDetail),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn pause_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    let changed = with_write(&state, move |conn| {
        Ok(deployments::pause(
            conn,
            deployment,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::from(changed)))
}

/// Resume a rollout
///
/// Pending nodes start again, within `max_in_flight`. Resuming a deployment that is not paused
/// changes nothing. A `DEPLOYMENT_RESUMED` event records it. After a pause for
/// `max_failure_percent`, the next failure pauses it again while the failed share is still
/// over the limit: raise or remove the limit with `PATCH` to let the rollout finish.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/resume", tag = "deployments",
    params(DeploymentPath),
    responses(
        (status = 200, description = "The deployment, running", body = DeploymentDetail),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn resume_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    let changed = with_write(&state, move |conn| {
        Ok(deployments::resume(
            conn,
            deployment,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::from(changed)))
}

/// Delete a deployment
///
/// Deletes the deployment with its nodes and samples and answers 204 with no body. Its events
/// stay readable, and a `DEPLOYMENT_DELETED` event is added.
#[utoipa::path(
    delete, path = "/deployments/{deployment_id}", tag = "deployments",
    params(DeploymentPath),
    responses(
        (status = 204, description = "Deleted; no body"),
        (status = 404, description = "No such deployment", body = ErrorDetail),
    )
)]
pub async fn delete_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    with_write(&state, move |conn| {
        Ok(deployments::delete(
            conn,
            deployment,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    log::info!("deployment {deployment} deleted");
    Ok(HttpResponse::NoContent().finish())
}
