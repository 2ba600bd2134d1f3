//! PostgreSQL's time partitions of the telemetry tables, created ahead and dropped when expired.
//!
//! On PostgreSQL the samples and the four rollup tables are partitioned by range of their time
//! column (migration `2026-11-28-000005_telemetry_partitions`), at fixed widths aligned to the
//! Unix epoch ([`width`]): an hour of samples, a day of minute rollups, 30 days of hour rollups.
//! [`maintain`], called by every telemetry worker before expiry, keeps the partitions from the
//! one holding the retention cutoff to [`AHEAD`] widths past `now`, and drops each partition
//! whose whole range is past its tier's retention: expiry without deleting rows, and without
//! the dead tuples, vacuum work and index bloat that row deletes leave behind.
//!
//! A `DEFAULT` partition holds the rows no partition covers: those stored before the migration
//! or before any worker ran, and timestamps far from now (a collector may push any time). When
//! a partition is created, the default partition's rows in its range move into it in the same
//! transaction. What stays in the default partition is expired row by row, in chunks, as on
//! SQLite ([`crate::retention::expire_chunk`]).
//!
//! Because a partition goes only when its whole range is past retention, PostgreSQL keeps up to
//! one width more than the retention asks (an hour of samples, a day of minutes, 30 days of
//! hours). SQLite has no partitioning: [`maintain`] does nothing there.
//!
//! Architecture Invariant: every partition operation is its own short transaction that waits
//! at most [`LOCK_TIMEOUT`] for a table lock and gives up otherwise (the next call tries again),
//! so maintenance never queues ingest and queries behind it for long. Workers serialize on an
//! advisory lock per schema, so any number of them can call [`maintain`] at once.

use crate::tiers::{Retention, Tier};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result};
use netorch_domain::{Resolution, Timestamp};

/// Partitions kept past the one holding `now`, so that rows stamped a little ahead (workers'
/// clocks, collectors' clocks) find theirs.
pub const AHEAD: i64 = 2;

/// Partitions created behind the one holding `now` at most: older rows of a long retention
/// stay in the default partition (and are expired in chunks) rather than make one call create
/// thousands of tables.
pub const BEHIND: i64 = 48;

/// How long a partition operation waits for a table lock before it gives up until next time.
pub const LOCK_TIMEOUT: &str = "100ms";

const HOUR_MICROS: i64 = 3_600_000_000;
const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// The width of one partition of `tier`, in microseconds.
pub const fn width(tier: Tier) -> i64 {
    match tier {
        Tier::Raw => HOUR_MICROS,
        Tier::Rollup(Resolution::Minute) => DAY_MICROS,
        Tier::Rollup(Resolution::Hour) => 30 * DAY_MICROS,
    }
}

/// A partition of a telemetry table: the rows of `table` stamped in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The partitioned table.
    pub table: &'static str,
    /// The first instant it holds.
    pub start: Timestamp,
    /// The first instant past it.
    pub end: Timestamp,
}

/// What one [`maintain`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Partitions created.
    pub created: usize,
    /// Partitions dropped (their rows expired).
    pub dropped: usize,
    /// Rows moved out of the default partition into new partitions.
    pub moved: usize,
    /// True when a lock was not granted within [`LOCK_TIMEOUT`] and the rest was left for the
    /// next call.
    pub deferred: bool,
}

/// Every time partition of the telemetry tables (not the default ones), by table and start.
/// Empty on SQLite.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Partition>> {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => Ok(Vec::new()),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => {
            let mut all = Vec::new();
            for (table, tier) in pg::tables() {
                for index in pg::existing(inner, table)? {
                    all.push(partition(table, tier, index)?);
                }
            }
            Ok(all)
        }
    }
}

/// Creates the partitions the retention window and the next [`AHEAD`] widths need and drops
/// those wholly past retention at `now`, on every telemetry table. A no-op on SQLite.
pub fn maintain(
    conn: &mut DbConnection,
    retention: &Retention,
    now: Timestamp,
) -> Result<Maintenance> {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => {
            let _ = (retention, now);
            Ok(Maintenance::default())
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => pg::maintain(inner, retention, now),
    }
}

