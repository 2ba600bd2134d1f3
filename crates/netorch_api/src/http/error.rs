//! The one place errors become HTTP responses, and the bodies they are serialized as.
//!
//! Every error body the API sends is one of the types below, and those same types are what
//! the OpenAPI document lists: [`ErrorDetail`] (404, 413, 503, ...), [`ValidationError`] (422)
//! and [`ConflictDetail`] (409). Each carries the request's id (`request_id`, the
//! `X-Request-Id` of the response) for a user to quote when reporting a problem. This module
//! is a leaf of the crate: it imports nothing else from it but the leaf `request_id`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use netorch_domain::{DomainError, NodeState, OperatorAction};
use netorch_storage::StorageError;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, OneOfBuilder, Schema, SchemaType, Type};

/// One step of [`FieldError::loc`]: a name (`"body"`, `"samples"`) or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LocItem {
    /// A source or a field name.
    Name(Cow<'static, str>),
    /// The index of an item in a list.
    Index(usize),
}

impl From<&'static str> for LocItem {
    fn from(name: &'static str) -> Self {
        LocItem::Name(Cow::Borrowed(name))
    }
}

impl From<usize> for LocItem {
    fn from(index: usize) -> Self {
        LocItem::Index(index)
    }
}

fn loc_item_schema() -> Schema {
    OneOfBuilder::new()
        .item(Object::with_type(Type::String))
        .item(Object::with_type(Type::Integer))
        .into()
}

fn loc_schema() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::T(loc_item_schema()))
        .description(Some(
            "Where: `[\"body\", \"name\"]`, `[\"query\", \"limit\"]`, \
             `[\"body\", \"samples\", 3, \"node_id\"]`, ...",
        ))
        .into()
}

fn any_value_schema() -> Schema {
    Object::builder()
        .schema_type(SchemaType::AnyValue)
        .description(Some("The offending value as received: any JSON value."))
        .into()
}

fn optional_object_schema() -> Schema {
    Object::builder()
        .schema_type(Type::Object)
        .description(Some(
            "The limit that was broken, for range and length errors (`{\"ge\": 1}`, ...).",
        ))
        .into()
}

fn current_state_schema() -> Schema {
    crate::http::choice::schema::<NodeState>("The node's state")
}

fn allowed_actions_schema() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::T(crate::http::choice::schema::<OperatorAction>(
            "An action the node's state allows",
        )))
        .description(Some("The actions the state allows (`retry` from `FAILED`)"))
        .into()
}

/// One invalid input, in FastAPI's shape: `{"type", "loc", "msg", "input"}` (plus `ctx` for
/// limits).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// A machine-readable kind: `missing`, `int_parsing`, `greater_than_equal`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where the input was: its source, then field names and list indexes.
    #[schema(schema_with = loc_schema)]
    pub loc: Vec<LocItem>,
    /// A sentence for humans.
    pub msg: String,
    /// The offending value as received.
    #[schema(schema_with = any_value_schema)]
    pub input: Value,
    /// The limit that was broken, for range and length errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = optional_object_schema)]
    pub ctx: Option<Value>,
}

impl FieldError {
    /// An invalid input of `kind` at `loc`, `msg` saying why, `input` as received.
    pub fn new(
        kind: &'static str,
        loc: impl Into<Vec<LocItem>>,
        msg: impl Into<String>,
        input: impl Into<Value>,
    ) -> Self {
        FieldError {
            kind,
            loc: loc.into(),
            msg: msg.into(),
            input: input.into(),
            ctx: None,
        }
    }

    /// The same, with the limit that was broken.
    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

/// The body of a 422: every invalid input of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationError {
    /// Every invalid input, in the order the request's fields are read.
    pub detail: Vec<FieldError>,
    /// The request's id, as in its `X-Request-Id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The body of 404, 405, 413, 503 and the other errors that carry one message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What is wrong: "Deployment not found", "Node not found", "Database unavailable", ...
    pub detail: Cow<'static, str>,
    /// The request's id, as in its `X-Request-Id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorDetail {
    /// The body for `detail`, with the id of the request being handled.
    pub fn new(detail: impl Into<Cow<'static, str>>) -> Self {
        ErrorDetail {
            detail: detail.into(),
            request_id: crate::request_id::current(),
        }
    }
}

