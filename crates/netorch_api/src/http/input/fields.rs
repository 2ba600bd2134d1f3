//! Field specifications: a field's name, meaning and limits, written once, used both to read
//! the field from a request (the way the original's pydantic models did, reporting every
//! invalid field in FastAPI's shape) and to describe it in the OpenAPI document. A limit
//! cannot be enforced without being documented, or documented without being enforced.

use crate::http::choice::{self, Choice};
use crate::http::error::{FieldError, LocItem};
use chrono::{DateTime, NaiveDateTime, Utc};
use netorch_domain::{NodeId, NodeRef};
use serde_json::{Value, json};
use std::marker::PhantomData;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Required};

/// The invalid fields found so far while a request is read.
#[derive(Debug, Default)]
pub struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    /// Records one invalid field.
    pub fn push(
        &mut self,
        kind: &'static str,
        loc: Vec<LocItem>,
        msg: impl Into<String>,
        input: Value,
        ctx: Option<Value>,
    ) {
        self.0.push(FieldError {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx,
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `prefix` followed by `name`: the `loc` of a field.
pub(super) fn at(prefix: &[LocItem], name: &'static str) -> Vec<LocItem> {
    let mut loc = prefix.to_vec();
    loc.push(LocItem::from(name));
    loc
}

/// A parameter of `place` (path or query) described by `schema`.
pub(crate) fn parameter(
    name: &'static str,
    place: ParameterIn,
    description: &str,
    schema: Schema,
) -> Parameter {
    let required = if place == ParameterIn::Path {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .description(Some(description))
        .schema(Some(RefOr::T(schema)))
        .build()
}

/// An integer field, read the way pydantic's lax mode reads one: a JSON integer, a float
/// without a fraction, or a string of digits.
#[derive(Debug, Clone, Copy)]
pub struct IntField {
    /// The field's name, the last element of its `loc`.
    pub name: &'static str,
    /// What it means, for the document.
    pub description: &'static str,
    /// The smallest value accepted.
    pub min: i64,
    /// The largest value accepted.
    pub max: i64,
    /// The value taken when the field is absent, for the document.
    pub default: Option<i64>,
}

impl IntField {
    /// Any 64-bit integer.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        IntField {
            name,
            description,
            min: i64::MIN,
            max: i64::MAX,
            default: None,
        }
    }

    /// At least `min`.
    pub const fn min(mut self, min: i64) -> Self {
        self.min = min;
        self
    }

    /// At most `max`.
    pub const fn max(mut self, max: i64) -> Self {
        self.max = max;
        self
    }

    /// `default` when absent.
    pub const fn default(mut self, default: i64) -> Self {
        self.default = Some(default);
        self
    }

    /// Reads the field at `prefix` + name from `value`, recording what is wrong with it.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<i64> {
        let loc = || at(prefix, self.name);
        let whole = match value {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Whole::Fits(i),
                (None, Some(f)) if f.fract() == 0.0 => Whole::from_float(f),
                (None, Some(f)) if f.is_finite() => {
                    errors.push(
                        "int_from_float",
                        loc(),
                        "Input should be a valid integer, got a number with a fractional part",
                        value.clone(),
                        None,
                    );
                    return None;
                }
                // u64 beyond i64, or a number serde could not hold.
                _ if n.is_u64() => Whole::TooLarge,
                _ => Whole::NotANumber,
            },
            Value::String(s) => Whole::from_text(s.trim()),
            _ => {
                errors.push(
                    "int_type",
                    loc(),
                    "Input should be a valid integer",
                    value.clone(),
                    None,
                );
                return None;
            }
        };
        let i = match whole {
            Whole::Fits(i) => i,
            Whole::TooSmall => i64::MIN,
            Whole::TooLarge => i64::MAX,
            Whole::NotANumber => {
                errors.push(
                    "int_parsing",
                    loc(),
                    "Input should be a valid integer, unable to parse string as an integer",
                    value.clone(),
                    None,
                );
                return None;
            }
        };
        if i < self.min || whole == Whole::TooSmall {
            errors.push(
                "greater_than_equal",
                loc(),
                format!("Input should be greater than or equal to {}", self.min),
                value.clone(),
                Some(json!({ "ge": self.min })),
            );
            return None;
        }
        if i > self.max || whole == Whole::TooLarge {
            errors.push(
                "less_than_equal",
                loc(),
                format!("Input should be less than or equal to {}", self.max),
                value.clone(),
                Some(json!({ "le": self.max })),
            );
            return None;
        }
        Some(i)
    }

    /// The field's schema: an int64 between its bounds.
    pub fn schema(&self) -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            // int64 states the 64-bit bounds; a narrower bound is stated as such.
            .minimum((self.min != i64::MIN).then_some(self.min))
            .maximum((self.max != i64::MAX).then_some(self.max))
            .default(self.default.map(Value::from))
            .description(Some(self.description))
            .into()
    }

    /// The field as a path or query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// An integer as read, before its range is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whole {
    Fits(i64),
    TooSmall,
    TooLarge,
    NotANumber,
}

