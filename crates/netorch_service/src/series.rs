//! Telemetry series for charts: a node's, or a whole deployment's, in buckets, from the tier of
//! storage that fits the range. The step asked for is made coarser where its tier no longer
//! holds the range's start (retention), and refused when the range holds too many buckets of it.

use crate::ServiceError;
use chrono::Duration;
use netorch_domain::{DeploymentId, NodeId, NodeRef, Resolution, SampleSummary, Timestamp};
use netorch_storage::retention::Retention;
use netorch_storage::rollups;

pub use netorch_storage::rollups::SeriesBucket;
use netorch_storage::{DbConnection, deployments, nodes, telemetry};

/// The bucket size of a series: `raw` (each sample), `1m`, `1h`, or `auto`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeriesStep {
    /// Each sample (each instant, for a fleet).
    Raw,
    /// One-minute rollups.
    Minute,
    /// One-hour rollups.
    Hour,
    /// The finest step that keeps a chart readable (see [`choose`]).
    #[default]
    Auto,
}

impl SeriesStep {
    /// Every step, as the document lists them.
    pub const ALL: [SeriesStep; 4] = [
        SeriesStep::Raw,
        SeriesStep::Minute,
        SeriesStep::Hour,
        SeriesStep::Auto,
    ];

    /// The step's name in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            SeriesStep::Raw => "raw",
            SeriesStep::Minute => Resolution::Minute.as_str(),
            SeriesStep::Hour => Resolution::Hour.as_str(),
            SeriesStep::Auto => "auto",
        }
    }

    /// The tier a step reads: `None` for raw samples (`auto` has none until chosen).
    fn resolution(self) -> Option<Resolution> {
        match self {
            SeriesStep::Minute => Some(Resolution::Minute),
            SeriesStep::Hour | SeriesStep::Auto => Some(Resolution::Hour),
            SeriesStep::Raw => None,
        }
    }
}

/// The most buckets a series answers with.
pub const MAX_BUCKETS: i64 = 10_000;
/// The longest span read as raw samples.
pub const MAX_RAW_SPAN: Duration = Duration::hours(1);

/// What a series asks for: a range (either end open) and a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesQuery {
    /// From (inclusive); `end` minus 24 hours when `None`.
    pub start: Option<Timestamp>,
    /// Until (inclusive); now when `None`.
    pub end: Option<Timestamp>,
    /// The step asked for.
    pub step: SeriesStep,
}

impl SeriesQuery {
    /// The range at `now`: `[start, end]` with the open ends filled in;
    /// [`ServiceError::StartAfterEnd`] when it is empty.
    pub fn range(&self, now: Timestamp) -> Result<(Timestamp, Timestamp), ServiceError> {
        let end = self.end.unwrap_or(now);
        // Checked: times near the ends of the representable range must not overflow.
        let start = self
            .start
            .unwrap_or_else(|| end.checked_sub_signed(Duration::hours(24)).unwrap_or(end));
        if start > end {
            return Err(ServiceError::StartAfterEnd { start });
        }
        Ok((start, end))
    }
}

/// The tier to answer `step` from over `(start, end)` at `now` (`None`: raw samples): the step
/// asked for (`auto` chosen by the span; raw only for one node), made coarser where its tier no
/// longer holds `start` under `retention`, and refused ([`ServiceError::TooManyBuckets`]) when
/// the span holds more than [`MAX_BUCKETS`] buckets of it or more than [`MAX_RAW_SPAN`] of raw
/// samples.
pub fn choose(
    step: SeriesStep,
    (start, end): (Timestamp, Timestamp),
    now: Timestamp,
    retention: &Retention,
    one_node: bool,
) -> Result<Option<Resolution>, ServiceError> {
    let span = end - start;
    let asked = match step {
        SeriesStep::Auto if one_node && span <= MAX_RAW_SPAN => None,
        SeriesStep::Auto if span <= Duration::days(1) => Some(Resolution::Minute),
        step => step.resolution(),
    };
    let kept = retention.finest_holding(start, now);
    let chosen = asked.max(kept);
    let too_long = match chosen {
        None => span > MAX_RAW_SPAN,
        Some(resolution) => {
            span.num_microseconds().unwrap_or(i64::MAX) / resolution.micros() >= MAX_BUCKETS
        }
    };
    if too_long {
        return Err(ServiceError::TooManyBuckets {
            step: step.as_str(),
            resolution: chosen,
        });
    }
    Ok(chosen)
}

/// A series as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The node's id, for a node's series.
    pub node: Option<NodeId>,
    /// The tier it was read from (`None`: raw samples).
    pub resolution: Option<Resolution>,
    /// The range, its open ends filled in.
    pub range: (Timestamp, Timestamp),
    /// The buckets, oldest first, at most [`MAX_BUCKETS`].
    pub buckets: Vec<SeriesBucket>,
}

