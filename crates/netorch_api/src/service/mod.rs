//! The service's own endpoints: what it is, its health and readiness, its metrics, and (in
//! `docs`) its OpenAPI document and explorer.

pub(crate) mod docs;

use crate::ApiState;
use crate::http::choice;
use crate::http::error::ApiError;
use crate::http::operation::{Access, Files, Operation, Resource};
use crate::http::shapes::timestamp;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use netorch_domain::Action;
use netorch_domain::{WorkerHeartbeat, WorkerKind};
use netorch_service::{deployments, workers};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::ToSchema;

/// The service's operations (with the document and its explorer) and their part of the
/// document.
pub(crate) const RESOURCE: Resource = Resource {
    files: &[Files {
        path: "/docs/{asset}",
        handler: |r| r.to(docs::asset),
    }],
    ..Resource::new(
        &[
            Operation::get("/", Access::AnyKey, |r| r.to(root)),
            Operation::get("/health", Access::Open, |r| r.to(health)),
            Operation::get("/ready", Access::Open, |r| r.to(ready)),
            Operation::get("/metrics", Access::Needs(Action::Read), |r| r.to(metrics)),
            Operation::get("/openapi.json", Access::Open, |r| r.to(docs::openapi_json)),
            Operation::get("/docs", Access::Open, |r| r.to(docs::explorer)),
        ],
        Doc::openapi,
    )
};

#[derive(OpenApi)]
#[openapi(paths(root, health, ready, metrics, docs::openapi_json, docs::explorer))]
struct Doc;

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInfo {
    /// Always "Network Deployment & Telemetry Orchestrator".
    pub service: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// Where the API explorer is.
    pub docs: &'static str,
    /// Where the health check is.
    pub health: &'static str,
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

/// One worker loop's liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerOut {
    /// The worker process's name.
    pub name: String,
    /// The loop's kind.
    #[schema(schema_with = worker_kind_schema)]
    pub kind: &'static str,
    /// Its last finished tick.
    pub last_heartbeat: String,
    /// Whether it is running: not stopped, and its last tick within three of its intervals.
    pub alive: bool,
    /// When it stopped cleanly; null while it runs (or if it died without saying so).
    pub stopped_at: Option<String>,
}

impl WorkerOut {
    /// The API shape of `h` at `now`.
    pub fn new(h: &WorkerHeartbeat, now: DateTime<Utc>) -> Self {
        WorkerOut {
            name: h.name.clone(),
            kind: h.kind.as_str(),
            last_heartbeat: timestamp(h.last_heartbeat),
            alive: h.is_alive(now),
            stopped_at: h.stopped_at.map(timestamp),
        }
    }
}

/// The service's overall state in `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    /// The database answers and a lifecycle and a telemetry loop are alive.
    Healthy,
    /// Something needs an operator: the database does not answer, or no lifecycle or no
    /// telemetry loop has reported within three of its intervals (deployments then stop
    /// moving or stop collecting telemetry). The API itself still answers.
    Degraded,
}

/// Whether the database answers, in `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseStatus {
    /// It answered a query just now.
    Healthy,
    /// It did not answer (no connection within the pool's timeout, or the query failed).
    Unhealthy,
    /// It answers reads, but writes fail for lack of space (a full disk): every write is
    /// answered 507 until space is freed, which is noticed by itself.
    #[serde(rename = "writes_failing")]
    WritesFailing,
}

/// `GET /health`: always 200; read `status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, or `degraded` when the database or a kind of worker loop is missing.
    pub status: ServiceStatus,
    /// Now.
    pub timestamp: String,
    /// Whether the database answers.
    pub database: DatabaseStatus,
    /// How many deployments exist.
    pub active_deployments: i64,
    /// Whether a lifecycle, a telemetry and an alerts loop are all alive.
    pub active_workers: bool,
    /// The loops that reported recently, alive or not: the workers', and each server's
    /// presence (`server`).
    pub workers: Vec<WorkerOut>,
    /// The rate limit (`--rate-limit`) and this server's share of it; null without one.
    pub rate_limit: Option<crate::limits::RateLimitShare>,
}

/// Whether the server should get traffic, in `GET /ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessStatus {
    /// The database answers: send traffic.
    Ready,
    /// The database does not answer: send traffic elsewhere.
    Unavailable,
    /// The server is shutting down: it finishes what it has, send new traffic elsewhere.
    Draining,
    /// Writes fail for lack of space: send traffic elsewhere until space is freed.
    #[serde(rename = "writes_failing")]
    WritesFailing,
}

/// `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` (200); `unavailable`, `writes_failing` or `draining` (503).
    pub status: ReadinessStatus,
}

fn worker_kind_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::WorkerKind>("The loop's kind")
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
        let found = (
            deployments::count(&mut conn)?,
            workers::heartbeats(&mut conn)?,
        );
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
    // Every kind of worker loop: without the alerts loop, nobody would be told of anything.
    let active_workers = WorkerKind::LOOPS.into_iter().all(alive);
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
        rate_limit: state
            .rate_limit
            .as_deref()
            .map(crate::limits::RateLimit::share),
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
