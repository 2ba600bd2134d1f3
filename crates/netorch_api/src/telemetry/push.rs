//! The push of samples from a real collector, all or nothing: its body, its handler and its
//! answer.

use crate::ApiState;
use crate::http::blocking::with_write;
use crate::http::error::{ApiError, ErrorDetail, FieldError, LocItem};
use crate::http::input::paths::DEPLOYMENT_ID;
use crate::http::input::{
    Errors, FloatField, FromInput, Input, KnownFields, NodeRefField, TimeField, Valid,
    forbid_unknown, required, valid,
};
use crate::http::shapes::{named_schema, params};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use netorch_domain::{DeploymentId, Metrics, NodeRef, Timestamp};
use netorch_service::telemetry::{self, PushOutcome, PushedSample};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::openapi::{RefOr, schema::KnownFormat, schema::SchemaFormat};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The fields each body takes: those its schema names.
static PUSH_FIELDS: KnownFields = KnownFields::of(PushTelemetry::schema);

static SAMPLE_FIELDS: KnownFields = KnownFields::of(SamplePush::schema);

/// One sample of a push as the body carries it: its fields' specifications and its schema.
/// It reads into the service's [`PushedSample`], the sample the push stores.
#[derive(Debug, Clone, Copy)]
pub struct SamplePush;

impl SamplePush {
    /// The node.
    pub const NODE: NodeRefField = NodeRefField::new(
        "node_id",
        "The node: its numeric id, or its name (`node-007`); must be a node of the deployment",
    );
    /// When it was read.
    pub const TIMESTAMP: TimeField = TimeField::new(
        "timestamp",
        "When it was read: an RFC 3339 time (UTC when it has no offset) or Unix seconds; \
         now when absent or null. At most a second ahead of the server's clock \
         (--sample-future-tolerance-secs) and no older than raw samples are kept \
         (--keep-raw-hours, 24 by default); any other is a 422",
    );
    /// Latency.
    pub const LATENCY: FloatField =
        FloatField::non_negative("latency_ms", "Milliseconds (at most a day)")
            .max(Metrics::MAX_LATENCY_MS);
    /// Throughput.
    pub const THROUGHPUT: FloatField =
        FloatField::non_negative("throughput_gbps", "Gb/s (at most 1 Pb/s)")
            .max(Metrics::MAX_THROUGHPUT_GBPS);
    /// Error rate.
    pub const ERROR_RATE: FloatField =
        FloatField::non_negative("error_rate", "Percent of packets").max(Metrics::MAX_ERROR_RATE);

    /// Reads the sample at `index` of the body's `samples`.
    fn read(errors: &mut Errors, index: usize, item: &Value) -> Option<PushedSample> {
        let prefix = [
            LocItem::from("body"),
            LocItem::from("samples"),
            LocItem::from(index),
        ];
        let Value::Object(sample) = item else {
            errors.push(
                "model_attributes_type",
                prefix.to_vec(),
                "Input should be a valid dictionary or object to extract fields from",
                item.clone(),
                None,
            );
            return None;
        };
        forbid_unknown(errors, sample, &prefix, &SAMPLE_FIELDS);
        let node = required(errors, sample, &prefix, "node_id")
            .and_then(|v| Self::NODE.read_value(errors, &prefix, v));
        let timestamp = match sample.get("timestamp") {
            None | Some(Value::Null) => Some(None),
            Some(v) => Self::TIMESTAMP.read(errors, &prefix, v).map(Some),
        };
        let mut metric = |field: &FloatField| {
            required(errors, sample, &prefix, field.name)
                .and_then(|v| field.read(errors, &prefix, v))
        };
        let latency_ms = metric(&Self::LATENCY);
        let throughput_gbps = metric(&Self::THROUGHPUT);
        let error_rate = metric(&Self::ERROR_RATE);
        Some(PushedSample {
            node: node?,
            timestamp: timestamp?,
            metrics: Metrics {
                latency_ms: latency_ms?,
                throughput_gbps: throughput_gbps?,
                error_rate: error_rate?,
            },
        })
    }

    fn schema() -> Schema {
        let timestamp = AnyOfBuilder::new()
            .item(Self::TIMESTAMP.schema())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double))),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(Self::TIMESTAMP.description));
        ObjectBuilder::new()
            .property("node_id", Self::NODE.schema())
            .required("node_id")
            .property("timestamp", timestamp)
            .property("latency_ms", Self::LATENCY.schema())
            .required("latency_ms")
            .property("throughput_gbps", Self::THROUGHPUT.schema())
            .required("throughput_gbps")
            .property("error_rate", Self::ERROR_RATE.schema())
            .required("error_rate")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

