//! Time fields: RFC 3339 with `Z` or an offset (converted to UTC), without an offset (taken
//! as UTC), a date alone, or in a body a number of Unix seconds.

use super::fields::{Errors, at, parameter};
use crate::http::error::LocItem;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, Object, Schema, SchemaFormat, Type};

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

    /// The field's schema in a JSON body, which also takes Unix seconds: an RFC 3339 string or
    /// a number.
    pub fn body_schema(&self) -> Schema {
        utoipa::openapi::schema::AnyOfBuilder::new()
            .item(self.schema())
            .item(
                Object::builder()
                    .schema_type(Type::Number)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double))),
            )
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

#[cfg(test)]
mod tests {
    use super::super::fields::testing::{body, kinds};
    use super::*;
    use serde_json::json;

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
}
