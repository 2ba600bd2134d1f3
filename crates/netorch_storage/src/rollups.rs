//! Telemetry rollups: per-node and per-deployment ("fleet") summaries of the samples of each UTC
//! minute and hour, kept by the transaction that stores the samples, and the reads that use them
//! (bottleneck windows, series for charts).
//!
//! A batch's stored samples are summarised in memory first, per (node, minute), then the minute
//! summaries per (node, hour) and per deployment: a batch of `n` slots of `k` nodes costs `k`
//! row upserts per minute it touches, not one per sample. The upsert merges the batch's summary
//! into the stored one with Chan's formula in SQL, so a late or out-of-order sample updates its
//! bucket exactly as if it had arrived in order.

use crate::schema::{
    fleet_telemetry_hours, fleet_telemetry_minutes, telemetry_hours, telemetry_minutes,
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

/// Upserts `rows` into `table` (for fleet tables `node_id` carries the initial `nodes`, 0).
/// Merges `rows` into `table`. On PostgreSQL, for a node table, returns per (deployment,
/// bucket) how many of the rows it created (see [`record`]); otherwise nothing.
fn upsert(
    conn: &mut DbConnection,
    table: Table,
    rows: Vec<RollupRow>,
) -> Result<Vec<((i64, i64), i64)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(conn) => {
            // The wrappers are `repr(transparent)`; mapping moves each row once.
            match table {
                Table::NodeMinutes if rows.iter().all(RollupRow::is_one_sample) => {
                    let rows: Vec<NodeMinuteSampleRow> =
                        rows.into_iter().map(NodeMinuteSampleRow).collect();
                    sqlite_bulk::execute(conn, &rows)?;
                }
                Table::NodeMinutes => {
                    let rows: Vec<NodeMinuteRow> = rows.into_iter().map(NodeMinuteRow).collect();
                    sqlite_bulk::execute(conn, &rows)?;
                }
                Table::NodeHours if rows.iter().all(RollupRow::is_one_sample) => {
                    let rows: Vec<NodeHourSampleRow> =
                        rows.into_iter().map(NodeHourSampleRow).collect();
                    sqlite_bulk::execute(conn, &rows)?;
                }
                Table::NodeHours => {
                    let rows: Vec<NodeHourRow> = rows.into_iter().map(NodeHourRow).collect();
                    sqlite_bulk::execute(conn, &rows)?;
                }
                Table::FleetMinutes => {
                    let rows: Vec<FleetMinuteRow> = rows.into_iter().map(FleetMinuteRow).collect();
                    sqlite_bulk::execute(conn, &rows)?;
                }
                Table::FleetHours => {
                    let rows: Vec<FleetHourRow> = rows.into_iter().map(FleetHourRow).collect();
                    sqlite_bulk::execute(conn, &rows)?;
                }
            }
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(conn) => {
            let column = |f: fn(&RollupRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
            let value = |i: usize| rows.iter().map(|r| r.values[i]).collect::<Vec<f64>>();
            let node_column = if table.per_node() { "node_id" } else { "nodes" };
            let sql = format!(
                "INSERT INTO {} (deployment_id, bucket, {node_column}, sample_count, newest, \
                 {METRIC_COLUMNS}) SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14, $15, $16, $17){}",
                table.name(),
                table.postgres_conflict()
            );
            // A node row the upsert created holds exactly the batch's samples; one it merged
            // into holds more (rows are never made empty). Concurrent writers each see their
            // own outcome: the one whose insert made the row, the other merged into it.
            let sql = if table.per_node() {
                format!("{sql} RETURNING deployment_id, bucket, node_id, sample_count")
            } else {
                sql
            };
            let mut query = diesel::sql_query(sql)
                .bind::<Array<BigInt>, _>(column(|r| r.deployment_id))
                .bind::<Array<BigInt>, _>(column(|r| r.bucket))
                .bind::<Array<BigInt>, _>(column(|r| r.node_id))
                .bind::<Array<BigInt>, _>(column(|r| r.sample_count))
                .bind::<Array<BigInt>, _>(column(|r| r.newest))
                .into_boxed();
            for i in 0..12 {
                query = query.bind::<Array<Double>, _>(value(i));
            }
            if !table.per_node() {
                query.execute(conn)?;
                return Ok(Vec::new());
            }
            #[derive(QueryableByName)]
            struct Merged {
                #[diesel(sql_type = BigInt)]
                deployment_id: i64,
                #[diesel(sql_type = BigInt)]
                bucket: i64,
                #[diesel(sql_type = BigInt)]
                node_id: i64,
                #[diesel(sql_type = BigInt)]
                sample_count: i64,
            }
            let batch: HashMap<BucketKey, i64> = rows
                .iter()
                .map(|r| ((r.deployment_id, r.bucket, r.node_id), r.sample_count))
                .collect();
            let mut created: std::collections::BTreeMap<(i64, i64), i64> = Default::default();
            for row in query.load::<Merged>(conn)? {
                let key = (row.deployment_id, row.bucket, row.node_id);
                if batch.get(&key) == Some(&row.sample_count) {
                    *created.entry((row.deployment_id, row.bucket)).or_default() += 1;
                }
            }
            return Ok(created.into_iter().collect());
        }
    }
    Ok(Vec::new())
}

type BucketKey = (i64, i64, i64);

/// Summarises `stored` (samples just stored, each exactly once) per node and minute, and
/// merges the summaries into the four rollup tables. Runs inside the storing transaction.
pub(crate) fn record(conn: &mut DbConnection, stored: &[NewSample]) -> Result<()> {
    if stored.is_empty() {
        return Ok(());
    }
    let minutes = group(stored.iter().map(|sample| {
        let key = (
            sample.deployment_id.get(),
            Resolution::Minute.bucket_of(to_micros(sample.timestamp)),
            sample.node_id.get(),
        );
        (key, SampleSummary::of(sample.timestamp, &sample.metrics))
    }));

    let hours = coarsen(&minutes, |(d, b, n)| {
        (*d, Resolution::Hour.bucket_of(*b), *n)
    });
    let fleet_minutes = coarsen(&minutes, |(d, b, _)| (*d, *b, 0));
    let fleet_hours = coarsen(&fleet_minutes, |(d, b, _)| {
        (*d, Resolution::Hour.bucket_of(*b), 0)
    });

    // The fleet rows' `nodes` grows by the node rows each batch creates: recounting a
    // bucket's node rows after every batch cost a scan of the whole bucket each time,
    // quadratic in the fleet (a telemetry tick stores a million nodes in 40 batches). SQLite,
    // with one writer at a time, reads which of the batch's nodes have a row before the
    // upsert; PostgreSQL's upsert says which rows it created, which stays exact with writers
    // side by side.
    let read_before = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => Some((
            new_node_rows(inner, Table::NodeMinutes, &minutes)?,
            new_node_rows(inner, Table::NodeHours, &hours)?,
        )),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(_) => None,
    };
    let mut created = Vec::new();
    for (table, groups) in [
        (Table::NodeMinutes, minutes),
        (Table::NodeHours, hours),
        (Table::FleetMinutes, fleet_minutes),
        (Table::FleetHours, fleet_hours),
    ] {
        let rows = groups
            .iter()
            .map(|((d, b, n), s)| RollupRow::new(*d, *b, *n, s))
            .collect();
        created.push(upsert(conn, table, rows)?);
    }
    let (new_minutes, new_hours) = match read_before {
        Some(counted) => counted,
        None => {
            let mut created = created.into_iter();
            (
                created.next().unwrap_or_default(),
                created.next().unwrap_or_default(),
            )
        }
    };
    for (table, added) in [
        (Table::FleetMinutes, new_minutes),
        (Table::FleetHours, new_hours),
    ] {
        for ((deployment, bucket), count) in added {
            add_nodes(conn, table, deployment, bucket, count)?;
        }
    }
    Ok(())
}