/// The body of a 409: the node's state does not allow the action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConflictDetail {
    /// What was refused and why.
    pub detail: String,
    /// The node's state.
    #[schema(schema_with = current_state_schema)]
    pub current_state: NodeState,
    /// The actions the state allows (`retry` from `FAILED`).
    #[schema(schema_with = allowed_actions_schema)]
    pub allowed_actions: Vec<OperatorAction>,
    /// The request's id, as in its `X-Request-Id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The detail of every answer given while the server shuts down.
pub const SHUTTING_DOWN: &str = "Server is shutting down";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 `{"detail": "Deployment not found"}` and the like.
    #[error("{0}")]
    NotFound(&'static str),
    /// 422 with the list of invalid inputs.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// 401 with `WWW-Authenticate: Bearer`: no token, or one no active key has.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: the key's role may not do this, or a browser page of another origin may not change
    /// anything here.
    #[error("{0}")]
    Forbidden(String),
    /// 421: the `Host` header names a host this server does not answer to (DNS rebinding).
    #[error("{0}")]
    MisdirectedHost(String),
    /// 415: the body's `Content-Type` is one the operation does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`: the caller is over its rate limit.
    #[error("rate limited: retry after {retry_after} s")]
    TooManyRequests {
        /// Seconds after which the next request passes.
        retry_after: u64,
    },
    /// 409: the node's state does not allow the action.
    #[error("{}", .0.detail)]
    Conflict(ConflictDetail),
    /// 409 `{"detail": ...}`: what the request asks of an alert its state does not allow.
    #[error("{0}")]
    StateConflict(String),
    /// 413: the body is larger than the server takes.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 408: the body did not arrive in time (a client that declared more than it sent).
    #[error("request body not received within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// 400: the body could not be read (a broken chunked encoding, a bad `Content-Length`).
    #[error("request body could not be read: {0}")]
    BadBody(String),
    /// 400 `{"detail": ...}` with the text as it is: a collector's protocol refused some or all
    /// of a request's points, or could not decode it (the sender must not retry it).
    #[error("{0}")]
    Refused(String),
    /// 507: the database has no room for the write (a full disk, or a SQLite size cap).
    #[error("database out of space: {0}")]
    OutOfSpace(String),
    /// 503 with `Retry-After`: the server is at its limit of concurrent heavy requests.
    #[error("busy: retry after {retry_after} s")]
    Busy {
        /// Seconds after which a retry is likely to be admitted.
        retry_after: u64,
    },
    /// 503: the database does not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 503 with `Retry-After` and `Connection: close`: the server is in the last moments of a
    /// shutdown and takes nothing more (a body still arriving is not waited for).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// 500: a bug, or a database failure that is not the request's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for one field.
    pub fn invalid(error: FieldError) -> Self {
        ApiError::Invalid(vec![error])
    }
}

