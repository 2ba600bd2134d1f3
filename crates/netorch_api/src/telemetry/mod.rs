//! Telemetry samples: the read of a deployment's samples here, the push from collectors in
//! `push`.

mod push;

pub use push::*;

use crate::ApiState;
use crate::http::blocking::with_db;
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::paths::DEPLOYMENT_ID;
use crate::http::input::{FromInput, Input, NodeRefField, TimeField, Valid, valid};
use crate::http::operation::{Access, Operation, Resource, Verb};
use crate::http::paging::Paging;
use crate::http::shapes::{params, timestamp};
use actix_web::{HttpResponse, web};
use netorch_domain::Action;
use netorch_domain::{DeploymentId, NodeRef, TelemetrySample};
use netorch_service::telemetry::{self, TelemetryQuery};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

/// The telemetry samples' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        Operation::get(
            "/deployments/{deployment_id}/telemetry",
            Access::Needs(Action::Read),
            |r| r.to(list_telemetry),
        ),
        Operation::write(
            Verb::Post,
            "/deployments/{deployment_id}/telemetry",
            Action::PushTelemetry,
            "stored",
            |r| r.to(push_telemetry),
        ),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(list_telemetry, push_telemetry))]
struct Doc;

/// `GET /deployments/{deployment_id}/telemetry`.
#[derive(Debug, Clone)]
pub struct ReadTelemetry {
    /// The query, with no node filter yet.
    pub query: TelemetryQuery,
    /// Only this node's samples.
    pub node: Option<NodeRef>,
}

impl ReadTelemetry {
    /// Only this node's samples.
    pub const NODE: NodeRefField = NodeRefField::new(
        "node_id",
        "Only this node's samples (its numeric id or its name)",
    );
    /// Not before.
    pub const START: TimeField = TimeField::new(
        "start_time",
        "Not before this time (inclusive); UTC when it has no offset",
    );
    /// Not after.
    pub const END: TimeField = TimeField::new(
        "end_time",
        "Not after this time (inclusive); UTC when it has no offset",
    );
}

impl FromInput for ReadTelemetry {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let node = input.query_node(&Self::NODE);
        let start = input.query_time(&Self::START);
        let end = input.query_time(&Self::END);
        let limit = Paging::limit(input);
        input.check()?;
        Ok(ReadTelemetry {
            query: TelemetryQuery {
                deployment: DeploymentId(valid(deployment)?),
                node: None,
                start,
                end,
                limit,
            },
            node,
        })
    }
}

params!(
    ReadTelemetry,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        ReadTelemetry::NODE.parameter(ParameterIn::Query),
        ReadTelemetry::START.parameter(ParameterIn::Query),
        ReadTelemetry::END.parameter(ParameterIn::Query),
        Paging::LIMIT.parameter(ParameterIn::Query),
    ]
);

/// A telemetry sample.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleOut {
    /// Id.
    pub id: i64,
    /// The node's numeric id.
    pub node_id: i64,
    /// Its deployment.
    pub deployment_id: i64,
    /// When it was read.
    pub timestamp: String,
    /// Milliseconds.
    pub latency_ms: f64,
    /// Gb/s.
    pub throughput_gbps: f64,
    /// Percent.
    pub error_rate: f64,
}

impl From<TelemetrySample> for SampleOut {
    fn from(s: TelemetrySample) -> Self {
        SampleOut {
            id: s.id.get(),
            node_id: s.node_id.get(),
            deployment_id: s.deployment_id.get(),
            timestamp: timestamp(s.timestamp),
            latency_ms: s.metrics.latency_ms,
            throughput_gbps: s.metrics.throughput_gbps,
            error_rate: s.metrics.error_rate,
        }
    }
}

/// A page of samples, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleList {
    /// The samples.
    pub samples: Vec<SampleOut>,
    /// How many samples this page holds.
    pub total: usize,
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
    )
)]
pub async fn list_telemetry(
    state: web::Data<ApiState>,
    Valid(ReadTelemetry { query, node }): Valid<ReadTelemetry>,
) -> Result<HttpResponse, ApiError> {
    let samples = with_db(&state, move |conn| {
        // As the original: the deployment must exist (a deleted one's samples are gone).
        Ok(telemetry::read(conn, query, node.as_ref())?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(SampleList {
        total: samples.len(),
        samples: samples.into_iter().map(SampleOut::from).collect(),
    }))
}
