//! Prometheus remote write, 1.0 (`prometheus.WriteRequest`) and 2.0
//! (`io.prometheus.write.v2.Request`), at `POST /api/v1/write`: its messages, its decoding into
//! points, its handler and its answer. The messages are the published `.proto` files'
//! (prometheus/prompb `types.proto`, `remote.proto`, `io/prometheus/write/v2/types.proto`),
//! fields netorch reads declared, the rest skipped by prost as protobuf skips unknown fields.

use super::{scope, store};
use crate::ApiState;
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::{FromInput, Input, Valid};
use crate::http::shapes::{named_schema, params};
use actix_web::{HttpRequest, HttpResponse, web};
use netorch_domain::ingest::{
    Batch, DEPLOYMENT_LABEL, NODE_LABEL, Point, Protocol, Refusal, shorten,
};
use prost::Message;
use std::borrow::Cow;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

pub use netorch_remote_write::{Sample, v1, v2};

/// Prometheus's staleness marker: a NaN with this payload says a series ended; it is not a
/// reading, and is skipped (not refused).
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Which message a request carries, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteWriteVersion {
    /// `application/x-protobuf` or `application/x-protobuf;proto=prometheus.WriteRequest`.
    V1,
    /// `application/x-protobuf;proto=io.prometheus.write.v2.Request`.
    V2,
}

impl RemoteWriteVersion {
    /// The version a `Content-Type` names; `None` for a type this endpoint does not read.
    pub fn of(content_type: &str) -> Option<Self> {
        let mut parts = content_type.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        if !essence.eq_ignore_ascii_case("application/x-protobuf") {
            return None;
        }
        let mut version = RemoteWriteVersion::V1;
        for parameter in parts.filter(|p| !p.is_empty()) {
            let (name, value) = parameter.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("proto") {
                continue;
            }
            version = match value.trim().trim_matches('"') {
                "prometheus.WriteRequest" => RemoteWriteVersion::V1,
                "io.prometheus.write.v2.Request" => RemoteWriteVersion::V2,
                _ => return None,
            };
        }
        Some(version)
    }
}

/// A decoded remote write request: `POST /api/v1/write`'s input.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWrite {
    /// Which message it carried.
    pub version: RemoteWriteVersion,
    /// Its points, and what decoding refused (other metrics, missing labels, histograms).
    pub batch: Batch,
    /// Samples in the request (refused or not): what the 2.0 answer counts written ones of.
    pub samples: u64,
}

impl RemoteWrite {
    /// Decodes a snappy-compressed `body` of `version`, refusing one that would decode past
    /// `max_decoded` bytes before decoding it.
    pub fn decode(
        version: RemoteWriteVersion,
        body: &[u8],
        max_decoded: usize,
    ) -> Result<RemoteWrite, ApiError> {
        let length = snap::raw::decompress_len(body).map_err(|e| {
            ApiError::Refused(format!(
                "The body is not snappy-compressed (block format): {e}"
            ))
        })?;
        if length > max_decoded {
            return Err(ApiError::PayloadTooLarge(max_decoded));
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| {
                ApiError::Refused(format!(
                    "The body is not snappy-compressed (block format): {e}"
                ))
            })?;
        let not_protobuf = |e: prost::DecodeError, message: &str| {
            ApiError::Refused(format!("The body is not a {message}: {e}"))
        };
        let mut decoded = RemoteWrite {
            version,
            batch: Batch::default(),
            samples: 0,
        };
        match version {
            RemoteWriteVersion::V1 => {
                let request = v1::WriteRequest::decode(raw.as_slice())
                    .map_err(|e| not_protobuf(e, "prometheus.WriteRequest"))?;
                for series in request.timeseries {
                    let labels = series
                        .labels
                        .iter()
                        .map(|l| (l.name.as_str(), l.value.as_str()));
                    decoded.series(labels, &series.samples, series.histograms.len());
                }
            }
            RemoteWriteVersion::V2 => {
                let request = v2::Request::decode(raw.as_slice())
                    .map_err(|e| not_protobuf(e, "io.prometheus.write.v2.Request"))?;
                for (index, series) in request.timeseries.iter().enumerate() {
                    let symbol = |i: &u32| request.symbols.get(*i as usize).map(String::as_str);
                    let refs = &series.labels_refs;
                    let labels: Option<Vec<(&str, &str)>> = refs
                        .chunks(2)
                        .map(|pair| match pair {
                            [name, value] => Some((symbol(name)?, symbol(value)?)),
                            _ => None,
                        })
                        .collect();
                    let labels = labels.ok_or_else(|| {
                        ApiError::Refused(format!(
                            "timeseries {index}: labels_refs is not pairs of indexes into the \
                             {} symbols",
                            request.symbols.len()
                        ))
                    })?;
                    decoded.series(labels.into_iter(), &series.samples, series.histograms.len());
                }
            }
        }
        Ok(decoded)
    }

