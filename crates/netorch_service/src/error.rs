//! What an operation can fail with.

use netorch_analytics::AnalyticsError;
use netorch_domain::{DeploymentId, Resolution, Timestamp};
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
    /// A key name that is not 1 to 64 of ASCII letters, digits, `.`, `_` and `-`.
    #[error("A key name is 1 to 64 letters, digits, '.', '_' or '-'")]
    KeyName(String),
    /// A key of that name exists already.
    #[error("An API key named {0:?} exists already (revoked keys keep their names)")]
    KeyExists(String),
    /// A key limited to deployments of which some do not exist.
    #[error(
        "A key can be limited only to deployments that exist, and not all of {} do",
        ids(.0)
    )]
    KeyDeploymentsMissing(Vec<DeploymentId>),
    /// The operating system gave no randomness for a token.
    #[error("no randomness for a token: {0}")]
    NoRandomness(String),
}

/// `ids` as `1, 2, 3`.
fn ids(ids: &[DeploymentId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
