//! Sealed minutes: per node and UTC hour, the one-minute rollups of the hour's first minutes
//! packed in one row, so that a read of many minutes of every node (the robust bottleneck
//! report's minute means over an hour) costs a row or two per node instead of one per minute.
//!
//! The workers seal ([`seal`]) an hour's minutes once they are [`GRACE_MINUTES`] past, in steps
//! of [`STEP_MINUTES`]: each step rewrites the hour's rows with the minutes sealed so far. A row
//! is a copy, never the truth: the minute rollups stay as they are, and a late sample for a
//! sealed minute updates them (and the hour rollup) but not the row. So a reader
//! (`scan_minutes`) checks each node's row before using it: the row's count plus the node's
//! minute rollups after the sealed minutes must equal the node's hour rollup, read in the same
//! snapshot. Samples are only ever added to rollups, so equal counts mean no sample arrived for
//! the sealed minutes since they were sealed; where they differ, the reader reads that node's
//! minutes from the minute rollups instead. The report is therefore the same, bit for bit,
//! whichever way a minute is read, and a worker that stops sealing only makes reads slower.

use super::*;
use crate::schema::telemetry_sealed_minutes as sealed;
use std::collections::{HashMap, HashSet};

/// Minutes are sealed this many at a time: each step rewrites the hour's rows, so a larger step
/// writes less and leaves more of the current hour to be read minute by minute.
pub const STEP_MINUTES: i64 = 5;
/// A minute is sealed once it ended this many minutes ago: later samples are rare (a pushed
/// sample may still come, and is then caught by the reader's check).
pub const GRACE_MINUTES: i64 = 2;
/// Sealing rewrites at most this many nodes' rows per transaction, so that a large deployment
/// does not hold SQLite's write lock for long.
const NODES_PER_TRANSACTION: usize = 5_000;
/// A minute of a sealed row: its index in the hour (1 byte), count (4), newest (8) and per
/// metric mean, M2, min and max (96).
const ENTRY_BYTES: usize = 1 + 4 + 8 + 12 * 8;
/// What reading a node's sealed row (a few kilobytes) and its hour rollup costs, in minute
/// rows, as measured on SQLite (`cargo bench -p netorch_api --bench telemetry_queries`).
const SEALED_ROW_COST: i64 = 6;
/// A part of a window holding fewer minutes of an hour than this is read minute by minute
/// without asking whether the hour is sealed: sealed rows could not read less.
const MIN_MINUTES_FOR_SEALED: i64 = SEALED_ROW_COST + 1;

/// Packs a node's minutes (start of the hour, then each minute's start and summary).
fn encode(hour: i64, minutes: &[(i64, SampleSummary)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(minutes.len() * ENTRY_BYTES);
    for (minute, s) in minutes {
        let index = (minute - hour) / Resolution::Minute.micros();
        // A minute of the hour: 0..60 fits a byte.
        bytes.push(u8::try_from(index).unwrap_or(u8::MAX));
        bytes.extend_from_slice(&u32::try_from(s.count).unwrap_or(u32::MAX).to_le_bytes());
        bytes.extend_from_slice(&to_micros(s.newest).to_le_bytes());
        for m in s.metrics() {
            for value in [m.mean, m.m2, m.min, m.max] {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
    }
    bytes
}

/// Unpacks a row's minutes starting in `[from, to)`: each minute's start (microseconds) and
/// summary (the others are skipped unread).
fn decode(
    hour: i64,
    bytes: &[u8],
    (from, to): (i64, i64),
    mut each: impl FnMut(i64, SampleSummary),
) -> Result<()> {
    if !bytes.len().is_multiple_of(ENTRY_BYTES) {
        return Err(crate::StorageError::CorruptRow {
            table: "telemetry_sealed_minutes",
            detail: format!("{} bytes is not a whole number of minutes", bytes.len()),
        });
    }
    let f64_at = |entry: &[u8], at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&entry[at..at + 8]);
        f64::from_le_bytes(b)
    };
    for entry in bytes.chunks_exact(ENTRY_BYTES) {
        let minute = hour + i64::from(entry[0]) * Resolution::Minute.micros();
        if minute < from || minute >= to {
            continue;
        }
        let mut count = [0u8; 4];
        count.copy_from_slice(&entry[1..5]);
        let mut newest = [0u8; 8];
        newest.copy_from_slice(&entry[5..13]);
        let metric = |k: usize| {
            let at = 13 + k * 32;
            MetricSummary {
                mean: f64_at(entry, at),
                m2: f64_at(entry, at + 8),
                min: f64_at(entry, at + 16),
                max: f64_at(entry, at + 24),
            }
        };
        each(
            minute,
            SampleSummary {
                count: u64::from(u32::from_le_bytes(count)),
                newest: from_micros("telemetry_sealed_minutes", i64::from_le_bytes(newest))?,
                latency_ms: metric(0),
                throughput_gbps: metric(1),
                error_rate: metric(2),
            },
        );
    }
    Ok(())
}

/// The hour starting at `hour`: how many of its minutes are sealed (by its first row; every row
/// of an hour is sealed to the same minute once a step has finished).
fn sealed_minutes(conn: &mut DbConnection, deployment: DeploymentId, hour: i64) -> Result<i64> {
    let query = sealed::table
        .filter(sealed::deployment_id.eq(deployment.get()))
        .filter(sealed::bucket.eq(hour))
        .select(sealed::sealed_minutes);
    let found: Option<i32> = on_backend!(conn, |inner| query.first(inner).optional()?);
    Ok(found.map_or(0, i64::from))
}

/// What one [`seal`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sealed {
    /// Hours whose rows were rewritten.
    pub hours: usize,
    /// Rows written.
    pub rows: usize,
}

