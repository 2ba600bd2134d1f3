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
