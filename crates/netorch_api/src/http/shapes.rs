//! What the resources' input and output types share to describe themselves: the macros that
//! implement `IntoParams` and `ToSchema` from field specifications, and the timestamp format of
//! every answer.

use chrono::{DateTime, Utc};

/// Implements `IntoParams` from a list of parameters.
macro_rules! params_impl {
    ($ty:ty, $params:expr) => {
        impl IntoParams for $ty {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                $params
            }
        }
    };
}

/// Implements `ToSchema` under `$name`, with the named schemas it refers to.
macro_rules! named_schema_impl {
    ($ty:ty, $name:literal, $schema:expr $(, refers to $dep:ty)?) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T($schema)
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            $(
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((<$dep as ToSchema>::name().into_owned(), <$dep as PartialSchema>::schema()));
            }
            )?
        }
    };
}

pub(crate) use named_schema_impl as named_schema;
pub(crate) use params_impl as params;

/// Timestamps in responses: UTC, no offset, microseconds (`2026-11-27T22:14:44.048438`).
///
/// Written digit by digit into a fixed buffer: chrono's `format` interprets its pattern on every
/// call and `format!` pads each field through the formatter, which together were a sixth of the
/// cost of building a listing of 200 nodes (four timestamps each).
pub fn timestamp(at: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    fn put(buf: &mut [u8], mut value: u32) {
        for slot in buf.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    // A leap second shows as nanoseconds past 10^9; keep it within the second.
    let micros = (at.nanosecond() / 1_000).min(999_999);
    let year = at.year();
    if !(0..=9999).contains(&year) {
        // Outside four digits: the general path (never for times netorch stores).
        return format!(
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}",
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
    }
    let mut buf = *b"0000-00-00T00:00:00.000000";
    put(&mut buf[0..4], year.unsigned_abs());
    put(&mut buf[5..7], at.month());
    put(&mut buf[8..10], at.day());
    put(&mut buf[11..13], at.hour());
    put(&mut buf[14..16], at.minute());
    put(&mut buf[17..19], at.second());
    put(&mut buf[20..26], micros);
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds_and_no_offset() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T22:14:44.048438Z").expect("valid");
        assert_eq!(timestamp(at.to_utc()), "2026-11-27T22:14:44.048438");
        let whole = DateTime::parse_from_rfc3339("2027-01-05T03:04:05Z").expect("valid");
        assert_eq!(timestamp(whole.to_utc()), "2027-01-05T03:04:05.000000");
        let early = DateTime::parse_from_rfc3339("0001-02-03T04:05:06.000007Z").expect("valid");
        assert_eq!(timestamp(early.to_utc()), "0001-02-03T04:05:06.000007");
        let late = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z").expect("valid");
        assert_eq!(timestamp(late.to_utc()), "9999-12-31T23:59:59.999999");
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
            .expect("leap second")
            .and_utc();
        assert_eq!(timestamp(leap), "2016-12-31T23:59:59.999999");
    }
}
