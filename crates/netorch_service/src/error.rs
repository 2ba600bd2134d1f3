//! What an operation can fail with.

use netorch_analytics::AnalyticsError;
use netorch_storage::StorageError;

/// Everything the service layer can fail with: the storage's errors as they are (a missing
/// deployment is `StorageError::DeploymentNotFound`), the analytics' refusals, and inputs an
/// operation cannot take.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database failed, or a row it was asked for does not exist.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The analysis refused its input.
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    /// An input the operation cannot take.
    #[error("{0}")]
    Invalid(String),
}
