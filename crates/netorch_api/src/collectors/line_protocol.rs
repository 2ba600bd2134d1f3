//! InfluxDB line protocol, at `POST /api/v2/write` (InfluxDB 2's API: Telegraf's
//! `outputs.influxdb_v2`, gNMIc's `influxdb` output, `influxdb-client`) and `POST /write`
//! (InfluxDB 1's: `outputs.influxdb`, the `influxdb` client): its parser, its decoding into
//! points, its handlers and its answers.
//!
//! A line is `measurement[,tag=value...] field=value[,field=value...] [timestamp]`. netorch's
//! readings are the fields `latency_ms`, `throughput_gbps` and `error_rate` of the `netorch`
//! measurement, with the `deployment` and `node` tags.

use super::{scope, store};
use crate::ApiState;
use crate::http::error::{ApiError, ErrorDetail};
use crate::http::input::{FromInput, Input, Valid};
use crate::http::shapes::{named_schema, params};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use netorch_domain::ingest::{
    Batch, DEPLOYMENT_LABEL, LINE_MEASUREMENT, NODE_LABEL, Point, Protocol, Refusal, shorten,
};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// The unit of the lines' timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds (the default).
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Minutes (InfluxDB 1 only).
    Minutes,
    /// Hours (InfluxDB 1 only).
    Hours,
}

impl Precision {
    /// The precision a `precision` parameter names: InfluxDB 2's `ns`, `us`, `ms`, `s`, and
    /// InfluxDB 1's `n`, `u`, `ms`, `s`, `m`, `h`.
    pub fn named(text: &str) -> Option<Self> {
        Some(match text {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µ" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    /// The time `value` of this unit stands for; `None` past chrono's range.
    fn time(self, value: i64) -> Option<DateTime<Utc>> {
        let nanos_per: i128 = match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        };
        let nanos = i128::from(value) * nanos_per;
        let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        let rest = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
        DateTime::from_timestamp(seconds, rest)
    }
}

/// A line that is not line protocol: its number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line's number, from 1.
    pub number: usize,
    /// The line, at most 100 characters of it.
    pub line: String,
    /// What is wrong.
    pub why: String,
}

impl BadLine {
    fn message(&self) -> String {
        format!(
            "line {} is not line protocol ({}): {:?}; nothing of this request was stored",
            self.number, self.why, self.line
        )
    }
}

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Number(f64),
    /// A string or a boolean: never a metric.
    Other,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue)>,
    timestamp: Option<i64>,
}

/// Reads up to an unescaped byte of `stops`, unescaping `\` before any of `escapable`; the text
/// and the rest (starting at the stop).
fn read_until<'a>(text: &'a str, stops: &[u8], escapable: &[u8]) -> (Cow<'a, str>, &'a str) {
    let bytes = text.as_bytes();
    let mut owned: Option<String> = None;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() && escapable.contains(&bytes[i + 1]) {
            let out = owned.get_or_insert_with(String::new);
            out.push_str(&text[copied..i]);
            copied = i + 1;
            i += 2;
            continue;
        }
        if stops.contains(&b) {
            break;
        }
        i += 1;
    }
    let value = match owned {
        Some(mut out) => {
            out.push_str(&text[copied..i]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(&text[..i]),
    };
    (value, &text[i..])
}

/// Parses one line (not empty, not a comment).
fn parse_line(line: &str) -> Result<Line, String> {
    let (measurement, mut rest) = read_until(line, b", ", b", \\");
    if measurement.is_empty() {
        return Err("no measurement".into());
    }
    let mut tags = Vec::new();
    while let Some(after) = rest.strip_prefix(',') {
        let (key, after) = read_until(after, b"=, ", b",= \\");
        let after = after
            .strip_prefix('=')
            .ok_or_else(|| format!("tag {:?} has no `=`", shorten(&key)))?;
        let (value, after) = read_until(after, b", ", b",= \\");
        if key.is_empty() || value.is_empty() {
            return Err("a tag with an empty key or value".into());
        }
        tags.push((key.into_owned(), value.into_owned()));
        rest = after;
    }
    let mut rest = rest
        .strip_prefix(' ')
        .ok_or("no fields after the measurement and tags")?
        .trim_start_matches(' ');
    let mut fields = Vec::new();
    loop {
        let (key, after) = read_until(rest, b"=, ", b",= \\");
        let after = after
            .strip_prefix('=')
            .ok_or_else(|| format!("field {:?} has no `=`", shorten(&key)))?;
        if key.is_empty() {
            return Err("a field with an empty key".into());
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let (_, after) = read_until(quoted, b"\"", b"\"\\");
            let after = after.strip_prefix('"').ok_or_else(|| {
                format!(
                    "field {:?}: a string without its closing quote",
                    shorten(&key)
                )
            })?;
            (FieldValue::Other, after)
        } else {
            let (raw, after) = read_until(after, b", ", b"");
            (
                field_value(&raw).ok_or_else(|| {
                    format!("field {:?}: {:?} is no value", shorten(&key), shorten(&raw))
                })?,
                after,
            )
        };
        fields.push((key.into_owned(), value));
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => {
                rest = after;
                break;
            }
        }
    }
    let timestamp = match rest.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| format!("{:?} is not a timestamp (an integer)", shorten(text)))?,
        ),
    };
    Ok(Line {
        measurement: measurement.into_owned(),
        tags,
        fields,
        timestamp,
    })
}

