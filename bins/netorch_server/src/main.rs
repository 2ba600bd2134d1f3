//! `netorch-server`: the HTTP API, with the lifecycle and telemetry workers embedded unless
//! `--workers none`.

use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, web};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use netorch_api::ApiState;
use netorch_api::auth::AuthMode;
use netorch_api::guard::HostPolicy;
use netorch_api::limits::FailureBudget;
use netorch_api::server::ServeOptions;
use netorch_simulator::SimulatedHardware;
use netorch_storage::{Database, DatabaseOptions};
use netorch_workers::cli::{DatabaseArgs, LogArgs, WorkerArgs};
use std::sync::Arc;

mod manage;

/// Serves the netorch HTTP API (see /docs once it runs) and its dashboard (/ui) and, unless told
/// otherwise, runs the lifecycle and telemetry workers in the same process.
#[derive(Parser)]
#[command(name = "netorch-server", version)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,

    #[command(flatten)]
    log: LogArgs,

    /// Address to listen on, as HOST:PORT (port 0 picks a free port, logged at start).
    #[arg(long, env = "NETORCH_BIND", default_value = "127.0.0.1:8000", value_parser = parse_bind)]
    bind: String,

    /// Run the workers inside the server (`embedded`), or leave them to netorch-worker
    /// processes on the same database (`none`).
    #[arg(long, env = "NETORCH_WORKERS", value_enum, default_value_t = Workers::Embedded)]
    workers: Workers,

    /// Largest deployment POST /deployments accepts.
    #[arg(long, env = "NETORCH_MAX_NODES_PER_DEPLOYMENT", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_nodes_per_deployment: u32,

    /// Cap a SQLite database file at this many MiB: past it, writes are refused (507) as on a
    /// full disk, while reads go on [default: no cap but the disk's].
    #[arg(long, env = "NETORCH_SQLITE_MAX_MB", value_parser = clap::value_parser!(u64).range(1..))]
    sqlite_max_mb: Option<u64>,

    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "NETORCH_HTTP_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    http_workers: Option<u16>,

    /// Log one line per request (at info level). The variable takes true/false, 1/0, yes/no or
    /// on/off.
    #[arg(long, env = "NETORCH_ACCESS_LOG", num_args = 0..=1, default_value_t = false,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    access_log: bool,

    /// On SIGTERM or Ctrl-C, keep serving this many seconds with /ready answering 503 and
    /// every response closing its connection, so a load balancer moves traffic away; then stop
    /// accepting and finish every request already received.
    #[arg(long, env = "NETORCH_SHUTDOWN_GRACE", default_value_t = 5.0,
          value_parser = parse_seconds)]
    shutdown_grace: f64,

    /// Ask every request but /health, /ready, /docs and the dashboard's pages (/ui, which ask for
    /// a token themselves) for an API key (`keys`), or for none
    /// (`none`) [default: `keys` unless --bind is a loopback address].
    #[arg(long, env = "NETORCH_AUTH", value_enum)]
    auth: Option<Auth>,

    /// Limit each caller (API key, or client address with --auth none) to this many requests a
    /// second on average; over it, 429 with Retry-After [default: no limit].
    #[arg(long, env = "NETORCH_RATE_LIMIT", value_parser = parse_rate)]
    rate_limit: Option<f64>,

    /// How many requests a caller may make at once before --rate-limit applies [default: one
    /// second's worth, at least 1].
    #[arg(long, env = "NETORCH_RATE_LIMIT_BURST", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_burst: Option<u32>,

    /// Refuse request bodies larger than this many bytes with 413, before reading them whole
    /// (the largest legal push, 10,000 samples, is about 1.2 MB).
    #[arg(long, env = "NETORCH_MAX_BODY_BYTES", default_value_t = netorch_api::MAX_BODY_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..))]
    max_body_bytes: u64,

    /// Read, decode and store at most this many pushes at once (the JSON push and the
    /// collectors' protocols); more wait their turn, mostly unread, up to 10 s, then get 503
    /// with Retry-After. One push at the 8 MiB body limit may take about 330 MB decoded
    #[arg(long, env = "NETORCH_CONCURRENT_PUSHES", default_value_t = netorch_api::DEFAULT_CONCURRENT_PUSHES as u64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrent_pushes: u64,

    /// Let browsers on this origin call the API (CORS) and change things through it:
    /// `https://host[:port]`, or `*` for any; repeat the flag or separate with commas
    /// [default: none; the server's own pages always may].
    #[arg(long, env = "NETORCH_CORS_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    cors_origin: Vec<String>,

    /// Answer requests that name this host in their Host header (a name the server is reached
    /// by, through DNS or a reverse proxy), besides the address it listens on and localhost;
    /// repeat the flag or separate with commas; `*` answers any host [default: none]. Other
    /// hosts get 421: a page that rebinds its own name to this server is refused.
    #[arg(long, env = "NETORCH_ALLOWED_HOST", value_delimiter = ',', value_parser = parse_host)]
    allowed_host: Vec<String>,

    /// Refuse (422) pushed samples dated more than this many seconds after the server's clock
    /// (raise it for collectors whose clocks are not kept by NTP).
    #[arg(long, env = "NETORCH_SAMPLE_FUTURE_TOLERANCE_SECS", default_value_t = 1.0,
          value_parser = parse_seconds)]
    sample_future_tolerance_secs: f64,

    /// With keys on, each client address may fail to authenticate this many times a second
    /// (twice that at once); past it, its requests that need a key looked up get 429 with
    /// Retry-After.
    #[arg(long, env = "NETORCH_AUTH_FAILURE_RATE",
          default_value_t = netorch_api::limits::DEFAULT_AUTH_FAILURE_RATE, value_parser = parse_rate)]
    auth_failure_rate: f64,

    #[command(flatten)]
    worker: WorkerArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Auth {
    /// API keys with roles (`netorch-server keys create`).
    Keys,
    /// No key needed.
    None,
}

