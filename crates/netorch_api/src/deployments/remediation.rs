//! A deployment's `remediation` (self-healing) as the create and `PATCH` bodies read it and
//! every deployment shows it, with `remediation_stopped`: one set of field specifications for
//! reading and for the document (docs/API.md, "Self-healing").

use crate::http::error::LocItem;
use crate::http::input::{Errors, FloatField, IntField, KnownFields, forbid_unknown};
use crate::http::shapes::timestamp;
use netorch_domain::remediation::MAX_AFTER_SECONDS;
use netorch_domain::{Remediation, RemediationStop};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};

/// The fields of a policy.
pub struct RemediationFields;

impl RemediationFields {
    /// `after_seconds`.
    pub const AFTER_SECONDS: IntField = IntField::new(
        "after_seconds",
        "Seconds a node alert must have been firing before its RUNNING node is re-provisioned \
         (default 300)",
    )
    .min(0)
    .max(MAX_AFTER_SECONDS as i64)
    .default(300);
    /// `max_concurrent`.
    pub const MAX_CONCURRENT: IntField = IntField::new(
        "max_concurrent",
        "The most nodes on their way back from a remediation at once (default 1)",
    )
    .min(1)
    .max(i32::MAX as i64)
    .default(1);
    /// `max_unhealthy_percent`.
    pub const MAX_UNHEALTHY_PERCENT: FloatField = FloatField::non_negative(
        "max_unhealthy_percent",
        "Above this percentage of the deployment's nodes unhealthy (a node alert firing, or on \
         the way back from a remediation), nothing is remediated and an alert fires \
         (default 40)",
    )
    .max(100.0);
    /// The default of `max_unhealthy_percent`.
    pub const DEFAULT_MAX_UNHEALTHY_PERCENT: f64 = 40.0;
}

/// The schema of `remediation` in a body: an object whose fields may be left out (their
/// defaults are taken), or `null` for off.
pub fn schema() -> Schema {
    let mut percent = RemediationFields::MAX_UNHEALTHY_PERCENT.schema();
    if let Schema::Object(object) = &mut percent {
        object.default = Some(Value::from(
            RemediationFields::DEFAULT_MAX_UNHEALTHY_PERCENT,
        ));
    }
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Self-healing (docs/API.md, \"Self-healing\"): re-provision a RUNNING node whose \
             node alert has fired for after_seconds, at most max_concurrent at once, and none \
             while more than max_unhealthy_percent of the nodes are unhealthy. Null or absent: \
             off",
        ))
        .property("after_seconds", RemediationFields::AFTER_SECONDS.schema())
        .property("max_concurrent", RemediationFields::MAX_CONCURRENT.schema())
        .property("max_unhealthy_percent", percent)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

static FIELDS: KnownFields = KnownFields::of(schema);

fn at(prefix: &[LocItem], name: &'static str) -> Vec<LocItem> {
    let mut loc = prefix.to_vec();
    loc.push(LocItem::from(name));
    loc
}

/// Reads `remediation` at `prefix` (the body) from `value`: `Some(None)` for `null` (off),
/// `Some(Some(policy))` for an object, `None` after recording what was wrong in `errors`.
pub fn read(errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<Option<Remediation>> {
    let loc = at(prefix, "remediation");
    let map = match value {
        Value::Null => return Some(None),
        Value::Object(map) => map,
        other => {
            errors.push(
                "model_attributes_type",
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                other.clone(),
                None,
            );
            return None;
        }
    };
    forbid_unknown(errors, map, &loc, &FIELDS);
    let int = |errors: &mut Errors, field: &IntField| -> Option<u32> {
        match map.get(field.name) {
            None => field.default.and_then(|d| u32::try_from(d).ok()),
            Some(value) => field
                .read(errors, &loc, value)
                .and_then(|v| u32::try_from(v).ok()),
        }
    };
    let after_seconds = int(errors, &RemediationFields::AFTER_SECONDS);
    let max_concurrent = int(errors, &RemediationFields::MAX_CONCURRENT);
    let percent = RemediationFields::MAX_UNHEALTHY_PERCENT;
    let max_unhealthy_percent = match map.get(percent.name) {
        None => Some(RemediationFields::DEFAULT_MAX_UNHEALTHY_PERCENT),
        Some(value) => percent.read(errors, &loc, value),
    };
    let policy = Remediation {
        after_seconds: after_seconds?,
        max_concurrent: max_concurrent?,
        max_unhealthy_percent: max_unhealthy_percent?,
    };
    // The fields' limits are the domain's: this only guards against them drifting apart.
    if let Err(problem) = policy.check() {
        errors.push(
            "value_error",
            loc,
            format!("Value error, {problem}"),
            value.clone(),
            None,
        );
        return None;
    }
    Some(Some(policy))
}

/// A deployment's self-healing policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemediationOut {
    /// Seconds a node alert fires before its node is re-provisioned.
    pub after_seconds: u32,
    /// The most nodes on their way back at once.
    pub max_concurrent: u32,
    /// Above this percentage of unhealthy nodes, nothing is remediated.
    pub max_unhealthy_percent: f64,
}

impl From<Remediation> for RemediationOut {
    fn from(r: Remediation) -> Self {
        RemediationOut {
            after_seconds: r.after_seconds,
            max_concurrent: r.max_concurrent,
            max_unhealthy_percent: r.max_unhealthy_percent,
        }
    }
}

/// Why self-healing is stopped for a deployment.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemediationStoppedOut {
    /// Since when.
    pub since: String,
    /// Unhealthy nodes at the latest pass.
    pub unhealthy_nodes: u64,
    /// The deployment's nodes then.
    pub total_nodes: u64,
    /// The policy's limit then.
    pub max_unhealthy_percent: f64,
    /// A sentence for people.
    pub reason: String,
}

impl From<RemediationStop> for RemediationStoppedOut {
    fn from(stop: RemediationStop) -> Self {
        RemediationStoppedOut {
            since: timestamp(stop.since),
            unhealthy_nodes: stop.unhealthy,
            total_nodes: stop.total,
            max_unhealthy_percent: stop.max_unhealthy_percent,
            reason: stop.reason(),
        }
    }
}