/// A field's value: a float (`1`, `1.5`, `-2e3`), an integer (`1i`), an unsigned (`1u`), or a
/// boolean; `None` for anything else.
fn field_value(raw: &str) -> Option<FieldValue> {
    if matches!(
        raw,
        "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE"
    ) {
        return Some(FieldValue::Other);
    }
    if let Some(int) = raw.strip_suffix('i') {
        return int
            .parse::<i64>()
            .ok()
            .map(|v| FieldValue::Number(v as f64));
    }
    if let Some(uint) = raw.strip_suffix('u') {
        return uint
            .parse::<u64>()
            .ok()
            .map(|v| FieldValue::Number(v as f64));
    }
    // Rust's float syntax, less the words line protocol does not take (inf, nan).
    if raw
        .bytes()
        .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    raw.parse::<f64>().ok().map(FieldValue::Number)
}

/// Decodes `body` (lines of `precision`, stamped `now` where they have no time) into a batch;
/// a line that is not line protocol refuses the whole body.
pub fn decode(body: &str, precision: Precision, now: DateTime<Utc>) -> Result<Batch, BadLine> {
    let mut batch = Batch::default();
    for (index, raw) in body.lines().enumerate() {
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let line = parse_line(text).map_err(|why| BadLine {
            number: index + 1,
            line: text.chars().take(100).collect(),
            why,
        })?;
        let refused = &mut batch.refused;
        let count = line.fields.len() as u64;
        let shown = || format!("line {}", index + 1);
        if line.measurement != LINE_MEASUREMENT {
            refused.add(Refusal::UnknownMetric, count, || {
                format!("measurement {:?} ({})", shorten(&line.measurement), shown())
            });
            continue;
        }
        let tag = |name: &str| line.tags.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let Some(deployment) = tag(DEPLOYMENT_LABEL) else {
            refused.add(Refusal::NoDeployment, count, shown);
            continue;
        };
        let Some(node) = tag(NODE_LABEL) else {
            refused.add(Refusal::NoNode, count, shown);
            continue;
        };
        let at = match line.timestamp {
            None => now,
            Some(value) => match precision.time(value) {
                Some(at) => at,
                None => {
                    let reason = if value < 0 {
                        Refusal::TooOld
                    } else {
                        Refusal::TooNew
                    };
                    refused.add(reason, count, shown);
                    continue;
                }
            },
        };
        for (name, value) in &line.fields {
            let Some(metric) = Protocol::InfluxLineProtocol.metric(name) else {
                refused.add(Refusal::UnknownMetric, 1, || {
                    format!("field {:?} ({})", shorten(name), shown())
                });
                continue;
            };
            let FieldValue::Number(value) = value else {
                refused.add(Refusal::InvalidValue, 1, || {
                    format!("field {:?} is not a number ({})", shorten(name), shown())
                });
                continue;
            };
            batch.points.push(Point {
                deployment: deployment.clone(),
                node: node.clone(),
                metric,
                at,
                value: *value,
            });
        }
    }
    Ok(batch)
}

