//! `netorch-server`: the HTTP API, with the lifecycle and telemetry workers embedded unless
//! `--workers none`.

use actix_web::middleware::{Logger, NormalizePath, TrailingSlash};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use clap::{Parser, ValueEnum};
use netorch_api::ApiState;
use netorch_simulator::SimulatedHardware;
use netorch_storage::{Database, DatabaseOptions};
use netorch_workers::cli::{DatabaseArgs, WorkerArgs};
use std::sync::Arc;

/// Serves the netorch HTTP API (see /docs once it runs) and, unless told otherwise, runs the
/// lifecycle and telemetry workers in the same process.
#[derive(Parser)]
#[command(name = "netorch-server", version)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,

    /// Address to listen on (port 0 picks a free port, logged at start).
    #[arg(long, env = "NETORCH_BIND", default_value = "127.0.0.1:8000")]
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

    #[command(flatten)]
    worker: WorkerArgs,
}

/// How long, after the grace, requests are answered 503 before the listener closes.
const REFUSAL_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
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
            "--time-scale, the interval flags and --name set the embedded workers, and \
             --workers none runs none here: give them to netorch-worker instead"
        );
    }
    // The error names the database (password hidden) and what the driver said.
    let db = Database::connect_with(&cli.database.database_url, &options)?;
    let state = web::Data::new(
        ApiState::new(db.clone(), cli.max_nodes_per_deployment)
            .with_retention(cli.worker.retention()),
    );
    let access_log = cli.access_log;
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap(actix_web::middleware::from_fn(
                netorch_api::close_when_draining,
            ))
            .wrap(actix_web::middleware::Condition::new(
                access_log,
                Logger::default(),
            ))
            // The original redirected /deployments/ to /deployments; accept both.
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .configure(netorch_api::configure)
            .default_service(web::to(netorch_api::not_found))
    })
    .workers(http_workers)
    // Signals are handled below: a drain first, then the stop.
    .disable_signals()
    .listen(listener)
    .with_context(|| format!("serving on {}", cli.bind))?;
    let addresses: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();

    let (stop_workers, workers_stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = match cli.workers {
        Workers::Embedded => {
            let hardware = Arc::new(
                SimulatedHardware::new(cli.worker.time_scale)
                    .with_hang_every(cli.worker.simulate_hang_every),
            );
            let options = cli.worker.options();
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
        "netorch-server {} listening on http://{} with database {}, workers {}",
        env!("CARGO_PKG_VERSION"),
        addresses.join(", http://"),
        db.redacted_url(),
        match cli.workers {
            Workers::Embedded => format!("embedded (time scale {})", cli.worker.time_scale),
            Workers::None => "not run here".to_owned(),
        },
    );
    let server = server.run();
    let handle = server.handle();
    let grace = std::time::Duration::from_secs_f64(cli.shutdown_grace);
    tokio::spawn(async move {
        netorch_workers::shutdown_signal().await;
        log::info!(
            "draining for {grace:?}: /ready answers 503, connections close after their response"
        );
        state.start_draining();
        tokio::time::sleep(grace).await;
        // A short last window in which late requests are answered 503 (go elsewhere) instead
        // of finding the listener gone.
        log::info!("refusing new requests with 503 for {REFUSAL_WINDOW:?}");
        state.start_refusing();
        tokio::time::sleep(REFUSAL_WINDOW).await;
        log::info!("no longer accepting connections; finishing the requests received");
        // Graceful: every request already received is answered before its connection closes.
        handle.stop(true).await;
    });
    server.await.context("serving HTTP")?;
    if let Some(workers) = workers {
        let _ = stop_workers.send(());
        workers.await.context("stopping the workers")?;
    }
    log::info!("netorch-server stopped");
    Ok(())
}