impl Whole {
    fn from_float(f: f64) -> Self {
        // 2^63 is exactly representable; every whole float below it and at or above -2^63
        // converts exactly.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if f >= LIMIT {
            Whole::TooLarge
        } else if f < -LIMIT {
            Whole::TooSmall
        } else {
            Whole::Fits(f as i64)
        }
    }

    fn from_text(text: &str) -> Self {
        if let Ok(i) = text.parse::<i64>() {
            return Whole::Fits(i);
        }
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if text.starts_with('-') {
                Whole::TooSmall
            } else {
                Whole::TooLarge
            }
        } else {
            Whole::NotANumber
        }
    }
}

/// A node, by its numeric id or by its name within the deployment (`node-001`): the `node_id`
/// of a node's JSON is its name, so a client that follows it must get the node.
#[derive(Debug, Clone, Copy)]
pub struct NodeRefField {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
}

/// The pattern of a node's name, as the document states it.
pub const NODE_NAME_PATTERN: &str = "^node-[0-9]+$";

impl NodeRefField {
    /// A node reference field.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        NodeRefField { name, description }
    }

    /// Reads the field at `prefix` + name from `text`.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], text: &str) -> Option<NodeRef> {
        let trimmed = text.trim();
        if NodeRef::is_name(trimmed) {
            return Some(NodeRef::Name(trimmed.to_owned()));
        }
        IntField::new(self.name, self.description)
            .read(errors, prefix, &Value::from(text))
            .map(|id| NodeRef::Id(NodeId(id)))
    }

    /// Reads the field at `prefix` + name from a JSON value: a node's name as a string, or
    /// its numeric id as a number or a numeric string.
    pub fn read_value(
        &self,
        errors: &mut Errors,
        prefix: &[LocItem],
        value: &Value,
    ) -> Option<NodeRef> {
        match value {
            Value::String(text) => self.read(errors, prefix, text),
            other => IntField::new(self.name, self.description)
                .read(errors, prefix, other)
                .map(|id| NodeRef::Id(NodeId(id))),
        }
    }

    /// The field's schema: an int64 id or a node name.
    pub fn schema(&self) -> Schema {
        AnyOfBuilder::new()
            .item(IntField::new(self.name, "The node's numeric id").schema())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(NODE_NAME_PATTERN))
                    .description(Some("The node's name within its deployment (`node-001`)")),
            )
            .description(Some(self.description))
            .into()
    }

    /// The field as a path or query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// A finite number, from a JSON number or (lax, as pydantic) a numeric string.
#[derive(Debug, Clone, Copy)]
pub struct FloatField {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    /// The lower bound.
    pub min: f64,
    /// Whether the lower bound itself is refused (`> min` rather than `>= min`).
    pub exclusive_min: bool,
    /// The upper bound, inclusive.
    pub max: Option<f64>,
}

impl FloatField {
    /// A finite number `>= 0`.
    pub const fn non_negative(name: &'static str, description: &'static str) -> Self {
        FloatField {
            name,
            description,
            min: 0.0,
            exclusive_min: false,
            max: None,
        }
    }

    /// A finite number `> 0`.
    pub const fn positive(name: &'static str, description: &'static str) -> Self {
        FloatField {
            name,
            description,
            min: 0.0,
            exclusive_min: true,
            max: None,
        }
    }

    /// At most `max`.
    pub const fn max(mut self, max: f64) -> Self {
        self.max = Some(max);
        self
    }

