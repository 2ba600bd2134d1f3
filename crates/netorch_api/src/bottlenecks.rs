//! The bottleneck report: every node scored over the last minutes of telemetry, those at or
//! above the threshold listed worst first.

use crate::ApiState;
use crate::http::blocking::{spawn_db, with_db};
use crate::http::choice;
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::paths::DEPLOYMENT_ID;
use crate::http::input::{ChoiceField, FloatField, FromInput, Input, IntField, Valid, valid};
use crate::http::operation::{Access, Operation, Resource};
use crate::http::shapes::{params, timestamp};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use netorch_analytics::{AnalysisConfig, Bottleneck, BottleneckReport, Method};
use netorch_domain::Action;
use netorch_domain::DeploymentId;
use netorch_service::bottlenecks::{ReportPlan, ReportQuery};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

/// The report's operation and its part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[Operation::get(
        "/deployments/{deployment_id}/bottlenecks",
        Access::Needs(Action::Read),
        |r| r.to(bottlenecks),
    )],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(bottlenecks))]
struct Doc;

/// `GET /deployments/{deployment_id}/bottlenecks`.
#[derive(Debug, Clone, Copy)]
pub struct BottleneckQuery {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Minutes before now to analyse.
    pub minutes: i64,
    /// The method and threshold.
    pub config: AnalysisConfig,
}

impl BottleneckQuery {
    /// The window.
    pub const WINDOW: IntField = IntField::new(
        "analysis_window_minutes",
        "Minutes of telemetry before now to analyse",
    )
    .min(1)
    .max(60)
    .default(10);
    /// The method.
    pub const METHOD: ChoiceField<Method> =
        ChoiceField::new("method", "How nodes are scored (default robust)");
    /// The threshold.
    pub const THRESHOLD: FloatField = FloatField::positive(
        "threshold",
        "Score at which a node counts (default 3.5 for robust, 2.0 for zscore)",
    );
}

impl FromInput for BottleneckQuery {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let minutes = input.query_int_or_default(&Self::WINDOW);
        let method = input.query_choice(&Self::METHOD).unwrap_or_default();
        let threshold = input.query_float(&Self::THRESHOLD);
        input.check()?;
        // The field accepts exactly the thresholds the analysis does (positive and finite).
        let config = AnalysisConfig::new(method, threshold)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(BottleneckQuery {
            deployment: DeploymentId(valid(deployment)?),
            minutes,
            config,
        })
    }
}

params!(
    BottleneckQuery,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        BottleneckQuery::WINDOW.parameter(ParameterIn::Query),
        BottleneckQuery::METHOD.parameter(ParameterIn::Query),
        BottleneckQuery::THRESHOLD.parameter(ParameterIn::Query),
    ]
);

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
    // The parts at once, each on its own connection (see `netorch_service::bottlenecks`).
    let plan = std::sync::Arc::new(ReportPlan::new(
        ReportQuery::last_minutes(deployment, minutes, now).with_config(config),
    ));
    let checked = std::sync::Arc::clone(&plan);
    with_db(&state, move |conn| Ok(checked.check_deployment(conn)?)).await?;
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
    let report = with_db(&state, move |conn| Ok(plan.report(conn, analyses)?)).await?;
    state
        .metrics
        .report(config.method, began.elapsed().as_secs_f64());
    Ok(HttpResponse::Ok().json(BottleneckReportOut::new(
        &report.analysis,
        deployment.get(),
        now,
        minutes,
        &report.names,
    )))
}

/// Per-metric scores of a bottleneck, positive when worse than the fleet.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoresOut {
    /// Latency score.
    pub latency_ms: f64,
    /// Throughput score (low throughput scores high).
    pub throughput_gbps: f64,
    /// Error-rate score.
    pub error_rate: f64,
}

/// A bottleneck node.
#[derive(Debug, Serialize, ToSchema)]
pub struct BottleneckOut {
    /// Numeric node id.
    pub node_id: i64,
    /// Its name: `node-009`.
    pub node_identifier: String,
    /// Its deployment.
    pub deployment_id: i64,
    /// Mean latency over the window.
    pub latency_ms: f64,
    /// Mean throughput over the window.
    pub throughput_gbps: f64,
    /// Mean error rate over the window.
    pub error_rate: f64,
    /// `0.4 latency + 0.4 throughput + 0.2 error rate` over the positive scores.
    pub deviation_score: f64,
    /// Its newest sample in the window.
    pub timestamp: String,
    /// Per-metric scores.
    pub scores: ScoresOut,
    /// The metrics whose score reached the threshold.
    #[schema(schema_with = reasons_schema)]
    pub reasons: Vec<&'static str>,
    /// Samples of the node in the window.
    pub sample_count: u64,
}

impl BottleneckOut {
    /// The API shape of `b`, with the node's name and deployment.
    pub fn new(b: &Bottleneck, node_identifier: String, deployment_id: i64) -> Self {
        BottleneckOut {
            node_id: b.node_id.get(),
            node_identifier,
            deployment_id,
            latency_ms: b.means.latency_ms,
            throughput_gbps: b.means.throughput_gbps,
            error_rate: b.means.error_rate,
            deviation_score: b.deviation_score,
            timestamp: timestamp(b.newest_sample),
            scores: ScoresOut {
                latency_ms: b.scores.latency_ms,
                throughput_gbps: b.scores.throughput_gbps,
                error_rate: b.scores.error_rate,
            },
            reasons: b.reasons.iter().map(|r| r.as_str()).collect(),
            sample_count: b.sample_count,
        }
    }
}

/// The bottleneck report.
#[derive(Debug, Serialize, ToSchema)]
pub struct BottleneckReportOut {
    /// The deployment.
    pub deployment_id: i64,
    /// When the analysis ran (the end of the window).
    pub detected_at: String,
    /// The bottlenecks, highest deviation score first.
    pub bottlenecks: Vec<BottleneckOut>,
    /// How many.
    pub total_bottlenecks: usize,
    /// The window, in minutes before `detected_at`.
    pub analysis_window_minutes: i64,
    /// The method used.
    #[schema(schema_with = method_schema)]
    pub method: &'static str,
    /// The score at which a node counts.
    pub threshold: f64,
    /// Nodes with samples in the window.
    pub nodes_analyzed: usize,
    /// Samples in the window.
    pub samples_analyzed: u64,
}

impl BottleneckReportOut {
    /// The API shape of `report`; `names` maps node ids to names.
    pub fn new(
        report: &BottleneckReport,
        deployment_id: i64,
        detected_at: DateTime<Utc>,
        analysis_window_minutes: i64,
        names: &std::collections::HashMap<netorch_domain::NodeId, String>,
    ) -> Self {
        let bottlenecks: Vec<BottleneckOut> = report
            .bottlenecks
            .iter()
            .map(|b| {
                // A node removed since its samples were taken is named by its id.
                let name = names
                    .get(&b.node_id)
                    .cloned()
                    .unwrap_or_else(|| b.node_id.to_string());
                BottleneckOut::new(b, name, deployment_id)
            })
            .collect();
        BottleneckReportOut {
            deployment_id,
            detected_at: timestamp(detected_at),
            total_bottlenecks: bottlenecks.len(),
            bottlenecks,
            analysis_window_minutes,
            method: report.config.method.as_str(),
            threshold: report.config.threshold,
            nodes_analyzed: report.nodes_analyzed,
            samples_analyzed: report.samples_analyzed,
        }
    }
}

fn method_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_analytics::Method>("The method used")
}

fn reasons_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(choice::schema::<
            netorch_analytics::MetricKind,
        >(
            "A metric whose score reached the threshold",
        )))
        .into()
}
