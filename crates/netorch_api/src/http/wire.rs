//! Requests actix cannot parse, answered in the API's JSON.
//!
//! actix-http answers a request line or header block it cannot parse (a target longer than
//! 64 KiB, a malformed line, more than 96 headers or 128 KiB of them, a head that does not
//! arrive in time) itself, before any middleware runs, with an empty body. [`Checked`] wraps
//! each connection's socket and reads the bytes with the same decoder actix uses
//! (`actix_http::h1::Codec`) before actix sees them: a head the decoder refuses is withheld
//! from actix, which sees the connection end after the requests before it, and when it closes
//! the connection the refusal goes out first, as a JSON `{"detail", "request_id"}` with
//! `X-Request-Id`, counted in the metrics (route `malformed`) and logged like any request.
//! The same reader gives every request head [`HEAD_TIMEOUT`] to arrive (a 408 in JSON), on the
//! first request of a connection as actix does, and on the later ones too.
//!
//! Bodies are framed by the same decoder but judged by the handlers (a broken chunked body is
//! the handler's 400, an oversized one its 413): after an error inside a body, or an upgrade,
//! the reader only passes bytes on.

use crate::http::error::ErrorDetail;
use actix_codec::Decoder;
use actix_http::h1::{Codec, Message, MessageType};
use actix_http::{ServiceConfig, ServiceConfigBuilder, error::ParseError};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a request's line and headers may take to arrive (actix's default for the first
/// request of a connection).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection whose request was refused is read (and what arrives dropped) after
/// the refusal went out, so that the client receives it rather than a reset for unread bytes.
const LINGER: Duration = Duration::from_secs(1);

/// The route label of a refused head in the metrics.
pub const MALFORMED: &str = "malformed";

/// Where refusals are counted and logged.
#[derive(Debug, Clone)]
pub(crate) struct Observer {
    pub(crate) metrics: Arc<netorch_metrics::Metrics>,
    pub(crate) access_log: bool,
}

/// What the connections of one HTTP worker thread share: the decoder's configuration (made once
/// per thread: it keeps a clock task on it), the time a head may take, and the observer.
#[derive(Clone)]
pub(crate) struct Reading {
    config: ServiceConfig,
    head_timeout: Duration,
    observer: Option<Observer>,
}

impl Reading {
    /// For the connections of the current thread (call it on an actix runtime).
    pub(crate) fn new(observer: Option<Observer>) -> Self {
        Reading {
            config: ServiceConfigBuilder::new().build(),
            head_timeout: HEAD_TIMEOUT,
            observer,
        }
    }
}

/// A whole HTTP/1.1 error answer written without actix (for a request actix never sees):
/// `status`, the JSON `{"detail", "request_id"}` with `X-Request-Id`, the `extra` headers, and
/// `Connection: close`. Returns it with the request id it carries.
pub(crate) fn error_reply(
    status: StatusCode,
    detail: String,
    extra: &[(&str, &str)],
) -> (Bytes, String) {
    let id = crate::request_id::generate();
    let body = serde_json::to_vec(&ErrorDetail {
        detail: detail.into(),
        request_id: Some(id.clone()),
    })
    .unwrap_or_default();
    let mut reply = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-request-id: {id}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    );
    for (name, value) in extra {
        reply.push_str(&format!("{name}: {value}\r\n"));
    }
    reply.push_str("\r\n");
    let mut reply = reply.into_bytes();
    reply.extend_from_slice(&body);
    (Bytes::from(reply), id)
}

/// A refused request head: the answer, and how much of it is written.
struct Refusal {
    reply: Bytes,
    written: usize,
    /// Reading what the client still sends, until this moment.
    linger: Option<Pin<Box<Sleep>>>,
}

/// A connection's socket, read through actix's own request decoder first (see the module).
pub(crate) struct Checked<T> {
    io: T,
    peer: Option<std::net::SocketAddr>,
    observer: Option<Observer>,
    head_timeout: Duration,
    codec: Codec,
    /// Bytes read and not yet decoded (a head in progress, a part of a body).
    pending: BytesMut,
    /// Bytes read from the socket so far, and of them the ones decoded.
    read: u64,
    decoded: u64,
    /// Inside a request's body.
    in_body: bool,
    /// Heads decoded so far.
    heads: u64,
    /// Reading no more (after an error inside a body, or an upgrade): bytes are passed on.
    transparent: bool,
    /// The head in progress must be whole by then.
    head_deadline: Option<Pin<Box<Sleep>>>,
    refusal: Option<Refusal>,
}

impl<T> Checked<T> {
    /// `io`, a connection from `peer` just accepted: its first head is due within the head
    /// timeout.
    pub(crate) fn new(io: T, peer: Option<std::net::SocketAddr>, reading: &Reading) -> Self {
        Checked {
            io,
            peer,
            observer: reading.observer.clone(),
            head_timeout: reading.head_timeout,
            codec: Codec::new(reading.config.clone()),
            pending: BytesMut::new(),
            read: 0,
            decoded: 0,
            in_body: false,
            heads: 0,
            transparent: false,
            head_deadline: Some(Box::pin(tokio::time::sleep(reading.head_timeout))),
            refusal: None,
        }
    }

