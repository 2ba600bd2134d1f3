//! netorch's background workers.
//!
//! Two ticks, each a plain function of the database (a connection for the lifecycle, the pool
//! for telemetry, which reads and writes on two connections at once) and the time, so tests
//! drive them with a fake clock and the binaries wrap them in loops:
//! - [`lifecycle_tick`] moves in-flight nodes through their state machine, asking a
//!   [`Provisioner`](netorch_domain::Provisioner) how each phase stands;
//! - [`telemetry_tick`] stores one sample per running node for the current collection slot,
//!   read from a [`TelemetrySource`](netorch_domain::TelemetrySource).
//!
//! Both are level-triggered (each decides from the rows as they are, so a restarted worker just
//! carries on), set-based (a tick costs a few statements, not one per node) and safe with any
//! number of workers on one database: transitions are guarded by the row version (and claimed
//! with `SKIP LOCKED` on PostgreSQL), samples are keyed by (node, slot start).
//!
//! `run` (feature `loops`, on by default) runs the loops on tokio until a shutdown future
//! resolves, records a heartbeat per tick, and backs off on repeated failures. Without the
//! feature the crate is the ticks alone: no tokio, no metrics.

#[cfg(feature = "cli")]
pub mod cli;
pub mod delivery;
mod error;
pub mod export;
mod lifecycle;
pub mod provisioners;
#[cfg(feature = "loops")]
mod runner;
mod telemetry;

/// The time library of the ticks' `now` (as in `netorch_domain`).
pub use chrono;
pub use error::WorkerError;
pub use lifecycle::{
    LIFECYCLE_BATCH, LifecycleTick, MAX_NODES_PER_TICK, Provisioners, TickLimits, lifecycle_tick,
    lifecycle_tick_using, lifecycle_tick_with, plan_removal, plan_transition,
};
#[cfg(feature = "loops")]
pub use runner::{WorkerOptions, run, shutdown_signal};
pub use telemetry::{TelemetryTick, slot_start, telemetry_tick};
