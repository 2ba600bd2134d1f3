//! The handlers, one per row of the API contract.

use crate::error::ApiError;
use crate::types::*;
use crate::validate::{self, Errors, Range, Source};
use crate::{ApiState, MAX_PUSHED_SAMPLES};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use netorch_analytics::{AnalysisConfig, Method, StreamingAnalysis};
use netorch_domain::{
    DeploymentId, EventId, EventType, Metrics, NewDeployment, NewSample, NodeId, NodeState,
    WorkerKind,
};
use netorch_storage::events::EventQuery;
use netorch_storage::nodes::NodeFilter;
use netorch_storage::telemetry::TelemetryQuery;
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
async fn with_db<T, F>(state: &ApiState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    spawn_db(state, work).await
}

/// How many parts a bottleneck window is read in, each on its own connection and thread.
const WINDOW_PARTS: i32 = 2;

/// Turns "every field was valid" into the values: `finish` has returned `Ok`, so each
/// `Option` read by the validators is `Some`.
macro_rules! valid {
    ($($value:expr),+ $(,)?) => {
        ($($value.ok_or_else(|| ApiError::Internal("validated input missing".into()))?),+)
    };
}

fn deployment_id(req: &HttpRequest, errors: &mut Errors) -> Option<DeploymentId> {
    let raw = req.match_info().get("deployment_id").unwrap_or_default();
    validate::path_int(errors, "deployment_id", raw).map(DeploymentId)
}

/// The deployment id of a path that holds nothing else to validate.
fn deployment_path(req: &HttpRequest) -> Result<DeploymentId, ApiError> {
    let mut errors = Errors::default();
    let id = deployment_id(req, &mut errors);
    errors.finish()?;
    Ok(valid!(id))
}

/// The deployment and node ids of a node's path.
fn node_path(req: &HttpRequest) -> Result<(DeploymentId, NodeId), ApiError> {
    let mut errors = Errors::default();
    let (deployment, node) = (
        deployment_id(req, &mut errors),
        node_path_id(req, &mut errors),
    );
    errors.finish()?;
    Ok(valid!(deployment, node))
}

fn node_path_id(req: &HttpRequest, errors: &mut Errors) -> Option<NodeId> {
    let raw = req.match_info().get("node_id").unwrap_or_default();
    validate::path_int(errors, "node_id", raw).map(NodeId)
}

const NODE_STATES: [(&str, NodeState); 5] = [
    ("PENDING", NodeState::Pending),
    ("PROVISIONING", NodeState::Provisioning),
    ("CONFIGURING", NodeState::Configuring),
    ("RUNNING", NodeState::Running),
    ("FAILED", NodeState::Failed),
];

const EVENT_TYPES: [(&str, EventType); 4] = [
    ("DEPLOYMENT_CREATED", EventType::DeploymentCreated),
    ("DEPLOYMENT_DELETED", EventType::DeploymentDeleted),
    ("STATE_CHANGE", EventType::StateChange),
    ("NODE_RETRY", EventType::NodeRetry),
];

const METHODS: [(&str, Method); 2] = [("robust", Method::Robust), ("zscore", Method::ZScore)];

/// Service name and where to go next.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, body = ServiceInfo)))]
pub async fn root() -> HttpResponse {
    HttpResponse::Ok().json(ServiceInfo {
        service: "Network Deployment & Telemetry Orchestrator",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/docs",
        health: "/health",
    })
}

