//! How long telemetry is kept, per tier, and its expiry in short write transactions.
//!
//! Each call to [`expire_chunk`] deletes at most [`CHUNK_ROWS`] of the oldest expired rows of
//! one tier of one deployment, in its own write transaction, so ingest and transitions never
//! wait long behind it. SQLite puts the freed pages on its free list and reuses them for new
//! rows: once expiry keeps pace with ingest the file stops growing (the long-run benchmark
//! shows it). On PostgreSQL the tables are partitioned by time: [`expire`] drops whole
//! partitions ([`crate::partitions`]) and deletes in chunks only from the default partitions.

use crate::connection::write_transaction;
use crate::partitions::{self, Maintenance};
use crate::time::to_micros;
use crate::{DbConnection, Result};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use netorch_domain::{DeploymentId, Timestamp};

pub use crate::tiers::{Retention, Tier};

/// Rows deleted per write transaction: about 10 – 30 ms of SQLite's work on this project's
/// machine (docs/PERFORMANCE.md).
pub const CHUNK_ROWS: i64 = 10_000;

/// Deletes up to [`CHUNK_ROWS`] of `deployment`'s rows of `tier` older than its retention at
/// `now` (per table), in one write transaction; returns how many were deleted. Rows are
/// deleted oldest first by key, up to the key of the chunk's last row. On PostgreSQL only the
/// default partitions are read: rows in time partitions go with their partition.
pub fn expire_chunk(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    tier: Tier,
    retention: &Retention,
    now: Timestamp,
) -> Result<usize> {
    let cutoff = to_micros(now - tier.kept(retention));
    let partitioned = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => false,
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(_) => true,
    };
    write_transaction(conn, |conn| {
        let mut deleted = 0;
        for (table, time, second) in tier.tables() {
            let default_partition;
            let table = if partitioned {
                default_partition = format!("{table}_default");
                default_partition.as_str()
            } else {
                table
            };
            // Row-value comparison: the chunk ends exactly at its last key even when thousands
            // of rows share a timestamp. COALESCE: fewer than a chunk left means up to cutoff.
            let (last_key, bound) = match second {
                Some(second) => (
                    format!("{time}, {second}"),
                    format!("({time}, {second}) <= (SELECT {time}, {second}"),
                ),
                None => (time.to_string(), format!("{time} <= (SELECT {time}")),
            };
            let sql = format!(
                "DELETE FROM {table} WHERE deployment_id = $1 AND {time} < $2 AND ({bound} \
                 FROM {table} WHERE deployment_id = $1 AND {time} < $2 \
                 ORDER BY {last_key} LIMIT 1 OFFSET $3) OR (SELECT count(*) FROM (SELECT 1 \
                 FROM {table} WHERE deployment_id = $1 AND {time} < $2 LIMIT $4) c) <= $3)"
            );
            deleted += on_backend!(conn, |inner| diesel::sql_query(sql.as_str())
                .bind::<BigInt, _>(deployment.get())
                .bind::<BigInt, _>(cutoff)
                .bind::<BigInt, _>(CHUNK_ROWS - 1)
                .bind::<BigInt, _>(CHUNK_ROWS)
                .execute(inner)?);
        }
        Ok(deleted)
    })
}

/// What one [`expire`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Rows deleted one by one (in chunks).
    pub rows: usize,
    /// PostgreSQL's partition work: created ahead, dropped when expired (zero on SQLite).
    pub partitions: Maintenance,
    /// Events deleted for their age.
    pub events: usize,
}

/// Expires telemetry: on PostgreSQL first keeps the time partitions ([`partitions::maintain`]),
/// then, on both backends, deletes each deployment's expired rows a chunk (one short
/// transaction) at a time, until nothing is left to expire or `keep_going` says stop (it is
/// asked before each chunk).
pub fn expire(
    conn: &mut DbConnection,
    retention: &Retention,
    now: Timestamp,
    mut keep_going: impl FnMut() -> bool,
) -> Result<Expiry> {
    let mut done = Expiry {
        rows: 0,
        partitions: partitions::maintain(conn, retention, now)?,
        events: 0,
    };
    let deployments = crate::deployments::all_ids(conn)?;
    for deployment in deployments {
        for tier in Tier::ALL {
            loop {
                if !keep_going() {
                    return Ok(done);
                }
                let chunk = expire_chunk(conn, deployment, tier, retention, now)?;
                done.rows += chunk;
                if chunk < usize::try_from(CHUNK_ROWS).unwrap_or(usize::MAX) {
                    break;
                }
            }
        }
    }
    loop {
        if !keep_going() {
            return Ok(done);
        }
        let chunk = expire_events_chunk(conn, retention, now)?;
        done.events += chunk;
        if chunk < usize::try_from(CHUNK_ROWS).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(done)
}

/// Deletes, in one write transaction, those of the audit log's [`CHUNK_ROWS`] oldest events
/// (by id) recorded more than [`Retention::events`] before `now`; returns how many. The log is
/// append-only: this is the only way an event leaves it, whether its deployment lives or not.
/// Reading the oldest ids first keeps each call to one chunk of the primary key's index,
/// however long the log; events are recorded in id order, so the expired ones come first, and
/// when the oldest has not expired the call reads that one row and writes nothing.
pub fn expire_events_chunk(
    conn: &mut DbConnection,
    retention: &Retention,
    now: Timestamp,
) -> Result<usize> {
    let cutoff = to_micros(now - retention.events);
    // Mostly nothing has expired: one row of the primary key's index says so, without a write
    // transaction (on SQLite, the database's write lock) every tick.
    let oldest: Option<i64> = on_backend!(conn, |inner| crate::schema::events::table
        .order(crate::schema::events::id.asc())
        .select(crate::schema::events::created_at)
        .first(inner)
        .optional()?);
    if oldest.is_none_or(|at| at >= cutoff) {
        return Ok(0);
    }
    write_transaction(conn, |conn| {
        Ok(on_backend!(conn, |inner| diesel::sql_query(
            "DELETE FROM events WHERE id IN (SELECT oldest.id FROM (SELECT id, created_at \
             FROM events ORDER BY id LIMIT $1) oldest WHERE oldest.created_at < $2)"
        )
        .bind::<BigInt, _>(CHUNK_ROWS)
        .bind::<BigInt, _>(cutoff)
        .execute(inner)?))
    })
}

#[derive(QueryableByName)]
struct FreeBytes {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// Bytes the telemetry tables (samples and rollups, every partition, with their indexes) take
/// on PostgreSQL; on SQLite, which keeps one file, the bytes of the file in use (its pages not
/// on the free list).
pub fn stored_bytes(conn: &mut DbConnection) -> Result<i64> {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => Ok(diesel::sql_query(
            "SELECT (c.page_count - f.freelist_count) * s.page_size AS bytes \
             FROM pragma_page_count() c, pragma_freelist_count() f, pragma_page_size() s",
        )
        .get_result::<FreeBytes>(inner)?
        .bytes),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => {
            let tables: Vec<&str> = Tier::ALL
                .iter()
                .flat_map(|tier| tier.tables().iter().map(|t| t.0))
                .collect();
            Ok(diesel::sql_query(
                "SELECT COALESCE(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint AS bytes \
                 FROM pg_inherits i WHERE i.inhparent IN \
                 (SELECT to_regclass(t) FROM unnest($1) AS t)",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(tables)
            .get_result::<FreeBytes>(inner)?
            .bytes)
        }
    }
}
