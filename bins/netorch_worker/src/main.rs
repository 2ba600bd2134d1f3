//! `netorch-worker`: runs the lifecycle and telemetry loops against a database that
//! `netorch-server` (and any number of other workers) share.

use anyhow::Context;
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

    /// Run only one of the two loops.
    #[arg(long, value_enum)]
    only: Option<Loop>,

    #[command(flatten)]
    workers: WorkerArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Loop {
    /// Node state transitions.
    Lifecycle,
    /// Telemetry collection.
    Telemetry,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let db = Database::connect(&cli.database.database_url)
        .with_context(|| format!("opening {}", cli.database.database_url))?;
    let mut options = cli.workers.options();
    match cli.only {
        Some(Loop::Lifecycle) => options.telemetry_interval = None,
        Some(Loop::Telemetry) => options.lifecycle_interval = None,
        None => {}
    }
    log::info!(
        "netorch-worker {} on {} (time scale {}, lifecycle {:?}, telemetry {:?})",
        options.name,
        db.redacted_url(),
        cli.workers.time_scale,
        options.lifecycle_interval,
        options.telemetry_interval,
    );
    let hardware = Arc::new(SimulatedHardware::new(cli.workers.time_scale));
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
