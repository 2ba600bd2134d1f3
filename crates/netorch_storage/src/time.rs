//! Timestamps are stored as BIGINT microseconds since the Unix epoch, UTC.

use crate::{Result, StorageError};
use netorch_domain::Timestamp;

/// A timestamp as stored.
pub(crate) fn to_micros(ts: Timestamp) -> i64 {
    ts.timestamp_micros()
}

/// A stored timestamp back as a [`Timestamp`].
pub(crate) fn from_micros(table: &'static str, micros: i64) -> Result<Timestamp> {
    chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| StorageError::CorruptRow {
        table,
        detail: format!("timestamp {micros} out of range"),
    })
}
