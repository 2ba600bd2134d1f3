//! `GET /deployments/{id}/events/stream`: the audit log as Server-Sent Events.
//!
//! Server and workers talk only through the database, so the stream polls it: every
//! [`EventStreamTiming::poll`] it reads the events after the last one sent (a page of at most
//! [`PAGE`], read again at once while pages come full). The stream is pulled: the next page is
//! read only when actix asks for more, which it does only as the client takes what was sent, so a
//! slow client holds at most one page in the server, whatever the rate of events. A comment line
//! goes out after [`EventStreamTiming::heartbeat`] without events, so proxies and clients see the
//! connection alive. The stream ends once the deployment is gone and its last events (its
//! `DEPLOYMENT_DELETED` last) are sent, when the server starts draining for a shutdown, or when
//! the key it was opened with stops being valid (revoked or expired: looked up again as the
//! stream polls, so within [`crate::auth::KEY_CACHE_TTL`] and a poll). Its last message is an
//! [`END_EVENT`] that says why ([`EndReason`]), so a client knows whether to reconnect.

use super::ReadEvents;
use crate::http::blocking::with_db;
use crate::http::error::ErrorDetail;
use crate::http::input::paths::DEPLOYMENT_ID;
use crate::http::input::{FromInput, Input, IntField, Valid, valid};
use crate::http::shapes::params;
use crate::{ApiError, ApiState};
use actix_web::HttpResponse;
use actix_web::web::{self, Bytes};
use netorch_domain::{DeploymentId, EventId};
use netorch_service::events;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

/// Events read at most per page.
pub(crate) const PAGE: i64 = 500;

/// The type of a stream's last message: `event: end`, with `data` `{"reason", "detail"}`. It
/// has no `id`, so it moves no client's `Last-Event-ID`.
pub const END_EVENT: &str = "end";

/// One message of the stream as the OpenAPI document shows it: an event stream's `schema`
/// describes each event (Open API before 3.2), read as a client's `EventSource` reads it, an
/// object of the message's fields (comments and the opening `retry` carry no data and are not
/// events).
pub struct StreamMessage;

impl utoipa::PartialSchema for StreamMessage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let names = netorch_domain::EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .chain([END_EVENT]);
        let end_reasons: Vec<&str> = EndReason::ALL.iter().map(|r| r.as_str()).collect();
        ObjectBuilder::new()
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$"))
                    .description(Some(
                        "The event's id, the cursor for Last-Event-ID (the end message has none)",
                    )),
            )
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names))
                    .description(Some(
                        "The event's event_type, or `end` for the last message",
                    )),
            )
            .required("event")
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(format!(
                        "JSON: the event as in GET .../events (an Event); for `end`, \
                     {{\"reason\", \"detail\"}} with reason one of {}",
                        end_reasons.join(", ")
                    ))),
            )
            .required("data")
            .property("retry", ObjectBuilder::new().schema_type(Type::Integer))
            .into()
    }
}

impl utoipa::ToSchema for StreamMessage {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("StreamMessage")
    }
}

/// Why a stream ended, the `reason` of its [`END_EVENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The deployment was deleted and its last event sent: reconnecting finds nothing.
    DeploymentDeleted,
    /// The server is shutting down: reconnect (to another server) with `Last-Event-ID`.
    ServerShuttingDown,
    /// The key the stream was opened with was revoked or expired: reconnecting needs another.
    KeyInvalid,
    /// The database did not answer: reconnect with `Last-Event-ID`.
    DatabaseUnavailable,
}

impl EndReason {
    /// Every reason, as the document lists them.
    pub const ALL: [EndReason; 4] = [
        EndReason::DeploymentDeleted,
        EndReason::ServerShuttingDown,
        EndReason::KeyInvalid,
        EndReason::DatabaseUnavailable,
    ];

