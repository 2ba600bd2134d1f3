//! A deployment's `alert_rules` as the create and `PATCH` bodies read them and every
//! deployment shows them: one set of field specifications for reading, for the document and
//! (the same names) for the domain's serialized rules.

use crate::http::error::LocItem;
use crate::http::input::{
    ChoiceField, Errors, FloatField, IntField, KnownFields, StringField, forbid_unknown, required,
};
use netorch_domain::alert::{
    AlertRules, BottleneckRule, Comparison, MAX_THRESHOLD_RULES, MAX_TIMING_SECONDS,
    MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS, Severity, ThresholdRule, ThresholdScope, Timing,
};
use netorch_domain::{Method, MetricKind};
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, Type};

/// The fields of the rules.
pub struct RuleFields;

const fn window(default: i64) -> IntField {
    IntField::new(
        "window_seconds",
        "Seconds of telemetry before each evaluation that the rule reads",
    )
    .min(MIN_WINDOW_SECONDS as i64)
    .max(MAX_WINDOW_SECONDS as i64)
    .default(default)
}

impl RuleFields {
    /// Whether the bottleneck rule runs.
    pub const ENABLED: &'static str = "enabled";
    /// The bottleneck rule's method.
    pub const METHOD: ChoiceField<Method> = ChoiceField::new(
        "method",
        "How nodes are scored, as for GET .../bottlenecks (default robust)",
    );
    /// The bottleneck rule's score threshold.
    pub const THRESHOLD: FloatField = FloatField::positive(
        "threshold",
        "Score at which a node counts (default 3.5 for robust, 2.0 for zscore)",
    );
    /// The bottleneck rule's window.
    pub const BOTTLENECK_WINDOW: IntField = window(600);
    /// A threshold rule's window.
    pub const THRESHOLD_WINDOW: IntField = window(300);
    /// `for_seconds`.
    pub const FOR: IntField = IntField::new(
        "for_seconds",
        "Seconds the condition must hold before the alert fires; pending until then (0: at \
         once)",
    )
    .min(0)
    .max(MAX_TIMING_SECONDS as i64)
    .default(120);
    /// `resolve_after_seconds`.
    pub const RESOLVE_AFTER: IntField = IntField::new(
        "resolve_after_seconds",
        "Seconds a firing alert's condition must have been clear before it resolves, so that \
         a node on the edge does not flap (0: at once)",
    )
    .min(0)
    .max(MAX_TIMING_SECONDS as i64)
    .default(120);
    /// The severity.
    pub const SEVERITY: ChoiceField<Severity> =
        ChoiceField::new("severity", "How urgent its alerts are (default warning)");
    /// A threshold rule's name.
    pub const NAME: StringField = StringField::new(
        "name",
        "Unique among the deployment's threshold rules, not `bottleneck`: the alerts' `rule` \
         label (default from the rule: `latency_ms_gt_50`, `fleet_error_rate_ge_1.5`)",
        1,
    )
    .max(64);
    /// The pattern of a rule's name.
    pub const NAME_PATTERN: &'static str = "^[A-Za-z0-9_.:-]+$";
    /// The metric.
    pub const METRIC: ChoiceField<MetricKind> =
        ChoiceField::new("metric", "The metric whose mean is compared");
    /// The comparison.
    pub const OP: ChoiceField<Comparison> =
        ChoiceField::new("op", "How the mean is compared with `value`");
    /// The value.
    pub const VALUE: FloatField = FloatField::non_negative(
        "value",
        "What the mean is compared with, in the metric's unit (metrics are never negative)",
    );
    /// The scope.
    pub const SCOPE: ChoiceField<ThresholdScope> = ChoiceField::new(
        "scope",
        "`node` (the default): each node's mean, an alert per node past the value; `fleet`: \
         the mean over every sample of the deployment, one alert, which catches the whole \
         fleet slowing down together",
    );
}

fn bottleneck_schema() -> Schema {
    ObjectBuilder::new()
        .description(Some(
            "A node flagged by the bottleneck report over the window fires after `for_seconds` \
             (on by default)",
        ))
        .property(
            RuleFields::ENABLED,
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("Whether the rule is evaluated (default true)")),
        )
        .property("method", RuleFields::METHOD.schema())
        .property("threshold", RuleFields::THRESHOLD.schema())
        .property("window_seconds", RuleFields::BOTTLENECK_WINDOW.schema())
        .property("for_seconds", RuleFields::FOR.schema())
        .property("resolve_after_seconds", RuleFields::RESOLVE_AFTER.schema())
        .property("severity", RuleFields::SEVERITY.schema())
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

