//! The window reader of the bottleneck report: a window's samples as rollup rows where whole
//! minutes (or hours) allow, raw samples at its partial edges.

use super::*;

/// How finely [`scan_window`] gives the whole minutes of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowDetail {
    /// Every whole minute as its own rollup: what a statistic over minute means needs. Costs a
    /// row per node and minute.
    Minutes,
    /// As few rows as the rollups allow: whole hours as hour rollups, and an hour the window
    /// covers for more than half as that hour's rollup less the minutes outside the window
    /// ([`WindowPart::LessMinute`]). Counts, sums and moments come out exact (Chan's formula
    /// runs backwards as well as forwards); per-minute detail, and the minima and maxima of an
    /// hour less some minutes, do not. Costs at most a few rows per node and window, whatever
    /// its length.
    Coarsest,
}

/// What [`scan_window`] feeds its visitor. Parts taken away ([`WindowPart::LessMinute`],
/// [`WindowPart::LessSample`]) always come after the part that holds what they take away, for
/// the same node. A part added whose newest sample is older than the window's start is taken
/// away whole again; every other added part's newest sample lies inside the window, so a node's
/// newest sample in the window is the newest over the parts added whose count does not net to
/// zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowPart<'a> {
    /// A raw sample, from a minute the window covers only in part (at its edges).
    Sample(NodeId, Timestamp, Metrics),
    /// A node's one-minute rollup: the minute's start (microseconds since the epoch) and its
    /// summary. The window covers the minute whole, or (at its start) mostly, the samples
    /// before the window following as [`WindowPart::LessSample`]s.
    Minute(NodeId, i64, &'a SampleSummary),
    /// A node's one-hour rollup ([`WindowDetail::Coarsest`] only): the hour's start and its
    /// summary; the parts of the hour outside the window follow as [`WindowPart::LessMinute`]s
    /// and [`WindowPart::LessSample`]s.
    Hour(NodeId, i64, &'a SampleSummary),
    /// A node's one-minute rollup to take away from its [`WindowPart::Hour`]: a minute of that
    /// hour before the window.
    LessMinute(NodeId, i64, &'a SampleSummary),
    /// A raw sample to take away: from the window's first minute, before the window's start.
    LessSample(NodeId, Timestamp, Metrics),
}

/// Feeds every sample of `deployment` stamped within `[start, end]` to `visit` as parts: whole
/// minutes as rollups (as finely as `detail` asks), the window's partial first minute as raw
/// samples or, when the window holds most of it, as its rollup less the raw samples before the
/// window, and the partial last minute as its rollup when it holds nothing newer than `end` (as
/// for a window ending now), else as raw samples. Reads rows per node and minute (or hour)
/// instead of one per sample, from database cursors. Returns how many samples the parts stand
/// for.
pub fn scan_window(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    window: (Timestamp, Timestamp),
    detail: WindowDetail,
    visit: impl FnMut(WindowPart<'_>),
) -> Result<u64> {
    scan_window_of(conn, deployment, window, detail, NodeShare::ALL, visit)
}

/// [`scan_window`] for the nodes of `share` only: a window read by two threads at once, each
/// its share of the nodes (see `rollups::sealed` for when that beats halving the window).
pub fn scan_window_of(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    (start, end): (Timestamp, Timestamp),
    detail: WindowDetail,
    share: NodeShare,
    mut visit: impl FnMut(WindowPart<'_>),
) -> Result<u64> {
    let (s, e) = (to_micros(start), to_micros(end));
    if e < s {
        return Ok(0);
    }
    let layout = Layout::of((s, e), detail, |resolution, bucket| {
        Ok(fleet_newest(conn, deployment, resolution, bucket)?.is_none_or(|newest| newest <= e))
    })?;
    let mut samples: i64 = 0;
    let count = |summary: &SampleSummary| i64::try_from(summary.count).unwrap_or(i64::MAX);
    for (from, to) in layout.raw {
        crate::telemetry::scan_window_of(
            conn,
            deployment,
            from_micros("telemetry_samples", from)?,
            from_micros("telemetry_samples", to)?,
            share,
            |node, at, metrics| {
                samples += 1;
                visit(WindowPart::Sample(node, at, metrics));
            },
        )?;
    }
    for step in layout.steps {
        // Minute by minute over many minutes: sealed rows where they hold (sealed.rs).
        if let (Step::AddMinutes(from, to), WindowDetail::Minutes) = (step, detail) {
            sealed::scan_minutes(conn, deployment, (from, to), share, |node, at, summary| {
                samples += count(summary);
                visit(WindowPart::Minute(node, at, summary));
            })?;
            continue;
        }
        let (resolution, (from, to), taken_away) = match step {
            Step::AddMinutes(from, to) => (Resolution::Minute, (from, to), false),
            Step::AddHours(from, to) => (Resolution::Hour, (from, to), false),
            Step::LessMinutes(from, to) => (Resolution::Minute, (from, to), true),
        };
        scan_rollups_of(
            conn,
            resolution,
            deployment,
            (from, to),
            share,
            |node, at, summary| {
                let part = match (resolution, taken_away) {
                    (Resolution::Hour, _) => WindowPart::Hour(node, at, summary),
                    (Resolution::Minute, false) => WindowPart::Minute(node, at, summary),
                    (Resolution::Minute, true) => WindowPart::LessMinute(node, at, summary),
                };
                samples += if taken_away {
                    -count(summary)
                } else {
                    count(summary)
                };
                visit(part);
            },
        )?;
    }
    if let Some((from, to)) = layout.less_raw {
        crate::telemetry::scan_window_of(
            conn,
            deployment,
            from_micros("telemetry_samples", from)?,
            from_micros("telemetry_samples", to)?,
            share,
            |node, at, metrics| {
                samples -= 1;
                visit(WindowPart::LessSample(node, at, metrics));
            },
        )?;
    }
    Ok(u64::try_from(samples).unwrap_or(0))
}

/// The newest sample of `deployment` in the bucket at `resolution` starting at `bucket`
/// (microseconds), from the fleet's rollup; `None` if the bucket holds none.
fn fleet_newest(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    resolution: Resolution,
    bucket: i64,
) -> Result<Option<i64>> {
    macro_rules! newest {
        ($t:ident) => {{
            use $t as t;
            let query = t::table
                .filter(t::deployment_id.eq(deployment.get()))
                .filter(t::bucket.eq(bucket))
                .select(t::newest);
            match conn {
                #[cfg(feature = "sqlite")]
                DbConnection::Sqlite(inner) => query.first::<i64>(inner).optional()?,
                #[cfg(feature = "postgres")]
                DbConnection::Postgresql(inner) => query.first::<i64>(inner).optional()?,
            }
        }};
    }
    Ok(match resolution {
        Resolution::Minute => newest!(fleet_telemetry_minutes),
        Resolution::Hour => newest!(fleet_telemetry_hours),
    })
}

/// A read of rollups in [`scan_window`]: the buckets starting in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Minutes, added.
    AddMinutes(i64, i64),
    /// Hours, added.
    AddHours(i64, i64),
    /// Minutes, taken away (from an hour added before).
    LessMinutes(i64, i64),
}

/// How [`scan_window`] reads a window `[s, e]` (microseconds).
#[derive(Debug, Default, PartialEq, Eq)]
struct Layout {
    /// Raw samples added, as `[from, to]` ranges: partial edge minutes read as they are.
    raw: Vec<(i64, i64)>,
    /// The rollups, in order.
    steps: Vec<Step>,
    /// Raw samples taken away, `[from, to]`: the first minute's samples before the window,
    /// when that minute is read whole.
    less_raw: Option<(i64, i64)>,
}

impl Layout {
    /// The layout with the fewest rows that `detail` allows. The first minute is read whole
    /// less its samples before `s` when the window holds more than half of it. `settled(r, b)`
    /// says whether the bucket at resolution `r` starting at `b` holds nothing newer than `e`:
    /// only then is the last minute (or hour) read as its rollup. Whole hours come as hours; the
    /// first hour as the hour less its minutes before the window when the window holds more
    /// than half of it.
    fn of(
        (s, e): (i64, i64),
        detail: WindowDetail,
        mut settled: impl FnMut(Resolution, i64) -> Result<bool>,
    ) -> Result<Layout> {
        let (minute, hour) = (Resolution::Minute.micros(), Resolution::Hour.micros());
        let (first_whole, after_whole) = whole_minutes(s, e);
        if first_whole >= after_whole {
            return Ok(Layout {
                raw: vec![(s, e)],
                ..Layout::default()
            });
        }
        let mut layout = Layout::default();
        let mut from = first_whole;
        if s < first_whole {
            let first_minute = first_whole - minute;
            if s - first_minute < first_whole - s {
                from = first_minute;
                layout.less_raw = Some((first_minute, s - 1));
            } else {
                layout.raw.push((s, first_whole - 1));
            }
        }
        let mut to = after_whole;
        if after_whole <= e {
            if settled(Resolution::Minute, after_whole)? {
                to = after_whole + minute;
            } else {
                layout.raw.push((after_whole, e));
            }
        }
        let first_hour = Resolution::Hour.bucket_of(from + hour - 1);
        let after_hours = Resolution::Hour.bucket_of(to);
        if detail == WindowDetail::Minutes || first_hour > after_hours {
            // Inside one hour: at most 60 minutes.
            layout.steps.push(Step::AddMinutes(from, to));
            return Ok(layout);
        }
        if first_hour - from > hour / 2 {
            layout
                .steps
                .push(Step::AddHours(first_hour - hour, first_hour));
            layout
                .steps
                .push(Step::LessMinutes(first_hour - hour, from));
        } else if from < first_hour {
            layout.steps.push(Step::AddMinutes(from, first_hour));
        }
        if first_hour < after_hours {
            layout.steps.push(Step::AddHours(first_hour, after_hours));
        }
        if after_hours < to {
            // Settled, the last hour holds only the window's minutes: one row per node.
            if to - after_hours > minute && settled(Resolution::Hour, after_hours)? {
                layout
                    .steps
                    .push(Step::AddHours(after_hours, after_hours + hour));
            } else {
                layout.steps.push(Step::AddMinutes(after_hours, to));
            }
        }
        Ok(layout)
    }
}

/// The minute boundaries of `[s, e]` (microseconds): the first whole minute's start and the
/// end of the last whole minute.
fn whole_minutes(s: i64, e: i64) -> (i64, i64) {
    let minute = Resolution::Minute.micros();
    (
        Resolution::Minute.bucket_of(s + minute - 1),
        Resolution::Minute.bucket_of(e + 1),
    )
}

/// Samples a node sends a minute at the default 5-second interval: what [`rows_per_node`]
/// weighs raw samples by.
const SAMPLES_PER_MINUTE: f64 = 12.0;

/// About how many rows [`scan_window`] reads per node for `[start, end]` at `detail`, supposing
/// samples every 5 seconds and, if `ends_at_newest`, none newer than `end`: lets a caller that
/// cuts a window into parts read in parallel choose cuts that keep the parts equally cheap.
pub fn rows_per_node(
    (start, end): (Timestamp, Timestamp),
    detail: WindowDetail,
    ends_at_newest: bool,
) -> f64 {
    let (s, e) = (to_micros(start), to_micros(end));
    if e < s {
        return 0.0;
    }
    let minutes = |micros: i64| micros as f64 / Resolution::Minute.micros() as f64;
    // `settled` is a constant here, so the layout cannot fail.
    let layout = Layout::of((s, e), detail, |_, _| Ok(ends_at_newest)).unwrap_or_default();
    let raw: f64 = layout
        .raw
        .iter()
        .chain(&layout.less_raw)
        .map(|(from, to)| minutes(to + 1 - from) * SAMPLES_PER_MINUTE)
        .sum();
    let rows: f64 = layout
        .steps
        .into_iter()
        .map(|step| match step {
            Step::AddMinutes(from, to) | Step::LessMinutes(from, to) => minutes(to - from),
            Step::AddHours(from, to) => minutes(to - from) / 60.0,
        })
        .sum();
    raw + rows
}