    /// Its name in the message.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::DeploymentDeleted => "deployment_deleted",
            EndReason::ServerShuttingDown => "server_shutting_down",
            EndReason::KeyInvalid => "key_invalid",
            EndReason::DatabaseUnavailable => "database_unavailable",
        }
    }

    fn detail(self) -> &'static str {
        match self {
            EndReason::DeploymentDeleted => "The deployment was deleted; its last event was sent",
            EndReason::ServerShuttingDown => {
                "The server is shutting down; reconnect with Last-Event-ID"
            }
            EndReason::KeyInvalid => {
                "The API key this stream was opened with was revoked or has expired"
            }
            EndReason::DatabaseUnavailable => {
                "The database did not answer; reconnect with Last-Event-ID"
            }
        }
    }

    /// The [`END_EVENT`] message saying this.
    fn message(self) -> Bytes {
        let data = serde_json::json!({"reason": self.as_str(), "detail": self.detail()});
        Bytes::from(format!("event: {END_EVENT}\ndata: {data}\n\n"))
    }
}

/// How often a stream looks for new events, and how long it stays silent before a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventStreamTiming {
    /// Between reads that found nothing new (default 1 s).
    pub poll: Duration,
    /// Silence before a heartbeat comment (default 15 s).
    pub heartbeat: Duration,
}

