//! The API's input layer: every operation's input is one type that reads itself from the
//! request ([`FromInput`]) and describes itself to the OpenAPI document (`IntoParams` for its
//! path and query, `ToSchema` for its body), both from the same [field specifications](fields).
//!
//! Handlers take `Valid<T>`: by the time a handler runs, every field of its path, query and
//! body has been read, and a request with any invalid field has been answered 422 with all of
//! them at once, in FastAPI's shape.

mod fields;
mod numbers;
pub(crate) mod paths;
mod text;
mod time;

pub(crate) use fields::at;
pub use fields::{ChoiceField, Errors, NodeRefField};
pub use numbers::{FloatField, IntField};
pub use text::{StringField, not_plain_ranges};
pub use time::TimeField;

use crate::ApiState;
use crate::http::error::{ApiError, FieldError, LocItem};
use actix_web::{FromRequest, HttpRequest, web};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// A request being read: its path, its query string (decoded once), its body, and the invalid
/// fields found so far.
pub struct Input<'a> {
    req: &'a HttpRequest,
    query: HashMap<String, String>,
    body: Option<&'a [u8]>,
    /// The invalid fields found so far.
    pub errors: Errors,
    /// The parameters asked for, `(location, name)`, in order: what a test compares with the
    /// parameters the document lists.
    #[cfg(test)]
    pub(crate) asked: Vec<(&'static str, &'static str)>,
}

impl<'a> Input<'a> {
    /// Starts reading `req`; a query string that cannot be decoded is a 422 at once.
    pub fn new(req: &'a HttpRequest, body: Option<&'a [u8]>) -> Result<Self, ApiError> {
        let raw = req.query_string();
        // The last value of a repeated name wins, as in FastAPI for a scalar parameter.
        let query = web::Query::<Vec<(String, String)>>::from_query(raw)
            .map(|pairs| pairs.into_inner().into_iter().collect())
            .map_err(|e| {
                ApiError::invalid(FieldError::new(
                    "query_invalid",
                    [LocItem::from("query")],
                    format!("Query string could not be decoded: {e}"),
                    raw,
                ))
            })?;
        Ok(Input {
            #[cfg(test)]
            asked: Vec::new(),
            req,
            query,
            body,
            errors: Errors::default(),
        })
    }

    /// Notes that the parameter `name` in `location` was asked for (tests only).
    fn ask(&mut self, location: &'static str, name: &'static str) {
        #[cfg(test)]
        self.asked.push((location, name));
        #[cfg(not(test))]
        let _ = (location, name);
    }

    /// The body as it arrived (empty for an operation that reads none), for inputs of other
    /// media types than JSON.
    pub fn raw_body(&self) -> &[u8] {
        self.body.unwrap_or_default()
    }

    /// A query parameter as it came, for inputs that read their own forms of a value (the
    /// collectors' protocols' `precision`).
    pub fn query_raw(&mut self, name: &'static str) -> Option<String> {
        self.ask("query", name);
        self.query.get(name).cloned()
    }

    /// A request header's value, when it is text (a header parameter the operation documents).
    pub fn header(&mut self, name: &'static str) -> Option<String> {
        self.ask("header", name);
        let value = self.req.headers().get(name)?;
        value.to_str().ok().map(str::to_owned)
    }