    /// Reads the field at `prefix` + name from `value`.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<f64> {
        let loc = || at(prefix, self.name);
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(x) = number.filter(|x| x.is_finite()) else {
            let (kind, msg) = if matches!(value, Value::String(_)) {
                (
                    "float_parsing",
                    "Input should be a valid number, unable to parse string as a finite number",
                )
            } else {
                ("float_type", "Input should be a valid finite number")
            };
            errors.push(kind, loc(), msg, value.clone(), None);
            return None;
        };
        let min = display_number(self.min);
        if self.exclusive_min && x <= self.min {
            errors.push(
                "greater_than",
                loc(),
                format!("Input should be greater than {min}"),
                value.clone(),
                Some(json!({ "gt": json_number(self.min) })),
            );
            return None;
        }
        if x < self.min {
            errors.push(
                "greater_than_equal",
                loc(),
                format!("Input should be greater than or equal to {min}"),
                value.clone(),
                Some(json!({ "ge": json_number(self.min) })),
            );
            return None;
        }
        if let Some(max) = self.max.filter(|max| x > *max) {
            errors.push(
                "less_than_equal",
                loc(),
                format!(
                    "Input should be less than or equal to {}",
                    display_number(max)
                ),
                value.clone(),
                Some(json!({ "le": json_number(max) })),
            );
            return None;
        }
        Some(x)
    }

    /// The field's schema: a double within its bounds.
    pub fn schema(&self) -> Schema {
        let mut schema = ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .maximum(self.max)
            .description(Some(self.description));
        schema = if self.exclusive_min {
            schema.exclusive_minimum(Some(self.min))
        } else {
            schema.minimum(Some(self.min))
        };
        schema.into()
    }

    /// The field as a query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// A whole number prints without a fraction, as pydantic's messages do (`0`, `100`).
fn display_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// One of the names of a [`Choice`] enum.
#[derive(Debug, Clone, Copy)]
pub struct ChoiceField<T> {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    choices: PhantomData<T>,
}

impl<T: Choice> ChoiceField<T> {
    /// A field taking one of `T`'s names.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        ChoiceField {
            name,
            description,
            choices: PhantomData,
        }
    }

    /// Reads the field at `prefix` + name from `text`.
    pub fn read(&self, errors: &mut Errors, prefix: &[LocItem], text: &str) -> Option<T> {
        if let Some(choice) = T::from_name(text) {
            return Some(choice);
        }
        self.refuse(errors, prefix, Value::from(text));
        None
    }

    /// Reads the field at `prefix` + name from a body's `value`: one of the names, as a
    /// string (anything else is the same `enum` error, as pydantic says it).
    pub fn read_value(&self, errors: &mut Errors, prefix: &[LocItem], value: &Value) -> Option<T> {
        match value {
            Value::String(text) => self.read(errors, prefix, text),
            other => {
                self.refuse(errors, prefix, other.clone());
                None
            }
        }
    }

    fn refuse(&self, errors: &mut Errors, prefix: &[LocItem], input: Value) {
        let names: Vec<String> = T::names().iter().map(|n| format!("'{n}'")).collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        errors.push(
            "enum",
            at(prefix, self.name),
            format!("Input should be {expected}"),
            input,
            Some(json!({ "expected": expected })),
        );
    }

    /// The field's schema: a string enum of `T`'s names.
    pub fn schema(&self) -> Schema {
        choice::schema::<T>(self.description)
    }

    /// The field as a query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// A point in time: RFC 3339 with `Z` or an offset (converted to UTC), or without an offset
/// (taken as UTC); a date alone is midnight UTC; in a body also a number of Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct TimeField {
    /// The field's name.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
}

impl TimeField {
    /// A time field.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        TimeField { name, description }
    }

    /// Reads the field at `prefix` + name from `value`.
    pub fn read(
        &self,
        errors: &mut Errors,
        prefix: &[LocItem],
        value: &Value,
    ) -> Option<DateTime<Utc>> {
        let parsed = match value {
            Value::String(s) => parse_timestamp(s),
            // Unix seconds, as pydantic accepts them.
            Value::Number(n) => n.as_f64().and_then(|secs| {
                let micros = (secs * 1e6).round();
                (micros.is_finite() && micros.abs() < 9.0e18)
                    .then(|| DateTime::from_timestamp_micros(micros as i64))
                    .flatten()
            }),
            _ => None,
        };
        if parsed.is_none() {
            errors.push(
                "datetime_from_date_parsing",
                at(prefix, self.name),
                "Input should be a valid datetime or date",
                value.clone(),
                None,
            );
        }
        parsed
    }

    /// The field's schema: an RFC 3339 date-time string.
    pub fn schema(&self) -> Schema {
        Object::builder()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(self.description))
            .into()
    }

    /// The field as a query parameter.
    pub fn parameter(&self, place: ParameterIn) -> Parameter {
        parameter(self.name, place, self.description, self.schema())
    }
}

