//! How a bottleneck report reads its window: in two consecutive parts, each on its own
//! connection and thread into its own streaming analysis, merged at the end (on two cores this
//! nearly halves a large report's time). Only the partial minutes at the window's edges are read
//! as raw samples. The robust method, whose per-node statistic is the median of the node's
//! minute means, reads every whole minute as a rollup row per node; the z-score method, which
//! needs only counts and moments, reads whole hours as hour rollups, and an hour the window
//! covers mostly as the hour less the minutes outside ([`WindowDetail::Coarsest`]): a few rows
//! per node whatever the window's length.
//!
//! Public so that benchmarks and embedders time exactly what the route runs.

use chrono::{DateTime, Duration, Utc};
use netorch_analytics::{AnalysisConfig, Method, StreamingAnalysis};
use netorch_domain::{DeploymentId, Resolution, SampleSummary};
use netorch_storage::rollups::{self, WindowDetail, WindowPart};
use netorch_storage::{DbConnection, StorageError};

/// How finely `method` needs a window's whole minutes.
pub fn window_detail(method: Method) -> WindowDetail {
    if method.needs_minute_means() {
        WindowDetail::Minutes
    } else {
        WindowDetail::Coarsest
    }
}

/// `[start, end]` (a window ending now) cut in two at the boundary that keeps the two parts
/// about equally cheap to read for `method`: the minute boundary in the middle, or for
/// hour-by-hour reads whichever of the hour boundaries around the middle and the minute
/// boundaries of the window's first and last hours reads fewest rows in its costlier part (a
/// part cut inside an hour may have to read that hour minute by minute). Whole if no boundary
/// lies inside it.
pub fn window_parts(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    method: Method,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let detail = window_detail(method);
    let middle = (start + (end - start) / 2).timestamp_micros();
    let (minute, hour) = (Resolution::Minute, Resolution::Hour);
    let mut splits = vec![minute.bucket_of(middle)];
    if detail == WindowDetail::Coarsest {
        splits.push(hour.bucket_of(middle));
        splits.push(hour.bucket_of(middle + hour.micros() - 1));
        // The minutes of the partial hours at the window's ends, which are read minute by
        // minute: a window ending half past the hour reads half an hour of minutes and one hour
        // row, and only a cut inside those minutes shares them out.
        for edge in [start, end] {
            let first = hour.bucket_of(edge.timestamp_micros());
            splits.extend((1..60).map(|m| first + m * minute.micros()));
        }
    }
    let cost = |split: DateTime<Utc>| {
        let first = (start, split - Duration::microseconds(1));
        rollups::rows_per_node(first, detail, false).max(rollups::rows_per_node(
            (split, end),
            detail,
            true,
        ))
    };
    let best = splits
        .into_iter()
        .filter_map(DateTime::from_timestamp_micros)
        .filter(|split| *split > start && *split <= end)
        .min_by(|a, b| cost(*a).total_cmp(&cost(*b)));
    match best {
        Some(split) => vec![(start, split - Duration::microseconds(1)), (split, end)],
        None => vec![(start, end)],
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
    rollups::scan_window(
        conn,
        deployment,
        (from, to),
        window_detail(config.method),
        |part| match part {
            WindowPart::Sample(node, at, metrics) => analysis.push(node, at, metrics),
            WindowPart::Minute(node, minute, summary) => {
                analysis.push_minute(node, minute, summary)
            }
            WindowPart::Hour(node, _, summary) => analysis.push_summary(node, summary),
            WindowPart::LessMinute(node, minute, summary) => {
                analysis.remove_minute(node, minute, summary)
            }
            WindowPart::LessSample(node, at, metrics) => analysis.remove_minute(
                node,
                Resolution::Minute.bucket_of(at.timestamp_micros()),
                &SampleSummary::of(at, &metrics),
            ),
        },
    )?;
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
        let parts = window_parts(start, end, Method::Robust);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, start);
        assert_eq!(parts[1].1, end);
        assert_eq!(parts[1].0.timestamp_micros() % 60_000_000, 0);
        assert_eq!(parts[0].1 + Duration::microseconds(1), parts[1].0);
        let short = window_parts(start, start + Duration::seconds(20), Method::Robust);
        assert_eq!(short, vec![(start, start + Duration::seconds(20))]);
    }

    #[test]
    fn hour_by_hour_reads_split_at_an_hour_when_that_reads_less() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("valid").to_utc();
        let (start, end) = (at("2026-11-28T09:00:17Z"), at("2026-11-28T10:00:17Z"));
        let parts = window_parts(start, end, Method::ZScore);
        assert_eq!(parts[1].0, at("2026-11-28T10:00:00Z"));
        assert_eq!(parts[0], (start, parts[1].0 - Duration::microseconds(1)));
        // The middle's own minute for minute-by-minute reads.
        assert_eq!(
            window_parts(start, end, Method::Robust)[1].0,
            at("2026-11-28T09:30:00Z")
        );
        // Inside one hour, a minute boundary.
        let inside = window_parts(
            at("2026-11-28T10:01:10Z"),
            at("2026-11-28T10:11:10Z"),
            Method::ZScore,
        );
        assert_eq!(inside[1].0, at("2026-11-28T10:06:00Z"));
        // Ending half past: the half hour before 10:00 is read minute by minute and the hour
        // from 10:00 as one row, so the cut shares out those minutes.
        let (start, end) = (at("2026-11-28T09:30:17Z"), at("2026-11-28T10:30:17Z"));
        let parts = window_parts(start, end, Method::ZScore);
        let cut = parts[1].0;
        assert!(
            cut >= at("2026-11-28T09:44:00Z") && cut <= at("2026-11-28T09:47:00Z"),
            "{cut}"
        );
    }
}