    /// Adds one series' samples as points, or counts them refused.
    fn series<'a>(
        &mut self,
        labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
        samples: &[Sample],
        histograms: usize,
    ) {
        let find = |wanted: &str| labels.clone().find(|(name, _)| *name == wanted);
        let name = find("__name__").map_or("", |(_, v)| v);
        let count = samples.len() as u64;
        self.samples += count;
        let refused = &mut self.batch.refused;
        let shown = || shorten(name);
        refused.add(Refusal::UnknownMetric, histograms as u64, || {
            format!("native histogram series {:?}", shorten(name))
        });
        let Some(metric) = Protocol::PrometheusRemoteWrite.metric(name) else {
            refused.add(Refusal::UnknownMetric, count, || {
                format!("series {:?}", shown())
            });
            return;
        };
        let Some((_, deployment)) = find(DEPLOYMENT_LABEL) else {
            refused.add(Refusal::NoDeployment, count, || {
                format!("series {:?}", shown())
            });
            return;
        };
        let Some((_, node)) = find(NODE_LABEL) else {
            refused.add(Refusal::NoNode, count, || format!("series {:?}", shown()));
            return;
        };
        for sample in samples {
            if sample.value.to_bits() == STALE_NAN {
                self.samples -= 1;
                continue;
            }
            let Some(at) = chrono::DateTime::from_timestamp_millis(sample.timestamp) else {
                let reason = if sample.timestamp < 0 {
                    Refusal::TooOld
                } else {
                    Refusal::TooNew
                };
                refused.add(reason, 1, || {
                    format!("{} at {} ms", shown(), sample.timestamp)
                });
                continue;
            };
            self.batch.points.push(Point {
                deployment: deployment.to_owned(),
                node: node.to_owned(),
                metric,
                at,
                value: sample.value,
            });
        }
    }
}

impl FromInput for RemoteWrite {
    const READS_BODY: bool = true;
    const PUSH: bool = true;
    const READS_JSON: bool = false;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let encoding = input.header("Content-Encoding").unwrap_or_default();
        // Read, and not needed: the Content-Type says which message it is.
        let _ = input.header("X-Prometheus-Remote-Write-Version");
        let content_type = input.content_type();
        let version = RemoteWriteVersion::of(&content_type).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "The body is sent as {:?}; remote write takes application/x-protobuf \
                 (prometheus.WriteRequest) or \
                 application/x-protobuf;proto=io.prometheus.write.v2.Request",
                shorten(&content_type)
            ))
        })?;
        if !encoding.trim().eq_ignore_ascii_case("snappy") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "The body is encoded as {:?}; remote write takes Content-Encoding: snappy",
                shorten(&encoding)
            )));
        }
        let max_decoded = super::max_decoded(input);
        RemoteWrite::decode(version, input.raw_body(), max_decoded)
    }
}

/// The body's schema: snappy-compressed protobuf.
fn body_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some(
            "A snappy-compressed (block format) prometheus.WriteRequest, or \
             io.prometheus.write.v2.Request with `proto=io.prometheus.write.v2.Request` in \
             the Content-Type",
        ))
        .into()
}

named_schema!(RemoteWrite, "RemoteWriteRequest", body_schema());