/// Parses a timestamp: RFC 3339 with `Z` or an offset (converted to UTC), or without an offset
/// (taken as UTC); a date alone is midnight UTC.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Some(with_offset.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    // Offsets without a colon (`+0200`) and a space before them.
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(with_offset) = DateTime::parse_from_str(text, format) {
            return Some(with_offset.with_timezone(&Utc));
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

/// What the fields' tests share.
#[cfg(test)]
pub(super) mod testing {
    use super::{Errors, LocItem};

    /// The `loc` prefix of a body field.
    pub(in crate::http::input) fn body() -> Vec<LocItem> {
        vec![LocItem::from("body")]
    }

    /// The kinds of the errors recorded, in order.
    pub(in crate::http::input) fn kinds(errors: &Errors) -> Vec<&'static str> {
        errors.0.iter().map(|e| e.kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{body, kinds};
    use super::*;
    use netorch_domain::NodeState;

    #[test]
    fn timestamps_with_z_offsets_or_nothing_are_utc() {
        let want = DateTime::parse_from_rfc3339("2026-11-27T22:14:44.048438Z").expect("valid");
        for text in [
            "2026-11-27T22:14:44.048438Z",
            "2026-11-27t22:14:44.048438z",
            "2026-11-27T22:14:44.048438",
            "2026-11-27T23:14:44.048438+01:00",
            "2026-11-27T20:14:44.048438-02:00",
            "2026-11-27 22:14:44.048438",
            "2026-11-27T23:14:44.048438+0100",
        ] {
            assert_eq!(
                parse_timestamp(text),
                Some(want.with_timezone(&Utc)),
                "{text}"
            );
        }
        assert!(parse_timestamp("2026-11-27").is_some());
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00",
            "",
            "2026-11-27T25:00:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn time_fields_take_strings_and_unix_seconds() {
        let field = TimeField::new("timestamp", "when");
        let mut errors = Errors::default();
        let at = field.read(&mut errors, &body(), &json!(1_800_000_000.5));
        assert_eq!(
            at.map(|t| t.timestamp_micros()),
            Some(1_800_000_000_500_000)
        );
        assert!(field.read(&mut errors, &body(), &json!(1e300)).is_none());
        assert!(field.read(&mut errors, &body(), &json!([])).is_none());
        assert_eq!(
            kinds(&errors),
            ["datetime_from_date_parsing", "datetime_from_date_parsing"]
        );
        assert_eq!(
            errors.0[0].loc,
            vec![LocItem::from("body"), LocItem::from("timestamp")]
        );
    }

    #[test]
    fn integers_follow_pydantic_lax_mode() {
        let mut errors = Errors::default();
        let any = IntField::new("n", "any");
        let small = IntField::new("n", "small").min(1).max(5);
        assert_eq!(any.read(&mut errors, &body(), &json!("42")), Some(42));
        assert_eq!(any.read(&mut errors, &body(), &json!(" -7 ")), Some(-7));
        assert_eq!(any.read(&mut errors, &body(), &json!(7.0)), Some(7));
        assert_eq!(small.read(&mut errors, &body(), &json!(7)), None);
        assert_eq!(small.read(&mut errors, &body(), &json!(0)), None);
        assert_eq!(any.read(&mut errors, &body(), &json!(7.5)), None);
        assert_eq!(any.read(&mut errors, &body(), &json!("x")), None);
        assert_eq!(any.read(&mut errors, &body(), &json!(true)), None);
        assert_eq!(any.read(&mut errors, &body(), &json!(null)), None);
        assert_eq!(
            kinds(&errors),
            [
                "less_than_equal",
                "greater_than_equal",
                "int_from_float",
                "int_parsing",
                "int_type",
                "int_type",
            ]
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_out_of_range_not_fractional() {
        let any = IntField::new("n", "any");
        for (value, kind) in [
            (json!(u64::MAX), "less_than_equal"),
            (json!(1e20), "less_than_equal"),
            (json!(-1e20), "greater_than_equal"),
            (json!("99999999999999999999"), "less_than_equal"),
            (json!("-99999999999999999999"), "greater_than_equal"),
        ] {
            let mut errors = Errors::default();
            assert_eq!(any.read(&mut errors, &body(), &value), None, "{value}");
            assert_eq!(kinds(&errors), [kind], "{value}");
            assert!(!errors.0[0].msg.contains("fractional"), "{value}");
        }
        let mut errors = Errors::default();
        assert_eq!(
            any.read(&mut errors, &body(), &json!(i64::MIN)),
            Some(i64::MIN)
        );
        assert_eq!(
            any.read(&mut errors, &body(), &json!(-(2f64.powi(63)))),
            Some(i64::MIN)
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn integer_schema_states_the_bounds_and_default() {
        let limit = IntField::new("limit", "at most")
            .min(1)
            .max(1000)
            .default(100);
        let schema = serde_json::to_value(limit.schema()).expect("json");
        assert_eq!(
            (
                &schema["minimum"],
                &schema["maximum"],
                &schema["default"],
                &schema["type"]
            ),
            (&json!(1), &json!(1000), &json!(100), &json!("integer"))
        );
        let id = serde_json::to_value(IntField::new("id", "any").schema()).expect("json");
        assert_eq!(
            (id.get("minimum"), id.get("maximum"), &id["format"]),
            (None, None, &json!("int64"))
        );
    }

    #[test]
    fn floats_are_finite_and_within_bounds() {
        let rate = FloatField::non_negative("error_rate", "percent").max(100.0);
        let threshold = FloatField::positive("threshold", "score");
        let mut errors = Errors::default();
        assert_eq!(rate.read(&mut errors, &body(), &json!(0)), Some(0.0));
        assert_eq!(rate.read(&mut errors, &body(), &json!("2.5")), Some(2.5));
        assert_eq!(rate.read(&mut errors, &body(), &json!(100.0)), Some(100.0));
        assert!(errors.is_empty());
        assert_eq!(rate.read(&mut errors, &body(), &json!(100.5)), None);
        assert_eq!(rate.read(&mut errors, &body(), &json!(-0.1)), None);
        assert_eq!(rate.read(&mut errors, &body(), &json!("fast")), None);
        assert_eq!(rate.read(&mut errors, &body(), &json!("inf")), None);
        assert_eq!(rate.read(&mut errors, &body(), &json!(false)), None);
        assert_eq!(threshold.read(&mut errors, &body(), &json!(0)), None);
        assert_eq!(
            threshold.read(&mut errors, &body(), &json!("1e-9")),
            Some(1e-9)
        );
        assert_eq!(
            kinds(&errors),
            [
                "less_than_equal",
                "greater_than_equal",
                "float_parsing",
                "float_parsing",
                "float_type",
                "greater_than",
            ]
        );
        assert_eq!(errors.0[0].msg, "Input should be less than or equal to 100");
        assert_eq!(errors.0[5].ctx, Some(json!({"gt": 0})));
        let schema = serde_json::to_value(threshold.schema()).expect("json");
        assert_eq!(
            (&schema["exclusiveMinimum"], schema.get("minimum")),
            (&json!(0), None)
        );
    }

    #[test]
    fn nodes_are_named_by_id_or_by_name() {
        let node = NodeRefField::new("node_id", "node");
        let mut errors = Errors::default();
        assert_eq!(
            node.read(&mut errors, &[], "42"),
            Some(NodeRef::Id(NodeId(42)))
        );
        assert_eq!(
            node.read(&mut errors, &[], "node-007"),
            Some(NodeRef::Name("node-007".into()))
        );
        assert!(errors.is_empty());
        assert_eq!(node.read(&mut errors, &[], "switch-1"), None);
        assert_eq!(kinds(&errors), ["int_parsing"]);
        let schema = serde_json::to_value(node.schema()).expect("json");
        assert_eq!(schema["anyOf"][1]["pattern"], json!(NODE_NAME_PATTERN));
    }

    #[test]
    fn choices_name_every_allowed_value() {
        let state = ChoiceField::<NodeState>::new("state", "state");
        let mut errors = Errors::default();
        assert_eq!(
            state.read(&mut errors, &[], "RUNNING"),
            Some(NodeState::Running)
        );
        assert_eq!(state.read(&mut errors, &[], "running"), None);
        assert_eq!(
            errors.0[0].msg,
            "Input should be 'PENDING', 'PROVISIONING', 'CONFIGURING', 'RUNNING', 'FAILED' or \
             'DECOMMISSIONING'"
        );
        let schema = serde_json::to_value(state.schema()).expect("json");
        assert_eq!(schema["enum"].as_array().map(Vec::len), Some(6));
    }
}
