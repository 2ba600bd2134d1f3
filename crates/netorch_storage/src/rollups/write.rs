//! The rollup writer: each stored batch's samples merged into their node and fleet buckets,
//! in the transaction that stores them; and a deleted deployment's rollups removed.

use super::*;

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
        telemetry_sealed_minutes::table.filter(telemetry_sealed_minutes::deployment_id.eq(id)),
    )
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
