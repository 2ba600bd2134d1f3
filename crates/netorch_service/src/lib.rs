//! netorch's operations as plain Rust: each a function over a database handle (or a connection)
//! and the time it runs at, with typed inputs and outputs. The HTTP API's handlers parse a
//! request, call one of these and write the answer; the workers and any program embedding
//! netorch call them directly. No HTTP and no async runtime here.
//!
//! By resource: [`deployments`] (create, list, get, change, pause, resume, delete), [`nodes`]
//! (list, get, retry), [`telemetry`] (read, push), [`series`] (with their tier choice),
//! [`bottlenecks`] (the report with its read plan), [`events`] (the audit log), [`fleet`] (its
//! totals), [`keys`] and
//! [`workers`] (their heartbeats).
//! Each fails with [`ServiceError`]; a change takes the actor it is recorded under and `now`.
//! The public API uses `chrono`'s times, so the crate re-exports [`chrono`].

pub mod alerts;
pub mod bottlenecks;
pub mod deployments;
mod error;
pub mod events;
pub mod fleet;
pub mod ingest;
pub mod keys;
pub mod nodes;
pub mod series;
pub mod telemetry;
pub mod workers;

pub use chrono;
pub use error::ServiceError;
