//! Reading request input the way the original (FastAPI with pydantic) did, and reporting every
//! invalid field at once in its error shape.

use crate::error::{ApiError, FieldError};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Where an input comes from, the first element of `loc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The path.
    Path,
    /// The query string.
    Query,
    /// The JSON body.
    Body,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Path => "path",
            Source::Query => "query",
            Source::Body => "body",
        }
    }
}

/// Collects field errors while a handler reads its input; [`Errors::finish`] turns them into
/// one 422.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    /// Records one error.
    pub fn push(
        &mut self,
        kind: &'static str,
        loc: Vec<Value>,
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

    /// The 422 for what was recorded.
    pub fn into_error(self) -> ApiError {
        ApiError::Invalid(self.0)
    }

    /// `Ok` when nothing was recorded, else the 422.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

fn loc(source: Source, path: &[Value]) -> Vec<Value> {
    std::iter::once(Value::from(source.as_str()))
        .chain(path.iter().cloned())
        .collect()
}

/// An integer bound check; `None` is no bound.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Smallest allowed.
    pub min: Option<i64>,
    /// Largest allowed.
    pub max: Option<i64>,
}

impl Range {
    /// `min..=max`.
    pub const fn between(min: i64, max: i64) -> Self {
        Range {
            min: Some(min),
            max: Some(max),
        }
    }

    /// `min..`.
    pub const fn at_least(min: i64) -> Self {
        Range {
            min: Some(min),
            max: None,
        }
    }

    /// Anything.
    pub const ANY: Range = Range {
        min: None,
        max: None,
    };
}

/// Reads an integer the way pydantic's lax mode does: JSON integers, floats without a fraction,
/// and strings of digits; records `int_parsing` / `int_type` / `int_from_float` otherwise, and
/// the range errors.
pub fn int(
    errors: &mut Errors,
    source: Source,
    path: &[Value],
    value: &Value,
    range: Range,
) -> Option<i64> {
    let parsed = match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
                Some(_) if n.is_f64() => {
                    errors.push(
                        "int_from_float",
                        loc(source, path),
                        "Input should be a valid integer, got a number with a fractional part",
                        value.clone(),
                        None,
                    );
                    return None;
                }
                _ => None,
            },
        },
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            errors.push(
                "int_parsing",
                loc(source, path),
                "Input should be a valid integer, unable to parse string as an integer",
                value.clone(),
                None,
            );
            None
        }),
        _ => {
            errors.push(
                "int_type",
                loc(source, path),
                "Input should be a valid integer",
                value.clone(),
                None,
            );
            return None;
        }
    };
    let Some(i) = parsed else {
        if matches!(value, Value::Number(_)) {
            errors.push(
                "int_parsing",
                loc(source, path),
                "Input should be a valid integer",
                value.clone(),
                None,
            );
        }
        return None;
    };
    if let Some(min) = range.min.filter(|min| i < *min) {
        errors.push(
            "greater_than_equal",
            loc(source, path),
            format!("Input should be greater than or equal to {min}"),
            value.clone(),
            Some(json!({ "ge": min })),
        );
        return None;
    }
    if let Some(max) = range.max.filter(|max| i > *max) {
        errors.push(
            "less_than_equal",
            loc(source, path),
            format!("Input should be less than or equal to {max}"),
            value.clone(),
            Some(json!({ "le": max })),
        );
        return None;
    }
    Some(i)
}

/// Reads a finite number `>= 0` (and `<= max` when given).
pub fn non_negative_float(
    errors: &mut Errors,
    path: &[Value],
    value: &Value,
    max: Option<f64>,
) -> Option<f64> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(x) = number.filter(|x| x.is_finite()) else {
        let kind = if matches!(value, Value::String(_)) {
            "float_parsing"
        } else {
            "float_type"
        };
        errors.push(
            kind,
            loc(Source::Body, path),
            "Input should be a valid finite number",
            value.clone(),
            None,
        );
        return None;
    };
    if x < 0.0 {
        errors.push(
            "greater_than_equal",
            loc(Source::Body, path),
            "Input should be greater than or equal to 0",
            value.clone(),
            Some(json!({ "ge": 0 })),
        );
        return None;
    }
    if let Some(max) = max.filter(|max| x > *max) {
        errors.push(
            "less_than_equal",
            loc(Source::Body, path),
            format!("Input should be less than or equal to {max}"),
            value.clone(),
            Some(json!({ "le": max })),
        );
        return None;
    }
    Some(x)
}

/// Reads a positive finite number from the query string.
pub fn positive_float(errors: &mut Errors, name: &str, value: &str) -> Option<f64> {
    match value.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Some(x),
        Ok(x) if x.is_finite() => {
            errors.push(
                "greater_than",
                loc(Source::Query, &[Value::from(name)]),
                "Input should be greater than 0",
                Value::from(value),
                Some(json!({ "gt": 0 })),
            );
            None
        }
        _ => {
            errors.push(
                "float_parsing",
                loc(Source::Query, &[Value::from(name)]),
                "Input should be a valid number, unable to parse string as a number",
                Value::from(value),
                None,
            );
            None
        }
    }
}

/// Reads a string of `min..=max` characters.
pub fn string(
    errors: &mut Errors,
    path: &[Value],
    value: &Value,
    min: usize,
    max: usize,
) -> Option<String> {
    let Value::String(s) = value else {
        errors.push(
            "string_type",
            loc(Source::Body, path),
            "Input should be a valid string",
            value.clone(),
            None,
        );
        return None;
    };
    let length = s.chars().count();
    if length < min {
        let unit = if min == 1 { "character" } else { "characters" };
        errors.push(
            "string_too_short",
            loc(Source::Body, path),
            format!("String should have at least {min} {unit}"),
            value.clone(),
            Some(json!({ "min_length": min })),
        );
        return None;
    }
    if length > max {
        errors.push(
            "string_too_long",
            loc(Source::Body, path),
            format!("String should have at most {max} characters"),
            value.clone(),
            Some(json!({ "max_length": max })),
        );
        return None;
    }
    Some(s.clone())
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

/// Reads a timestamp, recording `datetime_from_date_parsing` when it is not one.
pub fn timestamp(
    errors: &mut Errors,
    source: Source,
    path: &[Value],
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
            loc(source, path),
            "Input should be a valid datetime or date",
            value.clone(),
            None,
        );
    }
    parsed
}

/// The query string as name → value (the last value of a repeated name wins); a query string
/// that cannot be decoded is a 422.
pub fn query_map(query: &str) -> Result<HashMap<String, String>, ApiError> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|pairs| pairs.into_inner().into_iter().collect())
        .map_err(|e| {
            ApiError::invalid(FieldError {
                kind: "query_invalid",
                loc: vec![Value::from("query")],
                msg: format!("Query string could not be decoded: {e}"),
                input: Value::from(query),
                ctx: None,
            })
        })
}

/// One query parameter as an integer in `range`, or `default` when absent.
pub fn query_int(
    errors: &mut Errors,
    query: &HashMap<String, String>,
    name: &str,
    range: Range,
) -> Option<i64> {
    query.get(name).and_then(|raw| {
        int(
            errors,
            Source::Query,
            &[Value::from(name)],
            &Value::from(raw.as_str()),
            range,
        )
    })
}

/// One path parameter as an integer.
pub fn path_int(errors: &mut Errors, name: &str, raw: &str) -> Option<i64> {
    int(
        errors,
        Source::Path,
        &[Value::from(name)],
        &Value::from(raw),
        Range::ANY,
    )
}

/// One query parameter that must be one of `choices`.
pub fn query_choice<T: Copy>(
    errors: &mut Errors,
    query: &HashMap<String, String>,
    name: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let raw = query.get(name)?;
    match choices.iter().find(|(text, _)| *text == raw) {
        Some((_, value)) => Some(*value),
        None => {
            let names: Vec<String> = choices
                .iter()
                .map(|(text, _)| format!("'{text}'"))
                .collect();
            let expected = match names.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            errors.push(
                "enum",
                loc(Source::Query, &[Value::from(name)]),
                format!("Input should be {expected}"),
                Value::from(raw.as_str()),
                Some(json!({ "expected": expected })),
            );
            None
        }
    }
}

/// The body as a JSON object: `missing` when empty, `json_invalid` when not JSON,
/// `model_attributes_type` when not an object.
pub fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(FieldError {
            kind: "missing",
            loc: vec![Value::from("body")],
            msg: "Field required".into(),
            input: Value::Null,
            ctx: None,
        }));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid(FieldError {
            kind: "model_attributes_type",
            loc: vec![Value::from("body")],
            msg: "Input should be a valid dictionary or object to extract fields from".into(),
            input: other,
            ctx: None,
        })),
        Err(e) => Err(ApiError::invalid(FieldError {
            kind: "json_invalid",
            loc: vec![Value::from("body"), Value::from(e.column())],
            msg: "JSON decode error".into(),
            input: json!({}),
            ctx: Some(json!({ "error": e.to_string() })),
        })),
    }
}

/// A required body field: records `missing` when absent.
pub fn required<'a>(
    errors: &mut Errors,
    object: &'a Map<String, Value>,
    path: &[Value],
    name: &str,
) -> Option<&'a Value> {
    let value = object.get(name);
    if value.is_none() {
        let mut full: Vec<Value> = path.to_vec();
        full.push(Value::from(name));
        errors.push(
            "missing",
            loc(Source::Body, &full),
            "Field required",
            Value::Object(object.clone()),
            None,
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_z_offsets_or_nothing_are_utc() {
        let want = DateTime::parse_from_rfc3339("2026-11-27T22:14:44.048438Z").expect("valid");
        for text in [
            "2026-11-27T22:14:44.048438Z",
            "2026-11-27T22:14:44.048438",
            "2026-11-27T23:14:44.048438+01:00",
            "2026-11-27T20:14:44.048438-02:00",
            "2026-11-27 22:14:44.048438",
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
    fn integers_follow_pydantic_lax_mode() {
        let mut errors = Errors::default();
        let p = [Value::from("n")];
        assert_eq!(
            int(&mut errors, Source::Query, &p, &json!("42"), Range::ANY),
            Some(42)
        );
        assert_eq!(
            int(&mut errors, Source::Body, &p, &json!(7.0), Range::ANY),
            Some(7)
        );
        assert_eq!(
            int(
                &mut errors,
                Source::Body,
                &p,
                &json!(7),
                Range::between(1, 5)
            ),
            None
        );
        assert_eq!(
            int(&mut errors, Source::Body, &p, &json!(7.5), Range::ANY),
            None
        );
        assert_eq!(
            int(&mut errors, Source::Body, &p, &json!("x"), Range::ANY),
            None
        );
        assert_eq!(
            int(&mut errors, Source::Body, &p, &json!(true), Range::ANY),
            None
        );
        let kinds: Vec<&str> = errors.0.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                "less_than_equal",
                "int_from_float",
                "int_parsing",
                "int_type"
            ]
        );
    }
}
