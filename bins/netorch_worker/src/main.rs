//! `netorch-worker`: runs the lifecycle and telemetry loops against a database that
//! `netorch-server` (and any number of other workers) share.

use clap::{Parser, ValueEnum};
use netorch_simulator::SimulatedHardware;
use netorch_storage::Database;
use netorch_workers::cli::{DatabaseArgs, WorkerArgs};
use std::sync::Arc;

/// Moves nodes through their lifecycle and collects telemetry from running nodes, on the
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
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Loop {
    /// Node state transitions.
    Lifecycle,
    /// Telemetry collection.
    Telemetry,
    /// Both loops.
    Both,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    // The error names the database (password hidden) and what the driver said.
    let db = Database::connect(&cli.database.database_url)?;
    let mut options = cli.workers.options();
    match cli.only {
        Loop::Lifecycle => options.telemetry_interval = None,
        Loop::Telemetry => options.lifecycle_interval = None,
        Loop::Both => {}
    }
    let every = |interval: Option<std::time::Duration>| {
        interval.map_or_else(|| "off".to_owned(), |i| format!("every {i:?}"))
    };
    log::info!(
        "netorch-worker {} as {} on {}: lifecycle {}, telemetry {}, time scale {}",
        env!("CARGO_PKG_VERSION"),
        options.name,
        db.redacted_url(),
        every(options.lifecycle_interval),
        every(options.telemetry_interval),
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
    log::info!("netorch-worker stopped");
    Ok(())
}