/// Seals `deployment`'s minutes that ended [`GRACE_MINUTES`] before `now`, in steps of
/// [`STEP_MINUTES`]: the current hour and the one before (an older hour a stopped worker left
/// unsealed is read minute by minute). Each hour whose sealed minutes lag is rewritten from its
/// minute rollups, 5,000 nodes per write transaction. Safe with any number
/// of workers at once: two that seal the same hour write the same rows.
pub fn seal(conn: &mut DbConnection, deployment: DeploymentId, now: Timestamp) -> Result<Sealed> {
    let minute = Resolution::Minute.micros();
    let hour = Resolution::Hour.micros();
    let ready = Resolution::Minute.bucket_of(to_micros(now)) - GRACE_MINUTES * minute;
    let mut done = Sealed::default();
    let current = Resolution::Hour.bucket_of(ready);
    for start in [current - hour, current] {
        let wanted = ((ready - start) / minute).clamp(0, 60) / STEP_MINUTES * STEP_MINUTES;
        let wanted = if ready >= start + hour { 60 } else { wanted };
        if wanted == 0 || sealed_minutes(conn, deployment, start)? >= wanted {
            continue;
        }
        done.rows += seal_hour(conn, deployment, start, wanted)?;
        done.hours += 1;
    }
    Ok(done)
}

/// [`seal`] for every deployment, while `keep_going` says so (checked between deployments).
pub fn seal_all(
    conn: &mut DbConnection,
    now: Timestamp,
    mut keep_going: impl FnMut() -> bool,
) -> Result<Sealed> {
    let mut done = Sealed::default();
    for deployment in crate::deployments::all_ids(conn)? {
        if !keep_going() {
            break;
        }
        let one = seal(conn, deployment, now)?;
        done.hours += one.hours;
        done.rows += one.rows;
    }
    Ok(done)
}

/// Rewrites the sealed rows of the hour starting at `hour` with its first `minutes` minutes.
fn seal_hour(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    hour: i64,
    minutes: i64,
) -> Result<usize> {
    let end = hour + minutes * Resolution::Minute.micros();
    // The nodes with minutes to seal, from their hour rollups (a row per node).
    let nodes: Vec<i64> = {
        let query = telemetry_hours::table
            .filter(telemetry_hours::deployment_id.eq(deployment.get()))
            .filter(telemetry_hours::bucket.eq(hour))
            .select(telemetry_hours::node_id)
            .order(telemetry_hours::node_id);
        on_backend!(conn, |inner| query.load(inner)?)
    };
    let mut written = 0;
    for chunk in nodes.chunks(NODES_PER_TRANSACTION) {
        let (first, last) = (chunk[0], chunk[chunk.len() - 1]);
        written += crate::write_transaction(conn, |conn| {
            let mut per_node: HashMap<i64, Vec<(i64, SampleSummary)>> = HashMap::new();
            let query = telemetry_minutes::table
                .filter(telemetry_minutes::deployment_id.eq(deployment.get()))
                .filter(telemetry_minutes::node_id.between(first, last))
                .filter(telemetry_minutes::bucket.ge(hour))
                .filter(telemetry_minutes::bucket.lt(end))
                .select(summary_columns!(telemetry_minutes, node_id));
            let rows: Vec<RawColumns> = on_backend!(conn, |inner| query.load(inner)?);
            for row in rows {
                let row = flatten(row);
                let summary = summary("telemetry_minutes", &row)?;
                per_node.entry(row.0).or_default().push((row.1, summary));
            }
            let sealed_to = i32::try_from(minutes).unwrap_or(60);
            // In node order, so that two workers sealing the same hour at once take the rows'
            // locks in the same order; each row replaced whole.
            let mut per_node: Vec<(i64, Vec<(i64, SampleSummary)>)> =
                per_node.into_iter().collect();
            per_node.sort_by_key(|(node, _)| *node);
            let rows: Vec<_> = per_node
                .into_iter()
                .map(|(node, mut entries)| {
                    entries.sort_by_key(|e| e.0);
                    let count: u64 = entries.iter().map(|e| e.1.count).sum();
                    (
                        sealed::deployment_id.eq(deployment.get()),
                        sealed::bucket.eq(hour),
                        sealed::node_id.eq(node),
                        sealed::sealed_minutes.eq(sealed_to),
                        sealed::sample_count.eq(i64::try_from(count).unwrap_or(i64::MAX)),
                        sealed::minutes.eq(encode(hour, &entries)),
                    )
                })
                .collect();
            // A few hundred rows per statement keeps under both backends' bind limits.
            for part in rows.chunks(500) {
                use diesel::upsert::excluded;
                on_backend!(conn, |inner| diesel::insert_into(sealed::table)
                    .values(part.to_vec())
                    .on_conflict((sealed::deployment_id, sealed::bucket, sealed::node_id))
                    .do_update()
                    .set((
                        sealed::sealed_minutes.eq(excluded(sealed::sealed_minutes)),
                        sealed::sample_count.eq(excluded(sealed::sample_count)),
                        sealed::minutes.eq(excluded(sealed::minutes)),
                    ))
                    .execute(inner)?);
            }
            Ok(rows.len())
        })?;
    }
    Ok(written)
}