/// The body as text: gunzipped when `Content-Encoding: gzip` (refused past `max_decoded`
/// bytes, as it is read), UTF-8 either way.
fn body_text(input: &mut Input<'_>, max_decoded: usize) -> Result<String, ApiError> {
    let encoding = input.header("Content-Encoding");
    let bytes = super::gunzip_if_said(
        input.raw_body(),
        encoding.as_deref(),
        max_decoded,
        "line protocol",
    )?
    .map_err(|e| ApiError::Refused(format!("The body is not gzip: {e}")))?;
    String::from_utf8(bytes.into_owned())
        .map_err(|e| ApiError::Refused(format!("The body is not UTF-8 text: {e}")))
}

/// A line protocol request, decoded: the input of both write endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct LineWrite {
    /// Its points, and what decoding refused.
    pub batch: Batch,
    /// Fields in the request (refused or not).
    pub fields: u64,
}

impl LineWrite {
    /// `precision`, as the query gives it.
    fn precision(input: &mut Input<'_>) -> Result<Precision, ApiError> {
        let query = input.query_raw("precision");
        match query.as_deref() {
            None | Some("") => Ok(Precision::Nanoseconds),
            Some(text) => Precision::named(text).ok_or_else(|| {
                ApiError::Refused(format!(
                    "precision {:?} is not one of ns, us, ms, s (or InfluxDB 1's n, u, ms, s, m, \
                     h)",
                    shorten(text)
                ))
            }),
        }
    }
}

impl FromInput for LineWrite {
    const READS_BODY: bool = true;
    const PUSH: bool = true;
    // Telegraf sends text/plain, the clients various types: line protocol is taken whatever the
    // Content-Type says (as InfluxDB does).
    const READS_JSON: bool = false;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let precision = Self::precision(input)?;
        let max_decoded = super::max_decoded(input);
        // Taken and not used: the deployment is a tag.
        for unused in ["org", "bucket", "db"] {
            let _ = input.query_raw(unused);
        }
        let text = body_text(input, max_decoded)?;
        let batch =
            decode(&text, precision, Utc::now()).map_err(|bad| ApiError::Refused(bad.message()))?;
        let fields = batch.points.len() as u64 + batch.refused.total();
        Ok(LineWrite { batch, fields })
    }
}

fn body_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "Lines of InfluxDB line protocol, plain or with Content-Encoding: gzip: \
             `netorch,deployment=4,node=node-007 latency_ms=12.5,throughput_gbps=9.1,\
             error_rate=0.2 1765000000000000000`",
        ))
        .into()
}

named_schema!(LineWrite, "LineProtocol", body_schema());

params!(
    LineWrite,
    vec![
        super::header(
            "Content-Encoding",
            false,
            &["gzip", "identity"],
            "gzip, or none"
        ),
        super::query(
            "precision",
            "The timestamps' unit: ns (the default), us, ms or s (also InfluxDB 1's n, u, m, h)"
        ),
        super::query("org", "InfluxDB 2's organization: taken and not used"),
        super::query("bucket", "InfluxDB 2's bucket: taken and not used"),
        super::query("db", "InfluxDB 1's database: taken and not used"),
    ]
);

/// InfluxDB 1's write: line protocol with the 1.x query's `u` and `p` (the key as the password,
/// read by the access check: `crate::http::auth`), `rp` and `consistency` taken as well.
pub struct LineWriteV1(LineWrite);

