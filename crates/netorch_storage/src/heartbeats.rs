//! Worker heartbeats: each worker loop records when it last finished a tick.

use crate::connection::write_transaction;
use crate::schema::worker_heartbeats;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use netorch_domain::{Timestamp, WorkerHeartbeat, WorkerKind};
use std::time::Duration;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = worker_heartbeats)]
struct HeartbeatRow {
    name: String,
    kind: String,
    interval_ms: i64,
    started_at: i64,
    last_heartbeat: i64,
    stopped_at: Option<i64>,
}

impl TryFrom<HeartbeatRow> for WorkerHeartbeat {
    type Error = StorageError;

    fn try_from(row: HeartbeatRow) -> Result<Self> {
        Ok(WorkerHeartbeat {
            name: row.name,
            kind: row.kind.parse()?,
            interval: Duration::from_millis(row.interval_ms.unsigned_abs()),
            started_at: from_micros("worker_heartbeats", row.started_at)?,
            last_heartbeat: from_micros("worker_heartbeats", row.last_heartbeat)?,
            stopped_at: row
                .stopped_at
                .map(|at| from_micros("worker_heartbeats", at))
                .transpose()?,
        })
    }
}

/// How long a worker loop that stopped reporting stays listed, unless its worker says
/// otherwise ([`record_with`]): long enough to see what stopped, short enough that restarts
/// (each under a new name) do not pile up.
pub const FORGET_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// The most loops [`list`] returns (the most recent).
pub const LISTED_LOOPS: i64 = 100;

/// Records that worker `name`'s `kind` loop, ticking every `interval` since `started_at`, is
/// alive at `now`, forgetting loops silent for [`FORGET_AFTER`] (see [`record_with`]).
pub fn record(
    conn: &mut DbConnection,
    name: &str,
    kind: WorkerKind,
    interval: Duration,
    started_at: Timestamp,
    now: Timestamp,
) -> Result<()> {
    record_with(conn, name, kind, interval, started_at, now, FORGET_AFTER)
}

/// Records that worker `name`'s `kind` loop, ticking every `interval` since `started_at`, is
/// alive at `now`. When a new loop first reports, loops silent for `forget_after` are
/// forgotten: every restarted process reports under a new name, and the list must not grow
/// forever.
pub fn record_with(
    conn: &mut DbConnection,
    name: &str,
    kind: WorkerKind,
    interval: Duration,
    started_at: Timestamp,
    now: Timestamp,
    forget_after: chrono::Duration,
) -> Result<()> {
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    write_transaction(conn, |conn| {
        let updated = diesel::update(
            worker_heartbeats::table
                .filter(worker_heartbeats::name.eq(name))
                .filter(worker_heartbeats::kind.eq(kind.as_str())),
        )
        .set((
            worker_heartbeats::interval_ms.eq(interval_ms),
            worker_heartbeats::started_at.eq(to_micros(started_at)),
            worker_heartbeats::last_heartbeat.eq(to_micros(now)),
            worker_heartbeats::stopped_at.eq(None::<i64>),
        ))
        .execute(conn)?;
        if updated == 0 {
            diesel::delete(
                worker_heartbeats::table
                    .filter(worker_heartbeats::last_heartbeat.lt(to_micros(now - forget_after))),
            )
            .execute(conn)?;
            diesel::insert_into(worker_heartbeats::table)
                .values(HeartbeatRow {
                    name: name.to_owned(),
                    kind: kind.as_str().to_owned(),
                    interval_ms,
                    started_at: to_micros(started_at),
                    last_heartbeat: to_micros(now),
                    stopped_at: None,
                })
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Records that worker `name`'s `kind` loop stopped cleanly at `now`: it is no longer alive,
/// without waiting for three of its intervals to pass.
pub fn record_stop(
    conn: &mut DbConnection,
    name: &str,
    kind: WorkerKind,
    now: Timestamp,
) -> Result<()> {
    diesel::update(
        worker_heartbeats::table
            .filter(worker_heartbeats::name.eq(name))
            .filter(worker_heartbeats::kind.eq(kind.as_str())),
    )
    .set(worker_heartbeats::stopped_at.eq(Some(to_micros(now))))
    .execute(conn)?;
    Ok(())
}

/// The worker loops that reported, most recent heartbeat first, at most [`LISTED_LOOPS`].
pub fn list(conn: &mut DbConnection) -> Result<Vec<WorkerHeartbeat>> {
    worker_heartbeats::table
        .order(worker_heartbeats::last_heartbeat.desc())
        .limit(LISTED_LOOPS)
        .select(HeartbeatRow::as_select())
        .load(conn)?
        .into_iter()
        .map(WorkerHeartbeat::try_from)
        .collect()
}
