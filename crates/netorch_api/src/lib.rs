//! netorch's HTTP API on actix-web.
//!
//! Mount it in any actix `App`: give it an [`ApiState`] and call [`configure`]:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! # async fn run() -> std::io::Result<()> {
//! let db = netorch_storage::Database::connect("sqlite://netorch.db").expect("database");
//! let state = web::Data::new(netorch_api::ApiState::new(db, 1000));
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(state.clone())
//!         .configure(netorch_api::configure)
//!         .default_service(web::to(netorch_api::not_found))
//! })
//! .bind("127.0.0.1:8000")?
//! .run()
//! .await
//! # }
//! ```
//!
//! Every path of the contract (`docs/API.md`) is here, with its JSON shapes, its
//! status codes and its error bodies: 404 `{"detail": ...}`, 422 with FastAPI's list of
//! `{"type", "loc", "msg", "input"}` for any invalid body, query or path input, 409 with
//! `current_state` and `allowed_actions`. Database work runs on actix's blocking pool, never on
//! its async workers. `/openapi.json` is generated from the handlers and `/docs` serves an
//! explorer from assets compiled into the binary, so neither needs the internet.
//!
//! Only this crate knows HTTP and the API's JSON shapes.

mod alerts;
mod bottlenecks;
pub mod collectors;
mod deployments;
mod events;
mod fleet;
mod http;
mod keys;
mod nodes;
pub mod presence;
mod runs;
mod series;
pub mod server;
mod service;
mod telemetry;
mod ui;

pub use http::{auth, guard, limits, request_id};

use actix_web::web;
use netorch_storage::Database;

pub use deployments::DEFAULT_MAX_NODES_PER_DEPLOYMENT;
pub use events::stream::{END_EVENT, EndReason, EventStreamTiming};
pub use http::document::{ApiDoc, document};
pub use http::error::{
    ApiError, ConflictDetail, ErrorDetail, FieldError, LocItem, ValidationError,
};
pub use http::fallback::not_found;
pub use http::observe::observe;
pub use http::paging::PAGE_BYTES;

/// The most samples one push may carry.
pub const MAX_PUSHED_SAMPLES: usize = telemetry::PushTelemetry::MAX_SAMPLES;
/// The largest request body accepted unless configured otherwise (a full push of 10,000
/// samples is about 1.2 MB: this leaves room for verbose clients).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How many bytes of serialized node listings a server keeps (see `listing_cache`).
const LISTING_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How long a request body may take to arrive unless configured otherwise.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reports waiting for a turn beyond those running (see `http::gate`).
const QUEUED_REPORTS: usize = 8;

/// How long a queued report waits for its turn before it is answered 503.
const REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Pushes read, decoded and stored at once unless configured otherwise (see `http::gate`): a
/// writer's worth of pipelining (one storing, the next decoding) on each core. Each holds its
/// body, what it decodes to (up to [`collectors::DECODED_PER_BODY_BYTE`] times the body limit)
/// and the points decoded from that: about 330 MB for a body at the default 8 MiB limit that
/// decodes to 32 MiB (docs/PERFORMANCE.md), so this times that is what pushes may take.
pub const DEFAULT_CONCURRENT_PUSHES: usize = 4;

/// Pushes waiting for a turn beyond those running: a waiting push holds its connection and what
/// actix has buffered of its body (at most about 160 KiB), the rest unread in the sender's and
/// the kernel's buffers.
const QUEUED_PUSHES: usize = 1024;

/// How long a queued push waits for its turn before it is answered 503: less than most
/// senders' own timeouts (Prometheus's 30 s, vmagent's 1 m), so a push is rarely stored for a
/// sender that gave up and already retries.
const PUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How far ahead of the server's clock a pushed sample may be dated unless configured
/// otherwise: a second covers clocks kept by NTP; a reading is never of the future, and one
/// dated ahead would take the instant of the reading that comes then.
pub const DEFAULT_FUTURE_SAMPLE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(1);

/// The shutdown phases [`ApiState`] goes through ([`ApiState::start_draining`],
/// [`ApiState::start_refusing`]).
const SERVING: u8 = 0;
const DRAINING: u8 = 1;
const REFUSING: u8 = 2;