/// Per (deployment, bucket) of `groups` (in key order), how many of its nodes have no row in
/// the node rollup `table` yet: the rows the upsert is about to create. One range read per
/// bucket, over the batch's nodes only.
#[cfg(feature = "sqlite")]
fn new_node_rows(
    conn: &mut diesel::SqliteConnection,
    table: Table,
    groups: &[(BucketKey, SampleSummary)],
) -> Result<Vec<((i64, i64), i64)>> {
    #[derive(QueryableByName)]
    struct Existing {
        #[diesel(sql_type = BigInt)]
        node_id: i64,
    }
    let sql = format!(
        "SELECT node_id FROM {} WHERE deployment_id = $1 AND bucket = $2 \
         AND node_id >= $3 AND node_id <= $4 ORDER BY node_id",
        table.name()
    );
    let mut added = Vec::new();
    for bucket in groups.chunk_by(|((d1, b1, _), _), ((d2, b2, _), _)| (d1, b1) == (d2, b2)) {
        let ((deployment, at, first), _) = bucket[0];
        let last = bucket[bucket.len() - 1].0.2;
        // Both in node order (the primary key's, within one bucket): one merging walk.
        let existing = diesel::sql_query(sql.as_str())
            .bind::<BigInt, _>(deployment)
            .bind::<BigInt, _>(at)
            .bind::<BigInt, _>(first)
            .bind::<BigInt, _>(last)
            .load::<Existing>(conn)?;
        let mut existing = existing.iter().map(|row| row.node_id).peekable();
        let mut new = 0;
        for ((_, _, node), _) in bucket {
            while existing.next_if(|id| id < node).is_some() {}
            if existing.next_if_eq(node).is_none() {
                new += 1;
            }
        }
        if new > 0 {
            added.push(((deployment, at), new));
        }
    }
    Ok(added)
}

