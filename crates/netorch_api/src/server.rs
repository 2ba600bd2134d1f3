//! Serving the API on a listener, and stopping it: what `actix_web::HttpServer` does, but with
//! each connection read through the connection reader (`wire`) (malformed requests answered in JSON) and a
//! shutdown that stops listening before its last phase.
//!
//! [`Shutdown::run`] is the sequence `netorch-server` follows on SIGTERM or Ctrl-C (and what a
//! load balancer sees, docs/RELIABILITY.md):
//!
//! 1. **Draining**, for the grace period: `/ready` answers 503 `draining`, every request is
//!    served in full and every response closes its connection.
//! 2. **Refusing**, for [`REFUSAL_WINDOW`]: the server stops listening, so a new connection is
//!    refused by the kernel (a client or balancer tries another server at once) rather than
//!    accepted and dropped; a request on a connection still open is answered 503 with
//!    `Retry-After`, and a body still arriving is not waited for.
//! 3. **Stopping**: every request received is answered (each may take up to
//!    [`SHUTDOWN_TIMEOUT`] more), then the server returns.

use crate::ApiState;
use crate::http::wire::{Checked, Observer, Reading};
use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Request, Response};
use actix_server::ServerHandle;
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_service};
use actix_web::dev::AppConfig;
use actix_web::rt::net::TcpStream;
use actix_web::web;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// After the grace period, how long requests on connections still open are answered 503
/// before the server stops.
pub const REFUSAL_WINDOW: Duration = Duration::from_millis(500);

/// Once the server stops, how long a request it has received may still take before its
/// connection is closed: every body still arriving was answered 503 when refusing began, so
/// this bounds handlers (a report waiting for its turn) and the writing of answers.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection is kept open without a request after an answer.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// The API being served.
pub struct Serving {
    server: actix_server::Server,
    shutdown: Shutdown,
    addr: SocketAddr,
}

impl Serving {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server (a future: await it to serve until stopped), and what stops it.
    pub fn into_parts(self) -> (actix_server::Server, Shutdown) {
        (self.server, self.shutdown)
    }
}

/// What stops a [`Serving`] server (see the module).
pub struct Shutdown {
    handle: ServerHandle,
    /// A second handle on the listening socket, to stop listening.
    listener: TcpListener,
    state: web::Data<ApiState>,
}

impl Shutdown {
    /// Drains for `grace`, stops listening and refuses for [`REFUSAL_WINDOW`], then stops the
    /// server once the requests it has received are answered.
    pub async fn run(self, grace: Duration) {
        log::info!(
            "draining for {grace:?}: /ready answers 503, connections close after their response"
        );
        self.state.start_draining();
        tokio::time::sleep(grace).await;
        log::info!(
            "no longer listening; requests on open connections are refused with 503 for \
             {REFUSAL_WINDOW:?}"
        );
        self.state.start_refusing();
        let refused = stop_listening(&self.handle, &self.listener).await;
        tokio::time::sleep(REFUSAL_WINDOW).await;
        log::info!("stopping once the requests received are answered");
        self.handle.stop(true).await;
        // The connections answered here finish too (each within about two seconds).
        for answer in refused {
            let _ = tokio::time::timeout(Duration::from_secs(3), answer).await;
        }
    }
}

/// Stops accepting connections and closes the listening socket, so that the kernel refuses
/// new ones: actix's accept loop is paused first (a closed socket would wake it with an error),
/// the connections that queued meanwhile are answered 503 here, then the socket is shut down.
/// A connection that completes its handshake in the instant between the last of those and the
/// shutdown (a few microseconds) is reset by the kernel. Returns the answers under way.
async fn stop_listening(
    handle: &ServerHandle,
    listener: &TcpListener,
) -> Vec<tokio::task::JoinHandle<()>> {
    handle.pause().await;
    // The accept loop runs on its own thread and deregisters the socket when it sees the
    // pause: give it that moment before taking the queue over.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut answers = Vec::new();
    if listener.set_nonblocking(true).is_ok() {
        loop {
            match listener.accept() {
                Ok((stream, _)) => answers.push(tokio::spawn(refuse(stream))),
                // A client that gave up while queued, or a signal: the next one may be there.
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
    }
    if let Err(error) = socket2::SockRef::from(listener).shutdown(std::net::Shutdown::Read) {
        log::warn!("could not stop listening ({error}); new connections wait for the stop");
    }
    answers
}

/// Answers a connection accepted after the server stopped taking requests: reads its request's
/// head (for at most a second), answers 503 `Server is shutting down` with `Retry-After`, and
/// reads what else comes for a second so that the client gets the answer, not a reset.
async fn refuse(stream: std::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mut stream) = TcpStream::from_std(stream) else {
        return;
    };
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let (reply, _) = crate::http::wire::error_reply(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        crate::http::error::SHUTTING_DOWN.to_owned(),
        &[("retry-after", "1")],
    );
    if stream.write_all(&reply).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// How to serve.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// HTTP worker threads.
    pub workers: usize,
}

/// Serves the app `factory` makes (an `App` holding `state`, as for `HttpServer::new`) on
/// `listener`: HTTP/1.1, each connection read through the connection reader (`wire`). Run the returned
/// server; stop it with its [`Shutdown`].
pub fn serve<F, I, S, B>(
    listener: TcpListener,
    state: web::Data<ApiState>,
    options: ServeOptions,
    factory: F,
) -> std::io::Result<Serving>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let kept = listener.try_clone()?;
    let observer = Observer {
        metrics: std::sync::Arc::clone(&state.metrics),
        access_log: state.access_log,
    };
    let server = actix_server::Server::build()
        .workers(options.workers.max(1))
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        .listen("netorch-api", listener, move || {
            // Made on each HTTP worker's thread, shared by its connections.
            let reading = Reading::new(Some(observer.clone()));
            let app = factory()
                .into_factory()
                .map_err(|error| error.into().error_response());
            // The app config only names the server's address for URLs the app would build
            // (it builds none); the host a request names is checked by `crate::guard`.
            let config = AppConfig::default();
            let http = HttpService::<Checked<TcpStream>, _, _, _, _>::build()
                .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
                // Heads are timed by `wire` (a JSON 408), on every request.
                .client_request_timeout(Duration::ZERO)
                .client_disconnect_timeout(Duration::from_secs(2))
                .local_addr(addr)
                .h1(actix_service::map_config(app, move |()| config.clone()));
            fn_service(move |stream: TcpStream| {
                let peer = stream.peer_addr().ok();
                // Answers go out as written (as actix-web's server does).
                let _ = stream.set_nodelay(true);
                let checked = Checked::new(stream, peer, &reading);
                std::future::ready(Ok::<_, actix_http::error::DispatchError>((checked, peer)))
            })
            .and_then(http)
        })?
        .run();
    let shutdown = Shutdown {
        handle: server.handle(),
        listener: kept,
        state,
    };
    Ok(Serving {
        server,
        shutdown,
        addr,
    })
}