impl From<netorch_service::ServiceError> for ApiError {
    fn from(error: netorch_service::ServiceError) -> Self {
        match error {
            netorch_service::ServiceError::Storage(error) => error.into(),
            netorch_service::ServiceError::StartAfterEnd { start } => {
                ApiError::Invalid(vec![FieldError::new(
                    "value_error",
                    [LocItem::from("query"), LocItem::from("start_time")],
                    "Value error, start_time must not be after end_time",
                    start.to_rfc3339(),
                )])
            }
            netorch_service::ServiceError::TooManyBuckets { step, resolution } => {
                let name = resolution.map_or("raw", netorch_domain::Resolution::as_str);
                ApiError::Invalid(vec![FieldError::new(
                    "value_error",
                    [LocItem::from("query"), LocItem::from("step")],
                    format!(
                        "Value error, the range holds too many {name} buckets (at most {} \
                         buckets, and at most an hour of raw samples): choose a coarser step or \
                         a shorter range",
                        netorch_service::series::MAX_BUCKETS
                    ),
                    step,
                )])
            }
            // The inputs were validated before the call: an operation refusing one is a bug.
            // (No HTTP operation makes keys: a key's refusals reach only the command line.)
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        error.count();
        if error.is_out_of_space() {
            return ApiError::OutOfSpace(error.to_string());
        }
        match error {
            StorageError::DeploymentNotFound => ApiError::NotFound("Deployment not found"),
            StorageError::NodeNotFound => ApiError::NotFound("Node not found"),
            StorageError::AlertNotFound => ApiError::NotFound("Alert not found"),
            StorageError::SilenceNotFound => ApiError::NotFound("Silence not found"),
            StorageError::ReceiverNotFound => ApiError::NotFound("Receiver not found"),
            StorageError::NotificationNotFound => ApiError::NotFound("Notification not found"),
            StorageError::ReceiverExists(_) => ApiError::StateConflict(error.to_string()),
            StorageError::AlertNotFiring(_) => ApiError::StateConflict(error.to_string()),
            StorageError::Domain(DomainError::IllegalTransition {
                from,
                trigger,
                allowed_actions,
            }) => ApiError::Conflict(ConflictDetail {
                detail: format!(
                    "cannot {trigger} a node in state {from}; allowed actions: {}",
                    if allowed_actions.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed_actions
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
                current_state: from,
                allowed_actions,
                request_id: None,
            }),
            StorageError::Pool(e) => ApiError::Unavailable(e.to_string()),
            StorageError::Connection(e) => ApiError::Unavailable(e.to_string()),
            // SQLite's writers waited past the busy timeout: the same request later succeeds,
            // so a 503 a sender retries, never a 500 it gives up on.
            other if other.is_database_locked() => {
                log::warn!("database busy: {other}");
                ApiError::Busy { retry_after: 1 }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) | ApiError::StateConflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::OutOfSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::BadBody(_) | ApiError::Refused(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Busy { .. } | ApiError::Unavailable(_) | ApiError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let detail = |text: Cow<'static, str>| ErrorDetail::new(text);
        match self {
            ApiError::NotFound(text) => response.json(detail(Cow::Borrowed(text))),
            ApiError::Invalid(errors) => response.json(ValidationError {
                detail: errors.clone(),
                request_id: crate::request_id::current(),
            }),
            ApiError::Conflict(conflict) => response.json(ConflictDetail {
                request_id: crate::request_id::current(),
                ..conflict.clone()
            }),
            ApiError::Unauthorized(text) => response
                .insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"))
                .json(detail(Cow::Borrowed(text))),
            ApiError::Forbidden(text)
            | ApiError::MisdirectedHost(text)
            | ApiError::UnsupportedMediaType(text)
            | ApiError::StateConflict(text)
            | ApiError::Refused(text) => response.json(detail(Cow::Owned(text.clone()))),
            ApiError::TooManyRequests { retry_after } => response
                .insert_header((
                    actix_web::http::header::RETRY_AFTER,
                    retry_after.to_string(),
                ))
                .json(detail(Cow::Borrowed(
                    "Too many requests: over the rate limit; retry after the time in Retry-After",
                ))),
            ApiError::PayloadTooLarge(limit) => response.json(detail(Cow::Owned(format!(
                "Request body is larger than {limit} bytes"
            )))),
            ApiError::BodyTimeout(limit) => {
                // The connection cannot be reused: the rest of the body may still come.
                response.force_close();
                response.json(detail(Cow::Owned(format!(
                    "The request body did not arrive within {} s",
                    limit.as_secs_f64()
                ))))
            }
            ApiError::BadBody(reason) => response.json(detail(Cow::Owned(format!(
                "Request body could not be read: {reason}"
            )))),
            ApiError::OutOfSpace(reason) => {
                log::error!("database out of space: {reason}");
                response.json(detail(Cow::Borrowed(
                    "The database is out of space: writes fail until space is freed; nothing \
                     of this request was written",
                )))
            }
            ApiError::Busy { retry_after } => response
                .insert_header((
                    actix_web::http::header::RETRY_AFTER,
                    retry_after.to_string(),
                ))
                .json(detail(Cow::Borrowed(
                    "Too many reports are running; retry after the time in Retry-After",
                ))),
            ApiError::ShuttingDown => {
                response
                    .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
                    .force_close();
                response.json(detail(Cow::Borrowed(SHUTTING_DOWN)))
            }
            ApiError::Unavailable(reason) => {
                log::warn!("database unavailable: {reason}");
                response.json(detail(Cow::Borrowed("Database unavailable")))
            }
            ApiError::Internal(reason) => {
                log::error!("internal error: {reason}");
                response.json(detail(Cow::Borrowed("Internal server error")))
            }
        }
    }
}