impl FromInput for LineWriteV1 {
    const READS_BODY: bool = true;
    const PUSH: bool = true;
    const READS_JSON: bool = false;

    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        // Taken and not used here: the access check read `p`; the rest says nothing netorch
        // keeps (one retention, one write path).
        for unused in ["u", "p", "rp", "consistency"] {
            let _ = input.query_raw(unused);
        }
        LineWrite::read(input).map(LineWriteV1)
    }
}

params!(LineWriteV1, {
    let mut params = LineWrite::into_params(|| None);
    params.extend([
        super::query("u", "InfluxDB 1's user name: taken and not used"),
        super::query(
            "p",
            "InfluxDB 1's password: a key of the collector role (or any role that may push), \
             when no Authorization header is sent. The access log shows it as ***",
        ),
        super::query("rp", "InfluxDB 1's retention policy: taken and not used"),
        super::query(
            "consistency",
            "InfluxDB 1's write consistency: taken and not used",
        ),
    ]);
    params
});

/// Answers a line protocol write: 204 when every field is accepted, 400 naming the refused.
async fn write(
    state: web::Data<ApiState>,
    req: HttpRequest,
    write: LineWrite,
) -> Result<HttpResponse, ApiError> {
    let LineWrite { batch, fields } = write;
    let outcome = store(&state, Protocol::InfluxLineProtocol, batch, scope(&req)).await?;
    if outcome.refused.total() == 0 {
        return Ok(HttpResponse::NoContent().finish());
    }
    Err(ApiError::Refused(format!(
        "{} of {fields} fields accepted; {}",
        outcome.accepted,
        outcome.refused.summary()
    )))
}

/// InfluxDB 2 write
///
/// Line protocol from Telegraf (`outputs.influxdb_v2`), gNMIc or `influxdb-client`: the fields
/// `latency_ms`, `throughput_gbps` and `error_rate` of the `netorch` measurement, with the
/// `deployment` (id or name) and `node` (id, name or hostname) tags, are samples of that node.
/// The token goes in `Authorization: Token <key>` (or Bearer); `org` and `bucket` are taken and
/// not used. 204 when every field is accepted; 400 naming what was refused and why (the rest is
/// stored), or naming the first line that is not line protocol and its number (then nothing is
/// stored).
#[utoipa::path(
    post, path = "/api/v2/write", tag = "collectors",
    params(LineWrite),
    request_body(content = LineWrite, content_type = "text/plain"),
    responses(
        (status = 204, description = "Every field is accepted"),
        (status = 400, description = "Some or all fields were refused (the others are stored), \
                                      or a line is not line protocol (nothing stored)",
         body = ErrorDetail),
        (status = 415, description = "A Content-Encoding other than gzip", body = ErrorDetail),
    )
)]
pub async fn write_v2(
    state: web::Data<ApiState>,
    req: HttpRequest,
    Valid(lines): Valid<LineWrite>,
) -> Result<HttpResponse, ApiError> {
    write(state, req, lines).await
}

