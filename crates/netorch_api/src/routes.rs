//! The handlers, one per row of the API contract. Each takes its input as `Valid<T>`, the
//! operation's input type from `requests`, already read and checked.

use crate::ApiState;
use crate::auth::Actor;
use crate::error::{ApiError, ConflictDetail, ErrorDetail, FieldError, LocItem, ValidationError};
use crate::input::Valid;
use crate::listing_cache::ListingKey;
use crate::paging::page_len;
use crate::requests::*;
use crate::responses::*;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::{
    DeploymentId, NodeId, NodeRef, NodeStateCounts, PauseReason, Resolution, WorkerKind,
};
use netorch_service::bottlenecks::{ReportPlan, ReportQuery};
use netorch_service::series::{Series, SeriesStep};

use netorch_storage::{DbConnection, deployments, events, heartbeats, nodes, telemetry};
use serde_json::Value;

/// Starts database work on actix's blocking pool at once (never on the async workers); the
/// returned future yields its result. Several can run at the same time.
fn spawn_db<T, F>(
    state: &ApiState,
    work: F,
) -> impl Future<Output = Result<T, ApiError>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let db = state.db.clone();
    let running = web::block(move || {
        let mut conn = db.get()?;
        work(&mut conn)
    });
    async move {
        running
            .await
            .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
    }
}

/// Runs database work on actix's blocking pool and waits for it.
pub(crate) async fn with_db<T, F>(state: &ApiState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    spawn_db(state, work).await
}

/// [`with_db`] for work that writes: its outcome tells whether writes are failing for lack
/// of space (`/ready`, `/health`).
async fn with_write<T, F>(state: &ApiState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let outcome = spawn_db(state, work).await;
    state.note_write(&outcome);
    outcome
}

/// Sets `filter` to the node `node` names in `deployment`, if any; `false` when it names none
/// (the listing is then empty).
fn node_filter(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: Option<NodeRef>,
    filter: &mut Option<NodeId>,
) -> Result<bool, ApiError> {
    let Some(node) = node else {
        return Ok(true);
    };
    *filter = nodes::lookup(conn, deployment, &node)?;
    Ok(filter.is_some())
}

/// Who am I
///
/// The caller's key name and role, what the role may do, and the deployments the key is
/// limited to (with auth off: `anonymous`, `admin`, everything). Any active key may ask,
/// whatever its role.
#[utoipa::path(get, path = "/whoami", tag = "service", responses((status = 200, body = CallerOut)))]
pub async fn whoami(
    state: web::Data<ApiState>,
    actor: Actor,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    use actix_web::HttpMessage;
    // The access check put the role and scope there; where it did not run, auth is off.
    let extensions = req.extensions();
    let role = extensions
        .get::<netorch_domain::Role>()
        .copied()
        .unwrap_or(netorch_domain::Role::Admin);
    let scope = extensions
        .get::<crate::auth::Scope>()
        .and_then(|scope| scope.0.as_deref());
    HttpResponse::Ok().json(CallerOut::new(
        actor.0,
        role,
        scope,
        state.auth() == crate::auth::AuthMode::Keys,
    ))
}