    /// Decodes what has arrived; the stream offset from which bytes must be withheld from
    /// actix when a head was refused.
    fn inspect(&mut self, cx: &mut Context<'_>) -> Option<u64> {
        loop {
            let before = self.pending.len();
            // Where the message being decoded begins: the decoder may take a head's bytes
            // before it finds a header it refuses.
            let begins = self.decoded;
            let decoded = self.codec.decode(&mut self.pending);
            self.decoded += (before - self.pending.len()) as u64;
            match decoded {
                Ok(Some(Message::Item(_))) => {
                    self.heads += 1;
                    self.head_deadline = None;
                    match self.codec.message_type() {
                        MessageType::None => self.in_body = false,
                        MessageType::Payload => self.in_body = true,
                        MessageType::Stream => {
                            self.stop_reading();
                            return None;
                        }
                    }
                }
                Ok(Some(Message::Chunk(Some(_)))) => {}
                Ok(Some(Message::Chunk(None))) => self.in_body = false,
                Ok(None) => break,
                Err(_) if self.in_body => {
                    self.stop_reading();
                    return None;
                }
                Err(error) => {
                    let (status, detail) = refusal_of(&error);
                    self.refuse(status, detail);
                    return Some(begins);
                }
            }
        }
        // A head begun: it has its time to arrive whole.
        if !self.in_body && !self.pending.is_empty() && self.head_deadline.is_none() {
            let mut deadline = Box::pin(tokio::time::sleep(self.head_timeout));
            // Polled once, so that its expiry wakes the connection.
            let _ = deadline.as_mut().poll(cx);
            self.head_deadline = Some(deadline);
        }
        None
    }

    /// Refuses the head that did not arrive within its time.
    fn refuse_late(&mut self) {
        self.refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "The request's line and headers did not arrive within {} s",
                self.head_timeout.as_secs_f64()
            ),
        );
    }

    fn stop_reading(&mut self) {
        self.transparent = true;
        self.head_deadline = None;
        self.pending = BytesMut::new();
    }

    /// Refuses the head in progress: actix reads no more of this connection, and the refusal
    /// goes out when it closes it.
    fn refuse(&mut self, status: StatusCode, detail: String) {
        let (reply, id) = error_reply(status, detail, &[]);
        if let Some(observer) = &self.observer {
            observer
                .metrics
                .http_request(MALFORMED, "other", status.as_u16(), 0.0);
            if observer.access_log {
                let peer = self
                    .peer
                    .map_or_else(|| "-".to_owned(), |a| a.ip().to_string());
                let status = status.as_u16();
                log::info!(
                    target: "netorch::access",
                    request_id = id.as_str(), route = MALFORMED, status = status;
                    "{peer} \"(malformed request)\" {status}"
                );
            }
        }
        self.head_deadline = None;
        self.pending = BytesMut::new();
        self.refusal = Some(Refusal {
            reply,
            written: 0,
            linger: None,
        });
    }
}