/// Adds `count` nodes to a fleet row's `nodes`.
fn add_nodes(
    conn: &mut DbConnection,
    table: Table,
    deployment: i64,
    bucket: i64,
    count: i64,
) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET nodes = nodes + $1 WHERE deployment_id = $2 AND bucket = $3",
        table.name()
    );
    on_backend!(conn, |inner| {
        diesel::sql_query(sql.as_str())
            .bind::<BigInt, _>(count)
            .bind::<BigInt, _>(deployment)
            .bind::<BigInt, _>(bucket)
            .execute(inner)?
    });
    Ok(())
}

/// Merges summaries into the coarser keys `to` maps them to; the result is in key order.
fn coarsen(
    groups: &[(BucketKey, SampleSummary)],
    to: impl Fn(&BucketKey) -> BucketKey,
) -> Vec<(BucketKey, SampleSummary)> {
    group(groups.iter().map(|(key, summary)| (to(key), *summary)))
}

/// Merges the summaries of equal keys, each key's in the order given (so the arithmetic is the
/// same whatever the grouping); the result is in key order. Sorts positions rather than hashing
/// keys: a telemetry tick's pages come in key order already, which the sort sees in one pass.
fn group(
    parts: impl Iterator<Item = (BucketKey, SampleSummary)>,
) -> Vec<(BucketKey, SampleSummary)> {
    let parts: Vec<(BucketKey, SampleSummary)> = parts.collect();
    let mut order: Vec<(BucketKey, usize)> = parts
        .iter()
        .enumerate()
        .map(|(index, (key, _))| (*key, index))
        .collect();
    order.sort_unstable();
    let mut merged: Vec<(BucketKey, SampleSummary)> = Vec::with_capacity(order.len());
    for (key, index) in order {
        let summary = &parts[index].1;
        match merged.last_mut() {
            Some((last, total)) if *last == key => total.merge(summary),
            _ => merged.push((key, *summary)),
        }
    }
    merged
}

