//! Series for charts, read from the rollups of one tier.

use super::*;

/// Feeds the rollup at `resolution` of every node of `deployment` for each bucket starting in
/// `[from, to)` (microseconds) to `visit` as `(node, bucket start, summary)`, straight from a
/// database cursor. Returns how many rows it visited.
pub fn scan_rollups(
    conn: &mut DbConnection,
    resolution: Resolution,
    deployment: DeploymentId,
    from: i64,
    to: i64,
    visit: impl FnMut(NodeId, i64, &SampleSummary),
) -> Result<u64> {
    scan_rollups_of(
        conn,
        resolution,
        deployment,
        (from, to),
        NodeShare::ALL,
        visit,
    )
}

/// [`scan_rollups`] for the nodes of `share` only.
pub fn scan_rollups_of(
    conn: &mut DbConnection,
    resolution: Resolution,
    deployment: DeploymentId,
    (from, to): (i64, i64),
    share: NodeShare,
    mut visit: impl FnMut(NodeId, i64, &SampleSummary),
) -> Result<u64> {
    let table = Table::of(resolution, true).name();
    let mut visited = 0;
    let mut each = |row: RawColumns| -> Result<()> {
        let row = flatten(row);
        visit(NodeId(row.0), row.1, &summary(table, &row)?);
        visited += 1;
        Ok(())
    };
    // The two node tables have the same columns; this reads either.
    // Every node: no condition on the node at all (the reads that were there before shares).
    macro_rules! scan {
        ($t:ident) => {{
            use $t as t;
            let all = t::table
                .filter(t::deployment_id.eq(deployment.get()))
                .filter(t::bucket.ge(from))
                .filter(t::bucket.lt(to))
                .select(summary_columns!(t, node_id));
            if share == NodeShare::ALL {
                scan_in_key_order!(
                    conn, all,
                    rows: RawColumns,
                    key: (t::bucket, t::node_id),
                    names: ("bucket", "node_id"),
                    key_of: |row| (row.1, row.0),
                    each,
                )
            } else {
                scan_in_key_order!(
                    conn, all.filter(share.condition()),
                    rows: RawColumns,
                    key: (t::bucket, t::node_id),
                    names: ("bucket", "node_id"),
                    key_of: |row| (row.1, row.0),
                    each,
                )
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