/// Service information
///
/// The service's name and version, and where the explorer and the health check are.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = ServiceInfo)))]
pub async fn root() -> HttpResponse {
    HttpResponse::Ok().json(ServiceInfo {
        service: "Network Deployment & Telemetry Orchestrator",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/docs",
        health: "/health",
    })
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
        (status = 408, description = "The body did not arrive within 30 s", body = ErrorDetail),
        (status = 413, description = "The body is larger than the server takes (--max-body-bytes, 8 MiB by default)", body = ErrorDetail),
        (status = 422, description = "Invalid input; nothing was written", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was written", body = ErrorDetail),
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
    log::info!(
        "deployment {} '{}' created with {} nodes",
        created.id,
        created.name,
        created.target_node_count
    );
    // Every node of a new deployment is pending.
    let counts = NodeStateCounts {
        pending: u64::from(created.target_node_count),
        ..NodeStateCounts::default()
    };
    Ok(HttpResponse::Created().json(DeploymentOut::new(created, &counts)))
}

/// List deployments
///
/// Newest first, paged with `skip` and `limit`. A page holds at most `limit` deployments and at
/// most 1 MiB of JSON (long descriptions): ask for the next one from `skip` plus the number
/// received, until a page is empty.
#[utoipa::path(
    get, path = "/deployments", tag = "deployments",
    params(ListDeployments),
    responses(
        (status = 200, body = Vec<DeploymentOut>),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn list_deployments(
    state: web::Data<ApiState>,
    Valid(ListDeployments { skip, limit }): Valid<ListDeployments>,
) -> Result<HttpResponse, ApiError> {
    let list = with_db(&state, move |conn| {
        Ok(deployments::list(conn, skip, limit)?)
    })
    .await?;
    let mut page: Vec<DeploymentOut> = list
        .into_iter()
        .map(|(deployment, counts)| DeploymentOut::new(deployment, &counts))
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
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn get_deployment(
    state: web::Data<ApiState>,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    let (deployment, counts) = with_db(&state, move |conn| {
        Ok(deployments::get_with_counts(conn, deployment)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::new(deployment, counts)))
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
        (status = 408, description = "The body did not arrive within 30 s", body = ErrorDetail),
        (status = 413, description = "The body is larger than the server takes (--max-body-bytes, 8 MiB by default)", body = ErrorDetail),
        (status = 422, description = "Invalid input; nothing was written", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was written", body = ErrorDetail),
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
    let (deployment, counts) = with_write(&state, move |conn| {
        Ok(deployments::update(
            conn,
            deployment,
            &changes,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::new(deployment, counts)))
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
        (status = 422, description = "Invalid input", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was written", body = ErrorDetail),
    )
)]
pub async fn pause_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    let (deployment, counts) = with_write(&state, move |conn| {
        Ok(deployments::pause(
            conn,
            deployment,
            PauseReason::Operator,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::new(deployment, counts)))
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
        (status = 422, description = "Invalid input", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was written", body = ErrorDetail),
    )
)]
pub async fn resume_deployment(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(DeploymentPath { deployment }): Valid<DeploymentPath>,
) -> Result<HttpResponse, ApiError> {
    let (deployment, counts) = with_write(&state, move |conn| {
        Ok(deployments::resume(
            conn,
            deployment,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail::new(deployment, counts)))
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
        (status = 422, description = "Invalid input", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was deleted", body = ErrorDetail),
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

/// List a deployment's nodes
///
/// In ascending id order; all of them unless filtered by `state` or paged.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes", tag = "nodes",
    params(ListNodes),
    responses(
        (status = 200, body = NodeList),
        (status = 404, description = "No such deployment", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn list_nodes(
    state: web::Data<ApiState>,
    Valid(ListNodes { deployment, filter }): Valid<ListNodes>,
) -> Result<HttpResponse, ApiError> {
    let listings = state.listings.clone();
    let body = with_db(&state, move |conn| {
        // The bytes built for the same node version are still the answer (listing_cache.rs).
        let key = ListingKey::new(deployment, &filter);
        let version = deployments::nodes_version(conn, deployment)?;
        if let Some(body) = listings.get(&key, version) {
            return Ok(body);
        }
        let page = nodes::list(conn, deployment, &filter)?;
        // Serialized on the blocking thread, next to the query, rather than on the async
        // worker that answers every other request.
        let body = web::Bytes::from(
            serde_json::to_vec(&NodeList::from(page))
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        // Kept only if no node changed while it was read: then it is the listing at `version`.
        if deployments::nodes_version(conn, deployment)? == version {
            listings.put(key, version, body.clone());
        }
        Ok(body)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Get a node
///
/// By its numeric id or by its name within the deployment.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes/{node_id}", tag = "nodes",
    params(NodePath),
    responses(
        (status = 200, body = NodeOut),
        (status = 404, description = "No such deployment or node", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn get_node(
    state: web::Data<ApiState>,
    Valid(NodePath { deployment, node }): Valid<NodePath>,
) -> Result<HttpResponse, ApiError> {
    let node = with_db(&state, move |conn| {
        let id = nodes::resolve(conn, deployment, &node)?;
        Ok(nodes::get(conn, deployment, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(NodeOut::from(node)))
}

/// Retry a failed node
///
/// Sends a `FAILED` node back to `PENDING` for another attempt (`attempt` goes up by one);
/// any other state answers 409 with the actions it allows.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/nodes/{node_id}/retry", tag = "nodes",
    params(NodePath),
    responses(
        (status = 200, description = "The node, back in PENDING", body = NodeOut),
        (status = 404, description = "No such deployment or node", body = ErrorDetail),
        (status = 409, description = "The node's state does not allow a retry", body = ConflictDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was written", body = ErrorDetail),
    )
)]
pub async fn retry_node(
    state: web::Data<ApiState>,
    actor: Actor,
    Valid(NodePath { deployment, node }): Valid<NodePath>,
) -> Result<HttpResponse, ApiError> {
    let node = with_write(&state, move |conn| {
        let id = nodes::resolve(conn, deployment, &node)?;
        Ok(nodes::retry(
            conn,
            deployment,
            id,
            Some(&actor.0),
            Utc::now(),
        )?)
    })
    .await?;
    log::info!(
        "node {} of deployment {deployment} retried (attempt {})",
        node.id,
        node.attempt
    );
    Ok(HttpResponse::Ok().json(NodeOut::from(node)))
}

/// Read telemetry
///
/// The deployment's samples, newest first, optionally of one node and within a time range.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/telemetry", tag = "telemetry",
    params(ReadTelemetry),
    responses(
        (status = 200, body = SampleList),
        (status = 404, description = "No such deployment", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn list_telemetry(
    state: web::Data<ApiState>,
    Valid(ReadTelemetry { mut query, node }): Valid<ReadTelemetry>,
) -> Result<HttpResponse, ApiError> {
    let samples = with_db(&state, move |conn| {
        // As the original: the deployment must exist (a deleted one's samples are gone).
        deployments::ensure_exists(conn, query.deployment)?;
        if !node_filter(conn, query.deployment, node, &mut query.node)? {
            return Ok(Vec::new());
        }
        Ok(telemetry::query(conn, &query)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(SampleList {
        total: samples.len(),
        samples: samples.into_iter().map(SampleOut::from).collect(),
    }))
}

/// Push telemetry
///
/// Samples from a real collector, all or nothing: 202 when every sample is stored, 422 naming
/// each invalid one otherwise, and nothing stored. A sample without a timestamp is stamped with
/// the time the push arrives; a repeated node and timestamp is stored once, the first stored
/// kept (a pushed sample and the telemetry worker's reading of the same node and instant
/// alike). A sample dated more than a second ahead of the server's clock, or before the
/// raw retention, is a 422.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/telemetry", tag = "telemetry",
    params(PushTelemetry),
    request_body = PushTelemetry,
    responses(
        (status = 202, description = "Every sample is stored", body = TelemetryAccepted),
        (status = 404, description = "No such deployment", body = ErrorDetail),
        (status = 408, description = "The body did not arrive within 30 s", body = ErrorDetail),
        (status = 413, description = "The body is larger than the server takes (--max-body-bytes, 8 MiB by default)", body = ErrorDetail),
        (status = 422, description = "Invalid input; nothing was stored", body = ValidationError),
        (status = 507, description = "The database is out of space; nothing was stored", body = ErrorDetail),
    )
)]
pub async fn push_telemetry(
    state: web::Data<ApiState>,
    Valid(push): Valid<PushTelemetry>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    push.check_times(now, state.future_sample_tolerance, state.retention.raw)?;
    let deployment = push.deployment;
    let accepted = push.samples.len();
    let outcome = with_write(&state, move |conn| {
        // Names are resolved in the write's connection; the insert checks again, under the
        // deployment's lock, that every id is a node of it.
        let names: Vec<&str> = push
            .samples
            .iter()
            .filter_map(|s| match &s.node {
                NodeRef::Name(name) => Some(name.as_str()),
                NodeRef::Id(_) => None,
            })
            .collect();
        let named = if names.is_empty() {
            Default::default()
        } else {
            nodes::ids_by_name(conn, deployment, &names)?
        };
        let mut unnamed = Vec::new();
        let samples: Vec<_> = push
            .samples
            .iter()
            .enumerate()
            .filter_map(|(index, sample)| {
                let id = match &sample.node {
                    NodeRef::Id(id) => Some(*id),
                    NodeRef::Name(name) => named.get(name).copied(),
                };
                if id.is_none() {
                    unnamed.push(index);
                }
                id.map(|id| sample.to_sample(id, deployment, now))
            })
            .collect();
        if !unnamed.is_empty() {
            // Still a 404 for a deployment that does not exist, as for ids.
            deployments::ensure_exists(conn, deployment)?;
            return Ok(Err((unnamed, push.samples)));
        }
        let outcome = telemetry::insert_for_deployment(conn, deployment, &samples)?;
        Ok(outcome.map_err(|strangers| (strangers, push.samples)))
    })
    .await?;
    let stored = match outcome {
        Ok(stored) => stored,
        Err((strangers, sent)) => {
            let errors = strangers
                .into_iter()
                .map(|index| {
                    let node = &sent[index].node;
                    FieldError {
                        kind: "value_error",
                        loc: vec![
                            LocItem::from("body"),
                            LocItem::from("samples"),
                            LocItem::from(index),
                            LocItem::from("node_id"),
                        ],
                        msg: format!(
                            "Value error, node {node} is not a node of deployment {deployment}"
                        ),
                        input: match node {
                            NodeRef::Id(id) => Value::from(id.get()),
                            NodeRef::Name(name) => Value::from(name.as_str()),
                        },
                        ctx: None,
                    }
                })
                .collect();
            return Err(ApiError::Invalid(errors));
        }
    };
    state.metrics.samples(
        netorch_metrics::SampleSource::Push,
        stored as u64,
        accepted.saturating_sub(stored as usize) as u64,
    );
    Ok(HttpResponse::Accepted().json(TelemetryAccepted { accepted, stored }))
}

/// Read a node's telemetry series
///
/// The node's samples in buckets (count, and mean, min and max of each metric), oldest first,
/// for charts: from the one-minute or one-hour rollups, or raw samples for up to an hour.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes/{node_id}/telemetry/series", tag = "telemetry",
    params(NodeSeries),
    responses(
        (status = 200, body = SeriesOut),
        (status = 404, description = "No such deployment or node", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn node_series(
    state: web::Data<ApiState>,
    Valid(NodeSeries { path, series }): Valid<NodeSeries>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let NodePath { deployment, node } = path;
    let retention = state.retention;
    let read = with_db(&state, move |conn| {
        Ok(netorch_service::series::node_series(
            conn, deployment, &node, series, now, &retention,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(series_out(deployment, series.step, &read)))
}

/// Read a deployment's telemetry series
///
/// The fleet's samples in buckets, oldest first: per bucket, how many nodes reported, how many
/// samples, and the mean, min and max of each metric across them. Raw steps group samples by
/// instant, for up to an hour.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/telemetry/series", tag = "telemetry",
    params(FleetSeries),
    responses(
        (status = 200, body = SeriesOut),
        (status = 404, description = "No such deployment", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn fleet_series(
    state: web::Data<ApiState>,
    Valid(FleetSeries { deployment, series }): Valid<FleetSeries>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let retention = state.retention;
    let read = with_db(&state, move |conn| {
        Ok(netorch_service::series::fleet_series(
            conn, deployment, series, now, &retention,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(series_out(deployment, series.step, &read)))
}

fn series_out(deployment: DeploymentId, step: SeriesStep, series: &Series) -> SeriesOut {
    let (start, end) = series.range;
    SeriesOut {
        deployment_id: deployment.get(),
        node_id: series.node.map(NodeId::get),
        step: step.as_str(),
        resolution: series.resolution.map_or("raw", Resolution::as_str),
        start_time: timestamp(start),
        end_time: timestamp(end),
        buckets: series.buckets.iter().map(SeriesBucketOut::from).collect(),
    }
}

/// Find bottleneck nodes
///
/// Scores every node over the last `analysis_window_minutes` of telemetry and lists those at
/// or above the threshold, worst first.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/bottlenecks", tag = "analytics",
    params(BottleneckQuery),
    responses(
        (status = 200, body = BottleneckReportOut),
        (status = 404, description = "No such deployment", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
        (status = 503, description = "As many reports as the server runs at once are running and queued; retry after `Retry-After` seconds", body = ErrorDetail,
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn bottlenecks(
    state: web::Data<ApiState>,
    Valid(query): Valid<BottleneckQuery>,
) -> Result<HttpResponse, ApiError> {
    let BottleneckQuery {
        deployment,
        minutes,
        config,
    } = query;
    // One turn per core; a few more wait, the rest are told when to come back.
    let _turn = state.reports.enter().await?;
    let began = std::time::Instant::now();
    let now = Utc::now();
    with_db(&state, move |conn| {
        Ok(deployments::ensure_exists(conn, deployment)?)
    })
    .await?;
    // The parts at once, each on its own connection (see `netorch_service::bottlenecks`).
    let plan = std::sync::Arc::new(ReportPlan::new(
        ReportQuery::last_minutes(deployment, minutes, now).with_config(config),
    ));
    let parts: Vec<_> = (0..plan.part_count())
        .map(|index| {
            let plan = std::sync::Arc::clone(&plan);
            spawn_db(&state, move |conn| Ok(plan.read_part(conn, index)?))
        })
        .collect();
    let mut analyses = Vec::with_capacity(parts.len());
    for part in parts {
        analyses.push(part.await?);
    }
    let report = plan.finish(analyses);
    let ids: Vec<NodeId> = report.bottlenecks.iter().map(|b| b.node_id).collect();
    let names = with_db(&state, move |conn| {
        Ok(nodes::names(conn, deployment, &ids)?)
    })
    .await?;
    state
        .metrics
        .report(config.method, began.elapsed().as_secs_f64());
    Ok(HttpResponse::Ok().json(BottleneckReportOut::new(
        &report,
        deployment.get(),
        now,
        minutes,
        &names,
    )))
}

/// Read the audit log
///
/// The deployment's events in order of occurrence, paged with `after`. The events of a deleted
/// deployment stay readable here (its `DEPLOYMENT_DELETED` event last): the audit log outlives
/// what it records, so this path answers 200, never 404.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/events", tag = "events",
    params(ReadEvents),
    responses(
        (status = 200, description = "A page of events; empty for an id that never existed", body = EventList),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn list_events(
    state: web::Data<ApiState>,
    Valid(ReadEvents {
        deployment,
        mut query,
        node,
    }): Valid<ReadEvents>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit;
    let page = with_db(&state, move |conn| {
        // A name is looked up among the deployment's nodes; once it is deleted, only ids find
        // its nodes' events.
        if !node_filter(conn, deployment, node, &mut query.node)? {
            return Ok(Vec::new());
        }
        Ok(events::list(conn, &query)?)
    })
    .await?;
    let read = page.len();
    let mut events: Vec<EventOut> = page.into_iter().map(EventOut::from).collect();
    events.truncate(page_len(&events));
    // More may follow when the page came full, or was cut short by its size.
    let next_after = (read as i64 == limit || events.len() < read)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(EventList { events, next_after }))
}

/// Follow the audit log live
///
/// The deployment's events as Server-Sent Events (`text/event-stream`), oldest first: first
/// those after `after` (or after the `Last-Event-ID` header, which a reconnecting EventSource
/// sends; every event is sent with its id; with neither, from the first event, or with `tail` from
/// the last `tail` events so far), then each new one as it is recorded. Each message
/// is `id: <event id>`, `event: <event_type>` and `data: <the event as GET .../events shows
/// it>`. The stream opens with `retry: 2000`, sends a `: keep-alive` comment after 15 s without
/// events, and ends after the deployment's `DEPLOYMENT_DELETED` event, when the server shuts
/// down, or when the key it was opened with is revoked or expires (within about 2 s); its last
/// message is always `event: end` with `data` `{"reason", "detail"}`, `reason` one of
/// `deployment_deleted`, `server_shutting_down`, `key_invalid` and `database_unavailable`. New
/// events are found by polling the database once a second. 404 when the deployment does not
/// exist and no event of it lies after the cursor. With `curl -N`.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/events/stream", tag = "events",
    params(StreamEvents),
    responses(
        (status = 200, description = "An endless stream of events (text/event-stream); each message is one StreamMessage", content_type = "text/event-stream", body = crate::event_stream::StreamMessage),
        (status = 404, description = "Deployment not found", body = ErrorDetail),
        (status = 422, description = "Invalid input", body = ValidationError),
    )
)]
pub async fn stream_events(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    Valid(StreamEvents {
        deployment,
        after,
        tail,
    }): Valid<StreamEvents>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::HttpMessage;
    let credential = req
        .extensions()
        .get::<crate::auth::Credential>()
        .map(|credential| credential.0.clone());
    let after = match (after, tail) {
        (None, Some(count)) => {
            with_db(&state, move |conn| {
                Ok(events::cursor_before_last(conn, deployment, count)?)
            })
            .await?
        }
        _ => after,
    };
    let first = crate::event_stream::read_page(&state, deployment, after).await?;
    if first.is_empty() && !first.exists() {
        return Err(ApiError::NotFound("Deployment not found"));
    }
    let stream = crate::event_stream::EventStream::new(state, deployment, after, first, credential);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .streaming(stream))
}

/// Service health
///
/// Always 200. `status` is `degraded` when the database does not answer, or when no lifecycle
/// or no telemetry loop has reported within three of its intervals.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = Health)))]
pub async fn health(state: web::Data<ApiState>) -> HttpResponse {
    let now = Utc::now();
    // On the probe pool: never queued behind reports for a connection.
    let probed = state.clone();
    let probe = web::block(move || -> Result<_, ApiError> {
        let mut conn = probed.probe.get()?;
        let found = (deployments::count(&mut conn)?, heartbeats::list(&mut conn)?);
        drop(conn);
        Ok((found, probed.writes_failing_now()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
    .and_then(|r| r);
    let (database, active_deployments, beats) = match probe {
        Ok(((count, beats), false)) => (DatabaseStatus::Healthy, count, beats),
        Ok(((count, beats), true)) => (DatabaseStatus::WritesFailing, count, beats),
        Err(e) => {
            log::warn!("health check: database: {e}");
            (DatabaseStatus::Unhealthy, 0, Vec::new())
        }
    };
    let alive = |kind: WorkerKind| beats.iter().any(|b| b.kind == kind && b.is_alive(now));
    let active_workers = alive(WorkerKind::Lifecycle) && alive(WorkerKind::Telemetry);
    HttpResponse::Ok().json(Health {
        status: if database == DatabaseStatus::Healthy && active_workers {
            ServiceStatus::Healthy
        } else {
            ServiceStatus::Degraded
        },
        timestamp: timestamp(now),
        database,
        active_deployments,
        active_workers,
        workers: beats.iter().map(|b| WorkerOut::new(b, now)).collect(),
    })
}

/// Prometheus metrics
///
/// Every metric of this process (the API, its embedded workers, the database pool, the fleet
/// read from the deployments' counters, the process) in the Prometheus text format 0.0.4, for
/// a Prometheus server to scrape. docs/MONITORING.md lists them. With API keys on, any role
/// that may read (viewer and up) may scrape.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses((
        status = 200, description = "The metrics",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String
    ))
)]
pub async fn metrics(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    exposition(std::sync::Arc::clone(&state.metrics)).await
}

async fn exposition(
    metrics: std::sync::Arc<netorch_metrics::Metrics>,
) -> Result<HttpResponse, ApiError> {
    // The fleet and pool collectors query the database: off the async workers.
    let text = web::block(move || metrics.encode())
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(netorch_metrics::CONTENT_TYPE)
        .body(text))
}

/// Readiness
///
/// For load balancers: 200 when the database answers; 503 when it does not (`unavailable`),
/// when writes fail for lack of space (`writes_failing`, until a write succeeds again), or when
/// the server is draining for a shutdown (`draining`: it still serves requests, but wants no
/// new ones).
#[utoipa::path(
    get, path = "/ready", tag = "service",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn ready(state: web::Data<ApiState>) -> HttpResponse {
    if state.is_draining() {
        return HttpResponse::ServiceUnavailable().json(Readiness {
            status: ReadinessStatus::Draining,
        });
    }
    let probed = state.clone();
    let status = web::block(move || match probed.probe.ping() {
        Err(_) => ReadinessStatus::Unavailable,
        Ok(()) if probed.writes_failing_now() => ReadinessStatus::WritesFailing,
        Ok(()) => ReadinessStatus::Ready,
    })
    .await
    .unwrap_or(ReadinessStatus::Unavailable);
    if status == ReadinessStatus::Ready {
        HttpResponse::Ok().json(Readiness { status })
    } else {
        HttpResponse::ServiceUnavailable().json(Readiness { status })
    }
}

/// 404 for paths the API does not serve, in the contract's shape.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorDetail::new("Not Found"))
}

/// 405 for a method a path does not serve, with the `Allow` header RFC 9110 requires.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow))
        .json(ErrorDetail::new("Method Not Allowed"))
}