fn threshold_schema() -> Schema {
    ObjectBuilder::new()
        .description(Some(
            "A metric's mean over the window compared with a value, per node or for the fleet",
        ))
        .property(
            "name",
            RuleFields::NAME
                .schema()
                .pattern(Some(RuleFields::NAME_PATTERN)),
        )
        .property("metric", RuleFields::METRIC.schema())
        .required("metric")
        .property("op", RuleFields::OP.schema())
        .required("op")
        .property("value", RuleFields::VALUE.schema())
        .required("value")
        .property("scope", RuleFields::SCOPE.schema())
        .property("window_seconds", RuleFields::THRESHOLD_WINDOW.schema())
        .property("for_seconds", RuleFields::FOR.schema())
        .property("resolve_after_seconds", RuleFields::RESOLVE_AFTER.schema())
        .property("severity", RuleFields::SEVERITY.schema())
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// The schema of `alert_rules`: in a body, every field may be left out (its default is
/// taken); on a deployment, every field is there.
pub fn schema() -> Schema {
    ObjectBuilder::new()
        .description(Some(
            "What makes the deployment alert (docs/API.md, \"Alerts\"). In a PATCH it replaces \
             the rules whole; a field left out takes its default",
        ))
        .property("bottleneck", bottleneck_schema())
        .property(
            "thresholds",
            ArrayBuilder::new()
                .items(utoipa::openapi::RefOr::T(threshold_schema()))
                .max_items(Some(MAX_THRESHOLD_RULES))
                .description(Some("Threshold rules (none by default)")),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

static RULES_FIELDS: KnownFields = KnownFields::of(schema);
static BOTTLENECK_FIELDS: KnownFields = KnownFields::of(bottleneck_schema);
static THRESHOLD_FIELDS: KnownFields = KnownFields::of(threshold_schema);

fn object<'v>(
    errors: &mut Errors,
    loc: &[LocItem],
    value: &'v Value,
) -> Option<&'v serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => {
            errors.push(
                "model_attributes_type",
                loc.to_vec(),
                "Input should be a valid dictionary or object to extract fields from",
                other.clone(),
                None,
            );
            None
        }
    }
}

fn at(prefix: &[LocItem], name: &'static str) -> Vec<LocItem> {
    let mut loc = prefix.to_vec();
    loc.push(LocItem::from(name));
    loc
}

/// Reads an optional whole-second field within its limits, or its default.
fn seconds(
    errors: &mut Errors,
    map: &serde_json::Map<String, Value>,
    loc: &[LocItem],
    field: &IntField,
) -> Option<u32> {
    match map.get(field.name) {
        None => field.default.and_then(|d| u32::try_from(d).ok()),
        Some(value) => field
            .read(errors, loc, value)
            .and_then(|v| u32::try_from(v).ok()),
    }
}

fn timing(
    errors: &mut Errors,
    map: &serde_json::Map<String, Value>,
    loc: &[LocItem],
) -> Option<Timing> {
    let for_seconds = seconds(errors, map, loc, &RuleFields::FOR);
    let resolve_after_seconds = seconds(errors, map, loc, &RuleFields::RESOLVE_AFTER);
    Some(Timing {
        for_seconds: for_seconds?,
        resolve_after_seconds: resolve_after_seconds?,
    })
}

fn bottleneck(errors: &mut Errors, value: &Value, loc: &[LocItem]) -> Option<BottleneckRule> {
    let map = object(errors, loc, value)?;
    forbid_unknown(errors, map, loc, &BOTTLENECK_FIELDS);
    let defaults = BottleneckRule::default();
    let enabled = match map.get(RuleFields::ENABLED) {
        None => Some(true),
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            errors.push(
                "bool_type",
                at(loc, RuleFields::ENABLED),
                "Input should be a valid boolean",
                other.clone(),
                None,
            );
            None
        }
    };
    let method = match map.get(RuleFields::METHOD.name) {
        None => Some(defaults.method),
        Some(v) => RuleFields::METHOD.read_value(errors, loc, v),
    };
    let threshold = map
        .get(RuleFields::THRESHOLD.name)
        .map(|v| RuleFields::THRESHOLD.read(errors, loc, v));
    let window_seconds = seconds(errors, map, loc, &RuleFields::BOTTLENECK_WINDOW);
    let timing = timing(errors, map, loc);
    let severity = match map.get(RuleFields::SEVERITY.name) {
        None => Some(defaults.severity),
        Some(v) => RuleFields::SEVERITY.read_value(errors, loc, v),
    };
    let method = method?;
    Some(BottleneckRule {
        enabled: enabled?,
        method,
        threshold: match threshold {
            None => method.default_threshold(),
            Some(read) => read?,
        },
        window_seconds: window_seconds?,
        timing: timing?,
        severity: severity?,
    })
}