/// Feeds the one-minute rollups of `deployment`'s nodes in `share` for the minutes starting in
/// `[from, to)` (minute-aligned microseconds) to `visit`, as [`scan_rollups_of`] at minute
/// resolution does, in any order: from sealed rows where that reads less (a long part of a
/// sealed hour) and a node's row passes its check, from the minute rollups otherwise. Returns
/// how many minutes it gave.
pub(super) fn scan_minutes(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    (from, to): (i64, i64),
    share: NodeShare,
    mut visit: impl FnMut(NodeId, i64, &SampleSummary),
) -> Result<u64> {
    let (minute, hour) = (Resolution::Minute.micros(), Resolution::Hour.micros());
    let mut given = 0;
    let mut start = Resolution::Hour.bucket_of(from);
    while start < to {
        let (hour_start, (a, b)) = (start, (from.max(start), to.min(start + hour)));
        start += hour;
        let minutes = (b - a) / minute;
        let sealed_to = if minutes >= MIN_MINUTES_FOR_SEALED {
            sealed_minutes(conn, deployment, hour_start)?
        } else {
            0
        };
        let sealed_end = hour_start + sealed_to * minute;
        let after_sealed = (b - a.max(sealed_end)).max(0) / minute;
        // In minute rows: a sealed row costs about SEALED_ROW_COST, the check about a quarter
        // row per minute after the sealed ones, and those inside the part one each.
        let sealed_cost = SEALED_ROW_COST + (60 - sealed_to) / 4 + after_sealed;
        if sealed_to == 0 || sealed_cost >= minutes {
            given += scan_rollups_of(
                conn,
                Resolution::Minute,
                deployment,
                (a, b),
                share,
                |n, at, s| visit(n, at, s),
            )?;
            continue;
        }
        given += crate::connection::read_snapshot(conn, |conn| {
            scan_hour(
                conn,
                deployment,
                (hour_start, sealed_to),
                (a, b),
                share,
                &mut visit,
            )
        })?;
    }
    Ok(given)
}

/// A node's samples in a range of minutes, summed by the database.
#[derive(QueryableByName)]
struct NodeCount {
    #[diesel(sql_type = BigInt)]
    node_id: i64,
    #[diesel(sql_type = BigInt)]
    samples: i64,
}

