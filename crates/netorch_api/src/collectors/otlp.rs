//! OTLP/HTTP metrics, at `POST /v1/metrics`: the OpenTelemetry Collector's `otlphttp` exporter
//! and the SDKs' OTLP/HTTP exporters, protobuf or JSON, plain or gzip. Its messages (from
//! opentelemetry-proto's `collector/metrics/v1/metrics_service.proto`, `metrics/v1/metrics.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`, the fields netorch reads), decoded from
//! protobuf by prost and from OTLP/JSON by serde; its decoding into points, its handler and
//! its answer (`ExportMetricsServiceResponse`, with `partial_success` when points are refused;
//! a `google.rpc.Status` for a body that cannot be read at all).

use super::{scope, store};
use crate::ApiState;
use crate::http::error::ApiError;
use crate::http::input::{FromInput, Input, Valid};
use crate::http::shapes::{named_schema, params};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use netorch_domain::ingest::{
    Batch, DEPLOYMENT_LABEL, NODE_LABEL, Point, Protocol, Refusal, shorten,
};
use prost::Message;
use std::borrow::Cow;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema::KnownFormat, schema::SchemaFormat};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// OTLP's messages, as netorch reads them (protobuf by prost, OTLP/JSON by serde: lowerCamelCase
/// names, 64-bit integers as strings or numbers, oneofs as the one field present).
pub mod messages {
    use serde::Deserialize;

    /// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct ExportMetricsServiceRequest {
        /// Per resource.
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }

    /// `opentelemetry.proto.metrics.v1.ResourceMetrics`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct ResourceMetrics {
        /// The resource.
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// Per instrumentation scope.
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }

    /// `opentelemetry.proto.resource.v1.Resource`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct Resource {
        /// Its attributes (`deployment`, `node` may be here).
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    /// `opentelemetry.proto.metrics.v1.ScopeMetrics`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct ScopeMetrics {
        /// The metrics.
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }

    /// `opentelemetry.proto.metrics.v1.Metric`: a gauge or a sum of number points netorch
    /// reads; the histograms and summaries are kept as their points' count, to refuse.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct Metric {
        /// `netorch_latency_ms` and so on.
        #[prost(string, tag = "1")]
        pub name: String,
        /// A gauge.
        #[prost(message, optional, tag = "5")]
        pub gauge: Option<Numbers>,
        /// A sum (read as its points' values).
        #[prost(message, optional, tag = "7")]
        pub sum: Option<Numbers>,
        /// A histogram.
        #[prost(message, optional, tag = "9")]
        pub histogram: Option<Points>,
        /// An exponential histogram.
        #[prost(message, optional, tag = "10")]
        pub exponential_histogram: Option<Points>,
        /// A summary.
        #[prost(message, optional, tag = "11")]
        pub summary: Option<Points>,
    }

    /// `Gauge` and `Sum`: their number points.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct Numbers {
        /// The points.
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
    }

    /// `Histogram`, `ExponentialHistogram` and `Summary`: only how many points they have.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct Points {
        /// The points, undecoded.
        #[prost(bytes = "vec", repeated, tag = "1")]
        #[serde(deserialize_with = "count_only")]
        pub data_points: Vec<Vec<u8>>,
    }

    /// `opentelemetry.proto.metrics.v1.NumberDataPoint`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct NumberDataPoint {
        /// Its attributes (`deployment`, `node` here win over the resource's).
        #[prost(message, repeated, tag = "7")]
        pub attributes: Vec<KeyValue>,
        /// When it was read, in nanoseconds since the Unix epoch.
        #[prost(fixed64, tag = "3")]
        #[serde(deserialize_with = "integer")]
        pub time_unix_nano: u64,
        /// A double value.
        #[prost(double, optional, tag = "4")]
        pub as_double: Option<f64>,
        /// An integer value.
        #[prost(sfixed64, optional, tag = "6")]
        #[serde(deserialize_with = "some_integer")]
        pub as_int: Option<i64>,
    }

    /// `opentelemetry.proto.common.v1.KeyValue`.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct KeyValue {
        /// The key.
        #[prost(string, tag = "1")]
        pub key: String,
        /// The value.
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// `opentelemetry.proto.common.v1.AnyValue`: the kinds a label can be read from.
    #[derive(Clone, PartialEq, prost::Message, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct AnyValue {
        /// A string.
        #[prost(string, optional, tag = "1")]
        pub string_value: Option<String>,
        /// An integer (an id).
        #[prost(int64, optional, tag = "3")]
        #[serde(deserialize_with = "some_integer")]
        pub int_value: Option<i64>,
    }

    /// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsServiceResponse {
        /// Set when points were refused.
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<ExportMetricsPartialSuccess>,
    }

    /// `ExportMetricsPartialSuccess`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsPartialSuccess {
        /// How many points were refused.
        #[prost(int64, tag = "1")]
        pub rejected_data_points: i64,
        /// Why.
        #[prost(string, tag = "2")]
        pub error_message: String,
    }

    /// `google.rpc.Status`: the answer to a request that cannot be read at all.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        /// gRPC's code (3, `INVALID_ARGUMENT`).
        #[prost(int32, tag = "1")]
        pub code: i32,
        /// What is wrong.
        #[prost(string, tag = "2")]
        pub message: String,
    }

    /// A 64-bit integer of OTLP/JSON: a string of digits or a number.
    fn integer<
        'de,
        D: serde::Deserializer<'de>,
        T: std::str::FromStr + TryFrom<u64> + TryFrom<i64>,
    >(
        deserializer: D,
    ) -> Result<T, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Unsigned(u64),
            Signed(i64),
        }
        let invalid = || serde::de::Error::custom("not a 64-bit integer");
        match Either::deserialize(deserializer)? {
            Either::Text(text) => text.parse().map_err(|_| invalid()),
            Either::Unsigned(n) => <T as TryFrom<u64>>::try_from(n).map_err(|_| invalid()),
            Either::Signed(n) => <T as TryFrom<i64>>::try_from(n).map_err(|_| invalid()),
        }
    }

    fn some_integer<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        integer(deserializer).map(Some)
    }

    /// A histogram's points in OTLP/JSON, kept as a count (each an empty entry).
    fn count_only<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        let points = Vec::<serde::de::IgnoredAny>::deserialize(deserializer)?;
        Ok(vec![Vec::new(); points.len()])
    }
}