/// What the handlers need: the database, the server's limits, and its cache of node listings.
#[derive(Debug, Clone)]
pub struct ApiState {
    db: Database,
    /// A separate small pool for `/health` and `/ready`, so they never wait for a connection
    /// behind heavy requests.
    probe: Database,
    max_nodes_per_deployment: u32,
    listings: std::sync::Arc<nodes::listing_cache::ListingCache>,
    reports: std::sync::Arc<http::gate::Gate>,
    /// Turns for push bodies (see [`ApiState::with_concurrent_pushes`]).
    pushes: std::sync::Arc<http::gate::Gate>,
    /// Set when a write failed for lack of space, cleared when one succeeds (or `/ready`'s
    /// write probe does).
    writes_failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How long a request body may take to arrive (see [`ApiState::with_body_timeout`]).
    body_timeout: std::time::Duration,
    /// The shutdown phase, [`SERVING`], [`DRAINING`] or [`REFUSING`] (see
    /// [`ApiState::start_draining`]); watched by the body reads a shutdown cuts short.
    shutdown: std::sync::Arc<tokio::sync::watch::Sender<u8>>,
    /// How long each telemetry tier is kept (the workers' setting): series past a tier's
    /// retention are answered from a coarser one.
    retention: netorch_storage::retention::Retention,
    /// Whether requests need an API key (see [`ApiState::with_auth`]).
    auth: auth::AuthMode,
    /// Keys recently found by their token's hash.
    keys: std::sync::Arc<auth::KeyCache>,
    /// Requests per second per caller, if limited (see [`ApiState::with_rate_limit`]).
    rate_limit: Option<std::sync::Arc<limits::RateLimit>>,
    /// The largest request body read (see [`ApiState::with_max_body_bytes`]).
    max_body_bytes: usize,
    /// What `/metrics` shows (see [`ApiState::with_metrics`]).
    metrics: std::sync::Arc<netorch_metrics::Metrics>,
    /// Whether [`observe`] logs a line per request.
    access_log: bool,
    /// How event streams poll and keep alive (see [`ApiState::with_event_stream_timing`]).
    event_stream_timing: EventStreamTiming,
    /// The hosts requests may name (see [`ApiState::with_allowed_hosts`]).
    hosts: std::sync::Arc<guard::HostPolicy>,
    /// The origins whose pages may change things besides this server's own (see
    /// [`ApiState::with_cors_origins`]).
    origins: std::sync::Arc<guard::OriginPolicy>,
    /// How far ahead of now a pushed sample may be dated.
    future_sample_tolerance: std::time::Duration,
    /// Failed authentications per client address (see [`ApiState::with_auth_failure_limit`]).
    auth_failures: std::sync::Arc<limits::FailureBudget>,
    /// Where people reach the dashboard, for alerts' `generator_url` (see
    /// [`ApiState::with_external_url`]).
    external_url: std::sync::Arc<str>,
    /// The provisioner profiles a deployment may name (see
    /// [`ApiState::with_provisioner_profiles`]).
    provisioner_profiles: std::sync::Arc<[String]>,
}

