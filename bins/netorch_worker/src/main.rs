//! `netorch-worker`: runs the lifecycle, telemetry and alerts loops against a database that
//! `netorch-server` (and any number of other workers) share.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use netorch_simulator::SimulatedHardware;
use netorch_storage::DatabaseOptions;
use netorch_workers::cli::{DatabaseArgs, LogArgs, WorkerArgs};
use std::sync::Arc;

/// Moves nodes through their lifecycle, collects telemetry from running nodes and evaluates
/// alert rules, on the
/// database that netorch-server uses. Run as many as you like: they share the work safely.
#[derive(Parser)]
#[command(name = "netorch-worker", version)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,

    /// Which loops to run.
    #[arg(long, env = "NETORCH_WORKER_ONLY", value_enum, default_value_t = Loop::Both)]
    only: Loop,

    #[command(flatten)]
    workers: WorkerArgs,

    #[command(flatten)]
    log: LogArgs,

    /// Serve this worker's Prometheus metrics at http://ADDR/metrics (port 0 picks a free
    /// port, logged at start) [default: not served].
    #[arg(long, env = "NETORCH_METRICS_BIND")]
    metrics_bind: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Loop {
    /// Node state transitions.
    Lifecycle,
    /// Telemetry collection.
    Telemetry,
    /// Alert rule evaluation.
    Alerts,
    /// Every loop (lifecycle, telemetry and alerts; the name is from when there were two).
    Both,
}

fn main() -> std::process::ExitCode {
    netorch_workers::cli::exit_status(run())
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init();
    // The address first: a worker that cannot serve its metrics must not start working.
    let metrics_listener = cli
        .metrics_bind
        .as_deref()
        .map(|bind| {
            std::net::TcpListener::bind(bind)
                .with_context(|| format!("cannot listen on {bind} for metrics"))
        })
        .transpose()?;
    // The error names the database (password hidden) and what the driver said; a worker joins
    // an existing database, so a missing SQLite file is refused unless --create-database.
    // The flags that can be wrong together (the export's), checked before any work.
    let mut options = cli.workers.options().map_err(anyhow::Error::msg)?;
    let db = cli
        .database
        .join(DatabaseOptions::default())
        .map_err(anyhow::Error::msg)?;
    let mut metrics = netorch_metrics::Metrics::new();
    metrics.collect_database(db.clone());
    let metrics = Arc::new(metrics);
    options.metrics = Arc::clone(&metrics);
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let address = listener.local_addr()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(netorch_metrics::serve::serve(
                listener,
                Arc::clone(&metrics),
                async {
                    let _ = stopped.await;
                },
            ));
            log::info!("metrics at http://{address}/metrics");
            Some((stop, server))
        }
        None => None,
    };
    if cli.only != Loop::Both {
        let keep = |which: Loop, interval: Option<std::time::Duration>| {
            interval.filter(|_| cli.only == which)
        };
        options.lifecycle_interval = keep(Loop::Lifecycle, options.lifecycle_interval);
        options.telemetry_interval = keep(Loop::Telemetry, options.telemetry_interval);
        options.alerts_interval = keep(Loop::Alerts, options.alerts_interval);
    }
    let every = |interval: Option<std::time::Duration>| {
        interval.map_or_else(|| "off".to_owned(), |i| format!("every {i:?}"))
    };
    log::info!(
        "netorch-worker {} as {} on {}: lifecycle {}, telemetry {}, alerts {}, time scale {}",
        env!("CARGO_PKG_VERSION"),
        options.name,
        db.redacted_url(),
        every(options.lifecycle_interval),
        every(options.telemetry_interval),
        every(options.alerts_interval),
        cli.workers.time_scale,
    );
    let hardware = Arc::new(
        SimulatedHardware::new(cli.workers.time_scale)
            .with_hang_every(cli.workers.simulate_hang_every),
    );
    netorch_workers::run(
        db,
        hardware.clone(),
        hardware,
        options,
        netorch_workers::shutdown_signal(),
    )
    .await;
    if let Some((stop, server)) = metrics_server {
        let _ = stop.send(());
        server.await??;
    }
    log::info!("netorch-worker stopped");
    Ok(())
}
