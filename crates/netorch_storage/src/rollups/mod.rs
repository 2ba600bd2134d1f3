//! Telemetry rollups: per-node and per-deployment ("fleet") summaries of the samples of each UTC
//! minute and hour, kept by the transaction that stores the samples, and the reads that use them
//! (bottleneck windows, series for charts).
//!
//! A batch's stored samples are summarised in memory first, per (node, minute), then the minute
//! summaries per (node, hour) and per deployment: a batch of `n` slots of `k` nodes costs `k`
//! row upserts per minute it touches, not one per sample. The upsert merges the batch's summary
//! into the stored one with Chan's formula in SQL, so a late or out-of-order sample updates its
//! bucket exactly as if it had arrived in order.
//!
//! The writer (`write.rs`, called by the transactions that store samples), the series reader
//! (`series.rs`) and the window reader of the bottleneck report (`window.rs`) share the row
//! types and summary columns here.

use crate::node_share::NodeShare;
use crate::schema::{
    fleet_telemetry_hours, fleet_telemetry_minutes, telemetry_hours, telemetry_minutes,
    telemetry_sealed_minutes,
};
use crate::sqlite_bulk::{self, SqliteRows, bind_values};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result};
use diesel::prelude::*;
use diesel::query_builder::AstPass;
#[cfg(feature = "postgres")]
use diesel::sql_types::Array;
use diesel::sql_types::{BigInt, Double};
use diesel::sqlite::Sqlite;
use netorch_domain::{
    DeploymentId, MetricSummary, Metrics, NewSample, NodeId, Resolution, SampleSummary, Timestamp,
};
#[cfg(feature = "postgres")]
use std::collections::HashMap;

/// One bucket of one node (or of a whole deployment when `node` is `None`) as the upserts bind
/// it: the summary flattened into columns.
struct RollupRow {
    deployment_id: i64,
    bucket: i64,
    node_id: i64,
    sample_count: i64,
    newest: i64,
    values: [f64; 12],
}

impl RollupRow {
    fn new(deployment: i64, bucket: i64, node: i64, summary: &SampleSummary) -> Self {
        let mut values = [0.0; 12];
        for (metric, s) in summary.metrics().into_iter().enumerate() {
            values[metric * 4..metric * 4 + 4].copy_from_slice(&[s.mean, s.m2, s.min, s.max]);
        }
        RollupRow {
            deployment_id: deployment,
            bucket,
            node_id: node,
            sample_count: i64::try_from(summary.count).unwrap_or(i64::MAX),
            newest: to_micros(summary.newest),
            values,
        }
    }

    /// Whether the row summarises exactly one sample (whose M2 is then 0 and whose min and max
    /// are its mean, which the one-sample upsert writes without binding them).
    #[cfg(feature = "sqlite")]
    fn is_one_sample(&self) -> bool {
        self.sample_count == 1
    }
}

/// The `SET` clause that merges the proposed row into the stored one: count and newest, then
/// per metric Chan's update of mean and M2, and min and max. SQL evaluates every right-hand
/// side against the stored row as it was, so the assignments may read each other's columns.
macro_rules! merge_set {
    ($t:literal, $least:literal, $greatest:literal) => {
        concat!(
            " DO UPDATE SET sample_count = ", $t, ".sample_count + excluded.sample_count, ",
            "newest = ", $greatest, "(", $t, ".newest, excluded.newest)",
            merge_set!(@metric $t, "latency", $least, $greatest),
            merge_set!(@metric $t, "throughput", $least, $greatest),
            merge_set!(@metric $t, "error", $least, $greatest),
        )
    };
    (@metric $t:literal, $m:literal, $least:literal, $greatest:literal) => {
        concat!(
            ", ", $m, "_mean = ", $t, ".", $m, "_mean + (excluded.", $m, "_mean - ", $t, ".", $m,
            "_mean) * excluded.sample_count / (", $t, ".sample_count + excluded.sample_count)",
            ", ", $m, "_m2 = ", $t, ".", $m, "_m2 + excluded.", $m, "_m2 + (excluded.", $m,
            "_mean - ", $t, ".", $m, "_mean) * (excluded.", $m, "_mean - ", $t, ".", $m,
            "_mean) * ", $t, ".sample_count * excluded.sample_count / (", $t,
            ".sample_count + excluded.sample_count)",
            ", ", $m, "_min = ", $least, "(", $t, ".", $m, "_min, excluded.", $m, "_min)",
            ", ", $m, "_max = ", $greatest, "(", $t, ".", $m, "_max, excluded.", $m, "_max)",
        )
    };
}