impl ApiState {
    /// The state for a server on `db` that creates deployments of at most
    /// `max_nodes_per_deployment` nodes (the original's limit is
    /// [`DEFAULT_MAX_NODES_PER_DEPLOYMENT`]).
    pub fn new(db: Database, max_nodes_per_deployment: u32) -> Self {
        let probe_options = netorch_storage::DatabaseOptions {
            max_connections: 2,
            timeout: std::time::Duration::from_secs(2),
            run_migrations: false,
            ..netorch_storage::DatabaseOptions::default()
        };
        let probe = db.sibling(&probe_options).unwrap_or_else(|e| {
            log::warn!("no separate pool for health checks ({e}); they share the main pool");
            db.clone()
        });
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        ApiState {
            db,
            probe,
            max_nodes_per_deployment: max_nodes_per_deployment.max(1),
            listings: std::sync::Arc::new(nodes::listing_cache::ListingCache::new(
                LISTING_CACHE_BYTES,
            )),
            reports: std::sync::Arc::new(http::gate::Gate::new(cores, QUEUED_REPORTS, REPORT_WAIT)),
            pushes: std::sync::Arc::new(http::gate::Gate::new(
                DEFAULT_CONCURRENT_PUSHES,
                QUEUED_PUSHES,
                PUSH_WAIT,
            )),
            writes_failing: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            shutdown: std::sync::Arc::new(tokio::sync::watch::Sender::new(SERVING)),
            retention: netorch_storage::retention::Retention::default(),
            auth: auth::AuthMode::Off,
            keys: std::sync::Arc::default(),
            rate_limit: None,
            max_body_bytes: MAX_BODY_BYTES,
            metrics: std::sync::Arc::new(netorch_metrics::Metrics::new()),
            access_log: false,
            event_stream_timing: EventStreamTiming::default(),
            hosts: std::sync::Arc::new(guard::HostPolicy::local()),
            origins: std::sync::Arc::default(),
            future_sample_tolerance: DEFAULT_FUTURE_SAMPLE_TOLERANCE,
            auth_failures: std::sync::Arc::new(limits::FailureBudget::default()),
            external_url: std::sync::Arc::from(""),
            provisioner_profiles: std::sync::Arc::from(vec![
                netorch_domain::provisioning::BUILTIN_PROFILE.to_owned(),
            ]),
        }
    }

    /// The same state linking alerts to the dashboard at `url` (`http://netorch.example:8000`,
    /// no trailing slash needed): their `generator_url` is `url` + `/ui/deployments/...`.
    /// Default: none, so the links are paths (`/ui/deployments/4/nodes/node-007`);
    /// netorch-server gives its `--external-url`, or its bound address.
    pub fn with_external_url(mut self, url: &str) -> Self {
        self.external_url = std::sync::Arc::from(url.trim_end_matches('/'));
        self
    }

    /// The same state answering only requests whose `Host` `hosts` takes (421 otherwise): give
    /// it [`guard::HostPolicy::for_listener`] of the address the server listens on (default:
    /// [`guard::HostPolicy::local`], `localhost` and address literals).
    pub fn with_allowed_hosts(mut self, hosts: guard::HostPolicy) -> Self {
        self.hosts = std::sync::Arc::new(hosts);
        self
    }

    /// The same state letting pages of `origins` (each `scheme://host[:port]`, or `*`) change
    /// things, besides this server's own pages (default: none but its own). Give it the
    /// origins CORS is built from too ([`ApiState::cors`]), so that what a browser may ask and
    /// what the server does agree.
    pub fn with_cors_origins(mut self, origins: &[String]) -> Self {
        self.origins = std::sync::Arc::new(guard::OriginPolicy::new(origins));
        self
    }

    /// CORS for the origins [`ApiState::with_cors_origins`] was given ([`cors`]), on only when
    /// there are some: wrap the app in it, outside access control (a preflight carries no
    /// token), as the server does.
    pub fn cors(&self) -> actix_web::middleware::Condition<actix_cors::Cors> {
        let origins = self.origins.configured();
        actix_web::middleware::Condition::new(!origins.is_empty(), cors(origins))
    }

    /// The same state refusing (422) pushed samples dated more than `tolerance` ahead of the
    /// server's clock (default [`DEFAULT_FUTURE_SAMPLE_TOLERANCE`]).
    pub fn with_future_sample_tolerance(mut self, tolerance: std::time::Duration) -> Self {
        self.future_sample_tolerance = tolerance;
        self
    }

    /// The same state allowing each client address `budget` failed authentications (with
    /// keys on); past it, its requests that would need a key looked up get 429 (default
    /// [`limits::FailureBudget::default`]).
    pub fn with_auth_failure_limit(mut self, budget: limits::FailureBudget) -> Self {
        self.auth_failures = std::sync::Arc::new(budget);
        self
    }