/// A node's series: the node named by `node` in `deployment` (a node that is not, or no longer,
/// there is `StorageError::NodeNotFound`).
pub fn node_series(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: &NodeRef,
    query: SeriesQuery,
    now: Timestamp,
    retention: &Retention,
) -> Result<Series, ServiceError> {
    let range = query.range(now)?;
    let chosen = choose(query.step, range, now, retention, true)?;
    // An id is not checked by `resolve`: read the node, so that a series of a node that is not
    // there is an error, not an empty series.
    let id = nodes::resolve(conn, deployment, node)?;
    let node = nodes::get(conn, deployment, id)?.id;
    let buckets = match chosen {
        Some(resolution) => rollups::node_series(
            conn,
            deployment,
            node,
            resolution,
            range.0,
            range.1,
            MAX_BUCKETS,
        )?,
        None => {
            let query = telemetry::TelemetryQuery {
                deployment,
                node: Some(node),
                start: Some(range.0),
                end: Some(range.1),
                limit: MAX_BUCKETS,
            };
            let mut samples = telemetry::query(conn, &query)?;
            samples.reverse();
            samples
                .into_iter()
                .map(|s| SeriesBucket {
                    start: s.timestamp,
                    nodes: 1,
                    summary: SampleSummary::of(s.timestamp, &s.metrics),
                })
                .collect()
        }
    };
    Ok(Series {
        node: Some(node),
        resolution: chosen,
        range,
        buckets,
    })
}

/// The whole deployment's series: each bucket over every node that reported in it (raw: each
/// instant at which any node reported).
pub fn fleet_series(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    query: SeriesQuery,
    now: Timestamp,
    retention: &Retention,
) -> Result<Series, ServiceError> {
    let range = query.range(now)?;
    let chosen = choose(query.step, range, now, retention, false)?;
    deployments::ensure_exists(conn, deployment)?;
    let buckets = match chosen {
        Some(resolution) => {
            rollups::fleet_series(conn, deployment, resolution, range.0, range.1, MAX_BUCKETS)?
        }
        None => {
            let mut instants: std::collections::BTreeMap<i64, SeriesBucket> =
                std::collections::BTreeMap::new();
            telemetry::scan_window(conn, deployment, range.0, range.1, |_, at, metrics| {
                instants
                    .entry(at.timestamp_micros())
                    .and_modify(|b| {
                        b.nodes += 1;
                        b.summary.push(at, &metrics);
                    })
                    .or_insert_with(|| SeriesBucket {
                        start: at,
                        nodes: 1,
                        summary: SampleSummary::of(at, &metrics),
                    });
            })?;
            instants
                .into_values()
                .take(usize::try_from(MAX_BUCKETS).unwrap_or(usize::MAX))
                .collect()
        }
    };
    Ok(Series {
        node: None,
        resolution: chosen,
        range,
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn at(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text).expect("valid").to_utc()
    }

    #[test]
    fn auto_is_raw_for_an_hour_of_one_node_minutes_for_a_day_hours_beyond() {
        let now = at("2026-12-06T12:00:00Z");
        let keep = Retention::default();
        let span = |hours| (now - Duration::hours(hours), now);
        let auto = SeriesStep::Auto;
        assert_eq!(choose(auto, span(1), now, &keep, true).expect("ok"), None);
        assert_eq!(
            choose(auto, span(1), now, &keep, false).expect("ok"),
            Some(Resolution::Minute)
        );
        assert_eq!(
            choose(auto, span(24), now, &keep, true).expect("ok"),
            Some(Resolution::Minute)
        );
        assert_eq!(
            choose(auto, span(48), now, &keep, true).expect("ok"),
            Some(Resolution::Hour)
        );
    }

    #[test]
    fn a_step_is_made_coarser_where_its_tier_has_expired_and_refused_when_too_long() {
        let now = at("2026-12-06T12:00:00Z");
        let keep = Retention::default();
        // Raw samples are kept a day: a range starting two days back comes from minutes.
        let old = (
            now - Duration::days(2),
            now - Duration::days(2) + Duration::minutes(30),
        );
        assert_eq!(
            choose(SeriesStep::Raw, old, now, &keep, true).expect("ok"),
            Some(Resolution::Minute)
        );
        // More than an hour of raw samples, or too many minutes, is refused.
        let two_hours = (now - Duration::hours(2), now);
        assert!(matches!(
            choose(SeriesStep::Raw, two_hours, now, &keep, true),
            Err(ServiceError::TooManyBuckets {
                step: "raw",
                resolution: None
            })
        ));
        let week = (now - Duration::days(7), now);
        assert!(matches!(
            choose(SeriesStep::Minute, week, now, &keep, false),
            Err(ServiceError::TooManyBuckets {
                resolution: Some(Resolution::Minute),
                ..
            })
        ));
    }

    #[test]
    fn an_empty_range_is_an_error_and_open_ends_are_filled() {
        let now = at("2026-12-06T12:00:00Z");
        let query = SeriesQuery::default();
        assert_eq!(
            query.range(now).expect("ok"),
            (now - Duration::hours(24), now)
        );
        let backwards = SeriesQuery {
            start: Some(now),
            end: Some(now - Duration::seconds(1)),
            step: SeriesStep::Auto,
        };
        assert!(matches!(
            backwards.range(now),
            Err(ServiceError::StartAfterEnd { .. })
        ));
    }
}