params!(
    RemoteWrite,
    vec![
        super::header(
            "Content-Encoding",
            true,
            &["snappy"],
            "The body's compression: snappy (the block format), as the specification requires"
        ),
        super::header(
            "X-Prometheus-Remote-Write-Version",
            false,
            // Any: it is not read (a sender may say 0.1.0, 2.0.0 or a version to come).
            &[],
            "The sender's protocol version: taken and not used (the Content-Type says which \
             message the body is)"
        ),
    ]
);

/// The 2.0 answer's counts of what was written (header names are case-insensitive; the
/// specification writes `X-Prometheus-Remote-Write-Samples-Written`).
const SAMPLES_WRITTEN: &str = "x-prometheus-remote-write-samples-written";
const HISTOGRAMS_WRITTEN: &str = "x-prometheus-remote-write-histograms-written";
const EXEMPLARS_WRITTEN: &str = "x-prometheus-remote-write-exemplars-written";

/// Prometheus remote write
///
/// Samples from Prometheus, vmagent or any remote-write sender, 1.0 or 2.0 (by the
/// Content-Type; the body snappy-compressed). A series is one of netorch's metrics
/// (`netorch_latency_ms`, `netorch_throughput_gbps`, `netorch_error_rate`) with a `deployment`
/// label (id or name) and a `node` label (id, name or hostname); a node's three series at one
/// timestamp are one sample, whether they come in one request or several. 204 when every sample
/// is accepted; 400 naming what was refused and why (the rest is stored; senders do not retry a
/// 400); 5xx and 429 are worth a retry, and a retry stores nothing twice. A 2.0 request's
/// answer says in `X-Prometheus-Remote-Write-Samples-Written` how many samples were accepted.
#[utoipa::path(
    post, path = "/api/v1/write", tag = "collectors",
    params(RemoteWrite),
    request_body(content = RemoteWrite, content_type = "application/x-protobuf"),
    responses(
        (status = 204, description = "Every sample is accepted"),
        (status = 400, description = "Some or all samples were refused (the others are stored), \
                                      or the body could not be decoded", body = ErrorDetail),
        (status = 415, description = "The Content-Type is not application/x-protobuf (with \
                                      `proto=` one of the two messages) or the body is not \
                                      snappy-compressed", body = ErrorDetail),
    )
)]
pub async fn remote_write(
    state: web::Data<ApiState>,
    req: HttpRequest,
    Valid(write): Valid<RemoteWrite>,
) -> Result<HttpResponse, ApiError> {
    let RemoteWrite {
        version,
        batch,
        samples,
    } = write;
    let outcome = store(&state, Protocol::PrometheusRemoteWrite, batch, scope(&req)).await?;
    let mut response = if outcome.refused.total() == 0 {
        HttpResponse::NoContent().finish()
    } else {
        actix_web::ResponseError::error_response(&ApiError::Refused(format!(
            "{} of {samples} samples accepted; {}",
            outcome.accepted,
            outcome.refused.summary()
        )))
    };
    if version == RemoteWriteVersion::V2 {
        let headers = response.headers_mut();
        for (name, count) in [
            (SAMPLES_WRITTEN, outcome.accepted),
            (HISTOGRAMS_WRITTEN, 0),
            (EXEMPLARS_WRITTEN, 0),
        ] {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(name),
                actix_web::http::header::HeaderValue::from(count),
            );
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netorch_domain::MetricKind;

    fn compress(bytes: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(bytes)
            .expect("compress")
    }

    fn label(name: &str, value: &str) -> v1::Label {
        v1::Label {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn content_types_name_the_version() {
        use RemoteWriteVersion::*;
        assert_eq!(RemoteWriteVersion::of("application/x-protobuf"), Some(V1));
        assert_eq!(
            RemoteWriteVersion::of("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some(V1)
        );
        assert_eq!(
            RemoteWriteVersion::of("Application/X-Protobuf; proto=io.prometheus.write.v2.Request"),
            Some(V2)
        );
        for other in [
            "",
            "application/json",
            "application/x-protobuf;proto=other.Message",
            "application/x-protobuf;proto",
        ] {
            assert_eq!(RemoteWriteVersion::of(other), None, "{other}");
        }
    }

    #[test]
    fn a_v1_request_decodes_into_points_and_refusals() {
        let series = |name: &str, extra: Vec<v1::Label>, values: &[f64]| v1::TimeSeries {
            labels: [vec![label("__name__", name)], extra].concat(),
            samples: values
                .iter()
                .map(|v| Sample {
                    value: *v,
                    timestamp: 1_765_000_000_000,
                })
                .collect(),
            histograms: Vec::new(),
        };
        let both = || vec![label("deployment", "4"), label("node", "node-007")];
        let request = v1::WriteRequest {
            timeseries: vec![
                series(
                    "netorch_latency_ms",
                    both(),
                    &[12.5, f64::from_bits(STALE_NAN)],
                ),
                series("up", both(), &[1.0]),
                series("netorch_error_rate", vec![label("node", "n")], &[0.1]),
                series(
                    "netorch_error_rate",
                    vec![label("deployment", "4")],
                    &[0.1, 0.2],
                ),
            ],
        };
        let body = compress(&request.encode_to_vec());
        let decoded = RemoteWrite::decode(RemoteWriteVersion::V1, &body, 1 << 20).expect("decode");
        assert_eq!(decoded.samples, 5, "the staleness marker is no sample");
        assert_eq!(
            decoded.batch.points,
            [Point {
                deployment: "4".into(),
                node: "node-007".into(),
                metric: MetricKind::LatencyMs,
                at: chrono::DateTime::from_timestamp_millis(1_765_000_000_000).expect("time"),
                value: 12.5,
            }]
        );
        let refused: Vec<(Refusal, u64)> = decoded
            .batch
            .refused
            .iter()
            .map(|(r, n, _)| (r, n))
            .collect();
        assert_eq!(
            refused,
            [
                (Refusal::NoDeployment, 1),
                (Refusal::NoNode, 2),
                (Refusal::UnknownMetric, 1)
            ]
        );
    }

    #[test]
    fn a_v2_request_reads_its_labels_from_the_symbols() {
        let request = v2::Request {
            symbols: [
                "",
                "__name__",
                "netorch_throughput_gbps",
                "deployment",
                "dc",
                "node",
                "n1",
            ]
            .map(String::from)
            .to_vec(),
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4, 5, 6],
                samples: vec![Sample {
                    value: 9.5,
                    timestamp: 1_765_000_000_000,
                }],
                histograms: vec![vec![1, 2, 3]],
            }],
        };
        let body = compress(&request.encode_to_vec());
        let decoded = RemoteWrite::decode(RemoteWriteVersion::V2, &body, 1 << 20).expect("decode");
        assert_eq!(decoded.batch.points.len(), 1);
        assert_eq!(decoded.batch.points[0].deployment, "dc");
        assert_eq!(decoded.batch.points[0].node, "n1");
        assert_eq!(decoded.batch.points[0].metric, MetricKind::ThroughputGbps);
        assert_eq!(decoded.batch.refused.total(), 1, "the histogram");

        // An index past the symbols, or an odd count of them, refuses the request.
        for refs in [vec![1, 2, 3, 40], vec![1, 2, 3]] {
            let bad = v2::Request {
                timeseries: vec![v2::TimeSeries {
                    labels_refs: refs,
                    ..request.timeseries[0].clone()
                }],
                ..request.clone()
            };
            let body = compress(&bad.encode_to_vec());
            assert!(matches!(
                RemoteWrite::decode(RemoteWriteVersion::V2, &body, 1 << 20),
                Err(ApiError::Refused(_))
            ));
        }
    }

    #[test]
    fn bodies_that_are_not_snappy_protobuf_or_decode_too_large_are_refused_unread() {
        let refused = |body: &[u8], max| RemoteWrite::decode(RemoteWriteVersion::V1, body, max);
        assert!(matches!(
            refused(b"not snappy at all", 1 << 20),
            Err(ApiError::Refused(_))
        ));
        // Valid snappy of bytes that are not a WriteRequest (a truncated field).
        assert!(matches!(
            refused(&compress(&[0x0a, 0x05, 0x01]), 1 << 20),
            Err(ApiError::Refused(_))
        ));
        // A bomb: a small body announcing 64 MiB decoded.
        let bomb = compress(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 4 << 20);
        assert!(matches!(
            refused(&bomb, 32 << 20),
            Err(ApiError::PayloadTooLarge(_))
        ));
    }
}