    /// The body's `Content-Type` (not a parameter: OpenAPI states it as the body's media type),
    /// or "" without one.
    pub fn content_type(&self) -> String {
        self.req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The server's state, for limits that are configured rather than fixed.
    pub fn state(&self) -> Option<&ApiState> {
        self.req.app_data::<web::Data<ApiState>>().map(|d| &***d)
    }

    /// A path parameter as an integer.
    pub fn path_int(&mut self, field: &IntField) -> Option<i64> {
        self.ask("path", field.name);
        let raw = self.req.match_info().get(field.name).unwrap_or_default();
        field.read(
            &mut self.errors,
            &[LocItem::from("path")],
            &Value::from(raw),
        )
    }

    /// A path parameter as text within `field`'s limits.
    pub fn path_string(&mut self, field: &StringField) -> Option<String> {
        self.ask("path", field.name);
        let raw = self.req.match_info().get(field.name).unwrap_or_default();
        field.read(
            &mut self.errors,
            &[LocItem::from("path")],
            &Value::from(raw),
        )
    }

    /// A path parameter naming a node.
    pub fn path_node(&mut self, field: &NodeRefField) -> Option<netorch_domain::NodeRef> {
        self.ask("path", field.name);
        let raw = self.req.match_info().get(field.name).unwrap_or_default();
        field.read(&mut self.errors, &[LocItem::from("path")], raw)
    }

    /// A query parameter naming a node; `None` when absent or invalid.
    pub fn query_node(&mut self, field: &NodeRefField) -> Option<netorch_domain::NodeRef> {
        self.ask("query", field.name);
        let raw = self.query.get(field.name)?;
        field.read(&mut self.errors, &[LocItem::from("query")], raw)
    }

    fn query_value(&self, name: &str) -> Option<Value> {
        self.query.get(name).map(|raw| Value::from(raw.as_str()))
    }

    /// A query parameter as an integer; `None` when absent or invalid.
    pub fn query_int(&mut self, field: &IntField) -> Option<i64> {
        self.ask("query", field.name);
        let value = self.query_value(field.name)?;
        field.read(&mut self.errors, &[LocItem::from("query")], &value)
    }

    /// A query parameter as an integer, the field's documented default when absent (or when
    /// invalid: the error is recorded, and the request fails at [`Input::check`]).
    pub fn query_int_or_default(&mut self, field: &IntField) -> i64 {
        self.query_int(field)
            .or(field.default)
            .unwrap_or(field.min.max(0))
    }

    /// A header as an integer; `None` when absent or invalid.
    pub fn header_int(&mut self, field: &IntField) -> Option<i64> {
        self.ask("header", field.name);
        let raw = self.req.headers().get(field.name)?;
        let value = Value::from(String::from_utf8_lossy(raw.as_bytes()).into_owned());
        field.read(&mut self.errors, &[LocItem::from("header")], &value)
    }

    /// A query parameter as a number; `None` when absent or invalid.
    pub fn query_float(&mut self, field: &FloatField) -> Option<f64> {
        self.ask("query", field.name);
        let value = self.query_value(field.name)?;
        field.read(&mut self.errors, &[LocItem::from("query")], &value)
    }

    /// A query parameter as a string; `None` when absent or invalid.
    pub fn query_string(&mut self, field: &StringField) -> Option<String> {
        self.ask("query", field.name);
        let value = self.query_value(field.name)?;
        field.read(&mut self.errors, &[LocItem::from("query")], &value)
    }

    /// A query parameter as a time; `None` when absent or invalid.
    pub fn query_time(&mut self, field: &TimeField) -> Option<chrono::DateTime<chrono::Utc>> {
        self.ask("query", field.name);
        let value = self.query_value(field.name)?;
        field.read(&mut self.errors, &[LocItem::from("query")], &value)
    }

    /// A query parameter as one of a choice's names; `None` when absent or invalid.
    pub fn query_choice<T: crate::http::choice::Choice>(
        &mut self,
        field: &ChoiceField<T>,
    ) -> Option<T> {
        self.ask("query", field.name);
        let raw = self.query.get(field.name)?;
        field.read(&mut self.errors, &[LocItem::from("query")], raw)
    }

    /// The body as a JSON object: `missing` when empty, `json_invalid` when not JSON,
    /// `model_attributes_type` when not an object; each is a 422 at once.
    pub fn body_object(&self) -> Result<Map<String, Value>, ApiError> {
        let body = self.body.unwrap_or_default();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(FieldError::new(
                "missing",
                [LocItem::from("body")],
                "Field required",
                Value::Null,
            )));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(ApiError::invalid(FieldError::new(
                "model_attributes_type",
                [LocItem::from("body")],
                "Input should be a valid dictionary or object to extract fields from",
                other,
            ))),
            Err(e) => Err(ApiError::invalid(
                FieldError::new(
                    "json_invalid",
                    [LocItem::from("body"), LocItem::from(e.column())],
                    "JSON decode error",
                    json!({}),
                )
                .with_ctx(json!({ "error": e.to_string() })),
            )),
        }
    }

    /// The 422 for the invalid fields just recorded, when reading cannot go on.
    pub fn fail(&mut self) -> ApiError {
        ApiError::Invalid(std::mem::take(&mut self.errors.0))
    }

    /// `Err` with every invalid field recorded so far, if any.
    pub fn check(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(std::mem::take(&mut self.errors.0)))
        }
    }
}