use messages::{
    AnyValue, ExportMetricsPartialSuccess, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse, KeyValue, Status,
};

/// How a request is encoded, and so its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An OTLP request, decoded: `POST /v1/metrics`'s input. A body that cannot be read is kept as
/// the reason, to answer with a `Status` in the request's encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpWrite {
    /// The request's encoding.
    pub encoding: Encoding,
    /// Its points and what decoding refused, or why it cannot be read.
    pub batch: Result<Batch, String>,
    /// Data points in the request (refused or not).
    pub points: u64,
}

/// The value of an attribute a label is read from: a string, or an integer (an id).
fn label(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value {
        AnyValue {
            string_value: Some(text),
            ..
        } => Some(text.clone()),
        AnyValue {
            int_value: Some(n), ..
        } => Some(n.to_string()),
        _ => None,
    }
}

impl OtlpWrite {
    /// Turns a request into points, counting what it refuses.
    pub fn points(request: &ExportMetricsServiceRequest, now: DateTime<Utc>) -> (Batch, u64) {
        let mut batch = Batch::default();
        let mut total = 0;
        for resource in &request.resource_metrics {
            let attributes = resource
                .resource
                .as_ref()
                .map_or(&[][..], |r| r.attributes.as_slice());
            for metric in resource.scope_metrics.iter().flat_map(|s| &s.metrics) {
                let shown = || format!("metric {:?}", shorten(&metric.name));
                let others = [
                    &metric.histogram,
                    &metric.exponential_histogram,
                    &metric.summary,
                ]
                .into_iter()
                .flatten()
                .map(|p| p.data_points.len() as u64)
                .sum::<u64>();
                total += others;
                batch.refused.add(Refusal::UnknownMetric, others, shown);
                let numbers = [&metric.gauge, &metric.sum]
                    .into_iter()
                    .flatten()
                    .flat_map(|n| &n.data_points);
                let kind = Protocol::Otlp.metric(&metric.name);
                for point in numbers {
                    total += 1;
                    let Some(kind) = kind else {
                        batch.refused.add(Refusal::UnknownMetric, 1, shown);
                        continue;
                    };
                    let find =
                        |key| label(&point.attributes, key).or_else(|| label(attributes, key));
                    let Some(deployment) = find(DEPLOYMENT_LABEL) else {
                        batch.refused.add(Refusal::NoDeployment, 1, shown);
                        continue;
                    };
                    let Some(node) = find(NODE_LABEL) else {
                        batch.refused.add(Refusal::NoNode, 1, shown);
                        continue;
                    };
                    let value = match (point.as_double, point.as_int) {
                        (Some(v), _) => v,
                        (None, Some(v)) => v as f64,
                        (None, None) => f64::NAN,
                    };
                    // No time: the point is of now (OTLP requires one; 0 is its absence).
                    let at = match point.time_unix_nano {
                        0 => now,
                        nanos => {
                            DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
                        }
                    };
                    batch.points.push(Point {
                        deployment,
                        node,
                        metric: kind,
                        at,
                        value,
                    });
                }
            }
        }
        (batch, total)
    }
}

