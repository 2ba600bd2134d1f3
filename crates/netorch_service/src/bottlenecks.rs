//! The bottleneck report: which nodes of a deployment stand out over the last minutes, and how
//! its window is read.
//!
//! A report reads its window in two parts, each on its own connection and thread into its own
//! streaming analysis, merged at the end (on two cores this nearly halves a large report's
//! time). Only the partial minutes at the window's edges are read as raw samples. The robust
//! method, whose per-node statistic is the median of the node's minute means, reads every whole
//! minute of a node: from its minute rollups, or for most of a long window from the hour's
//! sealed row (`rollups::sealed`), which holds a node's minutes of an hour in one row. The
//! z-score method, which needs only counts and moments, reads whole hours as hour rollups, and
//! an hour the window covers mostly as the hour less the minutes outside
//! ([`WindowDetail::Coarsest`]): a few rows per node whatever the window's length.
//!
//! The parts are two halves of the window, except for a robust window longer than
//! [`SHARED_BY_NODE_MINUTES`]: its two parts are the whole window for half of the nodes each,
//! since a sealed row holds a whole hour and two halves of the window would each read it.
//!
//! How finely a window is read is the method's to say, never the caller's: a [`ReportPlan`]
//! derives it from the analysis configuration, so no method can be fed a read it would get
//! wrong (the robust method given hour rollups would lose the minutes its medians are of).
//!
//! [`report`] runs a whole report on a [`Database`]; the API runs a plan's parts on its own
//! blocking threads with [`ReportPlan::read_part`] and [`ReportPlan::finish`].

use crate::ServiceError;
use chrono::{DateTime, Duration, Utc};
use netorch_analytics::{AnalysisConfig, BottleneckReport, Method, StreamingAnalysis};
use netorch_domain::{DeploymentId, NodeId, Resolution, SampleSummary, Timestamp};
use netorch_storage::node_share::NodeShare;
use netorch_storage::rollups::{self, WindowDetail, WindowPart};
use netorch_storage::{Database, DbConnection, deployments, nodes};
use std::collections::HashMap;

/// A report's window and what to look for in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportQuery {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The window's first instant.
    pub start: Timestamp,
    /// Its last (a window ending now, for the API).
    pub end: Timestamp,
    /// The method and its threshold.
    pub config: AnalysisConfig,
}

impl ReportQuery {
    /// The last `minutes` before `now` of `deployment`, with the default method (robust) and
    /// threshold.
    pub fn last_minutes(deployment: DeploymentId, minutes: i64, now: Timestamp) -> Self {
        ReportQuery {
            deployment,
            start: now - Duration::minutes(minutes),
            end: now,
            config: AnalysisConfig::default(),
        }
    }

    /// The same window with `config`'s method and threshold.
    pub fn with_config(self, config: AnalysisConfig) -> Self {
        ReportQuery { config, ..self }
    }
}

/// How a report reads its window: the parts, each read on its own connection, in the detail the
/// method needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPlan {
    query: ReportQuery,
    parts: Vec<(Timestamp, Timestamp, NodeShare)>,
}

/// A robust window longer than this many minutes is read by node rather than by time: see the
/// module's documentation.
pub const SHARED_BY_NODE_MINUTES: i64 = 30;

impl ReportPlan {
    /// The plan for `query`.
    pub fn new(query: ReportQuery) -> Self {
        let method = query.config.method;
        let parts = if method.needs_minute_means()
            && query.end - query.start > Duration::minutes(SHARED_BY_NODE_MINUTES)
        {
            // Two shares always exist: 0 and 1 are below 2.
            [NodeShare::new(0, 2), NodeShare::new(1, 2)]
                .into_iter()
                .flatten()
                .map(|share| (query.start, query.end, share))
                .collect()
        } else {
            window_parts(query.start, query.end, method)
                .into_iter()
                .map(|(from, to)| (from, to, NodeShare::ALL))
                .collect()
        };
        ReportPlan { parts, query }
    }

    /// Fails with `Storage(DeploymentNotFound)` unless the deployment exists: check before
    /// reading the parts (a missing deployment has no samples, which would read as a report
    /// of no nodes).
    pub fn check_deployment(&self, conn: &mut DbConnection) -> Result<(), ServiceError> {
        Ok(deployments::ensure_exists(conn, self.query.deployment)?)
    }

    /// How many parts to read (one or two), by index from 0.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Reads part `index` into a streaming analysis of its own; the parts may be read at once,
    /// on connections of their own.
    pub fn read_part(
        &self,
        conn: &mut DbConnection,
        index: usize,
    ) -> Result<StreamingAnalysis, ServiceError> {
        let (from, to, share) = self.parts.get(index).copied().ok_or_else(|| {
            ServiceError::Invalid(format!(
                "the plan has {} parts, not a part {index}",
                self.parts.len()
            ))
        })?;
        analyse_part(
            conn,
            self.query.deployment,
            (from, to),
            share,
            self.query.config,
        )
    }

