//! The worker loops, as the database knows them: each reports a heartbeat every tick.

use crate::ServiceError;
use netorch_domain::WorkerHeartbeat;
use netorch_storage::{DbConnection, heartbeats};

/// The loops that reported, most recent heartbeat first (at most
/// `netorch_storage::heartbeats::LISTED_LOOPS`); whether one is alive at a time is
/// [`WorkerHeartbeat::is_alive`].
pub fn heartbeats(conn: &mut DbConnection) -> Result<Vec<WorkerHeartbeat>, ServiceError> {
    Ok(heartbeats::list(conn)?)
}

/// Records that server `name` (reporting every `interval` since `started_at`) is alive at
/// `now`, and counts the servers alive then, itself included: what they share a rate limit
/// among.
pub fn report_server(
    conn: &mut DbConnection,
    name: &str,
    interval: std::time::Duration,
    started_at: netorch_domain::Timestamp,
    now: netorch_domain::Timestamp,
) -> Result<u32, ServiceError> {
    use netorch_domain::WorkerKind;
    heartbeats::record(conn, name, WorkerKind::Server, interval, started_at, now)?;
    let alive = heartbeats::list(conn)?
        .iter()
        .filter(|beat| beat.kind == WorkerKind::Server && beat.is_alive(now))
        .count();
    Ok(u32::try_from(alive).unwrap_or(u32::MAX).max(1))
}

/// Records that server `name` stopped at `now`: the others count one fewer at once.
pub fn report_server_stopped(
    conn: &mut DbConnection,
    name: &str,
    now: netorch_domain::Timestamp,
) -> Result<(), ServiceError> {
    Ok(heartbeats::record_stop(
        conn,
        name,
        netorch_domain::WorkerKind::Server,
        now,
    )?)
}