const METRIC_COLUMNS: &str = "latency_mean, latency_m2, latency_min, latency_max, \
    throughput_mean, throughput_m2, throughput_min, throughput_max, \
    error_mean, error_m2, error_min, error_max";

/// The four rollup tables, and how each is upserted on either backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Table {
    NodeMinutes,
    NodeHours,
    FleetMinutes,
    FleetHours,
}

impl Table {
    fn of(resolution: Resolution, per_node: bool) -> Table {
        match (resolution, per_node) {
            (Resolution::Minute, true) => Table::NodeMinutes,
            (Resolution::Hour, true) => Table::NodeHours,
            (Resolution::Minute, false) => Table::FleetMinutes,
            (Resolution::Hour, false) => Table::FleetHours,
        }
    }

    fn per_node(self) -> bool {
        matches!(self, Table::NodeMinutes | Table::NodeHours)
    }

    fn name(self) -> &'static str {
        match self {
            Table::NodeMinutes => "telemetry_minutes",
            Table::NodeHours => "telemetry_hours",
            Table::FleetMinutes => "fleet_telemetry_minutes",
            Table::FleetHours => "fleet_telemetry_hours",
        }
    }

    /// `ON CONFLICT` target and merge, for PostgreSQL (`LEAST`/`GREATEST`).
    #[cfg(feature = "postgres")]
    fn postgres_conflict(self) -> &'static str {
        match self {
            Table::NodeMinutes => concat!(
                " ON CONFLICT (deployment_id, bucket, node_id)",
                merge_set!("telemetry_minutes", "LEAST", "GREATEST")
            ),
            Table::NodeHours => concat!(
                " ON CONFLICT (deployment_id, bucket, node_id)",
                merge_set!("telemetry_hours", "LEAST", "GREATEST")
            ),
            Table::FleetMinutes => concat!(
                " ON CONFLICT (deployment_id, bucket)",
                merge_set!("fleet_telemetry_minutes", "LEAST", "GREATEST")
            ),
            Table::FleetHours => concat!(
                " ON CONFLICT (deployment_id, bucket)",
                merge_set!("fleet_telemetry_hours", "LEAST", "GREATEST")
            ),
        }
    }
}

/// A SQLite statement over rollup rows (see [`sqlite_bulk`]): the row type `$row` wrapping
/// [`RollupRow`], its statement cache key, the SQL around the groups, the rows per statement, and
/// what each row binds (`$r` names the row).
macro_rules! sqlite_rollup_rows {
    ($row:ident, $key:ident, $head:expr, $tail:expr, $chunk:expr,
     |$r:ident| $($ty:ty => $value:expr),+ $(,)?) => {
        struct $key;
        #[repr(transparent)]
        struct $row(RollupRow);
        impl SqliteRows for $row {
            const HEAD: &'static str = $head;
            const TAIL: &'static str = $tail;
            const CHUNK: usize = $chunk;
            type CacheKey = $key;
            type Returning = BigInt;

            fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
                let $r = &self.0;
                bind_values!(out; $($ty => $value),+)
            }
        }
    };
}

/// The column list of a rollup table's `INSERT`; `$node_column` is `node_id` or `nodes`.
macro_rules! rollup_columns {
    ($node_column:literal) => {
        concat!(
            "(deployment_id, bucket, ",
            $node_column,
            ", sample_count, newest, \
             latency_mean, latency_m2, latency_min, latency_max, \
             throughput_mean, throughput_m2, throughput_min, throughput_max, \
             error_mean, error_m2, error_min, error_max)"
        )
    };
}

/// SQLite upserts, one prepared statement per table.
macro_rules! sqlite_upsert {
    ($row:ident, $key:ident, $table:literal, $node_column:literal, $conflict:literal) => {
        sqlite_rollup_rows!(
            $row,
            $key,
            concat!("INSERT INTO ", $table, " ", rollup_columns!($node_column), " VALUES "),
            concat!(" ON CONFLICT ", $conflict, merge_set!($table, "min", "max")),
            1_500,
            |r| BigInt => &r.deployment_id, BigInt => &r.bucket, BigInt => &r.node_id,
                BigInt => &r.sample_count, BigInt => &r.newest,
                Double => &r.values[0], Double => &r.values[1], Double => &r.values[2],
                Double => &r.values[3], Double => &r.values[4], Double => &r.values[5],
                Double => &r.values[6], Double => &r.values[7], Double => &r.values[8],
                Double => &r.values[9], Double => &r.values[10], Double => &r.values[11],
        );
    };
}