    /// The report, from every part's analysis.
    pub fn finish(&self, parts: impl IntoIterator<Item = StreamingAnalysis>) -> BottleneckReport {
        let mut analysis = StreamingAnalysis::new(self.query.config);
        for part in parts {
            analysis.merge(part);
        }
        analysis.finish()
    }
}

impl ReportPlan {
    /// The report from every part's analysis ([`ReportPlan::finish`]), with the names of the
    /// nodes it flags read on `conn`.
    pub fn report(
        &self,
        conn: &mut DbConnection,
        parts: impl IntoIterator<Item = StreamingAnalysis>,
    ) -> Result<Report, ServiceError> {
        let analysis = self.finish(parts);
        let ids: Vec<NodeId> = analysis.bottlenecks.iter().map(|b| b.node_id).collect();
        let names = nodes::names(conn, self.query.deployment, &ids)?;
        Ok(Report {
            query: self.query,
            analysis,
            names,
        })
    }
}

/// A finished report with the names of the nodes it flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was asked.
    pub query: ReportQuery,
    /// The analysis: the bottleneck nodes, worst first, and the fleet's baseline.
    pub analysis: BottleneckReport,
    /// The names (`node-007`) of the flagged nodes.
    pub names: HashMap<NodeId, String>,
}

impl Report {
    /// The flagged nodes' names, worst first.
    pub fn flagged_names(&self) -> Vec<&str> {
        self.analysis
            .bottlenecks
            .iter()
            .filter_map(|b| self.names.get(&b.node_id).map(String::as_str))
            .collect()
    }
}

/// The report `query` asks for, read from `db`: the deployment must exist
/// (`StorageError::DeploymentNotFound` otherwise); the parts are read at once, each on a
/// thread with a connection of its own from the pool (so the pool must be able to lend as
/// many, [`ReportPlan::part_count`], at the same time).
pub fn report(db: &Database, query: ReportQuery) -> Result<Report, ServiceError> {
    let plan = ReportPlan::new(query);
    plan.check_deployment(&mut *db.get()?)?;
    let parts = std::thread::scope(|scope| {
        let running: Vec<_> = (0..plan.part_count())
            .map(|index| {
                let plan = &plan;
                scope.spawn(move || plan.read_part(&mut *db.get()?, index))
            })
            .collect();
        running
            .into_iter()
            // A reader that panicked is a bug: its panic goes on, as from any other call.
            .map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Result<Vec<_>, ServiceError>>()
    })?;
    plan.report(&mut *db.get()?, parts)
}

/// How finely `method` needs a window's whole minutes.
fn window_detail(method: Method) -> WindowDetail {
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

/// One part of a window read into a streaming analysis, in the detail `config`'s method needs.
fn analyse_part(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    share: NodeShare,
    config: AnalysisConfig,
) -> Result<StreamingAnalysis, ServiceError> {
    let mut analysis = StreamingAnalysis::new(config);
    // The detail comes from the method, so an hour's summary only reaches a method that takes
    // it; should that ever break, the report fails rather than come out wrong.
    let mut refused = None;
    rollups::scan_window_of(
        conn,
        deployment,
        (from, to),
        window_detail(config.method),
        share,
        |part| match part {
            WindowPart::Sample(node, at, metrics) => analysis.push(node, at, metrics),
            WindowPart::Minute(node, minute, summary) => {
                analysis.push_minute(node, minute, summary)
            }
            WindowPart::Hour(node, _, summary) => {
                if let Err(error) = analysis.push_summary(node, summary) {
                    refused.get_or_insert(error);
                }
            }
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
    match refused {
        Some(error) => Err(error.into()),
        None => Ok(analysis),
    }
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
    fn long_robust_windows_are_read_by_half_of_the_nodes_each() {
        let start = DateTime::parse_from_rfc3339("2026-11-28T10:00:17Z")
            .expect("valid")
            .to_utc();
        let plan = |minutes: i64, method: Method| {
            ReportPlan::new(ReportQuery {
                deployment: DeploymentId(1),
                start,
                end: start + Duration::minutes(minutes),
                config: AnalysisConfig::new(method, None).expect("config"),
            })
        };
        let long = plan(60, Method::Robust);
        let end = start + Duration::minutes(60);
        assert_eq!(
            long.parts,
            vec![
                (start, end, NodeShare::new(0, 2).expect("share")),
                (start, end, NodeShare::new(1, 2).expect("share")),
            ]
        );
        for (minutes, method) in [
            (SHARED_BY_NODE_MINUTES, Method::Robust),
            (10, Method::Robust),
            (60, Method::ZScore),
        ] {
            let by_time = plan(minutes, method);
            assert_eq!(by_time.part_count(), 2);
            assert!(by_time.parts.iter().all(|p| p.2 == NodeShare::ALL));
            assert_eq!(by_time.parts[0].0, start);
        }
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