/// Creates a deployment and all its nodes, in `PENDING`.
#[utoipa::path(
    post, path = "/deployments", tag = "deployments",
    request_body = DeploymentCreate,
    responses(
        (status = 201, body = DeploymentOut),
        (status = 422, body = ValidationError),
    )
)]
pub async fn create_deployment(
    state: web::Data<ApiState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let object = validate::body_object(&body)?;
    let mut errors = Errors::default();
    let name = validate::required(&mut errors, &object, &[], "name")
        .and_then(|v| validate::string(&mut errors, &[Value::from("name")], v, 1, 255));
    let description = match object.get("description") {
        None | Some(Value::Null) => Some(None),
        Some(v) => {
            validate::string(&mut errors, &[Value::from("description")], v, 0, usize::MAX).map(Some)
        }
    };
    let max = i64::from(state.max_nodes_per_deployment);
    let count = validate::required(&mut errors, &object, &[], "target_node_count").and_then(|v| {
        validate::int(
            &mut errors,
            Source::Body,
            &[Value::from("target_node_count")],
            v,
            Range::between(1, max),
        )
    });
    errors.finish()?;
    let (name, description, count) = valid!(name, description, count);
    let new = NewDeployment {
        name,
        description,
        target_node_count: u32::try_from(count).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let created = with_db(&state, move |conn| {
        Ok(deployments::create(conn, &new, Utc::now())?)
    })
    .await?;
    Ok(HttpResponse::Created().json(DeploymentOut::from(created)))
}

/// Deployments, newest first.
#[utoipa::path(
    get, path = "/deployments", tag = "deployments",
    params(
        ("skip" = Option<i64>, Query, description = "Deployments to skip (>= 0, default 0)"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 1000, default 100)"),
    ),
    responses((status = 200, body = Vec<DeploymentOut>), (status = 422, body = ValidationError))
)]
pub async fn list_deployments(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = validate::query_map(req.query_string())?;
    let mut errors = Errors::default();
    let skip = validate::query_int(&mut errors, &query, "skip", Range::at_least(0)).unwrap_or(0);
    let limit =
        validate::query_int(&mut errors, &query, "limit", Range::between(1, 1000)).unwrap_or(100);
    errors.finish()?;
    let list = with_db(&state, move |conn| {
        Ok(deployments::list(conn, skip, limit)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(DeploymentOut::from)
            .collect::<Vec<_>>(),
    ))
}

/// One deployment with its node count and state breakdown.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}", tag = "deployments",
    params(("deployment_id" = i64, Path, description = "Deployment id")),
    responses(
        (status = 200, body = DeploymentDetail),
        (status = 404, body = ErrorDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn get_deployment(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = deployment_path(&req)?;
    let (deployment, counts) = with_db(&state, move |conn| {
        Ok(deployments::get_with_counts(conn, id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeploymentDetail {
        deployment: deployment.into(),
        current_node_count: counts.total(),
        node_states: counts.into(),
    }))
}

/// Deletes a deployment with its nodes, samples and events (a `DEPLOYMENT_DELETED` event
/// survives it).
#[utoipa::path(
    delete, path = "/deployments/{deployment_id}", tag = "deployments",
    params(("deployment_id" = i64, Path, description = "Deployment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn delete_deployment(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = deployment_path(&req)?;
    with_db(&state, move |conn| {
        Ok(deployments::delete(conn, id, Utc::now())?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A deployment's nodes, ascending id; all of them unless filtered or paged.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes", tag = "nodes",
    params(
        ("deployment_id" = i64, Path, description = "Deployment id"),
        ("state" = Option<String>, Query, description = "Only nodes in this state"),
        ("skip" = Option<i64>, Query, description = "Nodes to skip (>= 0)"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 1000)"),
    ),
    responses(
        (status = 200, body = NodeList),
        (status = 404, body = ErrorDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn list_nodes(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = validate::query_map(req.query_string())?;
    let mut errors = Errors::default();
    let id = deployment_id(&req, &mut errors);
    let filter = NodeFilter {
        state: validate::query_choice(&mut errors, &query, "state", &NODE_STATES),
        skip: validate::query_int(&mut errors, &query, "skip", Range::at_least(0)).unwrap_or(0),
        limit: validate::query_int(&mut errors, &query, "limit", Range::between(1, 1000)),
    };
    errors.finish()?;
    let id = valid!(id);
    let page = with_db(&state, move |conn| Ok(nodes::list(conn, id, &filter)?)).await?;
    Ok(HttpResponse::Ok().json(NodeList {
        nodes: page.nodes.into_iter().map(NodeOut::from).collect(),
        total: page.total,
    }))
}

/// One node.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/nodes/{node_id}", tag = "nodes",
    params(
        ("deployment_id" = i64, Path, description = "Deployment id"),
        ("node_id" = i64, Path, description = "The node's numeric id"),
    ),
    responses(
        (status = 200, body = NodeOut),
        (status = 404, body = ErrorDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn get_node(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (deployment, node) = node_path(&req)?;
    let node = with_db(&state, move |conn| Ok(nodes::get(conn, deployment, node)?)).await?;
    Ok(HttpResponse::Ok().json(NodeOut::from(node)))
}

/// Sends a failed node back to `PENDING` for another attempt.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/nodes/{node_id}/retry", tag = "nodes",
    params(
        ("deployment_id" = i64, Path, description = "Deployment id"),
        ("node_id" = i64, Path, description = "The node's numeric id"),
    ),
    responses(
        (status = 200, body = NodeOut),
        (status = 404, body = ErrorDetail),
        (status = 409, body = ConflictDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn retry_node(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (deployment, node) = node_path(&req)?;
    let node = with_db(&state, move |conn| {
        Ok(nodes::retry(conn, deployment, node, Utc::now())?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(NodeOut::from(node)))
}

/// A deployment's telemetry, newest first.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/telemetry", tag = "telemetry",
    params(
        ("deployment_id" = i64, Path, description = "Deployment id"),
        ("node_id" = Option<i64>, Query, description = "Only this node's samples (its numeric id)"),
        ("start_time" = Option<String>, Query, description = "Not before (inclusive)"),
        ("end_time" = Option<String>, Query, description = "Not after (inclusive)"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 1000, default 100)"),
    ),
    responses((status = 200, body = SampleList), (status = 422, body = ValidationError))
)]
pub async fn list_telemetry(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = validate::query_map(req.query_string())?;
    let mut errors = Errors::default();
    let id = deployment_id(&req, &mut errors);
    let node = validate::query_int(&mut errors, &query, "node_id", Range::ANY).map(NodeId);
    let mut time = |name: &str| {
        query.get(name).and_then(|raw| {
            validate::timestamp(
                &mut errors,
                Source::Query,
                &[Value::from(name)],
                &Value::from(raw.as_str()),
            )
        })
    };
    let (start, end) = (time("start_time"), time("end_time"));
    let limit =
        validate::query_int(&mut errors, &query, "limit", Range::between(1, 1000)).unwrap_or(100);
    errors.finish()?;
    let deployment = valid!(id);
    let samples = with_db(&state, move |conn| {
        Ok(telemetry::query(
            conn,
            &TelemetryQuery {
                deployment,
                node,
                start,
                end,
                limit,
            },
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(SampleList {
        total: samples.len(),
        samples: samples.into_iter().map(SampleOut::from).collect(),
    }))
}

/// Pushes samples from a real collector: all or nothing.
#[utoipa::path(
    post, path = "/deployments/{deployment_id}/telemetry", tag = "telemetry",
    params(("deployment_id" = i64, Path, description = "Deployment id")),
    request_body = TelemetryPush,
    responses(
        (status = 202, body = TelemetryAccepted),
        (status = 404, body = ErrorDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn push_telemetry(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let deployment = deployment_path(&req)?;
    let object = validate::body_object(&body)?;
    let mut errors = Errors::default();
    let Some(list) = validate::required(&mut errors, &object, &[], "samples") else {
        return Err(errors.into_error());
    };
    let Value::Array(items) = list else {
        errors.push(
            "list_type",
            vec!["body".into(), "samples".into()],
            "Input should be a valid list",
            list.clone(),
            None,
        );
        return Err(errors.into_error());
    };
    if items.len() > MAX_PUSHED_SAMPLES {
        errors.push(
            "too_long",
            vec!["body".into(), "samples".into()],
            format!("List should have at most {MAX_PUSHED_SAMPLES} items after validation, not {}", items.len()),
            Value::from(format!("[{} items]", items.len())),
            Some(serde_json::json!({ "max_length": MAX_PUSHED_SAMPLES, "actual_length": items.len() })),
        );
        return Err(errors.into_error());
    }
    let now = Utc::now();
    let mut samples = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = |field: &str| {
            vec![
                Value::from("samples"),
                Value::from(index),
                Value::from(field),
            ]
        };
        let Value::Object(sample) = item else {
            errors.push(
                "model_attributes_type",
                vec!["body".into(), "samples".into(), index.into()],
                "Input should be a valid dictionary or object to extract fields from",
                item.clone(),
                None,
            );
            continue;
        };
        let prefix = [Value::from("samples"), Value::from(index)];
        let node = validate::required(&mut errors, sample, &prefix, "node_id")
            .and_then(|v| validate::int(&mut errors, Source::Body, &at("node_id"), v, Range::ANY));
        let timestamp = match sample.get("timestamp") {
            None | Some(Value::Null) => Some(now),
            Some(v) => validate::timestamp(&mut errors, Source::Body, &at("timestamp"), v),
        };
        let mut metric = |name: &str, max: Option<f64>| {
            validate::required(&mut errors, sample, &prefix, name)
                .and_then(|v| validate::non_negative_float(&mut errors, &at(name), v, max))
        };
        let latency_ms = metric("latency_ms", None);
        let throughput_gbps = metric("throughput_gbps", None);
        let error_rate = metric("error_rate", Some(100.0));
        if let (
            Some(node),
            Some(timestamp),
            Some(latency_ms),
            Some(throughput_gbps),
            Some(error_rate),
        ) = (node, timestamp, latency_ms, throughput_gbps, error_rate)
        {
            let metrics = Metrics {
                latency_ms,
                throughput_gbps,
                error_rate,
            };
            if let Err(e) = metrics.validate() {
                errors.push(
                    "value_error",
                    at("latency_ms"),
                    e.to_string(),
                    item.clone(),
                    None,
                );
                continue;
            }
            samples.push(NewSample {
                node_id: NodeId(node),
                deployment_id: deployment,
                timestamp,
                metrics,
            });
        }
    }
    errors.finish()?;
    let accepted = samples.len();
    let outcome = with_db(&state, move |conn| {
        let outcome = telemetry::insert_for_deployment(conn, deployment, &samples)?;
        Ok(outcome.map_err(|strangers| (strangers, samples)))
    })
    .await?;
    let stored = match outcome {
        Ok(stored) => stored,
        Err((strangers, samples)) => {
            let mut errors = Errors::default();
            for index in strangers {
                let node = samples[index].node_id;
                errors.push(
                    "value_error",
                    vec![
                        "body".into(),
                        "samples".into(),
                        index.into(),
                        "node_id".into(),
                    ],
                    format!("Value error, node {node} is not a node of deployment {deployment}"),
                    Value::from(node.get()),
                    None,
                );
            }
            return Err(errors.into_error());
        }
    };
    Ok(HttpResponse::Accepted().json(TelemetryAccepted { accepted, stored }))
}

/// The deployment's bottleneck nodes over the last minutes.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/bottlenecks", tag = "analytics",
    params(
        ("deployment_id" = i64, Path, description = "Deployment id"),
        ("analysis_window_minutes" = Option<i64>, Query, description = "Window (1 to 60, default 10)"),
        ("method" = Option<String>, Query, description = "robust (default) or zscore"),
        ("threshold" = Option<f64>, Query, description = "Score at which a node counts (default 3.5 robust, 2.0 zscore)"),
    ),
    responses(
        (status = 200, body = BottleneckReportOut),
        (status = 404, body = ErrorDetail),
        (status = 422, body = ValidationError),
    )
)]
pub async fn bottlenecks(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = validate::query_map(req.query_string())?;
    let mut errors = Errors::default();
    let id = deployment_id(&req, &mut errors);
    let minutes = validate::query_int(
        &mut errors,
        &query,
        "analysis_window_minutes",
        Range::between(1, 60),
    )
    .unwrap_or(10);
    let method =
        validate::query_choice(&mut errors, &query, "method", &METHODS).unwrap_or_default();
    let threshold = query
        .get("threshold")
        .and_then(|raw| validate::positive_float(&mut errors, "threshold", raw));
    errors.finish()?;
    let deployment = valid!(id);
    let config = AnalysisConfig::new(method, threshold).map_err(|e| {
        ApiError::invalid(crate::error::FieldError {
            kind: "value_error",
            loc: vec!["query".into(), "threshold".into()],
            msg: e.to_string(),
            input: Value::Null,
            ctx: None,
        })
    })?;
    let now = Utc::now();
    let start = now - chrono::Duration::minutes(minutes);
    with_db(&state, move |conn| {
        Ok(deployments::ensure_exists(conn, deployment)?)
    })
    .await?;
    // The window is read in consecutive time slices on separate connections at once, each
    // into its own streaming analysis, and the analyses merged: on two cores this nearly
    // halves the time a report of a large deployment takes.
    let slice = (now - start) / WINDOW_PARTS;
    let parts: Vec<_> = (0..WINDOW_PARTS)
        .map(|part| {
            let from = start + slice * part;
            let to = if part + 1 == WINDOW_PARTS {
                now
            } else {
                from + slice - chrono::Duration::microseconds(1)
            };
            spawn_db(&state, move |conn| {
                let mut analysis = StreamingAnalysis::new(config);
                telemetry::scan_window(conn, deployment, from, to, |node, at, metrics| {
                    analysis.push(node, at, metrics)
                })?;
                Ok(analysis)
            })
        })
        .collect();
    let mut analysis = StreamingAnalysis::new(config);
    for part in parts {
        analysis.merge(part.await?);
    }
    let report = analysis.finish();
    let ids: Vec<NodeId> = report.bottlenecks.iter().map(|b| b.node_id).collect();
    let names = with_db(&state, move |conn| {
        Ok(nodes::names(conn, deployment, &ids)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(BottleneckReportOut::new(
        &report,
        deployment.get(),
        now,
        minutes,
        &names,
    )))
}

/// The deployment's audit log, in order of occurrence (kept after the deployment is deleted).
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/events", tag = "events",
    params(
        ("deployment_id" = i64, Path, description = "Deployment id"),
        ("after" = Option<i64>, Query, description = "Only events after this id (the previous page's next_after)"),
        ("limit" = Option<i64>, Query, description = "At most this many (1 to 1000, default 100)"),
        ("event_type" = Option<String>, Query, description = "DEPLOYMENT_CREATED, DEPLOYMENT_DELETED, STATE_CHANGE or NODE_RETRY"),
        ("node_id" = Option<i64>, Query, description = "Only this node's events"),
    ),
    responses((status = 200, body = EventList), (status = 422, body = ValidationError))
)]
pub async fn list_events(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = validate::query_map(req.query_string())?;
    let mut errors = Errors::default();
    let id = deployment_id(&req, &mut errors);
    let after = validate::query_int(&mut errors, &query, "after", Range::at_least(0)).map(EventId);
    let limit =
        validate::query_int(&mut errors, &query, "limit", Range::between(1, 1000)).unwrap_or(100);
    let event_type = validate::query_choice(&mut errors, &query, "event_type", &EVENT_TYPES);
    let node = validate::query_int(&mut errors, &query, "node_id", Range::ANY).map(NodeId);
    errors.finish()?;
    let deployment = valid!(id);
    let page = with_db(&state, move |conn| {
        Ok(events::list(
            conn,
            &EventQuery {
                deployment: Some(deployment),
                after,
                event_type,
                node,
                limit,
            },
        )?)
    })
    .await?;
    let next_after = (page.len() as i64 == limit)
        .then(|| page.last().map(|e| e.id.get()))
        .flatten();
    Ok(HttpResponse::Ok().json(EventList {
        events: page.into_iter().map(EventOut::from).collect(),
        next_after,
    }))
}

/// Service health; always 200.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = Health)))]
pub async fn health(state: web::Data<ApiState>) -> HttpResponse {
    let now = Utc::now();
    let probe = with_db(&state, move |conn| {
        Ok((deployments::count(conn)?, heartbeats::list(conn)?))
    })
    .await;
    let (database, active_deployments, beats) = match probe {
        Ok((count, beats)) => ("healthy", count, beats),
        Err(e) => {
            log::warn!("health check: database: {e}");
            ("unhealthy", 0, Vec::new())
        }
    };
    let alive = |kind: WorkerKind| beats.iter().any(|b| b.kind == kind && b.is_alive(now));
    let active_workers = alive(WorkerKind::Lifecycle) && alive(WorkerKind::Telemetry);
    HttpResponse::Ok().json(Health {
        status: if database == "healthy" && active_workers {
            "healthy"
        } else {
            "degraded"
        },
        timestamp: timestamp(now),
        database,
        active_deployments,
        active_workers,
        workers: beats.iter().map(|b| WorkerOut::new(b, now)).collect(),
    })
}

/// Readiness for load balancers: 200 when the database answers, 503 when not.
#[utoipa::path(
    get, path = "/ready", tag = "service",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn ready(state: web::Data<ApiState>) -> HttpResponse {
    let db = state.db.clone();
    match web::block(move || db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(Readiness { status: "ready" }),
        _ => HttpResponse::ServiceUnavailable().json(Readiness {
            status: "unavailable",
        }),
    }
}

/// 404 for paths the API does not serve, in the contract's shape.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({ "detail": "Not Found" }))
}

/// 405 for a method a path does not serve.
pub async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed().json(serde_json::json!({ "detail": "Method Not Allowed" }))
}