/// Deletes every rollup of a deployment (inside its delete's transaction).
pub(crate) fn delete_deployment(conn: &mut DbConnection, deployment: DeploymentId) -> Result<()> {
    let id = deployment.get();
    diesel::delete(telemetry_minutes::table.filter(telemetry_minutes::deployment_id.eq(id)))
        .execute(conn)?;
    diesel::delete(telemetry_hours::table.filter(telemetry_hours::deployment_id.eq(id)))
        .execute(conn)?;
    diesel::delete(
        fleet_telemetry_minutes::table.filter(fleet_telemetry_minutes::deployment_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        fleet_telemetry_hours::table.filter(fleet_telemetry_hours::deployment_id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

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

/// Feeds the rollup at `resolution` of every node of `deployment` for each bucket starting in
/// `[from, to)` (microseconds) to `visit` as `(node, bucket start, summary)`, straight from a
/// database cursor. Returns how many rows it visited.
pub fn scan_rollups(
    conn: &mut DbConnection,
    resolution: Resolution,
    deployment: DeploymentId,
    from: i64,
    to: i64,
    mut visit: impl FnMut(NodeId, i64, &SampleSummary),
) -> Result<u64> {
    let table = Table::of(resolution, true).name();
    let mut visited = 0;
    let mut each = |row: QueryResult<RawColumns>| -> Result<()> {
        let row = flatten(row?);
        visit(NodeId(row.0), row.1, &summary(table, &row)?);
        visited += 1;
        Ok(())
    };
    // The two node tables have the same columns; this reads either.
    macro_rules! scan {
        ($t:ident) => {{
            use $t as t;
            match conn {
                #[cfg(feature = "sqlite")]
                DbConnection::Sqlite(inner) => {
                    let query = t::table
                        .filter(t::deployment_id.eq(deployment.get()))
                        .filter(t::bucket.ge(from))
                        .filter(t::bucket.lt(to))
                        .select(summary_columns!(t, node_id));
                    for row in
                        query.load_iter::<_, diesel::connection::DefaultLoadingMode>(inner)?
                    {
                        each(row)?;
                    }
                }
                #[cfg(feature = "postgres")]
                DbConnection::Postgresql(inner) => {
                    crate::pg_pages::for_each(
                        inner,
                        |inner, after| {
                            let mut page = t::table
                                .select(summary_columns!(t, node_id))
                                .filter(t::deployment_id.eq(deployment.get()))
                                .filter(t::bucket.ge(from))
                                .filter(t::bucket.lt(to))
                                .order((t::bucket.asc(), t::node_id.asc()))
                                .limit(crate::pg_pages::PAGE_ROWS)
                                .into_boxed();
                            if let Some(after) = after {
                                page =
                                    page.filter(crate::pg_pages::after("bucket", "node_id", after));
                            }
                            page.load::<RawColumns>(inner)
                        },
                        |row| (row.1, row.0),
                        |row| each(Ok(row)),
                    )?;
                }
            }
        }};
    }
    match resolution {
        Resolution::Minute => scan!(telemetry_minutes),
        Resolution::Hour => scan!(telemetry_hours),
    }
    Ok(visited)
}

/// A rollup row read by name: node rows give `node_id` as `key`, fleet rows `nodes`.
#[derive(QueryableByName)]
struct RollupRecord {
    #[diesel(sql_type = BigInt)]
    key: i64,
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    sample_count: i64,
    #[diesel(sql_type = BigInt)]
    newest: i64,
    #[diesel(sql_type = Double)]
    latency_mean: f64,
    #[diesel(sql_type = Double)]
    latency_m2: f64,
    #[diesel(sql_type = Double)]
    latency_min: f64,
    #[diesel(sql_type = Double)]
    latency_max: f64,
    #[diesel(sql_type = Double)]
    throughput_mean: f64,
    #[diesel(sql_type = Double)]
    throughput_m2: f64,
    #[diesel(sql_type = Double)]
    throughput_min: f64,
    #[diesel(sql_type = Double)]
    throughput_max: f64,
    #[diesel(sql_type = Double)]
    error_mean: f64,
    #[diesel(sql_type = Double)]
    error_m2: f64,
    #[diesel(sql_type = Double)]
    error_min: f64,
    #[diesel(sql_type = Double)]
    error_max: f64,
}

impl RollupRecord {
    fn columns(self) -> RawColumns {
        (
            self.key,
            self.bucket,
            self.sample_count,
            self.newest,
            (
                self.latency_mean,
                self.latency_m2,
                self.latency_min,
                self.latency_max,
            ),
            (
                self.throughput_mean,
                self.throughput_m2,
                self.throughput_min,
                self.throughput_max,
            ),
            (
                self.error_mean,
                self.error_m2,
                self.error_min,
                self.error_max,
            ),
        )
    }
}

/// The rows of a series: `table`'s rows of `deployment` (and of `node`, for a node table)
/// whose buckets start in `[from, to]`, oldest first, at most `limit`. One statement for both
/// backends (SQLite numbers `$n` parameters by first appearance, so they appear in order);
/// `index` names an index on SQLite.
fn read_series(
    conn: &mut DbConnection,
    table: Table,
    index: &str,
    (deployment, node): (DeploymentId, Option<NodeId>),
    (from, to): (i64, i64),
    limit: i64,
) -> Result<Vec<RawColumns>> {
    let key = if table.per_node() { "node_id" } else { "nodes" };
    let (node_filter, next) = match node {
        Some(_) => ("AND node_id = $2 ", 3),
        None => ("", 2),
    };
    let sql = format!(
        "SELECT {key} AS key, bucket, sample_count, newest, {METRIC_COLUMNS} \
         FROM {}{index} WHERE deployment_id = $1 {node_filter}\
         AND bucket >= ${next} AND bucket <= ${} ORDER BY bucket LIMIT ${}",
        table.name(),
        next + 1,
        next + 2
    );
    let records: Vec<RollupRecord> = on_backend!(conn, |inner| {
        let mut query = diesel::sql_query(sql.as_str())
            .into_boxed()
            .bind::<BigInt, _>(deployment.get());
        if let Some(node) = node {
            query = query.bind::<BigInt, _>(node.get());
        }
        query
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(to)
            .bind::<BigInt, _>(limit)
            .load(inner)?
    });
    Ok(records.into_iter().map(RollupRecord::columns).collect())
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesBucket {
    /// The bucket's start.
    pub start: Timestamp,
    /// How many nodes had samples in it (1 for one node's series).
    pub nodes: u64,
    /// The samples of the bucket.
    pub summary: SampleSummary,
}

/// A node's rollups at `resolution` whose buckets start in `[start, end]`, oldest first, at
/// most `limit`.
pub fn node_series(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    node: NodeId,
    resolution: Resolution,
    start: Timestamp,
    end: Timestamp,
    limit: i64,
) -> Result<Vec<SeriesBucket>> {
    let table = Table::of(resolution, true);
    // SQLite's planner, without statistics, walks the primary key's (deployment, bucket) range
    // across every node instead of the (deployment, node, bucket) index: 800 ms instead of a
    // few for a day of minutes of one node among 10,000. So the index is named there.
    let index = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => format!(" INDEXED BY {}_node", table.name()),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(_) => String::new(),
    };
    let range = (resolution.bucket_of(to_micros(start)), to_micros(end));
    let rows = read_series(conn, table, &index, (deployment, Some(node)), range, limit)?;
    let table = table.name();
    rows.into_iter()
        .map(|row| {
            let row = flatten(row);
            Ok(SeriesBucket {
                start: from_micros(table, row.1)?,
                nodes: 1,
                summary: summary(table, &row)?,
            })
        })
        .collect()
}

/// A deployment's fleet rollups at `resolution` whose buckets start in `[start, end]`, oldest
/// first, at most `limit`.
pub fn fleet_series(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    resolution: Resolution,
    start: Timestamp,
    end: Timestamp,
    limit: i64,
) -> Result<Vec<SeriesBucket>> {
    let table = Table::of(resolution, false);
    let range = (resolution.bucket_of(to_micros(start)), to_micros(end));
    let rows = read_series(conn, table, "", (deployment, None), range, limit)?;
    let table = table.name();
    rows.into_iter()
        .map(|row| {
            let row = flatten(row);
            Ok(SeriesBucket {
                start: from_micros(table, row.1)?,
                nodes: u64::try_from(row.0).unwrap_or(0),
                summary: summary(table, &row)?,
            })
        })
        .collect()
}

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
    (start, end): (Timestamp, Timestamp),
    detail: WindowDetail,
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
        crate::telemetry::scan_window(
            conn,
            deployment,
            from_micros("telemetry_samples", from)?,
            from_micros("telemetry_samples", to)?,
            |node, at, metrics| {
                samples += 1;
                visit(WindowPart::Sample(node, at, metrics));
            },
        )?;
    }
    for step in layout.steps {
        let (resolution, (from, to), taken_away) = match step {
            Step::AddMinutes(from, to) => (Resolution::Minute, (from, to), false),
            Step::AddHours(from, to) => (Resolution::Hour, (from, to), false),
            Step::LessMinutes(from, to) => (Resolution::Minute, (from, to), true),
        };
        scan_rollups(
            conn,
            resolution,
            deployment,
            from,
            to,
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
        crate::telemetry::scan_window(
            conn,
            deployment,
            from_micros("telemetry_samples", from)?,
            from_micros("telemetry_samples", to)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use netorch_domain::Metrics;

    fn one(seconds: i64, latency_ms: f64) -> SampleSummary {
        let at = chrono::DateTime::from_timestamp(seconds, 0).expect("valid time");
        SampleSummary::of(
            at,
            &Metrics {
                latency_ms,
                throughput_gbps: 1.0,
                error_rate: 0.0,
            },
        )
    }

    #[test]
    fn grouping_merges_each_keys_parts_in_the_order_given_and_sorts_the_keys() {
        let parts = [
            ((1, 60, 2), one(60, 1.0)),
            ((1, 0, 9), one(0, 5.0)),
            ((1, 60, 2), one(61, 2.0)),
            ((1, 60, 1), one(62, 3.0)),
            ((1, 60, 2), one(62, 4.0)),
        ];
        let grouped = group(parts.into_iter());
        let keys: Vec<BucketKey> = grouped.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, [(1, 0, 9), (1, 60, 1), (1, 60, 2)]);
        let mut want = one(60, 1.0);
        want.merge(&one(61, 2.0));
        want.merge(&one(62, 4.0));
        // Bit for bit: the same merges in the same order as sample by sample.
        assert_eq!(grouped[2].1, want);
        assert_eq!(grouped[2].1.count, 3);
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn only_a_summary_of_one_sample_takes_the_one_sample_upsert() {
        assert!(RollupRow::new(1, 0, 1, &one(0, 3.0)).is_one_sample());
        let mut two = one(0, 3.0);
        two.merge(&one(1, 3.0));
        assert!(!RollupRow::new(1, 0, 1, &two).is_one_sample());
    }
}
