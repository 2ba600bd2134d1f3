//! Number fields: integers (pydantic's lax mode: whole floats and numeric strings too) and
//! floats, each with its bounds, read and documented from one specification.

use super::fields::{Errors, at, parameter};
use crate::http::error::LocItem;
use serde_json::{Value, json};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

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

#[cfg(test)]
mod tests {
    use super::super::fields::testing::{body, kinds};
    use super::*;

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
}