impl FromInput for OtlpWrite {
    const READS_BODY: bool = true;
    const PUSH: bool = true;
    const READS_JSON: bool = false;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let encoded = input.header("Content-Encoding");
        let content_type = input.content_type();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        let encoding = if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Encoding::Protobuf
        } else if essence.eq_ignore_ascii_case("application/json") {
            Encoding::Json
        } else {
            return Err(ApiError::UnsupportedMediaType(format!(
                "The body is sent as {:?}; OTLP/HTTP takes application/x-protobuf or \
                 application/json",
                shorten(&content_type)
            )));
        };
        let body = match super::gunzip_if_said(
            input.raw_body(),
            encoded.as_deref(),
            super::max_decoded(input),
            "OTLP/HTTP",
        )? {
            Ok(body) => body,
            Err(e) => {
                return Ok(OtlpWrite {
                    encoding,
                    batch: Err(format!("the body is not gzip: {e}")),
                    points: 0,
                });
            }
        };
        let request = match encoding {
            Encoding::Protobuf => ExportMetricsServiceRequest::decode(body.as_ref())
                .map_err(|e| format!("the body is not an ExportMetricsServiceRequest: {e}")),
            Encoding::Json => serde_json::from_slice::<ExportMetricsServiceRequest>(&body)
                .map_err(|e| format!("the body is not an ExportMetricsServiceRequest: {e}")),
        };
        Ok(match request {
            Ok(request) => {
                let (batch, points) = OtlpWrite::points(&request, Utc::now());
                OtlpWrite {
                    encoding,
                    batch: Ok(batch),
                    points,
                }
            }
            Err(why) => OtlpWrite {
                encoding,
                batch: Err(why),
                points: 0,
            },
        })
    }
}

fn body_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some(
            "An OTLP ExportMetricsServiceRequest: protobuf (application/x-protobuf) or OTLP/JSON \
             (application/json), plain or with Content-Encoding: gzip",
        ))
        .into()
}

named_schema!(OtlpWrite, "OtlpMetricsRequest", body_schema());

params!(
    OtlpWrite,
    vec![super::header(
        "Content-Encoding",
        false,
        &["gzip", "identity"],
        "gzip, or none"
    )]
);

/// The answer in the request's encoding.
fn answer(status: actix_web::http::StatusCode, encoding: Encoding, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(encoding.content_type())
        .body(body)
}