named_schema!(SamplePush, "SamplePush", SamplePush::schema());

/// `POST /deployments/{deployment_id}/telemetry`: samples from a real collector.
#[derive(Debug, Clone, PartialEq)]
pub struct PushTelemetry {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The samples, in the order sent.
    pub samples: Vec<PushedSample>,
}

impl PushTelemetry {
    /// The most samples one push may carry.
    pub const MAX_SAMPLES: usize = 10_000;

    fn schema() -> Schema {
        ObjectBuilder::new()
            .property(
                "samples",
                ArrayBuilder::new()
                    .items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "SamplePush",
                    )))
                    .max_items(Some(PushTelemetry::MAX_SAMPLES))
                    .description(Some(
                        "At most 10,000 samples; all are stored or none (a repeated node and \
                 timestamp is stored once)",
                    )),
            )
            .required("samples")
            .examples([serde_json::json!({"samples": [
                {"node_id": 3, "latency_ms": 12.5, "throughput_gbps": 9.1, "error_rate": 0.2},
                {"node_id": 4, "timestamp": "2026-11-27T22:14:40Z", "latency_ms": 61.0,
                 "throughput_gbps": 6.4, "error_rate": 0.9},
            ]})])
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }

    /// A 422 naming every sample dated more than `tolerance` after `now` (a reading cannot
    /// come from the future, and one dated ahead would take the slot of the reading that comes
    /// then) or more than `keep_raw` before it (raw retention would delete it at once, and a
    /// sample the workers never expire would outlive retention).
    pub fn check_times(
        &self,
        now: Timestamp,
        tolerance: std::time::Duration,
        keep_raw: chrono::Duration,
    ) -> Result<(), ApiError> {
        let latest = chrono::Duration::from_std(tolerance)
            .ok()
            .and_then(|tolerance| now.checked_add_signed(tolerance))
            .unwrap_or(now);
        let earliest = now.checked_sub_signed(keep_raw).unwrap_or(now);
        let show = |at: Timestamp| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let errors: Vec<FieldError> = self
            .samples
            .iter()
            .enumerate()
            .filter_map(|(index, sample)| {
                let at = sample.timestamp?;
                let (msg, ctx) = if at > latest {
                    (
                        format!(
                            "Value error, the sample is dated {}, more than {} s after the \
                             server's clock ({}): a reading cannot come from the future",
                            show(at),
                            tolerance.as_secs_f64(),
                            show(now)
                        ),
                        serde_json::json!({ "le": show(latest) }),
                    )
                } else if at < earliest {
                    (
                        format!(
                            "Value error, the sample is dated {}, before the oldest raw samples \
                             kept ({} hours back, {}): retention would delete it at once",
                            show(at),
                            keep_raw.num_hours(),
                            show(earliest)
                        ),
                        serde_json::json!({ "ge": show(earliest) }),
                    )
                } else {
                    return None;
                };
                Some(
                    FieldError::new(
                        "value_error",
                        [
                            LocItem::from("body"),
                            LocItem::from("samples"),
                            LocItem::from(index),
                            LocItem::from(SamplePush::TIMESTAMP.name),
                        ],
                        msg,
                        Value::from(show(at)),
                    )
                    .with_ctx(ctx),
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(errors))
        }
    }
}

impl FromInput for PushTelemetry {
    const READS_BODY: bool = true;
    const PUSH: bool = true;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        input.check()?;
        let object = input.body_object()?;
        let errors = &mut input.errors;
        let body = [LocItem::from("body")];
        forbid_unknown(errors, &object, &body, &PUSH_FIELDS);
        let Some(list) = required(errors, &object, &body, "samples") else {
            return Err(input.fail());
        };
        let at = || vec![LocItem::from("body"), LocItem::from("samples")];
        let Value::Array(items) = list else {
            errors.push(
                "list_type",
                at(),
                "Input should be a valid list",
                list.clone(),
                None,
            );
            return Err(input.fail());
        };
        let max = Self::MAX_SAMPLES;
        if items.len() > max {
            errors.push(
                "too_long",
                at(),
                format!(
                    "List should have at most {max} items after validation, not {}",
                    items.len()
                ),
                Value::from(format!("[{} items]", items.len())),
                Some(serde_json::json!({ "max_length": max, "actual_length": items.len() })),
            );
            return Err(input.fail());
        }
        let samples: Vec<Option<PushedSample>> = items
            .iter()
            .enumerate()
            .map(|(index, item)| SamplePush::read(errors, index, item))
            .collect();
        input.check()?;
        Ok(PushTelemetry {
            deployment: DeploymentId(valid(deployment)?),
            samples: samples.into_iter().map(valid).collect::<Result<_, _>>()?,
        })
    }
}