/// SQLite upserts of node rows that each summarise one sample (a telemetry tick's every row):
/// seven values bound per row instead of seventeen, the statement spelling out what one sample's
/// summary is (a count of 1, M2 0, min and max the value). Binding was about a fifth of a tick.
/// `WHERE true` tells SQLite's parser that `ON CONFLICT` belongs to the upsert.
macro_rules! sqlite_upsert_one_sample {
    ($row:ident, $key:ident, $table:literal) => {
        sqlite_rollup_rows!(
            $row,
            $key,
            concat!(
                "INSERT INTO ", $table, " ", rollup_columns!("node_id"),
                " SELECT column1, column2, column3, 1, column4, \
                 column5, 0.0, column5, column5, column6, 0.0, column6, column6, \
                 column7, 0.0, column7, column7 FROM (VALUES "
            ),
            concat!(
                ") WHERE true ON CONFLICT (deployment_id, bucket, node_id)",
                merge_set!($table, "min", "max")
            ),
            4_000,
            |r| BigInt => &r.deployment_id, BigInt => &r.bucket, BigInt => &r.node_id,
                BigInt => &r.newest, Double => &r.values[0], Double => &r.values[4],
                Double => &r.values[8],
        );
    };
}

sqlite_upsert_one_sample!(
    NodeMinuteSampleRow,
    NodeMinuteSampleKey,
    "telemetry_minutes"
);
sqlite_upsert_one_sample!(NodeHourSampleRow, NodeHourSampleKey, "telemetry_hours");

sqlite_upsert!(
    NodeMinuteRow,
    NodeMinuteKey,
    "telemetry_minutes",
    "node_id",
    "(deployment_id, bucket, node_id)"
);
sqlite_upsert!(
    NodeHourRow,
    NodeHourKey,
    "telemetry_hours",
    "node_id",
    "(deployment_id, bucket, node_id)"
);
sqlite_upsert!(
    FleetMinuteRow,
    FleetMinuteKey,
    "fleet_telemetry_minutes",
    "nodes",
    "(deployment_id, bucket)"
);
sqlite_upsert!(
    FleetHourRow,
    FleetHourKey,
    "fleet_telemetry_hours",
    "nodes",
    "(deployment_id, bucket)"
);

/// A rollup row as read: `(node or nodes, bucket, count, newest, 12 metric columns)`.
type SummaryColumns = (i64, i64, i64, i64, [f64; 4], [f64; 4], [f64; 4]);

fn metric(values: [f64; 4]) -> MetricSummary {
    MetricSummary {
        mean: values[0],
        m2: values[1],
        min: values[2],
        max: values[3],
    }
}

fn summary(table: &'static str, row: &SummaryColumns) -> Result<SampleSummary> {
    Ok(SampleSummary {
        count: u64::try_from(row.2).unwrap_or(0),
        newest: from_micros(table, row.3)?,
        latency_ms: metric(row.4),
        throughput_gbps: metric(row.5),
        error_rate: metric(row.6),
    })
}

/// Selects the columns of [`SummaryColumns`] from a rollup table; `$key` is `node_id` or `nodes`.
macro_rules! summary_columns {
    ($t:ident, $key:ident) => {
        (
            $t::$key,
            $t::bucket,
            $t::sample_count,
            $t::newest,
            (
                $t::latency_mean,
                $t::latency_m2,
                $t::latency_min,
                $t::latency_max,
            ),
            (
                $t::throughput_mean,
                $t::throughput_m2,
                $t::throughput_min,
                $t::throughput_max,
            ),
            ($t::error_mean, $t::error_m2, $t::error_min, $t::error_max),
        )
    };
}

type RawColumns = (
    i64,
    i64,
    i64,
    i64,
    (f64, f64, f64, f64),
    (f64, f64, f64, f64),
    (f64, f64, f64, f64),
);

fn flatten(row: RawColumns) -> SummaryColumns {
    let (a, b, c, d, l, t, e) = row;
    (
        a,
        b,
        c,
        d,
        [l.0, l.1, l.2, l.3],
        [t.0, t.1, t.2, t.3],
        [e.0, e.1, e.2, e.3],
    )
}

// After the macros above: `macro_rules!` are in scope only below their definition.
pub mod sealed;
mod series;
mod window;
mod write;

pub use series::{SeriesBucket, fleet_series, node_series, scan_rollups, scan_rollups_of};
pub use window::{WindowDetail, WindowPart, rows_per_node, scan_window, scan_window_of};
pub(crate) use write::{delete_deployment, record};
