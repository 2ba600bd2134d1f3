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

/// Feeds every row of `$query` (a filtered, selected query of one table) to `$each`, in the
/// order of the index on `($first, $second)`, without holding them all: SQLite's cursor
/// streams the rows; on PostgreSQL they are read in pages along the key
/// (`pg_pages::for_each`, where the why is). `$names` are the key columns' SQL names,
/// `$key_of` a row's key and `$row` its type. The one keyset scan of both backends: the window
/// reads of the raw samples and of the rollups both go through it.
macro_rules! scan_in_key_order {
    (
        $conn:expr, $query:expr,
        rows: $row:ty,
        key: ($first:expr, $second:expr),
        names: ($first_name:literal, $second_name:literal),
        key_of: $key_of:expr,
        $each:ident $(,)?
    ) => {
        match $conn {
            #[cfg(feature = "sqlite")]
            $crate::DbConnection::Sqlite(inner) => {
                for row in
                    $query.load_iter::<$row, diesel::connection::DefaultLoadingMode>(inner)?
                {
                    $each(row?)?;
                }
            }
            #[cfg(feature = "postgres")]
            $crate::DbConnection::Postgresql(inner) => {
                $crate::pg_pages::for_each(
                    inner,
                    |inner, after| {
                        let mut page = $query
                            .order(($first.asc(), $second.asc()))
                            .limit($crate::pg_pages::PAGE_ROWS)
                            .into_boxed();
                        if let Some(after) = after {
                            page = page.filter($crate::pg_pages::after(
                                $first_name,
                                $second_name,
                                after,
                            ));
                        }
                        page.load::<$row>(inner)
                    },
                    $key_of,
                    |row| $each(row),
                )?;
            }
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

pub mod alerts;
pub mod api_keys;
pub mod deployment_rows;
pub mod deployments;
pub mod events;
pub mod export;
pub mod heartbeats;
pub mod ingest;
pub mod migrations;
pub mod node_share;
pub mod nodes;
pub mod partitions;
pub mod remediation;
pub mod retention;
pub mod rollups;
pub mod runs;
pub mod telemetry;

/// The time library of the timestamps the repository functions take (as in `netorch_domain`).
pub use chrono;
pub use connection::{
    Backend, ConnectionManager, Database, DatabaseOptions, DatabaseStats, DatabaseUrl,
    DbConnection, PooledConnection, WRITE_PROBE_BYTES, write_transaction,
};
pub use error::{Result, StorageError, error_counts};
