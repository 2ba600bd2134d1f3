use netorch_storage::StorageError;

/// What a worker tick can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The database refused or failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An operation of the service layer (the alerts evaluation) failed.
    #[error(transparent)]
    Service(#[from] netorch_service::ServiceError),
    /// A tick could not check out the connection it needs within the pool's timeout.
    #[error(
        "{tick} needs a connection of the pool and none was free within its timeout: every one \
         is in use (does the caller hold connections of the same pool, or is the pool smaller \
         than the loops and requests sharing it?): {source}"
    )]
    NoConnection {
        /// The tick.
        tick: &'static str,
        /// What the pool said.
        source: StorageError,
    },
    /// The blocking task running a tick panicked or was cancelled.
    #[error("worker task failed: {0}")]
    Task(String),
}

impl WorkerError {
    /// True for SQLite's "database is locked": worth retrying at once.
    pub fn is_database_locked(&self) -> bool {
        match self {
            WorkerError::Storage(e)
            | WorkerError::Service(netorch_service::ServiceError::Storage(e)) => {
                e.is_database_locked()
            }
            _ => false,
        }
    }
}