/// Holds partition maintenance off until the end of the current write transaction, for a
/// transaction that deletes rows of the partitioned tables by something other than time (a
/// deployment's delete). A no-op on SQLite.
///
/// Why: a `DELETE` on a partitioned table plans its partitions once, then waits for their
/// locks. A maintainer that creates a partition meanwhile moves the default partition's rows
/// of its range into a table the waiting delete never scans, and those rows outlive it (the
/// chaos check caught a deleted deployment's 1,050 samples so). Taken shared, after the
/// deployment's lock: deletes run side by side, and a maintainer's step, which takes it
/// exclusively with a lock timeout, waits for them or gives up until its next call.
pub fn hold_off_maintenance(conn: &mut DbConnection) -> Result<()> {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => Ok(()),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => {
            use diesel::RunQueryDsl;
            // The maintainer's lock of this schema (see `pg::step`), shared.
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema()))",
            )
            .bind::<diesel::sql_types::Integer, _>(crate::locks::PARTITION_MAINTENANCE_CLASS)
            .execute(inner)?;
            Ok(())
        }
    }
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn partition(table: &'static str, tier: Tier, index: i64) -> Result<Partition> {
    let width = width(tier);
    Ok(Partition {
        table,
        start: from_micros(table, index.saturating_mul(width))?,
        end: from_micros(table, index.saturating_add(1).saturating_mul(width))?,
    })
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
/// The indexes of the partitions `tier` needs at `now`: from the one holding the cutoff (at most
/// [`BEHIND`] back) to [`AHEAD`] past the one holding `now`; none before the epoch.
fn wanted(tier: Tier, retention: &Retention, now: Timestamp) -> std::ops::RangeInclusive<i64> {
    let width = width(tier);
    let current = to_micros(now).div_euclid(width);
    let cutoff = to_micros(now - tier.kept(retention)).div_euclid(width);
    cutoff.max(current - BEHIND).max(0)..=current + AHEAD
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
/// True when partition `index` of `tier` holds only rows past retention at `now`.
fn expired(tier: Tier, retention: &Retention, now: Timestamp, index: i64) -> bool {
    let end = index.saturating_add(1).saturating_mul(width(tier));
    end <= to_micros(now - tier.kept(retention))
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use diesel::pg::PgConnection;
    use diesel::prelude::*;
    use diesel::result::Error as DieselError;
    use diesel::sql_types::{BigInt, Integer, Text};

    /// The partitioned tables and their tiers.
    pub(super) fn tables() -> impl Iterator<Item = (&'static str, Tier)> {
        Tier::ALL
            .into_iter()
            .flat_map(|tier| tier.tables().iter().map(move |t| (t.0, tier)))
    }

    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }

    /// The indexes of `table`'s time partitions, named `<table>_p<index>`, ascending.
    pub(super) fn existing(conn: &mut PgConnection, table: &str) -> Result<Vec<i64>> {
        let names: Vec<Name> = diesel::sql_query(
            "SELECT c.relname::text AS name FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1)",
        )
        .bind::<Text, _>(table)
        .load(conn)?;
        let prefix = format!("{table}_p");
        let mut indexes: Vec<i64> = names
            .iter()
            .filter_map(|n| n.name.strip_prefix(&prefix)?.parse().ok())
            .collect();
        indexes.sort_unstable();
        Ok(indexes)
    }

    /// A lock not granted within `lock_timeout` (SQLSTATE 55P03; diesel keeps only the message).
    fn lock_timed_out(error: &DieselError) -> bool {
        matches!(error, DieselError::DatabaseError(_, info) if info.message().contains("lock timeout"))
    }

    /// Runs `f` in a transaction holding the maintenance lock, with the lock timeout set.
    /// `Ok(None)` when a table lock was not granted in time.
    fn step<T>(
        conn: &mut PgConnection,
        f: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> Result<Option<T>> {
        let outcome = conn.transaction(|conn| {
            diesel::sql_query(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                .execute(conn)?;
            // One maintainer per schema at a time, and none while a delete runs.
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
                .bind::<Integer, _>(crate::locks::PARTITION_MAINTENANCE_CLASS)
                .execute(conn)?;
            f(conn)
        });
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(error) if lock_timed_out(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn exists(conn: &mut PgConnection, name: &str) -> QueryResult<bool> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        Ok(
            diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS found")
                .bind::<Text, _>(name)
                .get_result::<Found>(conn)?
                .found,
        )
    }

    /// Creates partition `index` of `table`, moving the default partition's rows of its range
    /// into it; returns the rows moved, `None` if another worker made it first.
    fn create(
        conn: &mut PgConnection,
        table: &str,
        column: &str,
        tier: Tier,
        index: i64,
    ) -> QueryResult<Option<usize>> {
        let name = format!("{table}_p{index}");
        if exists(conn, &name)? {
            return Ok(None);
        }
        let width = width(tier);
        let (start, end) = (index * width, (index + 1) * width);
        // A plain table attached afterwards: CREATE TABLE ... PARTITION OF would lock the
        // parent exclusively, ATTACH PARTITION takes a lock that lets ingest and reads go on.
        // Rollup rows are rewritten by every tick of their bucket: half of each page is left
        // free so a rewrite stays on its page (a HOT update; migration 000010 says more).
        let storage = if tier == Tier::Raw {
            ""
        } else {
            " WITH (fillfactor = 50)"
        };
        diesel::sql_query(format!(
            "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS){storage}"
        ))
        .execute(conn)?;
        // The default partition is locked first, as ATTACH will: no row of the range can
        // arrive there between the move and the attach.
        diesel::sql_query(format!(
            "LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE"
        ))
        .execute(conn)?;
        let moved = diesel::sql_query(format!(
            "WITH moved AS (DELETE FROM {table}_default WHERE {column} >= $1 AND {column} < $2 \
             RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ))
        .bind::<BigInt, _>(start)
        .bind::<BigInt, _>(end)
        .execute(conn)?;
        diesel::sql_query(format!(
            "ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"
        ))
        .execute(conn)?;
        Ok(Some(moved))
    }

    pub(super) fn maintain(
        conn: &mut PgConnection,
        retention: &Retention,
        now: Timestamp,
    ) -> Result<Maintenance> {
        let mut done = Maintenance::default();
        for (table, tier) in tables() {
            let column = tier
                .tables()
                .iter()
                .find(|t| t.0 == table)
                .map_or("bucket", |t| t.1);
            let have = existing(conn, table)?;
            for &index in have.iter().filter(|&&i| expired(tier, retention, now, i)) {
                let name = format!("{table}_p{index}");
                match step(conn, |conn| {
                    diesel::sql_query(format!("DROP TABLE IF EXISTS {name}")).execute(conn)
                })? {
                    Some(_) => done.dropped += 1,
                    None => {
                        done.deferred = true;
                        return Ok(done);
                    }
                }
            }
            for index in wanted(tier, retention, now) {
                if have.binary_search(&index).is_ok() {
                    continue;
                }
                match step(conn, |conn| create(conn, table, column, tier, index))? {
                    Some(Some(moved)) => {
                        done.created += 1;
                        done.moved += moved;
                    }
                    Some(None) => {}
                    None => {
                        done.deferred = true;
                        return Ok(done);
                    }
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration};

    fn at(seconds: i64) -> Timestamp {
        DateTime::from_timestamp(seconds, 0).expect("valid")
    }

    #[test]
    fn the_window_runs_from_the_cutoffs_partition_to_two_ahead() {
        let retention = Retention {
            raw: Duration::hours(3),
            ..Retention::default()
        };
        // 10:30 on day 20,000: the cutoff 07:30 is in hour 7's partition.
        let now = at(20_000 * 86_400 + 10 * 3_600 + 1_800);
        let hour = 20_000 * 24;
        assert_eq!(
            wanted(Tier::Raw, &retention, now),
            hour + 7..=hour + 10 + AHEAD
        );
        assert!(expired(Tier::Raw, &retention, now, hour + 6));
        assert!(!expired(Tier::Raw, &retention, now, hour + 7));
        // A retention longer than BEHIND partitions: only BEHIND are created behind now.
        let long = Retention {
            raw: Duration::days(30),
            ..Retention::default()
        };
        assert_eq!(*wanted(Tier::Raw, &long, now).start(), hour + 10 - BEHIND);
        // Nothing before the epoch.
        assert_eq!(*wanted(Tier::Raw, &retention, at(3_600)).start(), 0);
    }

    #[test]
    fn partitions_cover_their_width() {
        let p = partition("telemetry_minutes", Tier::Rollup(Resolution::Minute), 3).expect("valid");
        assert_eq!((p.start, p.end), (at(3 * 86_400), at(4 * 86_400)));
    }
}
