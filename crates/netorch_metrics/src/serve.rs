//! `/metrics` over HTTP/1.1 for a process without the API (`netorch-worker --metrics-bind`): a
//! scrape endpoint, not a web server, so that such a process needs neither actix nor the API
//! crate. Each connection gets one answer and is closed (`Connection: close`), which every
//! Prometheus-compatible scraper takes.
//!
//! - `GET` or `HEAD` of `/metrics` (any query): 200 with the text exposition.
//! - Any other path: 404. Any other method on `/metrics`: 405 with `Allow: GET, HEAD`.
//! - A head that does not parse: 400; one larger than [`MAX_HEAD_BYTES`]: 431; one that has
//!   not arrived within [`HEAD_TIMEOUT`]: the connection is closed.

use crate::{CONTENT_TYPE, Metrics};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest request head read.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `metrics` at `/metrics` on `listener` until `shutdown` completes; then stops
/// accepting (scrapes in progress finish on their own tasks). Call it on a tokio runtime.
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, Arc::clone(&metrics)));
                }
                // A connection that failed before it was accepted (reset, out of descriptors
                // for a moment): the listener itself is fine.
                Err(error) => log::debug!("metrics endpoint: accept failed: {error}"),
            },
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    Metrics { head_only: bool },
    NotFound,
    WrongMethod,
    Malformed,
    TooLarge,
}

/// Reads what `head` asks for; `None` while it is incomplete.
fn ask(head: &[u8]) -> Option<Ask> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Partial) if head.len() >= MAX_HEAD_BYTES => Some(Ask::TooLarge),
        Ok(httparse::Status::Partial) => None,
        Err(httparse::Error::TooManyHeaders) => Some(Ask::TooLarge),
        Err(_) => Some(Ask::Malformed),
        Ok(httparse::Status::Complete(_)) => {
            let path = request.path.unwrap_or_default();
            let path = path.split_once('?').map_or(path, |(path, _)| path);
            Some(match (request.method.unwrap_or_default(), path) {
                (_, path) if path != "/metrics" => Ask::NotFound,
                ("GET", _) => Ask::Metrics { head_only: false },
                ("HEAD", _) => Ask::Metrics { head_only: true },
                _ => Ask::WrongMethod,
            })
        }
    }
}

async fn answer(mut stream: TcpStream, metrics: Arc<Metrics>) {
    let mut head = Vec::with_capacity(1024);
    let asked = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buffer = [0u8; 1024];
        loop {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            head.extend_from_slice(&buffer[..read]);
            if let Some(asked) = ask(&head) {
                return Some(asked);
            }
        }
    })
    .await;
    let Ok(Some(asked)) = asked else {
        return;
    };
    let (status, extra, body, head_only) = match asked {
        Ask::Metrics { head_only } => {
            // The database collectors query the database: off the async threads.
            let encoded = tokio::task::spawn_blocking(move || metrics.encode()).await;
            match encoded {
                Ok(text) => ("200 OK", "", text, head_only),
                Err(_) => (
                    "500 Internal Server Error",
                    "",
                    "the metrics could not be encoded\n".to_owned(),
                    false,
                ),
            }
        }
        Ask::NotFound => (
            "404 Not Found",
            "",
            "not found: try /metrics\n".into(),
            false,
        ),
        Ask::WrongMethod => (
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            "only GET and HEAD\n".into(),
            false,
        ),
        Ask::Malformed => ("400 Bad Request", "", "malformed request\n".into(), false),
        Ask::TooLarge => (
            "431 Request Header Fields Too Large",
            "",
            "request head too large\n".into(),
            false,
        ),
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    // A scraper that went away is not an error of ours.
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_a_scraper_sends_them() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(ask(get), Some(Ask::Metrics { head_only: false }));
        assert_eq!(ask(&get[..20]), None, "incomplete");
        assert_eq!(
            ask(b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n"),
            Some(Ask::Metrics { head_only: true })
        );
        assert_eq!(ask(b"GET / HTTP/1.1\r\n\r\n"), Some(Ask::NotFound));
        assert_eq!(
            ask(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Ask::WrongMethod)
        );
        assert_eq!(ask(b"\x00\x01 nonsense\r\n\r\n"), Some(Ask::Malformed));
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(ask(&long), Some(Ask::TooLarge));
    }

    #[tokio::test]
    async fn a_scrape_gets_the_exposition_and_other_paths_404() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(Metrics::new()), async {
            let _ = stopped.await;
        }));
        let fetch = |request: &'static str| async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("send");
            let mut response = String::new();
            stream.read_to_string(&mut response).await.expect("read");
            response
        };
        let scraped = fetch("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(scraped.starts_with("HTTP/1.1 200 OK\r\n"), "{scraped}");
        assert!(scraped.contains(&format!("Content-Type: {CONTENT_TYPE}")));
        assert!(scraped.contains("netorch_build_info"), "{scraped}");
        let missing = fetch("GET /other HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let head = fetch("HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head.ends_with("\r\n\r\n"), "no body: {head}");
        stop.send(()).expect("stop");
        server.await.expect("joined").expect("served");
        assert!(TcpStream::connect(addr).await.is_err(), "stopped listening");
    }
}