/// The status and detail of a head the decoder refused.
fn refusal_of(error: &ParseError) -> (StatusCode, String) {
    match error {
        ParseError::TooLarge => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request's headers are too large: at most 96 headers and 128 KiB with the \
             request line"
                .to_owned(),
        ),
        ParseError::Uri(error) if error.to_string().contains("too long") => (
            StatusCode::URI_TOO_LONG,
            "The request target is too long: at most 65,534 bytes".to_owned(),
        ),
        ParseError::Uri(error) => (
            StatusCode::BAD_REQUEST,
            format!("The request target is not a valid URI: {error}"),
        ),
        ParseError::Method => (
            StatusCode::BAD_REQUEST,
            "The request's method is not a valid token".to_owned(),
        ),
        ParseError::Version => (
            StatusCode::BAD_REQUEST,
            "The request's HTTP version is not HTTP/1.0 or HTTP/1.1".to_owned(),
        ),
        ParseError::Header => (
            StatusCode::BAD_REQUEST,
            "The request line or a header is malformed, or Content-Length and Transfer-Encoding disagree"
                .to_owned(),
        ),
        other => (
            StatusCode::BAD_REQUEST,
            format!("The request could not be parsed: {other}"),
        ),
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Checked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_some() {
            // The end of the requests actix may see.
            return Poll::Ready(Ok(()));
        }
        // Whether the head in progress is out of time; judged after reading what has arrived,
        // so that a head whose end is already here is not refused.
        let late = this
            .head_deadline
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
        let heads = this.heads;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending if late => {
                this.refuse_late();
                return Poll::Ready(Ok(()));
            }
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        }
        let arrived = &buf.filled()[before..];
        if this.transparent || arrived.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let start = this.read;
        this.read += arrived.len() as u64;
        this.pending.extend_from_slice(arrived);
        let mut cut = this.inspect(cx);
        if cut.is_none() && late && this.heads == heads && !this.in_body && !this.transparent {
            // What arrived did not complete the late head.
            this.refuse_late();
            cut = Some(this.decoded);
        }
        if let Some(cut) = cut {
            let kept = usize::try_from(cut.saturating_sub(start))
                .unwrap_or(usize::MAX)
                .min(arrived.len());
            buf.set_filled(before + kept);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Checked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// Sends the refusal, if a head was refused, before the connection closes; then reads
    /// (and drops) what the client still sends for a moment, so that it is not reset.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(refusal) = this.refusal.as_mut() else {
            return Pin::new(&mut this.io).poll_shutdown(cx);
        };
        while refusal.written < refusal.reply.len() {
            let written =
                ready!(Pin::new(&mut this.io).poll_write(cx, &refusal.reply[refusal.written..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            refusal.written += written;
        }
        if refusal.linger.is_none() {
            ready!(Pin::new(&mut this.io).poll_flush(cx))?;
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            refusal.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let started = Instant::now();
        let mut scratch = [0u8; 8192];
        loop {
            if let Some(linger) = refusal.linger.as_mut()
                && linger.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    // A client still sending: give others their turn now and then.
                    if started.elapsed() > Duration::from_millis(5) {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What a client sending `request` gets back through a [`Checked`] socket, when the
    /// server side reads until the end it is shown and then shuts down: the bytes passed on
    /// to the server, and the client's answer.
    async fn exchange(request: Vec<u8>) -> (Vec<u8>, String) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut checked = Checked::new(server, None, &Reading::new(None));
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            let _ = client_write.write_all(&request).await;
            let _ = client_write.shutdown().await;
            client_write
        });
        let mut passed = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = checked.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            passed.extend_from_slice(&chunk[..n]);
        }
        checked.shutdown().await.expect("shutdown");
        drop(checked);
        let _client_write = writer.await.expect("writer");
        let mut answer = Vec::new();
        let _ = client_read.read_to_end(&mut answer).await;
        (passed, String::from_utf8_lossy(&answer).into_owned())
    }

    fn json_of(answer: &str) -> serde_json::Value {
        let (_, body) = answer.split_once("\r\n\r\n").expect("a head");
        serde_json::from_str(body).expect("a JSON body")
    }

    #[actix_web::test]
    async fn good_requests_pass_untouched_and_a_bad_head_after_them_is_refused_in_json() {
        let good = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        let post = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        let bad = b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        let request = [good.clone(), post.clone(), bad].concat();
        let (passed, answer) = exchange(request).await;
        assert_eq!(
            passed,
            [good, post].concat(),
            "the good requests, whole, only"
        );
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("x-request-id: "), "{answer}");
        let body = json_of(&answer);
        assert!(
            body["detail"].is_string() && body["request_id"].is_string(),
            "{body}"
        );
    }

    #[actix_web::test]
    async fn an_overlong_target_is_a_414_and_too_many_headers_a_431() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000));
        let (passed, answer) = exchange(long.into_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{answer}"
        );
        assert!(passed.len() < 100_000, "the head is withheld from actix");
        assert!(
            json_of(&answer)["detail"]
                .as_str()
                .is_some_and(|d| d.contains("too long"))
        );

        let many = format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
            "X-A: b\r\n".repeat(100)
        );
        let (_, answer) = exchange(many.into_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        json_of(&answer);

        let smuggled =
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                .to_vec();
        let (passed, answer) = exchange(smuggled).await;
        assert!(passed.is_empty(), "{:?}", String::from_utf8_lossy(&passed));
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    }

    #[actix_web::test]
    async fn bodies_are_passed_on_whatever_they_hold() {
        let body = "GET / HTTP/1.1\r\n\x01\x02 not a head";
        let chunked = format!(
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        let next = "GET /y HTTP/1.1\r\nHost: a\r\n\r\n";
        let request = format!("{chunked}{next}");
        let (passed, answer) = exchange(request.clone().into_bytes()).await;
        assert_eq!(passed, request.into_bytes());
        assert_eq!(answer, "");
        // A broken chunked body is the handler's to answer: passed on as it is.
        let broken = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let (passed, answer) = exchange(broken.as_bytes().to_vec()).await;
        assert_eq!(passed, broken.as_bytes());
        assert_eq!(answer, "");
    }

    #[actix_web::test]
    async fn a_head_that_does_not_arrive_in_time_is_a_408() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let reading = Reading {
            head_timeout: Duration::from_millis(50),
            ..Reading::new(None)
        };
        let mut checked = Checked::new(server, None, &reading);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .await
            .expect("send");
        let mut chunk = [0u8; 1024];
        let mut passed = 0;
        loop {
            let n = checked.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            passed += n;
        }
        assert!(passed > 0, "the beginning of the head went on");
        checked.shutdown().await.expect("shutdown");
        drop(checked);
        let mut answer = Vec::new();
        let _ = client_read.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{answer}"
        );
        json_of(&answer);
    }
}