impl Default for EventStreamTiming {
    fn default() -> Self {
        EventStreamTiming {
            poll: Duration::from_secs(1),
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// One page read: the events as SSE text, the last one's id, whether the page was full, and
/// whether the deployment still exists.
pub(crate) struct Page {
    text: String,
    last: Option<EventId>,
    full: bool,
    exists: bool,
}

impl Page {
    /// Whether the page holds no event.
    pub(crate) fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// Whether the deployment still exists.
    pub(crate) fn exists(&self) -> bool {
        self.exists
    }
}

/// Reads the events of `deployment` after `after`, formatted as SSE messages: `id` is the
/// event's id (what a client sends back as `Last-Event-ID`), `event` its type, `data` the event
/// as `GET .../events` shows it.
pub(crate) async fn read_page(
    state: &ApiState,
    deployment: DeploymentId,
    after: Option<EventId>,
) -> Result<Page, ApiError> {
    let followed = with_db(state, move |conn| {
        Ok(events::follow(conn, deployment, after, PAGE)?)
    })
    .await?;
    let (found, exists) = (followed.events, followed.deployment_exists);
    let full = found.len() as i64 == PAGE;
    let last = found.last().map(|e| e.id);
    let mut text = String::new();
    for event in found {
        let out = crate::events::EventOut::from(event);
        let data = serde_json::to_string(&out).map_err(|e| ApiError::Internal(e.to_string()))?;
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "id: {}\nevent: {}\ndata: {data}\n\n",
            out.id, out.event_type
        );
    }
    Ok(Page {
        text,
        last,
        full,
        exists,
    })
}

/// What the next read brought.
enum Step {
    Page(Page),
    Heartbeat,
    End(EndReason),
}

type Pending = Pin<Box<dyn Future<Output = Result<Step, ApiError>>>>;

/// The body of a stream response.
pub(crate) struct EventStream {
    state: web::Data<ApiState>,
    deployment: DeploymentId,
    cursor: Option<EventId>,
    /// Read again without waiting: the last page was full.
    behind: bool,
    /// Whether the deployment existed at the last read.
    exists: bool,
    /// When the last bytes went out.
    last_sent: Instant,
    /// Sent first: the reconnection delay and the first page.
    opening: Option<Bytes>,
    pending: Option<Pending>,
    /// The SHA-256 of the token the stream was opened with (keys on), looked up again as it
    /// polls.
    credential: Option<String>,
    ended: bool,
}

impl EventStream {
    /// A stream that starts with `first` (read after `after`).
    pub(crate) fn new(
        state: web::Data<ApiState>,
        deployment: DeploymentId,
        after: Option<EventId>,
        first: Page,
        credential: Option<String>,
    ) -> Self {
        // EventSource waits this long before reconnecting (with Last-Event-ID).
        let opening = format!("retry: 2000\n\n{}", first.text);
        EventStream {
            state,
            deployment,
            cursor: first.last.or(after),
            behind: first.full,
            exists: first.exists,
            last_sent: Instant::now(),
            opening: Some(Bytes::from(opening)),
            pending: None,
            credential,
            ended: false,
        }
    }

    fn next_step(&self) -> Pending {
        let state = self.state.clone();
        let (deployment, cursor, behind) = (self.deployment, self.cursor, self.behind);
        let (exists, last_sent) = (self.exists, self.last_sent);
        let credential = self.credential.clone();
        let timing = state.event_stream_timing();
        Box::pin(async move {
            if !exists && !behind {
                // Everything up to the deployment's delete has been sent.
                return Ok(Step::End(EndReason::DeploymentDeleted));
            }
            loop {
                if !behind {
                    tokio::time::sleep(timing.poll).await;
                }
                if state.is_draining() {
                    return Ok(Step::End(EndReason::ServerShuttingDown));
                }
                if let Some(hash) = &credential
                    && crate::auth::still_valid(&state, hash).await
                        == Err(crate::auth::KeyGone::Invalid)
                {
                    return Ok(Step::End(EndReason::KeyInvalid));
                }
                let page = read_page(&state, deployment, cursor).await?;
                if !page.is_empty() || !page.exists {
                    return Ok(Step::Page(page));
                }
                if last_sent.elapsed() >= timing.heartbeat {
                    return Ok(Step::Heartbeat);
                }
            }
        })
    }
}

impl futures_core::Stream for EventStream {
    // A failed read ends the stream (logged): the client reconnects with Last-Event-ID.
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(opening) = self.opening.take() {
            return Poll::Ready(Some(Ok(opening)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let mut pending = match self.pending.take() {
            Some(pending) => pending,
            None => self.next_step(),
        };
        let step = match pending.as_mut().poll(cx) {
            Poll::Pending => {
                self.pending = Some(pending);
                return Poll::Pending;
            }
            Poll::Ready(step) => step,
        };
        self.last_sent = Instant::now();
        match step {
            Ok(Step::Page(page)) => {
                self.cursor = page.last.or(self.cursor);
                self.behind = page.full;
                self.exists = page.exists;
                if page.text.is_empty() {
                    // The deployment is gone and nothing is left to send.
                    self.ended = true;
                    return Poll::Ready(Some(Ok(EndReason::DeploymentDeleted.message())));
                }
                Poll::Ready(Some(Ok(Bytes::from(page.text))))
            }
            Ok(Step::Heartbeat) => Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n")))),
            Ok(Step::End(reason)) => {
                self.ended = true;
                Poll::Ready(Some(Ok(reason.message())))
            }
            Err(e) => {
                log::warn!(
                    "event stream of deployment {} ended: {e}",
                    self.deployment.get()
                );
                self.ended = true;
                Poll::Ready(Some(Ok(EndReason::DatabaseUnavailable.message())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_way_a_stream_ends() {
        use utoipa::OpenApi;
        let document = crate::ApiDoc::openapi();
        let stream = document
            .paths
            .paths
            .get("/deployments/{deployment_id}/events/stream")
            .and_then(|item| item.get.as_ref())
            .expect("the stream's operation");
        let text = format!("{:?}", stream.description);
        for reason in EndReason::ALL {
            assert!(
                text.contains(reason.as_str()),
                "{} is not documented",
                reason.as_str()
            );
            let message = String::from_utf8_lossy(&reason.message()).into_owned();
            assert!(message.starts_with("event: end\ndata: {"), "{message}");
            assert!(!message.contains("\nid:"), "an end moves no Last-Event-ID");
        }
    }
}

/// `GET /deployments/{deployment_id}/events/stream`.
#[derive(Debug, Clone, Copy)]
pub struct StreamEvents {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Only events after this id: the `Last-Event-ID` a reconnecting client sends, else `after`.
    pub after: Option<EventId>,
    /// Without a cursor, start with the last this many events instead of the first.
    pub tail: Option<i64>,
}

impl StreamEvents {
    /// The id of the last event a client received, sent back when it reconnects.
    pub const LAST_EVENT_ID: IntField = IntField::new(
        "Last-Event-ID",
        "Resume after this event id (what EventSource sends when it reconnects); wins over after",
    )
    .min(0);
    /// Where a live view starts.
    pub const TAIL: IntField = IntField::new(
        "tail",
        "Without after or Last-Event-ID: start with the last this many events recorded so far \
         instead of the first (what a live view opens with)",
    )
    .min(1)
    .max(1000);
}

impl FromInput for StreamEvents {
    fn read(input: &mut Input<'_>) -> Result<Self, ApiError> {
        let deployment = input.path_int(&DEPLOYMENT_ID);
        let after = input.query_int(&ReadEvents::AFTER);
        let last_event = input.header_int(&Self::LAST_EVENT_ID);
        let tail = input.query_int(&Self::TAIL);
        input.check()?;
        Ok(StreamEvents {
            deployment: DeploymentId(valid(deployment)?),
            after: last_event.or(after).map(EventId),
            tail,
        })
    }
}

params!(
    StreamEvents,
    vec![
        DEPLOYMENT_ID.parameter(ParameterIn::Path),
        ReadEvents::AFTER.parameter(ParameterIn::Query),
        StreamEvents::TAIL.parameter(ParameterIn::Query),
        StreamEvents::LAST_EVENT_ID.parameter(ParameterIn::Header),
    ]
);

/// Follow the audit log live
///
/// The deployment's events as Server-Sent Events (`text/event-stream`), oldest first: first
/// those after `after` (or after the `Last-Event-ID` header, which a reconnecting EventSource
/// sends; every event is sent with its id; with neither, from the first event, or with `tail` from
/// the last `tail` events so far), then each new one as it is recorded. Each message
/// is `id: <event id>`, `event: <event_type>` and `data: <the event as GET .../events shows
/// it>`. The stream opens with `retry: 2000`, sends a `: keep-alive` comment after 15 s without
/// events, and ends after the deployment's `DEPLOYMENT_DELETED` event, when the server shuts
/// down, or when the key it was opened with is revoked or expires (within about 2 s); its last
/// message is always `event: end` with `data` `{"reason", "detail"}`, `reason` one of
/// `deployment_deleted`, `server_shutting_down`, `key_invalid` and `database_unavailable`. New
/// events are found by polling the database once a second. 404 when the deployment does not
/// exist and no event of it lies after the cursor. With `curl -N`.
#[utoipa::path(
    get, path = "/deployments/{deployment_id}/events/stream", tag = "events",
    params(StreamEvents),
    responses(
        (status = 200, description = "An endless stream of events (text/event-stream); each message is one StreamMessage", content_type = "text/event-stream", body = crate::events::stream::StreamMessage),
        (status = 404, description = "Deployment not found", body = ErrorDetail),
    )
)]
pub async fn stream_events(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    Valid(StreamEvents {
        deployment,
        after,
        tail,
    }): Valid<StreamEvents>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::HttpMessage;
    let credential = req
        .extensions()
        .get::<crate::auth::Credential>()
        .map(|credential| credential.0.clone());
    let after = match (after, tail) {
        (None, Some(count)) => {
            with_db(&state, move |conn| {
                Ok(events::cursor_before_last(conn, deployment, count)?)
            })
            .await?
        }
        _ => after,
    };
    let first = crate::events::stream::read_page(&state, deployment, after).await?;
    if first.is_empty() && !first.exists() {
        return Err(ApiError::NotFound("Deployment not found"));
    }
    let stream =
        crate::events::stream::EventStream::new(state, deployment, after, first, credential);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .streaming(stream))
}
