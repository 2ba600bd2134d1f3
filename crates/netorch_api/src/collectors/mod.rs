//! The collectors' protocols: what operators already run (Prometheus and vmagent, Telegraf,
//! gNMIc, the OpenTelemetry Collector) writes here in its own wire format. Each protocol's
//! module decodes its body into a [`Batch`] of points; the one mapping
//! (`netorch_domain::ingest`, `netorch_service::ingest`) stores them, and `store` counts
//! what it refused.

pub mod line_protocol;
pub mod otlp;
pub mod remote_write;

pub use remote_write::{RemoteWrite, RemoteWriteVersion};

use crate::ApiState;
use crate::http::blocking::with_write;
use crate::http::error::ApiError;
use crate::http::operation::{Access, Effect, Operation, Resource, Verb};
use netorch_domain::ingest::{Accepted, Batch, Protocol};
use netorch_domain::{Action, DeploymentId};
use netorch_metrics::SampleSource;
use netorch_service::ingest::{self, Ingested};
use utoipa::OpenApi;

/// The collectors' operations and their part of the document.
pub(crate) const RESOURCE: Resource = Resource::new(
    &[
        collector("/api/v1/write", |r| r.to(remote_write::remote_write)),
        collector("/api/v2/write", |r| r.to(line_protocol::write_v2)),
        collector("/write", |r| r.to(line_protocol::write_v1)),
        collector("/v1/metrics", |r| r.to(otlp::export_metrics)),
    ],
    Doc::openapi,
);

#[derive(OpenApi)]
#[openapi(paths(
    remote_write::remote_write,
    line_protocol::write_v2,
    line_protocol::write_v1,
    otlp::export_metrics
))]
struct Doc;

/// A collector's `POST` of `path`. A collector key limited to some deployments may write: the
/// points of others are refused one by one (`forbidden_deployment`).
const fn collector(
    path: &'static str,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> Operation {
    Operation {
        verb: Verb::Post,
        path,
        access: Access::NeedsForEachItem(Action::PushTelemetry),
        effect: Effect::Writes("stored"),
        handler,
    }
}

/// How many times the body limit a compressed body (snappy, gzip) may decode to: protobuf of
/// samples compresses four to ten times, and a decoded request is held whole.
pub const DECODED_PER_BODY_BYTE: usize = 4;

/// The most a request's body may decode to.
fn max_decoded(input: &crate::http::input::Input<'_>) -> usize {
    input
        .state()
        .map_or(crate::MAX_BODY_BYTES, |s| s.max_body_bytes())
        * DECODED_PER_BODY_BYTE
}

/// `raw`, gunzipped (every member) when `encoding` is gzip, as it is when it is absent or
/// `identity`. A 415 naming `protocol` for another encoding and a 413 past `max` decoded bytes
/// (refused as it is read); the inner error says why a body that claims gzip is not.
fn gunzip_if_said<'a>(
    raw: &'a [u8],
    encoding: Option<&str>,
    max: usize,
    protocol: &str,
) -> Result<Result<std::borrow::Cow<'a, [u8]>, String>, ApiError> {
    use std::io::Read;
    let encoding = encoding.unwrap_or("identity").trim();
    if encoding.eq_ignore_ascii_case("identity") {
        return Ok(Ok(std::borrow::Cow::Borrowed(raw)));
    }
    if !encoding.eq_ignore_ascii_case("gzip") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "The body is encoded as {:?}; {protocol} is taken plain or with \
             Content-Encoding: gzip",
            netorch_domain::ingest::shorten(encoding)
        )));
    }
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    match flate2::read::MultiGzDecoder::new(raw)
        .take(limit)
        .read_to_end(&mut out)
    {
        Ok(_) if out.len() > max => Err(ApiError::PayloadTooLarge(max)),
        Ok(_) => Ok(Ok(std::borrow::Cow::Owned(out))),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// A header parameter of a collector's operation: `values` the ones it takes (none: any).
fn header(
    name: &str,
    required: bool,
    values: &[&str],
    description: &str,
) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values((!values.is_empty()).then(|| values.iter().copied())),
        ))
        .build()
}

/// A query parameter of a collector's operation, a string.
fn query(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// The deployments the request's key is limited to (`None`: every one).
fn scope(req: &actix_web::HttpRequest) -> Option<Vec<DeploymentId>> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<crate::auth::Scope>()
        .and_then(|scope| scope.0.clone())
}

/// Stores `batch` as `protocol` carried it for the caller whose key reaches `scope`, counting
/// what was stored and what was refused (in the metrics, and in the log at debug).
async fn store(
    state: &ApiState,
    protocol: Protocol,
    batch: Batch,
    scope: Option<Vec<DeploymentId>>,
) -> Result<Ingested, ApiError> {
    let now = chrono::Utc::now();
    let tolerance = chrono::Duration::from_std(state.future_sample_tolerance)
        .unwrap_or(chrono::Duration::zero());
    let accepted = Accepted {
        earliest: now - state.retention.raw,
        latest: now + tolerance,
    };
    let outcome = with_write(state, move |conn| {
        Ok(ingest::ingest(
            conn,
            protocol,
            batch,
            scope.as_deref(),
            accepted,
            now,
        )?)
    })
    .await?;
    state
        .metrics
        .samples(SampleSource::Protocol(protocol), outcome.new_samples, 0);
    for (reason, count, _) in outcome.refused.iter() {
        state.metrics.ingest_rejected(protocol, reason, count);
    }
    if outcome.refused.total() > 0 {
        log::debug!("{}: {}", protocol.as_str(), outcome.refused.summary());
    }
    Ok(outcome)
}