/// A required field of `object` at `prefix`: records `missing` when absent.
pub fn required<'v>(
    errors: &mut Errors,
    object: &'v Map<String, Value>,
    prefix: &[LocItem],
    name: &'static str,
) -> Option<&'v Value> {
    let value = object.get(name);
    if value.is_none() {
        let mut loc = prefix.to_vec();
        loc.push(LocItem::from(name));
        errors.push(
            "missing",
            loc,
            "Field required",
            Value::Object(object.clone()),
            None,
        );
    }
    value
}

/// The fields a body's schema names, for [`forbid_unknown`]: read once from the schema the
/// document shows, so that the fields a body takes and the fields it documents are one list.
pub struct KnownFields {
    names: std::sync::OnceLock<Vec<String>>,
    schema: fn() -> utoipa::openapi::schema::Schema,
}

impl KnownFields {
    /// The fields of the object schema `schema` builds.
    pub const fn of(schema: fn() -> utoipa::openapi::schema::Schema) -> Self {
        KnownFields {
            names: std::sync::OnceLock::new(),
            schema,
        }
    }

    fn names(&self) -> &[String] {
        self.names.get_or_init(|| match (self.schema)() {
            utoipa::openapi::schema::Schema::Object(object) => {
                object.properties.keys().cloned().collect()
            }
            _ => Vec::new(),
        })
    }
}

/// Records `extra_forbidden` for every field of `object` (at `prefix`) that `known` does not
/// name, as pydantic's `extra="forbid"` does: a misspelt or misplaced field (`{"nodes": 50}`
/// for `target_node_count`) is a 422 naming it, never silently ignored.
pub fn forbid_unknown(
    errors: &mut Errors,
    object: &Map<String, Value>,
    prefix: &[LocItem],
    known: &KnownFields,
) {
    let names = known.names();
    for (name, value) in object {
        if !names.iter().any(|known| known == name) {
            let mut loc = prefix.to_vec();
            loc.push(LocItem::Name(std::borrow::Cow::Owned(name.clone())));
            errors.push(
                "extra_forbidden",
                loc,
                "Extra inputs are not permitted",
                value.clone(),
                None,
            );
        }
    }
}

/// The value of a field that was read without error: after [`Input::check`] has passed,
/// every field read is `Some`.
pub fn valid<T>(value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Internal("a validated input is missing".into()))
}

/// An operation's input that reads itself from a request.
pub trait FromInput: Sized {
    /// Whether the operation has a body to read.
    const READS_BODY: bool = false;

    /// Whether that body is JSON (415 for another `Content-Type`); an input that reads another
    /// media type (the collectors' protocols) checks its `Content-Type` itself.
    const READS_JSON: bool = true;

    /// Whether the body is a push of samples (the JSON push, the collectors' protocols): it is
    /// read, decoded and stored in a turn of the server's push gate, so that however many
    /// senders send their largest bodies at once, only so many are held in memory
    /// ([`crate::ApiState::with_concurrent_pushes`]).
    const PUSH: bool = false;

    /// Reads every field, in the order the original reported them: path, query, then body.
    /// Invalid fields are recorded in `input` and returned together by [`Input::check`].
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError>;
}

/// An operation's input, read and valid: the extractor handlers take.
#[derive(Debug)]
pub struct Valid<T>(pub T);

impl<T: FromInput + 'static> FromRequest for Valid<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let body = T::READS_BODY.then(|| payload.take());
        let state = req.app_data::<web::Data<ApiState>>();
        let limit = state.map_or(crate::DEFAULT_BODY_TIMEOUT, |state| state.body_timeout);
        let max_bytes = state.map_or(crate::MAX_BODY_BYTES, |state| state.max_body_bytes());
        let refusing = state.map(|state| state.until_refusing());
        let pushes = state
            .filter(|_| T::PUSH)
            .map(|state| std::sync::Arc::clone(&state.pushes));
        Box::pin(async move {
            // The turn is kept with the request (its extensions), so it ends with the response:
            // after the handler has stored what the body carried.
            if let Some(pushes) = pushes {
                let turn = pushes.enter().await?;
                actix_web::HttpMessage::extensions_mut(&req).insert(turn);
            }
            let bytes = match body {
                Some(payload) => {
                    if T::READS_JSON {
                        accepts_json(&req)?;
                    }
                    let reading =
                        actix_web::rt::time::timeout(limit, read_body(&req, payload, max_bytes));
                    // A body still arriving when the server stops taking requests is not
                    // waited for: the shutdown is bounded (docs/RELIABILITY.md).
                    let refused = async {
                        match refusing {
                            Some(refusing) => refusing.await,
                            None => std::future::pending::<()>().await,
                        }
                    };
                    Some(tokio::select! {
                        read = reading => read.map_err(|_| ApiError::BodyTimeout(limit))??,
                        () = refused => return Err(ApiError::ShuttingDown),
                    })
                }
                None => None,
            };
            let mut input = Input::new(&req, bytes.as_deref())?;
            let value = T::read(&mut input)?;
            input.check()?;
            Ok(Valid(value))
        })
    }
}