params!(
    PushTelemetry,
    vec![DEPLOYMENT_ID.parameter(ParameterIn::Path)]
);

named_schema!(PushTelemetry, "TelemetryPush", PushTelemetry::schema(), refers to SamplePush);

/// The answer to a push.
#[derive(Debug, Serialize, ToSchema)]
pub struct TelemetryAccepted {
    /// Samples accepted (all of the request's).
    pub accepted: usize,
    /// Of those, how many were new (a repeated node and timestamp is stored once).
    pub stored: usize,
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
    let samples = push.samples;
    let (outcome, sent) = with_write(&state, move |conn| {
        // Names are resolved in the write's connection; the insert checks again, under the
        // deployment's lock, that every id is a node of it.
        let outcome = telemetry::push(conn, deployment, &samples, now)?;
        Ok((outcome, samples))
    })
    .await?;
    let stored = match outcome {
        PushOutcome::Stored(stored) => stored,
        PushOutcome::UnknownNodes(strangers) => {
            let errors = strangers
                .into_iter()
                .map(|index| {
                    let node = &sent[index].node;
                    FieldError::new(
                        "value_error",
                        [
                            LocItem::from("body"),
                            LocItem::from("samples"),
                            LocItem::from(index),
                            LocItem::from("node_id"),
                        ],
                        format!(
                            "Value error, node {node} is not a node of deployment {deployment}"
                        ),
                        match node {
                            NodeRef::Id(id) => Value::from(id.get()),
                            NodeRef::Name(name) => Value::from(name.as_str()),
                        },
                    )
                })
                .collect();
            return Err(ApiError::Invalid(errors));
        }
    };
    state.metrics.samples(
        netorch_metrics::SampleSource::Push,
        stored as u64,
        accepted.saturating_sub(stored) as u64,
    );
    Ok(HttpResponse::Accepted().json(TelemetryAccepted { accepted, stored }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use netorch_domain::NodeId;

    #[test]
    fn pushed_samples_are_readings_between_the_retention_and_a_second_from_now() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        let at = |seconds: f64| Some(now + chrono::Duration::microseconds((seconds * 1e6) as i64));
        let sample = |timestamp| PushedSample {
            node: NodeRef::Id(NodeId(1)),
            timestamp,
            metrics: Metrics {
                latency_ms: 1.0,
                throughput_gbps: 1.0,
                error_rate: 0.0,
            },
        };
        let push = PushTelemetry {
            deployment: DeploymentId(1),
            samples: vec![
                sample(None),
                sample(at(0.999)),
                sample(at(1.001)),
                sample(at(-86_399.0)),
                sample(at(-86_401.0)),
                sample(Some(
                    DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
                        .expect("valid")
                        .to_utc(),
                )),
                sample(at(22.0)),
            ],
        };
        let tolerance = std::time::Duration::from_secs(1);
        let keep = chrono::Duration::hours(24);
        let Err(ApiError::Invalid(errors)) = push.check_times(now, tolerance, keep) else {
            panic!("expected a 422");
        };
        let named: Vec<(Value, &str)> = errors
            .iter()
            .map(|e| (serde_json::to_value(&e.loc[2]).expect("index"), e.kind))
            .collect();
        assert_eq!(named, [2, 4, 5, 6].map(|i| (Value::from(i), "value_error")));
        assert!(
            errors[0].msg.contains("from the future"),
            "{}",
            errors[0].msg
        );
        assert!(errors[1].msg.contains("retention"), "{}", errors[1].msg);
        assert!(
            errors
                .iter()
                .all(|e| e.loc[3] == LocItem::from("timestamp"))
        );
        // A wider tolerance takes what a worse clock sends.
        let late = PushTelemetry {
            deployment: DeploymentId(1),
            samples: vec![sample(at(4.0))],
        };
        assert!(late.check_times(now, tolerance, keep).is_err());
        assert!(
            late.check_times(now, std::time::Duration::from_secs(5), keep)
                .is_ok()
        );
    }
}
