//! Telemetry series for charts: a node's or the fleet's samples in buckets, from the tier that
//! covers the range.

use crate::ApiState;
use crate::http::blocking::with_db;
use crate::http::choice;
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::paths::{DEPLOYMENT_ID, NODE_ID, NodePath};
use crate::http::input::{ChoiceField, FromInput, Input, TimeField, Valid, valid};
use crate::http::operation::{Access, Operation, Resource};
use crate::http::shapes::{params, timestamp};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::Action;
use netorch_domain::{DeploymentId, MetricSummary, NodeId, Resolution};
use netorch_service::series::{Series, SeriesBucket, SeriesQuery, SeriesStep};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

/// The series' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get(
            "/deployments/{deployment_id}/nodes/{node_id}/telemetry/series",
            Access::Needs(Action::Read),
            |r| r.to(node_series),
        ),
        Operation::get(
            "/deployments/{deployment_id}/telemetry/series",
            Access::Needs(Action::Read),
            |r| r.to(fleet_series),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(node_series, fleet_series))]
struct Doc;

/// The query of a series, as the API reads and documents it: the fields of
/// [`netorch_service::series::SeriesQuery`].
pub struct SeriesFields;

impl SeriesFields {
    /// From.
    pub const START: TimeField = TimeField::new(
        "start_time",
        "From this time (inclusive) [default: end_time minus 24 hours]; UTC when it has no offset",
    );
    /// Until.
    pub const END: TimeField = TimeField::new(
        "end_time",
        "Until this time (inclusive) [default: now]; UTC when it has no offset",
    );
    /// Step.
    pub const STEP: ChoiceField<SeriesStep> = ChoiceField::new(
        "step",
        "Bucket size: raw (each sample), 1m, 1h, or auto (default): raw up to 1 hour (one node \
         only), 1m up to 1 day, 1h beyond. A step finer than the retention of its tier at \
         start_time is answered from the finest tier still holding it; the response's \
         `resolution` says which",
    );

    fn read(input: &mut Input<'_>) -> SeriesQuery {
        SeriesQuery {
            start: input.query_time(&Self::START),
            end: input.query_time(&Self::END),
            step: input.query_choice(&Self::STEP).unwrap_or_default(),
        }
    }
}

/// `GET /deployments/{deployment_id}/nodes/{node_id}/telemetry/series`.
#[derive(Debug, Clone)]
pub struct NodeSeries {
    /// The node.
    pub path: NodePath,
    /// Range and step.
    pub series: SeriesQuery,
}

impl FromInput for NodeSeries {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let node = input.path_node(&NODE_ID);
        let series = SeriesFields::read(input);
        input.check()?;
        Ok(NodeSeries {
            path: NodePath {
                deployment: DeploymentId(valid(deployment)?),
                node: valid(node)?,
            },
            series,
        })
    }
}

params!(
    NodeSeries,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        NODE_ID.parameter(ParameterIn::Path),
        SeriesFields::START.parameter(ParameterIn::Query),
        SeriesFields::END.parameter(ParameterIn::Query),
        SeriesFields::STEP.parameter(ParameterIn::Query),
    ]
);

/// `GET /deployments/{deployment_id}/telemetry/series`.
#[derive(Debug, Clone)]
pub struct FleetSeries {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Range and step.
    pub series: SeriesQuery,
}

impl FromInput for FleetSeries {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let series = SeriesFields::read(input);
        input.check()?;
        Ok(FleetSeries {
            deployment: DeploymentId(valid(deployment)?),
            series,
        })
    }
}

params!(
    FleetSeries,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        SeriesFields::START.parameter(ParameterIn::Query),
        SeriesFields::END.parameter(ParameterIn::Query),
        SeriesFields::STEP.parameter(ParameterIn::Query),
    ]
);

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

/// One metric over a bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricOut {
    /// The mean of the bucket's samples.
    pub mean: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl From<&MetricSummary> for MetricOut {
    fn from(m: &MetricSummary) -> Self {
        MetricOut {
            mean: m.mean,
            min: m.min,
            max: m.max,
        }
    }
}

/// One bucket of a series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesBucketOut {
    /// The bucket's start (for raw samples, the sample's time), UTC.
    pub timestamp: String,
    /// Samples in the bucket.
    pub count: u64,
    /// Nodes with samples in the bucket (1 in a node's series).
    pub nodes: u64,
    /// Latency, milliseconds.
    pub latency_ms: MetricOut,
    /// Throughput, Gb/s.
    pub throughput_gbps: MetricOut,
    /// Error rate, percent.
    pub error_rate: MetricOut,
}

impl From<&SeriesBucket> for SeriesBucketOut {
    fn from(b: &SeriesBucket) -> Self {
        SeriesBucketOut {
            timestamp: timestamp(b.start),
            count: b.summary.count,
            nodes: b.nodes,
            latency_ms: MetricOut::from(&b.summary.latency_ms),
            throughput_gbps: MetricOut::from(&b.summary.throughput_gbps),
            error_rate: MetricOut::from(&b.summary.error_rate),
        }
    }
}

/// A series: a node's or a fleet's telemetry in buckets, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesOut {
    /// The deployment.
    pub deployment_id: i64,
    /// The node, in a node's series; absent in a fleet's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i64>,
    /// The step asked for.
    #[schema(schema_with = step_schema)]
    pub step: &'static str,
    /// What the buckets are: `raw` (samples) or the rollup read (`1m`, `1h`). Coarser than
    /// `step` where the range reaches past the retention of the step's tier.
    #[schema(schema_with = resolution_schema)]
    pub resolution: &'static str,
    /// From (inclusive), UTC.
    pub start_time: String,
    /// Until (inclusive), UTC.
    pub end_time: String,
    /// The buckets, oldest first.
    pub buckets: Vec<SeriesBucketOut>,
}

fn step_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_service::series::SeriesStep>("The step asked for")
}

fn resolution_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            std::iter::once("raw")
                .chain(Resolution::ALL.iter().map(|r| r.as_str()))
                .collect::<Vec<_>>(),
        ))
        .description(Some("What the buckets are"))
        .into()
}
