//! How a bottleneck report reads its window: in two consecutive parts meeting at a minute
//! boundary, each on its own connection and thread into its own streaming analysis, merged at
//! the end (on two cores this nearly halves a large report's time). Every whole minute is read
//! as one rollup row per node, and only the partial minutes at the edges as raw samples.
//!
//! Public so that benchmarks and embedders time exactly what the route runs.

use chrono::{DateTime, Duration, Utc};
use netorch_analytics::{AnalysisConfig, StreamingAnalysis};
use netorch_domain::{DeploymentId, Resolution};
use netorch_storage::rollups::{self, WindowPart};
use netorch_storage::{DbConnection, StorageError};

/// `[start, end]` cut in two at the minute boundary nearest below its middle (whole if there
/// is none inside it).
pub fn window_parts(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let middle = start + (end - start) / 2;
    match DateTime::from_timestamp_micros(Resolution::Minute.bucket_of(middle.timestamp_micros())) {
        Some(split) if split > start && split <= end => {
            vec![(start, split - Duration::microseconds(1)), (split, end)]
        }
        _ => vec![(start, end)],
    }
}

/// One part of a window read into a streaming analysis.
pub fn analyse_part(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    config: AnalysisConfig,
) -> Result<StreamingAnalysis, StorageError> {
    let mut analysis = StreamingAnalysis::new(config);
    rollups::scan_window(conn, deployment, from, to, |part| match part {
        WindowPart::Sample(node, at, metrics) => analysis.push(node, at, metrics),
        WindowPart::Minute(node, minute, summary) => analysis.push_minute(node, minute, summary),
    })?;
    Ok(analysis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_meet_at_a_minute_and_cover_the_window() {
        let start = DateTime::parse_from_rfc3339("2026-11-28T10:00:17.5Z")
            .expect("valid")
            .to_utc();
        let end = start + Duration::minutes(10);
        let parts = window_parts(start, end);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, start);
        assert_eq!(parts[1].1, end);
        assert_eq!(parts[1].0.timestamp_micros() % 60_000_000, 0);
        assert_eq!(parts[0].1 + Duration::microseconds(1), parts[1].0);
        let short = window_parts(start, start + Duration::seconds(20));
        assert_eq!(short, vec![(start, start + Duration::seconds(20))]);
    }
}