    /// A future that completes once the server refuses requests ([`ApiState::start_refusing`]):
    /// what waits on a client (a body still arriving) stops waiting then.
    pub(crate) fn until_refusing(&self) -> impl Future<Output = ()> + 'static {
        let mut phases = self.shutdown.subscribe();
        async move {
            // An error means the state is gone: nothing will ever refuse.
            if phases.wait_for(|phase| *phase >= REFUSING).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The same state recording into and serving `metrics` (default: metrics of their own,
    /// without database collectors). Give it the metrics the embedded workers record into,
    /// with [`netorch_metrics::Metrics::collect_database`] and
    /// [`netorch_metrics::Metrics::collect_fleet`] added, as the server does.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<netorch_metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same state logging one line per request (`netorch::access`, at info), with its
    /// request id, method, path, status and time; never a header.
    pub fn with_access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// The same state with event streams (`GET /deployments/{id}/events/stream`) polling and
    /// sending heartbeats as `timing` says (default: every second, a heartbeat after 15 s).
    pub fn with_event_stream_timing(mut self, timing: EventStreamTiming) -> Self {
        self.event_stream_timing = timing;
        self
    }

    /// How event streams poll and keep alive.
    pub(crate) fn event_stream_timing(&self) -> EventStreamTiming {
        self.event_stream_timing
    }

    /// Starts draining for a shutdown: from now on `/ready` answers 503 (`draining`), so load
    /// balancers move traffic away, and every response carries `Connection: close`, so clients
    /// open their next connection elsewhere. Requests are still served in full. Clones of this
    /// state (every HTTP worker's) see it at once.
    pub fn start_draining(&self) {
        self.enter_phase(DRAINING);
    }

    /// The last step before the listener closes: every request but `/health` and `/ready` is
    /// answered at once 503 `{"detail": "Server is shutting down"}` with `Retry-After` and
    /// `Connection: close`, so a client that still sends here learns to go elsewhere rather
    /// than finding its connection reset when the server stops.
    pub fn start_refusing(&self) {
        self.enter_phase(REFUSING);
    }

    /// Moves to `phase` unless a later one was reached already.
    fn enter_phase(&self, phase: u8) {
        self.shutdown.send_if_modified(|current| {
            let later = phase > *current;
            if later {
                *current = phase;
            }
            later
        });
    }

    /// Whether [`ApiState::start_draining`] (or [`ApiState::start_refusing`]) was called.
    pub fn is_draining(&self) -> bool {
        *self.shutdown.borrow() >= DRAINING
    }

    /// Notes how a write went: out of space raises the flag `/ready` and `/health` report.
    /// Only the write probe lowers it ([`ApiState::writes_failing_now`]): a small write that
    /// fits between failing large ones says nothing about the next push, and readiness that
    /// followed every write would flap.
    fn note_write<T>(&self, outcome: &Result<T, ApiError>) {
        if let Err(ApiError::OutOfSpace(_)) = outcome {
            self.writes_failing
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Whether writes are failing for lack of space; while they are, asks the database with a
    /// write probe the size of the largest push (blocking: call it off the async workers), so
    /// the answer clears by itself once there is room for any push again.
    fn writes_failing_now(&self) -> bool {
        use std::sync::atomic::Ordering;
        if !self.writes_failing.load(Ordering::SeqCst) {
            return false;
        }
        match self.probe.probe_write() {
            Ok(()) => {
                self.writes_failing.store(false, Ordering::SeqCst);
                false
            }
            Err(error) => {
                log::debug!("write probe: {error}");
                true
            }
        }
    }

    fn is_refusing(&self) -> bool {
        *self.shutdown.borrow() >= REFUSING
    }

    /// The same state with request bodies given `timeout` to arrive (default 30 s): a body
    /// still incomplete then is answered 408 and its connection closed, so a client that
    /// declares a huge chunk and stops holds nothing for long.
    pub fn with_body_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// The same state for telemetry kept as `retention` says (default
    /// [`netorch_storage::retention::Retention::default`]); give it the workers' setting.
    pub fn with_retention(mut self, retention: netorch_storage::retention::Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The same state asking for API keys as `mode` says (default [`auth::AuthMode::Off`]).
    pub fn with_auth(mut self, mode: auth::AuthMode) -> Self {
        self.auth = mode;
        self
    }

    /// Whether requests need an API key.
    pub fn auth(&self) -> auth::AuthMode {
        self.auth
    }

    /// The same state limiting each caller (API key, or client address with auth off) to
    /// `limit`; requests over it get 429 with `Retry-After` (default: no limit).
    pub fn with_rate_limit(mut self, limit: limits::RateLimit) -> Self {
        self.rate_limit = Some(std::sync::Arc::new(limit));
        self
    }

    /// The same state reading, decoding and storing at most `pushes` push bodies at once
    /// (the JSON push and the collectors' protocols; default [`DEFAULT_CONCURRENT_PUSHES`]);
    /// up to 1,024 more wait their turn, mostly unread, for up to 10 s, and the rest are
    /// answered 503 with `Retry-After`. The memory pushes take is about this many times what
    /// one push at the body limit takes (see [`DEFAULT_CONCURRENT_PUSHES`]).
    pub fn with_concurrent_pushes(mut self, pushes: usize) -> Self {
        self.pushes = std::sync::Arc::new(http::gate::Gate::new(pushes, QUEUED_PUSHES, PUSH_WAIT));
        self
    }

    /// The same state refusing request bodies over `bytes` with 413, before reading them
    /// whole (default [`MAX_BODY_BYTES`]).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes.max(1);
        self
    }

    /// The largest request body this server reads.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The provisioner profiles a deployment may name here.
    pub fn provisioner_profiles(&self) -> &[String] {
        &self.provisioner_profiles
    }

    /// The same state taking deployments that name one of `profiles` (the built-in
    /// `simulator` is always among them): the names of the fleet's `--provisioners` file.
    pub fn with_provisioner_profiles(mut self, profiles: &[String]) -> Self {
        let mut names = vec![netorch_domain::provisioning::BUILTIN_PROFILE.to_owned()];
        for name in profiles {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        self.provisioner_profiles = names.into();
        self
    }

    /// The largest `target_node_count` this server accepts.
    pub fn max_nodes_per_deployment(&self) -> u32 {
        self.max_nodes_per_deployment
    }
}

/// CORS for browsers on `origins` (each `scheme://host[:port]`, or `*` for any): the API's
/// methods and the `Authorization`, `Content-Type` and `X-Request-Id` headers (the last one
/// readable by the page too), preflights cached an hour. Wrap
/// the app with it (the server does when given `--cors-origin`); without it, browsers on other
/// origins are refused by the browser itself.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static(request_id::HEADER),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static(request_id::HEADER),
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// While the state is draining ([`ApiState::start_draining`]), marks every response
/// `Connection: close`. Wrap the app with it:
/// `App::new().wrap(actix_web::middleware::from_fn(netorch_api::close_when_draining))`.
pub async fn close_when_draining(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::ConnectionType;
    let state = req.app_data::<web::Data<ApiState>>().cloned();
    let (draining, refusing) = state
        .as_ref()
        .map_or((false, false), |s| (s.is_draining(), s.is_refusing()));
    let probe = matches!(req.path(), "/health" | "/ready");
    if refusing && !probe {
        let refused = actix_web::ResponseError::error_response(&ApiError::ShuttingDown);
        return Ok(req.into_response(refused).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    if draining {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response.map_into_left_body())
}

/// Registers every route of the API. The app must hold a `web::Data<ApiState>`.
///
/// A request with a method its path does not serve gets 405 with an `Allow` header; paths
/// this function does not register are left to the app (use [`not_found`] as its default
/// service for the API's JSON 404).
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Every route passes the host and origin checks, then every route but the open ones the
    // access check (a no-op with auth off), which reads who may call each from the registry.
    for (path, operations) in paths() {
        let served: Vec<(actix_web::http::Method, http::operation::Access)> = operations
            .iter()
            .map(|op| (op.verb.method(), op.access))
            .collect();
        let open = all_open(&operations);
        let allow = allowed_methods(&operations);
        let mut resource = web::resource(path).default_service(web::to(move || {
            let allow = allow.clone();
            async move { http::fallback::method_not_allowed(&allow) }
        }));
        for op in &operations {
            resource = resource.route((op.handler)(web::route().method(op.verb.method())));
        }
        let served = std::rc::Rc::new(served);
        cfg.service(
            resource
                .wrap(actix_web::middleware::Condition::new(
                    !open,
                    actix_web::middleware::from_fn(move |req, next| {
                        auth::authorize(req, next, std::rc::Rc::clone(&served))
                    }),
                ))
                .wrap(actix_web::middleware::from_fn(guard::check)),
        );
    }
    // The files beside the operations (the explorer's assets, the dashboard's pages below
    // `/ui`): open, not in the document, and through the host check like every route.
    for files in RESOURCES.iter().flat_map(|r| r.files) {
        cfg.service(
            web::resource(files.path)
                .route((files.handler)(web::get()))
                .wrap(actix_web::middleware::from_fn(guard::check)),
        );
    }
}

/// Every resource of the API: what it serves, who may call it, its part of the document. In
/// the order the router tries their paths (actix tries a request's path against each in
/// turn): the hot ones first.
const RESOURCES: [http::operation::Resource; 15] = [
    deployments::RESOURCE,
    fleet::RESOURCE,
    nodes::RESOURCE,
    runs::RESOURCE,
    telemetry::RESOURCE,
    collectors::RESOURCE,
    series::RESOURCE,
    bottlenecks::RESOURCE,
    events::RESOURCE,
    alerts::RESOURCE,
    alerts::SILENCES,
    alerts::RECEIVERS,
    keys::RESOURCE,
    service::RESOURCE,
    ui::RESOURCE,
];

/// Every operation, grouped by path in the order the resources declare them.
fn paths() -> Vec<(&'static str, Vec<&'static http::operation::Operation>)> {
    let mut paths: Vec<(&'static str, Vec<&'static http::operation::Operation>)> = Vec::new();
    for op in RESOURCES.iter().flat_map(|r| r.operations) {
        match paths.iter_mut().find(|(path, _)| *path == op.path) {
            Some((_, ops)) => ops.push(op),
            None => paths.push((op.path, vec![op])),
        }
    }
    paths
}

/// Whether anyone may call every one of `operations` (a path's): then it is served without
/// the access check.
fn all_open(operations: &[&http::operation::Operation]) -> bool {
    operations
        .iter()
        .all(|op| op.access == http::operation::Access::Open)
}

/// The `Allow` header of a 405 on a path serving `operations`.
fn allowed_methods(operations: &[&http::operation::Operation]) -> String {
    let allow: Vec<&str> = http::operation::Verb::ALL
        .into_iter()
        .filter(|verb| operations.iter().any(|op| op.verb == *verb))
        .map(http::operation::Verb::as_str)
        .collect();
    allow.join(", ")
}

/// The paths anyone may ask without a key (the probes, the API's documentation, the
/// dashboard's pages and files).
pub fn open_paths() -> Vec<&'static str> {
    let mut open: Vec<&'static str> = paths()
        .into_iter()
        .filter(|(_, ops)| all_open(ops))
        .map(|(path, _)| path)
        .collect();
    open.extend(RESOURCES.iter().flat_map(|r| r.files).map(|f| f.path));
    open
}

#[cfg(test)]
mod registry_tests {
    use super::*;
    use http::operation::{Access, Verb};
    use utoipa::OpenApi;

    #[test]
    fn the_registry_and_the_document_list_the_same_operations() {
        let mut document = ApiDoc::openapi();
        let mut registered = std::collections::BTreeSet::new();
        for op in RESOURCES.iter().flat_map(|r| r.operations) {
            assert!(
                registered.insert((op.path, op.verb.as_str())),
                "{} {} is registered twice",
                op.verb.as_str(),
                op.path
            );
            let item = document.paths.paths.get_mut(op.path);
            assert!(
                item.and_then(|item| op.verb.operation_in(item)).is_some(),
                "{} {} is registered but not documented",
                op.verb.as_str(),
                op.path
            );
        }
        for (path, item) in &mut document.paths.paths {
            assert!(item.put.is_none(), "PUT {path} is documented");
            for verb in Verb::ALL {
                if verb.operation_in(item).is_some() {
                    assert!(
                        registered.contains(&(path.as_str(), verb.as_str())),
                        "{} {path} is documented but not registered",
                        verb.as_str()
                    );
                }
            }
        }
    }

    /// What `T` reads from a request naming deployment 1 and node 1, with an empty JSON body,
    /// against the parameters it documents: each input lists its fields twice, in `read` and
    /// in its `params!`, and the two must agree.
    fn reads_what_it_documents<T: http::input::FromInput + utoipa::IntoParams>(name: &str) {
        use utoipa::openapi::path::ParameterIn;
        let req = actix_web::test::TestRequest::default()
            .param("deployment_id", "1")
            .param("node_id", "1")
            .to_http_request();
        let mut input = http::input::Input::new(&req, Some(b"{}")).expect("input");
        let _ = T::read(&mut input);
        let mut asked: Vec<(String, String)> = input
            .asked
            .iter()
            .map(|(place, field)| ((*place).to_owned(), (*field).to_owned()))
            .collect();
        let mut documented: Vec<(String, String)> = T::into_params(|| None)
            .into_iter()
            .map(|p| {
                let place = match p.parameter_in {
                    ParameterIn::Path => "path",
                    ParameterIn::Query => "query",
                    ParameterIn::Header => "header",
                    ParameterIn::Cookie => "cookie",
                };
                (place.to_owned(), p.name)
            })
            .collect();
        asked.sort();
        asked.dedup();
        documented.sort();
        assert_eq!(
            asked, documented,
            "{name} reads other parameters than it documents"
        );
    }

    #[test]
    fn every_input_reads_exactly_the_parameters_it_documents() {
        reads_what_it_documents::<http::input::paths::DeploymentPath>("DeploymentPath");
        reads_what_it_documents::<http::input::paths::NodePath>("NodePath");
        reads_what_it_documents::<deployments::ListDeployments>("ListDeployments");
        reads_what_it_documents::<nodes::ListNodes>("ListNodes");
        reads_what_it_documents::<telemetry::ReadTelemetry>("ReadTelemetry");
        reads_what_it_documents::<telemetry::PushTelemetry>("PushTelemetry");
        reads_what_it_documents::<series::NodeSeries>("NodeSeries");
        reads_what_it_documents::<series::FleetSeries>("FleetSeries");
        reads_what_it_documents::<bottlenecks::BottleneckQuery>("BottleneckQuery");
        reads_what_it_documents::<events::ReadEvents>("ReadEvents");
        reads_what_it_documents::<events::stream::StreamEvents>("StreamEvents");
        reads_what_it_documents::<collectors::RemoteWrite>("RemoteWrite");
        reads_what_it_documents::<collectors::line_protocol::LineWrite>("LineWrite");
        reads_what_it_documents::<collectors::otlp::OtlpWrite>("OtlpWrite");
    }

    #[test]
    fn a_path_is_open_for_all_its_methods_or_for_none() {
        // `configure` puts the access check in front of a whole path.
        for (path, operations) in paths() {
            let open = operations.iter().filter(|op| op.access == Access::Open);
            assert!(
                open.count() == 0 || operations.iter().all(|op| op.access == Access::Open),
                "{path} mixes open and checked operations"
            );
        }
    }

    #[test]
    fn the_push_needs_its_own_action_and_deletes_need_delete() {
        use netorch_domain::Action;
        let access = |verb: Verb, path: &str| {
            RESOURCES
                .iter()
                .flat_map(|r| r.operations)
                .find(|op| op.verb == verb && op.path == path)
                .map(|op| op.access)
        };
        let push = "/deployments/{deployment_id}/telemetry";
        assert_eq!(access(Verb::Get, push), Some(Access::Needs(Action::Read)));
        assert_eq!(
            access(Verb::Post, push),
            Some(Access::Needs(Action::PushTelemetry))
        );
        assert_eq!(
            access(Verb::Post, "/deployments"),
            Some(Access::Needs(Action::Change))
        );
        assert_eq!(
            access(Verb::Patch, "/deployments/{deployment_id}"),
            Some(Access::Needs(Action::Change))
        );
        assert_eq!(
            access(Verb::Delete, "/deployments/{deployment_id}"),
            Some(Access::Needs(Action::Delete))
        );
        assert_eq!(access(Verb::Get, "/whoami"), Some(Access::AnyKey));
        assert_eq!(access(Verb::Get, "/health"), Some(Access::Open));
        for method in [
            actix_web::http::Method::HEAD,
            actix_web::http::Method::PUT,
            actix_web::http::Method::DELETE,
        ] {
            assert!(matches!(
                Access::of_unserved(&method),
                Access::Needs(Action::Read | Action::Change | Action::Delete)
            ));
        }
    }
}
