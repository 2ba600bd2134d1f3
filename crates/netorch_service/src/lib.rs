//! netorch's operations as plain Rust: each a function over a database handle (or a connection)
//! and the time it runs at, with typed inputs and outputs. The HTTP API's handlers parse a
//! request, call one of these and write the answer; the workers and any program embedding
//! netorch call them directly. No HTTP and no async runtime here.
//!
//! So far: the bottleneck report ([`bottlenecks`]) and telemetry series with their tier choice
//! ([`series`]). The public API uses `chrono`'s times, so
//! the crate re-exports [`chrono`].

pub mod bottlenecks;
mod error;
pub mod series;

pub use chrono;
pub use error::ServiceError;