#[derive(Subcommand)]
enum Command {
    /// Manage API keys, on the database of --database-url, with the server running or not.
    #[command(subcommand)]
    Keys(manage::keys::Keys),
    /// Manage where alerts are told (Alertmanager, webhooks, PagerDuty), on the database of
    /// --database-url, with the server running or not.
    #[command(subcommand)]
    Receivers(manage::receivers::Receivers),
}

fn parse_bind(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "{text:?} is not an address to listen on: use HOST:PORT, such as 127.0.0.1:8000 \
             (this machine only), 0.0.0.0:8000 (every interface) or [::1]:8000"
        )),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1e6 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate: use requests a second, above 0"
        )),
    }
}

fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let host = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    match host {
        _ if text == "*" => Ok(text.to_owned()),
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "{text:?} is not an origin: use http://host[:port], https://host[:port] or *"
        )),
    }
}

fn parse_host(text: &str) -> Result<String, String> {
    let text = text.trim();
    let plain =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if text == "*" || (!text.is_empty() && text.chars().all(plain)) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a host name: use a name or address as clients put it in the Host \
             header (netorch.example.com), or * for any"
        ))
    }
}

/// The access control in force: `--auth` if given, else keys unless the server listens on
/// loopback only (so that local use needs no key, as before keys existed).
fn auth_in_force(flag: Option<Auth>, loopback: bool) -> AuthMode {
    match flag {
        Some(Auth::Keys) => AuthMode::Keys,
        Some(Auth::None) => AuthMode::Off,
        None if loopback => AuthMode::Off,
        None => AuthMode::Keys,
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0 to 3600"
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workers {
    /// Run both loops in this process.
    Embedded,
    /// Run no loop here.
    None,
}

fn main() -> std::process::ExitCode {
    netorch_workers::cli::exit_status(run())
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init();
    match cli.command {
        Some(Command::Keys(command)) => return manage::keys::run(&cli.database, command),
        Some(Command::Receivers(command)) => {
            return manage::receivers::run(&cli.database, command);
        }
        None => {}
    }
    let http_workers = cli
        .http_workers
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // Enough connections for every HTTP worker's blocking calls plus the two loops.
    let options = DatabaseOptions {
        max_connections: u32::try_from(http_workers * 2 + 4).unwrap_or(32),
        sqlite_max_bytes: cli.sqlite_max_mb.map(|mb| mb.saturating_mul(1 << 20)),
        ..DatabaseOptions::default()
    };
    // The address first: a server that cannot listen must not create or migrate a database.
    let listener = std::net::TcpListener::bind(&cli.bind)
        .with_context(|| format!("cannot listen on {}", cli.bind))?;
    if cli.workers == Workers::None && cli.worker.is_set() {
        log::warn!(
            "--time-scale, the interval flags, --name and the export flags set the embedded \
             workers, and --workers none runs none here: give them to netorch-worker instead"
        );
    }
    // The worker flags that can be wrong together (the export's), checked before any work.
    let worker_options = cli.worker.options().map_err(anyhow::Error::msg)?;
    // The error names the database (password hidden) and what the driver said.
    let db = Database::connect_with(&cli.database.database_url, &options)?;
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let auth = auth_in_force(cli.auth, loopback);
    if auth == AuthMode::Off && !loopback {
        log::warn!(
            "--auth none on {}, which is not a loopback address: anyone who can reach it can \
             change and delete every deployment",
            cli.bind
        );
    }
    // One set of metrics for the API and the embedded workers; the server alone reads the
    // fleet's counters for them (a worker's /metrics has its own work only).
    let mut metrics = netorch_metrics::Metrics::new();
    metrics.collect_database(db.clone());
    metrics.collect_fleet(db.clone());
    let metrics = Arc::new(metrics);
    let bound = listener.local_addr().context("the address listened on")?;
    let mut api = ApiState::new(db.clone(), cli.max_nodes_per_deployment)
        .with_metrics(Arc::clone(&metrics))
        .with_access_log(cli.access_log)
        .with_retention(cli.worker.retention())
        .with_auth(auth)
        .with_max_body_bytes(usize::try_from(cli.max_body_bytes).unwrap_or(usize::MAX))
        .with_concurrent_pushes(usize::try_from(cli.concurrent_pushes).unwrap_or(1))
        .with_allowed_hosts(HostPolicy::for_listener(bound, &cli.allowed_host))
        .with_cors_origins(&cli.cors_origin)
        .with_external_url(
            &cli.worker
                .external_url
                .clone()
                .unwrap_or_else(|| format!("http://{bound}")),
        )
        .with_future_sample_tolerance(std::time::Duration::from_secs_f64(
            cli.sample_future_tolerance_secs,
        ))
        .with_provisioner_profiles(&worker_options.provisioners.names());
    let failures = FailureBudget::per_second(cli.auth_failure_rate)
        .context("the failure rate must be above 0")?;
    api = api.with_auth_failure_limit(failures);
    if let Some(rate) = cli.rate_limit {
        let burst = cli
            .rate_limit_burst
            .unwrap_or_else(|| u32::try_from(rate.ceil() as u64).unwrap_or(u32::MAX).max(1));
        let limit = netorch_api::limits::RateLimit::new(rate, burst)
            .context("the rate limit must be above 0 with a burst of at least 1")?;
        api = api.with_rate_limit(limit);
    }
    let state = web::Data::new(api);
    let app_state = state.clone();
    let serving = netorch_api::server::serve(
        listener,
        state.clone(),
        ServeOptions {
            workers: http_workers,
        },
        move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(actix_web::middleware::from_fn(
                    netorch_api::close_when_draining,
                ))
                // Outermost of the API's own checks: a browser's preflight is answered before
                // access control, which it carries no token for.
                .wrap(app_state.cors())
                // Every response, whichever layer made it, has the request id, is JSON when it
                // is an error, and is counted and logged.
                .wrap(actix_web::middleware::from_fn(netorch_api::observe))
                // Outermost, so `observe` sees the path it routes by. The original redirected
                // /deployments/ to /deployments; accept both.
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .configure(netorch_api::configure)
                .default_service(web::to(netorch_api::not_found))
        },
    )
    .with_context(|| format!("serving on {}", cli.bind))?;
    let addresses = [serving.addr().to_string()];

    let (stop_workers, workers_stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = match cli.workers {
        Workers::Embedded => {
            let hardware = Arc::new(
                SimulatedHardware::new(cli.worker.time_scale)
                    .with_hang_every(cli.worker.simulate_hang_every),
            );
            let mut options = netorch_workers::WorkerOptions {
                metrics: Arc::clone(&metrics),
                ..worker_options
            };
            // The links alerts carry point at this server unless --external-url says otherwise.
            if cli.worker.external_url.is_none() {
                options.delivery.external_url = format!("http://{bound}");
            }
            Some(tokio::spawn(netorch_workers::run(
                db.clone(),
                hardware.clone(),
                hardware,
                options,
                async {
                    let _ = workers_stopped.await;
                },
            )))
        }
        Workers::None => None,
    };
    log::info!(
        "netorch-server {} listening on http://{} with database {}, auth {}, workers {}",
        env!("CARGO_PKG_VERSION"),
        addresses.join(", http://"),
        db.redacted_url(),
        match auth {
            AuthMode::Keys => "keys",
            AuthMode::Off => "none",
        },
        match cli.workers {
            Workers::Embedded => format!("embedded (time scale {})", cli.worker.time_scale),
            Workers::None => "not run here".to_owned(),
        },
    );
    if let Some(first) = addresses.first() {
        log::info!("dashboard at http://{first}/ui, API explorer at http://{first}/docs");
    }
    // This server among the others of the database (the rate limit's share), until it stops.
    let (stop_presence, presence_stopped) = tokio::sync::oneshot::channel::<()>();
    let presence = tokio::spawn(netorch_api::presence::keep_presence(
        state.clone(),
        cli.worker.worker_name(),
        async {
            let _ = presence_stopped.await;
        },
    ));
    let (server, shutdown) = serving.into_parts();
    let grace = std::time::Duration::from_secs_f64(cli.shutdown_grace);
    tokio::spawn(async move {
        netorch_workers::shutdown_signal().await;
        shutdown.run(grace).await;
    });
    server.await.context("serving HTTP")?;
    let _ = stop_presence.send(());
    let _ = presence.await;
    if let Some(workers) = workers {
        let _ = stop_workers.send(());
        workers.await.context("stopping the workers")?;
    }
    log::info!("netorch-server stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_asked_for_off_loopback_unless_turned_off() {
        assert_eq!(auth_in_force(None, true), AuthMode::Off);
        assert_eq!(auth_in_force(None, false), AuthMode::Keys);
        assert_eq!(auth_in_force(Some(Auth::Keys), true), AuthMode::Keys);
        assert_eq!(auth_in_force(Some(Auth::None), false), AuthMode::Off);
    }
}