/// OTLP/HTTP metrics
///
/// Metrics from the OpenTelemetry Collector (`otlphttp` exporter) or an SDK's OTLP/HTTP
/// exporter, protobuf or JSON, plain or gzip: gauges (and sums) named `netorch_latency_ms`,
/// `netorch_throughput_gbps` and `netorch_error_rate`, with `deployment` (id or name) and
/// `node` (id, name or hostname) attributes on the point or its resource. 200 with an
/// `ExportMetricsServiceResponse` in the request's encoding: empty when every point is
/// accepted, with `partial_success` (`rejected_data_points` and why) when some are refused.
/// 400 with a `google.rpc.Status` for a body that cannot be read.
#[utoipa::path(
    post, path = "/v1/metrics", tag = "collectors",
    params(OtlpWrite),
    request_body(content = OtlpWrite, content_type = "application/x-protobuf"),
    responses(
        (status = 200, description = "An ExportMetricsServiceResponse: empty, or with \
                                      partial_success counting the refused points"),
        (status = 400, description = "A google.rpc.Status: the body cannot be read (nothing \
                                      stored)"),
        (status = 415, description = "A Content-Type other than application/x-protobuf or \
                                      application/json, or an encoding other than gzip",
         body = crate::ErrorDetail),
    )
)]
pub async fn export_metrics(
    state: web::Data<ApiState>,
    req: HttpRequest,
    Valid(write): Valid<OtlpWrite>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::http::StatusCode;
    let OtlpWrite {
        encoding,
        batch,
        points,
    } = write;
    let batch = match batch {
        Ok(batch) => batch,
        Err(message) => {
            let message = format!("{message}; nothing of this request was stored");
            let body = match encoding {
                Encoding::Protobuf => Status { code: 3, message }.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&serde_json::json!({
                    "code": 3, "message": message
                }))
                .unwrap_or_default(),
            };
            return Ok(answer(StatusCode::BAD_REQUEST, encoding, body));
        }
    };
    let outcome = store(&state, Protocol::Otlp, batch, scope(&req)).await?;
    let refused = outcome.refused.total();
    let partial = (refused > 0).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(refused).unwrap_or(i64::MAX),
        error_message: format!(
            "{} of {points} data points accepted; {}",
            outcome.accepted,
            outcome.refused.summary()
        ),
    });
    let body = match encoding {
        Encoding::Protobuf => ExportMetricsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => {
            let json = match partial {
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedDataPoints": p.rejected_data_points.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            serde_json::to_vec(&json).unwrap_or_default()
        }
    };
    Ok(answer(StatusCode::OK, encoding, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netorch_domain::MetricKind;

    /// The OTLP specification's example of a gauge (opentelemetry-proto's
    /// `examples/metrics.json`), its attributes made netorch's.
    const SPEC_EXAMPLE: &str = r#"{
      "resourceMetrics": [{
        "resource": {"attributes": [
          {"key": "service.name", "value": {"stringValue": "my.service"}},
          {"key": "deployment", "value": {"stringValue": "dc-west"}}
        ]},
        "scopeMetrics": [{
          "scope": {"name": "my.library", "version": "1.0.0", "attributes": []},
          "metrics": [
            {"name": "netorch_latency_ms", "unit": "ms", "description": "I am a Gauge",
             "gauge": {"dataPoints": [
               {"asDouble": 10.5, "timeUnixNano": "1765000000000000000",
                "attributes": [{"key": "node", "value": {"stringValue": "node-007"}}]}]}},
            {"name": "netorch_throughput_gbps", "unit": "Gb/s",
             "sum": {"aggregationTemporality": 1, "isMonotonic": false, "dataPoints": [
               {"asInt": "9", "startTimeUnixNano": "1764999990000000000",
                "timeUnixNano": 1765000000000000000,
                "attributes": [{"key": "node", "value": {"intValue": "42"}}]}]}},
            {"name": "my.histogram", "histogram": {"aggregationTemporality": 1, "dataPoints": [
               {"count": "2", "sum": 2, "bucketCounts": ["1", "1"], "explicitBounds": [1]}]}},
            {"name": "netorch_error_rate", "gauge": {"dataPoints": [{"asDouble": 0.5}]}}
          ]
        }]
      }]
    }"#;

    #[test]
    fn otlp_json_from_the_specification_decodes_into_points() {
        let request: ExportMetricsServiceRequest =
            serde_json::from_str(SPEC_EXAMPLE).expect("OTLP/JSON");
        let now = DateTime::from_timestamp(1_765_000_100, 0).expect("time");
        let (batch, total) = OtlpWrite::points(&request, now);
        assert_eq!(total, 4);
        let points: Vec<(&str, &str, MetricKind, f64, i64)> = batch
            .points
            .iter()
            .map(|p| {
                (
                    p.deployment.as_str(),
                    p.node.as_str(),
                    p.metric,
                    p.value,
                    p.at.timestamp(),
                )
            })
            .collect();
        assert_eq!(
            points,
            [
                (
                    "dc-west",
                    "node-007",
                    MetricKind::LatencyMs,
                    10.5,
                    1_765_000_000
                ),
                (
                    "dc-west",
                    "42",
                    MetricKind::ThroughputGbps,
                    9.0,
                    1_765_000_000
                ),
            ]
        );
        let refused: Vec<(Refusal, u64)> = batch.refused.iter().map(|(r, n, _)| (r, n)).collect();
        assert_eq!(refused, [(Refusal::NoNode, 1), (Refusal::UnknownMetric, 1)]);
    }

    #[test]
    fn protobuf_and_json_carry_the_same_request() {
        let request: ExportMetricsServiceRequest =
            serde_json::from_str(SPEC_EXAMPLE).expect("OTLP/JSON");
        let decoded = ExportMetricsServiceRequest::decode(request.encode_to_vec().as_slice())
            .expect("protobuf");
        assert_eq!(decoded, request);
    }
}
