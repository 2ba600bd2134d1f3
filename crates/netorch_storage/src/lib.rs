//! netorch's storage layer: one diesel code path over SQLite and PostgreSQL.
//!
//! [`Database::connect`] picks the backend from the URL scheme (`sqlite://PATH`,
//! `sqlite::memory:`, `postgres://`, `postgresql://`), builds a connection pool and applies the
//! embedded migrations. The modules [`deployments`], [`nodes`], [`telemetry`], [`events`] and
//! [`heartbeats`] hold the repository functions; each takes a `&mut DbConnection` so that callers
//! can compose them inside one [`write_transaction`].
//!
//! Only this crate knows SQL. Everything is written once against the derived
//! [`DbConnection`]; hot paths (batched telemetry insert) match on the backend.

/// Runs the same diesel expression on the inner connection of either backend: the code is still
/// written once, and each backend compiles it natively. Used for queries the derived
/// multi-backend cannot express (multi-row inserts, `RETURNING` with `Selectable`) and for the
/// API's hot reads, because the multi-backend wrapper renders a query's SQL anew on every call
/// (a primary-key read costs 7 µs through it and 3.5 µs on the inner connection).
macro_rules! on_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            #[cfg(feature = "sqlite")]
            $crate::DbConnection::Sqlite($inner) => $body,
            #[cfg(feature = "postgres")]
            $crate::DbConnection::Postgresql($inner) => $body,
        }
    };
}

mod connection;
mod error;
pub mod locks;
#[cfg(feature = "postgres")]
mod pg_pages;
mod schema;
mod sqlite_bulk;
mod tiers;
mod time;
mod writer_queue;

pub mod api_keys;
pub mod deployment_rows;
pub mod deployments;
pub mod events;
pub mod heartbeats;
pub mod migrations;
pub mod nodes;
pub mod partitions;
pub mod retention;
pub mod rollups;
pub mod telemetry;

/// The time library of the timestamps the repository functions take (as in `netorch_domain`).
pub use chrono;
pub use connection::{
    Backend, ConnectionManager, Database, DatabaseOptions, DatabaseStats, DatabaseUrl,
    DbConnection, PooledConnection, WRITE_PROBE_BYTES, write_transaction,
};
pub use error::{Result, StorageError, error_counts};
