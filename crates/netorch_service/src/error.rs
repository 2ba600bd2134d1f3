//! What an operation can fail with.

use netorch_analytics::AnalyticsError;
use netorch_domain::{Resolution, Timestamp};
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
    /// A range whose start is after its end.
    #[error("start_time must not be after end_time")]
    StartAfterEnd {
        /// The start.
        start: Timestamp,
    },
    /// A series range holding more buckets of its step than a series answers with.
    #[error("the range holds too many buckets of step {step}")]
    TooManyBuckets {
        /// The name of the step asked for (`SeriesStep::as_str`; this module is a leaf).
        step: &'static str,
        /// The tier it would be read from (`None`: raw samples).
        resolution: Option<Resolution>,
    },
}