/// InfluxDB 1 write
///
/// The same as `POST /api/v2/write` for InfluxDB 1's clients (Telegraf's `outputs.influxdb`,
/// the `influxdb` client): the key is the basic auth password, the `p` query parameter (the
/// clients' `u`/`p`), or a `Token`/`Bearer` header; `db` is taken and not used; `precision` may
/// also be `n`, `u`, `m` or `h`.
#[utoipa::path(
    post, path = "/write", tag = "collectors",
    params(LineWriteV1),
    request_body(content = LineWrite, content_type = "text/plain"),
    responses(
        (status = 204, description = "Every field is accepted"),
        (status = 400, description = "Some or all fields were refused (the others are stored), \
                                      or a line is not line protocol (nothing stored)",
         body = ErrorDetail),
        (status = 415, description = "A Content-Encoding other than gzip", body = ErrorDetail),
    )
)]
pub async fn write_v1(
    state: web::Data<ApiState>,
    req: HttpRequest,
    Valid(LineWriteV1(lines)): Valid<LineWriteV1>,
) -> Result<HttpResponse, ApiError> {
    write(state, req, lines).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use netorch_domain::MetricKind;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_765_000_000, 0).expect("time")
    }

    #[test]
    fn lines_become_points_of_the_netorch_measurement() {
        let body = "# a comment\n\
            netorch,deployment=dc\\ west,node=node-007 latency_ms=12.5,throughput_gbps=9i,error_rate=0.25 1765000000000000000\n\
            \n\
            netorch,node=n1,deployment=4 latency_ms=1e1\n\
            ping,host=a average_response_ms=3.5,result_code=0i\n\
            netorch,deployment=4 latency_ms=1\n\
            netorch,deployment=4,node=n1 label=\"a, b\",up=true 1765000000000000000\n";
        let batch = decode(body, Precision::Nanoseconds, now()).expect("decode");
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
                    "dc west",
                    "node-007",
                    MetricKind::LatencyMs,
                    12.5,
                    1_765_000_000
                ),
                (
                    "dc west",
                    "node-007",
                    MetricKind::ThroughputGbps,
                    9.0,
                    1_765_000_000
                ),
                (
                    "dc west",
                    "node-007",
                    MetricKind::ErrorRate,
                    0.25,
                    1_765_000_000
                ),
                ("4", "n1", MetricKind::LatencyMs, 10.0, 1_765_000_000),
            ]
        );
        let refused: Vec<(Refusal, u64)> = batch.refused.iter().map(|(r, n, _)| (r, n)).collect();
        assert_eq!(refused, [(Refusal::NoNode, 1), (Refusal::UnknownMetric, 4)]);
    }

    #[test]
    fn precisions_scale_the_timestamps() {
        for (name, value) in [
            ("ns", 1_765_000_000_000_000_000),
            ("u", 1_765_000_000_000_000),
            ("ms", 1_765_000_000_000),
            ("s", 1_765_000_000),
            ("m", 29_416_666),
        ] {
            let precision = Precision::named(name).expect(name);
            let at = precision.time(value).expect("time");
            assert!((at.timestamp() - 1_765_000_000).abs() < 60, "{name}");
        }
        assert_eq!(Precision::named("weeks"), None);
        // Past chrono's range: refused with a reason, not a panic.
        let body = format!("netorch,deployment=4,node=n latency_ms=1 {}", i64::MAX);
        let batch = decode(&body, Precision::Hours, now()).expect("decode");
        assert_eq!(batch.refused.total(), 1);
    }

    #[test]
    fn the_first_bad_line_is_named_with_its_number() {
        for (body, number) in [
            (
                "netorch,deployment=4,node=n latency_ms=1\nnetorch latency_ms",
                2,
            ),
            ("netorch,deployment=4 latency_ms=abc", 1),
            ("\n\nnetorch,deployment latency_ms=1", 3),
            ("netorch latency_ms=1 12:00", 1),
            ("netorch,deployment=4,node=n label=\"open", 1),
            ("netorch,deployment=4,node=n latency_ms=inf", 1),
            (",deployment=4 latency_ms=1", 1),
        ] {
            let bad = decode(body, Precision::Nanoseconds, now()).expect_err(body);
            assert_eq!(bad.number, number, "{body}: {bad:?}");
            assert!(
                bad.message().starts_with(&format!("line {number} ")),
                "{bad:?}"
            );
        }
        // What the sender sent is quoted short, however long it was.
        let long = "k".repeat(1 << 20);
        for body in [
            format!("netorch,{long} latency_ms=1"),
            format!("netorch,deployment=4,node=n {long}"),
            format!("netorch,deployment=4,node=n latency_ms={long}"),
            format!("netorch,deployment=4,node=n latency_ms=1 {long}"),
        ] {
            let bad = decode(&body, Precision::Nanoseconds, now()).expect_err("bad");
            assert!(bad.message().len() < 1_000, "{} bytes", bad.message().len());
        }
    }
}