/// The media types a JSON body may be sent as: `application/json` and the `application/*+json`
/// family, with any parameters (`; charset=utf-8`).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// 415 unless the request's body is JSON by its `Content-Type`, or has none (read as JSON, as
/// the original did; a browser always sends one). A form or `text/plain` body is never parsed
/// as JSON: those are what a page of another origin can send without asking first
/// (`crate::guard` says more).
fn accepts_json(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    if is_json(&text) {
        return Ok(());
    }
    let shown: String = text.chars().take(100).collect();
    Err(ApiError::UnsupportedMediaType(format!(
        "The body is sent as {shown:?}; this operation reads JSON: send it with \
         Content-Type: application/json"
    )))
}

/// Reads a request body of at most `limit` bytes: 413 at once when its `Content-Length` says
/// more, or as soon as more has arrived (a chunked body), so an oversized body is never held
/// whole; 400 when it cannot be read.
async fn read_body(
    req: &HttpRequest,
    mut payload: actix_web::dev::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use futures_core::Stream;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    // The declared length at once (growing by doubling held up to twice the body), up to a
    // MiB: a declared length is not a body, and a client that sends none must not make the
    // server reserve its whole limit.
    let mut body = web::BytesMut::with_capacity(declared.map_or(0, |length| {
        usize::try_from(length).unwrap_or(limit).min(1 << 20)
    }));
    while let Some(chunk) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut payload).poll_next(cx)).await
    {
        let chunk = chunk.map_err(|e| ApiError::BadBody(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployments::DeploymentCreate;
    use actix_web::test::TestRequest;

    #[test]
    fn json_bodies_are_known_by_their_content_type() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            " application/json ",
        ] {
            assert!(is_json(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonx",
            "",
            "application/+json-ish",
        ] {
            assert!(!is_json(other), "{other}");
        }
    }

    #[actix_web::test]
    async fn a_body_still_arriving_when_the_server_refuses_is_a_503() {
        let db = netorch_storage::Database::connect("sqlite::memory:").expect("database");
        let state = web::Data::new(ApiState::new(db, 10));
        let req = TestRequest::post()
            .uri("/deployments")
            .app_data(state.clone())
            .to_http_request();
        let (_sender, stalled) = actix_http::h1::Payload::create(false);
        let mut payload = actix_web::dev::Payload::from(stalled);
        let reading = Valid::<DeploymentCreate>::from_request(&req, &mut payload);
        state.start_draining();
        state.start_refusing();
        match reading.await {
            Err(ApiError::ShuttingDown) => {}
            other => panic!("expected a 503, got {:?}", other.map(|_| ())),
        }
    }

    #[actix_web::test]
    async fn a_body_that_stops_coming_is_a_408() {
        let db = netorch_storage::Database::connect("sqlite::memory:").expect("database");
        let limit = std::time::Duration::from_millis(50);
        let state = web::Data::new(ApiState::new(db, 10).with_body_timeout(limit));
        let req = TestRequest::post()
            .uri("/deployments")
            .app_data(state)
            .to_http_request();
        // A chunked body whose sender never sends its end.
        let (_sender, stalled) = actix_http::h1::Payload::create(false);
        let mut payload = actix_web::dev::Payload::from(stalled);
        let started = std::time::Instant::now();
        match Valid::<DeploymentCreate>::from_request(&req, &mut payload).await {
            Err(ApiError::BodyTimeout(waited)) => assert_eq!(waited, limit),
            other => panic!("expected a 408, got {:?}", other.map(|_| ())),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let response = actix_web::ResponseError::error_response(&ApiError::BodyTimeout(limit));
        assert_eq!(
            response.status(),
            actix_web::http::StatusCode::REQUEST_TIMEOUT
        );
    }
}