fn threshold(errors: &mut Errors, value: &Value, loc: &[LocItem]) -> Option<ThresholdRule> {
    let map = object(errors, loc, value)?;
    forbid_unknown(errors, map, loc, &THRESHOLD_FIELDS);
    let name = map
        .get(RuleFields::NAME.name)
        .map(|v| RuleFields::NAME.read(errors, loc, v));
    let metric = required(errors, map, loc, "metric")
        .and_then(|v| RuleFields::METRIC.read_value(errors, loc, v));
    let op =
        required(errors, map, loc, "op").and_then(|v| RuleFields::OP.read_value(errors, loc, v));
    let number =
        required(errors, map, loc, "value").and_then(|v| RuleFields::VALUE.read(errors, loc, v));
    let scope = match map.get(RuleFields::SCOPE.name) {
        None => Some(ThresholdScope::default()),
        Some(v) => RuleFields::SCOPE.read_value(errors, loc, v),
    };
    let window_seconds = seconds(errors, map, loc, &RuleFields::THRESHOLD_WINDOW);
    let timing = timing(errors, map, loc);
    let severity = match map.get(RuleFields::SEVERITY.name) {
        None => Some(Severity::default()),
        Some(v) => RuleFields::SEVERITY.read_value(errors, loc, v),
    };
    let (metric, op, value, scope) = (metric?, op?, number?, scope?);
    let name = match name {
        None => ThresholdRule::default_name(metric, op, value, scope),
        Some(read) => read?,
    };
    Some(ThresholdRule {
        name,
        metric,
        op,
        value,
        scope,
        window_seconds: window_seconds?,
        timing: timing?,
        severity: severity?,
    })
}

/// Reads `alert_rules` at `prefix` (the body) from `value`, every error recorded in `errors`
/// with its place (`["body", "alert_rules", "thresholds", 0, "value"]`); then the rules'
/// own invariants (unique names, ...) as `value_error`s at the field they name.
pub fn read(errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<AlertRules> {
    let loc = at(prefix, "alert_rules");
    let map = object(errors, &loc, value)?;
    forbid_unknown(errors, map, &loc, &RULES_FIELDS);
    let bottleneck = match map.get("bottleneck") {
        None => Some(BottleneckRule::default()),
        Some(v) => bottleneck(errors, v, &at(&loc, "bottleneck")),
    };
    let thresholds = match map.get("thresholds") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) if items.len() > MAX_THRESHOLD_RULES => {
            errors.push(
                "too_long",
                at(&loc, "thresholds"),
                format!("List should have at most {MAX_THRESHOLD_RULES} items"),
                Value::Array(items.clone()),
                Some(serde_json::json!({ "max_length": MAX_THRESHOLD_RULES })),
            );
            None
        }
        Some(Value::Array(items)) => {
            let list = at(&loc, "thresholds");
            let read: Vec<Option<ThresholdRule>> = items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let mut place = list.clone();
                    place.push(LocItem::Index(index));
                    threshold(errors, item, &place)
                })
                .collect();
            read.into_iter().collect()
        }
        Some(other) => {
            errors.push(
                "list_type",
                at(&loc, "thresholds"),
                "Input should be a valid list",
                other.clone(),
                None,
            );
            None
        }
    };
    let rules = AlertRules {
        bottleneck: bottleneck?,
        thresholds: thresholds?,
    };
    if let Err(problems) = rules.check() {
        for problem in problems {
            let mut place = loc.clone();
            for part in problem.field {
                place.push(match part.parse::<usize>() {
                    Ok(index) => LocItem::Index(index),
                    Err(_) => LocItem::Name(Cow::Owned(part)),
                });
            }
            errors.push(
                "value_error",
                place,
                format!("Value error, {}", problem.message),
                value.clone(),
                None,
            );
        }
        return None;
    }
    Some(rules)
}