/// [`scan_minutes`] for the minutes `[a, b)` of the hour starting at `hour`, whose first
/// `sealed_to` minutes are sealed, from its sealed rows, each checked against the node's minute
/// rollups after them and its hour rollup (all read in the caller's snapshot). A row sealed to
/// another minute (a step half done) counts as failing its check.
fn scan_hour(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    (hour, sealed_to): (i64, i64),
    (a, b): (i64, i64),
    share: NodeShare,
    visit: &mut impl FnMut(NodeId, i64, &SampleSummary),
) -> Result<u64> {
    let after = hour + sealed_to * Resolution::Minute.micros();
    // Each node's samples after the sealed minutes, to the hour's end, counted by the database:
    // the check needs them all, the part only those inside it.
    let later: HashMap<i64, i64> = {
        let query = diesel::sql_query(format!(
            "SELECT node_id, CAST(SUM(sample_count) AS BIGINT) AS samples FROM telemetry_minutes \
             WHERE deployment_id = $1 AND bucket >= $2 AND bucket < $3 AND {} GROUP BY node_id",
            share.sql()
        ))
        .bind::<BigInt, _>(deployment.get())
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(hour + Resolution::Hour.micros());
        let found: Vec<NodeCount> = on_backend!(conn, |inner| query.clone().load(inner)?);
        found.into_iter().map(|c| (c.node_id, c.samples)).collect()
    };
    let counts: HashMap<i64, i64> = {
        let query = telemetry_hours::table
            .filter(telemetry_hours::deployment_id.eq(deployment.get()))
            .filter(telemetry_hours::bucket.eq(hour))
            .filter(share.condition())
            .select((telemetry_hours::node_id, telemetry_hours::sample_count));
        let found: Vec<(i64, i64)> = on_backend!(conn, |inner| query.load(inner)?);
        found.into_iter().collect()
    };
    let mut given = 0;
    // Nodes read from the minute rollups instead: a row that fails its check, or none while
    // the node has samples in the sealed minutes.
    let mut stale: HashSet<i64> = HashSet::new();
    let mut sealed_nodes: HashSet<i64> = HashSet::with_capacity(counts.len());
    // Each row checked and unpacked as it is read, never all held at once.
    let mut each = |(node, to, count, bytes): (i64, i32, i64, Vec<u8>)| -> Result<()> {
        sealed_nodes.insert(node);
        let expected = counts.get(&node).copied().unwrap_or(0);
        if i64::from(to) != sealed_to || expected != count + later.get(&node).copied().unwrap_or(0)
        {
            stale.insert(node);
            return Ok(());
        }
        let id = NodeId(node);
        decode(hour, &bytes, (a, b), |at, summary| {
            visit(id, at, &summary);
            given += 1;
        })
    };
    scan_in_key_order!(
        conn,
        sealed::table
            .filter(sealed::deployment_id.eq(deployment.get()))
            .filter(sealed::bucket.eq(hour))
            .filter(share.condition())
            .select((
                sealed::node_id,
                sealed::sealed_minutes,
                sealed::sample_count,
                sealed::minutes,
            )),
        rows: (i64, i32, i64, Vec<u8>),
        key: (sealed::bucket, sealed::node_id),
        names: ("bucket", "node_id"),
        key_of: |row: &(i64, i32, i64, Vec<u8>)| (hour, row.0),
        each,
    );
    for (node, expected) in &counts {
        if !sealed_nodes.contains(node) && later.get(node).copied().unwrap_or(0) != *expected {
            stale.insert(*node);
        }
    }
    // The part's minutes after the sealed ones, and every minute of the stale nodes.
    let from_rollups = if stale.is_empty() { a.max(after) } else { a };
    if from_rollups < b {
        scan_rollups_of(
            conn,
            Resolution::Minute,
            deployment,
            (from_rollups, b),
            share,
            |n, at, s| {
                if at >= after || stale.contains(&n.get()) {
                    visit(n, at, s);
                    given += 1;
                }
            },
        )?;
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_minute_reads_back_as_it_was() {
        let hour = 1_800_000_000_000_000 / Resolution::Hour.micros() * Resolution::Hour.micros();
        let at = |m: i64| hour + m * Resolution::Minute.micros();
        let newest = from_micros("t", at(7) + 59_000_000).expect("valid");
        let mut s = SampleSummary::of(
            newest,
            &Metrics {
                latency_ms: 12.5,
                throughput_gbps: 9.25,
                error_rate: 0.125,
            },
        );
        s.push(
            newest,
            &Metrics {
                latency_ms: 30.0,
                throughput_gbps: 1.0,
                error_rate: 3.0,
            },
        );
        let packed = encode(hour, &[(at(7), s), (at(59), s)]);
        assert_eq!(packed.len(), 2 * ENTRY_BYTES);
        let mut back = Vec::new();
        let all = (i64::MIN, i64::MAX);
        decode(hour, &packed, all, |m, summary| back.push((m, summary))).expect("decodes");
        assert_eq!(back, vec![(at(7), s), (at(59), s)]);
        back.clear();
        decode(hour, &packed, (at(8), at(60)), |m, summary| {
            back.push((m, summary))
        })
        .expect("decodes");
        assert_eq!(back, vec![(at(59), s)]);
        assert!(decode(hour, &packed[1..], all, |_, _| ()).is_err());
    }
}
