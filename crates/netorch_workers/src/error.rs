use netorch_storage::StorageError;

/// What a worker tick can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The database refused or failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The blocking task running a tick panicked or was cancelled.
    #[error("worker task failed: {0}")]
    Task(String),
}

impl WorkerError {
    /// True for SQLite's "database is locked": worth retrying at once.
    pub fn is_database_locked(&self) -> bool {
        matches!(self, WorkerError::Storage(e) if e.is_database_locked())
    }
}
