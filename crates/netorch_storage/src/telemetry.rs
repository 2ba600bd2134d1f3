//! Telemetry samples: batched ingest (the hot path, written per backend) and queries.

use crate::connection::write_transaction;
use crate::node_share::NodeShare;
use crate::schema::telemetry_samples;
use crate::sqlite_bulk::{self, SqliteRows, bind_values};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use diesel::query_builder::AstPass;
#[cfg(feature = "postgres")]
use diesel::sql_types::Array;
use diesel::sql_types::{BigInt, Double};
use diesel::sqlite::Sqlite;
use netorch_domain::{
    DeploymentId, Metrics, NewSample, NodeId, SampleId, TelemetrySample, Timestamp,
};

#[derive(Insertable)]
#[diesel(table_name = telemetry_samples)]
#[diesel(treat_none_as_default_value = false)]
struct NewSampleRow {
    deployment_id: i64,
    node_id: i64,
    sampled_at: i64,
    latency_ms: f64,
    throughput_gbps: f64,
    error_rate: f64,
}

impl From<&NewSample> for NewSampleRow {
    fn from(sample: &NewSample) -> Self {
        NewSampleRow {
            deployment_id: sample.deployment_id.get(),
            node_id: sample.node_id.get(),
            sampled_at: to_micros(sample.timestamp),
            latency_ms: sample.metrics.latency_ms,
            throughput_gbps: sample.metrics.throughput_gbps,
            error_rate: sample.metrics.error_rate,
        }
    }
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = telemetry_samples)]
struct SampleRow {
    id: i64,
    deployment_id: i64,
    node_id: i64,
    sampled_at: i64,
    latency_ms: f64,
    throughput_gbps: f64,
    error_rate: f64,
}

impl TryFrom<SampleRow> for TelemetrySample {
    type Error = StorageError;

    fn try_from(row: SampleRow) -> Result<Self> {
        Ok(TelemetrySample {
            id: SampleId(row.id),
            node_id: NodeId(row.node_id),
            deployment_id: DeploymentId(row.deployment_id),
            timestamp: from_micros("telemetry_samples", row.sampled_at)?,
            metrics: Metrics {
                latency_ms: row.latency_ms,
                throughput_gbps: row.throughput_gbps,
                error_rate: row.error_rate,
            },
        })
    }
}

/// A sample as the SQLite ingest statement binds it, with its id.
struct SqliteSampleRow {
    deployment_id: i64,
    sampled_at: i64,
    node_id: i64,
    id: i64,
    latency_ms: f64,
    throughput_gbps: f64,
    error_rate: f64,
}

/// The SQLite ingest statement's cache key.
struct SqliteSampleInsert;

impl SqliteRows for SqliteSampleRow {
    const HEAD: &'static str = "INSERT OR IGNORE INTO telemetry_samples \
        (deployment_id, sampled_at, node_id, id, latency_ms, throughput_gbps, error_rate) VALUES ";
    const TAIL: &'static str = "";
    const CHUNK: usize = 2_000;
    type CacheKey = SqliteSampleInsert;
    type Returning = BigInt;

    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        bind_values!(out;
            BigInt => &self.deployment_id,
            BigInt => &self.sampled_at,
            BigInt => &self.node_id,
            BigInt => &self.id,
            Double => &self.latency_ms,
            Double => &self.throughput_gbps,
            Double => &self.error_rate,
        )
    }
}

#[derive(QueryableByName)]
struct FirstId {
    #[diesel(sql_type = BigInt)]
    first: i64,
}

/// Reserves `count` consecutive sample ids on SQLite (whose sample table has no rowid to number
/// them) and returns the first. Runs inside the ingest transaction, which holds the write lock.
fn reserve_sqlite_sample_ids(
    conn: &mut diesel::SqliteConnection,
    count: usize,
) -> QueryResult<i64> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    diesel::sql_query(
        "UPDATE id_counters SET next_id = next_id + ? WHERE name = 'telemetry_samples' \
         RETURNING next_id - ? AS first",
    )
    .bind::<BigInt, _>(count)
    .bind::<BigInt, _>(count)
    .get_result::<FirstId>(conn)
    .map(|row| row.first)
}

#[cfg(feature = "postgres")]
/// Rows per `unnest` INSERT on PostgreSQL: big enough to amortise the round trip, small enough
/// to keep the bound arrays to a few megabytes.
const POSTGRES_CHUNK: usize = 50_000;

/// Stores `samples` in one transaction (or as part of the caller's), a few
/// statements per batch, and returns how many were new. A sample whose (node, timestamp) is
/// already stored, or repeated within the batch, is stored once.
///
/// The caller vouches that each sample's `deployment_id` is its node's deployment (the telemetry
/// worker reads them from the nodes; the API checks pushed samples with
/// [`crate::nodes::ids_in_deployment`]). Samples of a deployment that no longer exists are not
/// stored: the deployments are locked first ([`crate::deployment_rows::lock`]), so a sample is
/// either stored before its deployment's delete commits (and deleted with it) or not at all.
pub fn insert_batch(conn: &mut DbConnection, samples: &[NewSample]) -> Result<usize> {
    if samples.is_empty() {
        return Ok(0);
    }
    // Samples come grouped by deployment: one id per run, then the few distinct ones.
    let mut deployments: Vec<DeploymentId> = Vec::new();
    for sample in samples {
        if deployments.last() != Some(&sample.deployment_id) {
            deployments.push(sample.deployment_id);
        }
    }
    deployments.sort_unstable();
    deployments.dedup();
    write_transaction(conn, |conn| {
        let lock = crate::deployment_rows::DeploymentLock::AddRows;
        let live = crate::deployment_rows::lock(conn, &deployments, lock)?;
        if live.len() == deployments.len() {
            insert_rows(conn, samples)
        } else {
            let kept: Vec<NewSample> = samples
                .iter()
                .filter(|s| live.contains(&s.deployment_id))
                .copied()
                .collect();
            insert_rows(conn, &kept)
        }
    })
}

/// What [`insert_slot_page`] did with a page of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOutcome {
    /// Stored: this many samples were new.
    Stored(usize),
    /// Another worker had stored the page already; nothing was written.
    AlreadyStored,
    /// Another worker is storing the page right now (PostgreSQL); nothing was written. Ask
    /// again later: by then it is stored, or that worker failed and it is still to do.
    Busy,
}

/// Stores a page of one collection slot's samples (a telemetry worker's page of running nodes)
/// that other workers may be storing at the same time, so that each page costs one of them
/// rather than all. In one write transaction: claims the page (on PostgreSQL an advisory lock
/// on the slot and the page's first node, taken without waiting: [`PageOutcome::Busy`] if
/// another transaction holds it; SQLite's write lock already admits one writer at a time),
/// skips it if its first and last samples are stored already ([`PageOutcome::AlreadyStored`]:
/// another worker committed the same page), and otherwise stores it as [`insert_batch`] does.
/// `samples` must all have the same timestamp.
pub fn insert_slot_page(conn: &mut DbConnection, samples: &[NewSample]) -> Result<PageOutcome> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Ok(PageOutcome::Stored(0));
    };
    write_transaction(conn, |conn| {
        #[cfg(feature = "postgres")]
        if let DbConnection::Postgresql(inner) = conn {
            #[derive(QueryableByName)]
            struct Claimed {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                claimed: bool,
            }
            // A page is named by its slot and first node; a collision of two names only
            // makes one page wait for the end of the tick.
            let slot = to_micros(first.timestamp);
            let name = (slot / 1_000)
                .wrapping_mul(31)
                .wrapping_add(first.node_id.get());
            let key = (name ^ (name >> 32)) as i32;
            let claimed = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1, $2) AS claimed")
                .bind::<diesel::sql_types::Integer, _>(crate::locks::TELEMETRY_PAGE_CLASS)
                .bind::<diesel::sql_types::Integer, _>(key)
                .get_result::<Claimed>(inner)?
                .claimed;
            if !claimed {
                return Ok(PageOutcome::Busy);
            }
        }
        if is_stored(conn, first)? && is_stored(conn, last)? {
            return Ok(PageOutcome::AlreadyStored);
        }
        insert_batch(conn, samples).map(PageOutcome::Stored)
    })
}

/// Whether a sample with `sample`'s key (deployment, time, node) is stored.
fn is_stored(conn: &mut DbConnection, sample: &NewSample) -> Result<bool> {
    let found: Vec<i64> = on_backend!(conn, |inner| {
        telemetry_samples::table
            .filter(telemetry_samples::deployment_id.eq(sample.deployment_id.get()))
            .filter(telemetry_samples::sampled_at.eq(to_micros(sample.timestamp)))
            .filter(telemetry_samples::node_id.eq(sample.node_id.get()))
            .select(telemetry_samples::node_id)
            .load(inner)?
    });
    Ok(!found.is_empty())
}

/// Stores `samples` in the current transaction, and their rollups; how many were new.
///
/// Only samples actually stored count in the rollups. When every sample was new (the usual
/// case) that is the whole batch; otherwise the stored ones are read back: on SQLite by the ids
/// reserved for this batch, on PostgreSQL from the insert's `RETURNING`.
pub(crate) fn insert_rows(conn: &mut DbConnection, samples: &[NewSample]) -> Result<usize> {
    if samples.is_empty() {
        return Ok(0);
    }
    let (inserted, stored) = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(conn) => {
            let first_id = reserve_sqlite_sample_ids(conn, samples.len())?;
            let rows: Vec<SqliteSampleRow> = samples
                .iter()
                .zip(first_id..)
                .map(|(sample, id)| SqliteSampleRow {
                    deployment_id: sample.deployment_id.get(),
                    sampled_at: to_micros(sample.timestamp),
                    node_id: sample.node_id.get(),
                    id,
                    latency_ms: sample.metrics.latency_ms,
                    throughput_gbps: sample.metrics.throughput_gbps,
                    error_rate: sample.metrics.error_rate,
                })
                .collect();
            let inserted = sqlite_bulk::execute(conn, &rows)?;
            let stored = if inserted == samples.len() {
                None
            } else {
                Some(stored_since(conn, samples, first_id)?)
            };
            (inserted, stored)
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(conn) => {
            let mut inserted = 0;
            let mut stored: Option<Vec<NewSample>> = None;
            for (index, chunk) in samples.chunks(POSTGRES_CHUNK).enumerate() {
                let rows: Vec<NewSampleRow> = chunk.iter().map(NewSampleRow::from).collect();
                // Binary COPY is the fastest way in (batched heap inserts, no speculative
                // insertion), but it cannot skip a taken key. Duplicates are the exception, so
                // try COPY in a savepoint, and only when a key is taken (another worker wrote
                // the slot, a collector re-sent) insert the chunk again skipping taken keys.
                let copied = conn.transaction(|conn| {
                    diesel::copy_from(telemetry_samples::table)
                        .from_insertable(rows)
                        .execute(conn)
                });
                match copied {
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => {
                        let new =
                            PostgresSampleColumns::from(chunk).insert_skipping_duplicates(conn)?;
                        inserted += new.len();
                        stored
                            .get_or_insert_with(|| samples[..index * POSTGRES_CHUNK].to_vec())
                            .extend(new);
                    }
                    other => {
                        inserted += other?;
                        if let Some(stored) = &mut stored {
                            stored.extend_from_slice(chunk);
                        }
                    }
                }
            }
            (inserted, stored)
        }
    };
    crate::rollups::record(conn, stored.as_deref().unwrap_or(samples))?;
    Ok(inserted)
}

#[cfg(feature = "sqlite")]
/// The samples of this batch that were stored: those holding an id reserved for it (from
/// `first_id`), read back from the span of time and deployments the batch covers.
fn stored_since(
    conn: &mut diesel::SqliteConnection,
    samples: &[NewSample],
    first_id: i64,
) -> Result<Vec<NewSample>> {
    let mut deployments: Vec<i64> = samples.iter().map(|s| s.deployment_id.get()).collect();
    deployments.sort_unstable();
    deployments.dedup();
    let (oldest, newest) = samples.iter().fold((i64::MAX, i64::MIN), |(lo, hi), s| {
        let at = to_micros(s.timestamp);
        (lo.min(at), hi.max(at))
    });
    let last_id = first_id + i64::try_from(samples.len()).unwrap_or(i64::MAX);
    let rows: Vec<SampleRow> = telemetry_samples::table
        .filter(telemetry_samples::deployment_id.eq_any(deployments))
        .filter(telemetry_samples::sampled_at.between(oldest, newest))
        .filter(telemetry_samples::id.ge(first_id))
        .filter(telemetry_samples::id.lt(last_id))
        .select(SampleRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| {
            let sample = TelemetrySample::try_from(row)?;
            Ok(NewSample {
                node_id: sample.node_id,
                deployment_id: sample.deployment_id,
                timestamp: sample.timestamp,
                metrics: sample.metrics,
            })
        })
        .collect()
}

#[cfg(feature = "postgres")]
/// A chunk of samples as six column arrays, for one `INSERT ... SELECT * FROM unnest(...) ON
/// CONFLICT DO NOTHING` on PostgreSQL: one statement and six binds whatever the chunk size.
struct PostgresSampleColumns {
    deployment_ids: Vec<i64>,
    node_ids: Vec<i64>,
    sampled_at: Vec<i64>,
    latency: Vec<f64>,
    throughput: Vec<f64>,
    error_rate: Vec<f64>,
}

#[cfg(feature = "postgres")]
impl From<&[NewSample]> for PostgresSampleColumns {
    fn from(chunk: &[NewSample]) -> Self {
        let mut columns = PostgresSampleColumns {
            deployment_ids: Vec::with_capacity(chunk.len()),
            node_ids: Vec::with_capacity(chunk.len()),
            sampled_at: Vec::with_capacity(chunk.len()),
            latency: Vec::with_capacity(chunk.len()),
            throughput: Vec::with_capacity(chunk.len()),
            error_rate: Vec::with_capacity(chunk.len()),
        };
        for sample in chunk {
            columns.deployment_ids.push(sample.deployment_id.get());
            columns.node_ids.push(sample.node_id.get());
            columns.sampled_at.push(to_micros(sample.timestamp));
            columns.latency.push(sample.metrics.latency_ms);
            columns.throughput.push(sample.metrics.throughput_gbps);
            columns.error_rate.push(sample.metrics.error_rate);
        }
        columns
    }
}

#[cfg(feature = "postgres")]
impl PostgresSampleColumns {
    /// Inserts the chunk skipping taken keys; returns the samples stored.
    fn insert_skipping_duplicates(
        &self,
        conn: &mut diesel::PgConnection,
    ) -> Result<Vec<NewSample>> {
        let rows: Vec<(i64, i64, i64, f64, f64, f64)> = diesel::sql_query(
            "INSERT INTO telemetry_samples \
             (deployment_id, node_id, sampled_at, latency_ms, throughput_gbps, error_rate) \
             SELECT * FROM unnest($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING \
             RETURNING deployment_id, node_id, sampled_at, latency_ms, throughput_gbps, error_rate",
        )
        .bind::<Array<BigInt>, _>(&self.deployment_ids)
        .bind::<Array<BigInt>, _>(&self.node_ids)
        .bind::<Array<BigInt>, _>(&self.sampled_at)
        .bind::<Array<Double>, _>(&self.latency)
        .bind::<Array<Double>, _>(&self.throughput)
        .bind::<Array<Double>, _>(&self.error_rate)
        .load::<StoredSample>(conn)?
        .into_iter()
        .map(|r| {
            (
                r.deployment_id,
                r.node_id,
                r.sampled_at,
                r.latency_ms,
                r.throughput_gbps,
                r.error_rate,
            )
        })
        .collect();
        rows.into_iter()
            .map(
                |(deployment, node, at, latency_ms, throughput_gbps, error_rate)| {
                    Ok(NewSample {
                        node_id: NodeId(node),
                        deployment_id: DeploymentId(deployment),
                        timestamp: from_micros("telemetry_samples", at)?,
                        metrics: Metrics {
                            latency_ms,
                            throughput_gbps,
                            error_rate,
                        },
                    })
                },
            )
            .collect()
    }
}

#[cfg(feature = "postgres")]
/// A row of `RETURNING` after an insert that skipped taken keys.
#[derive(QueryableByName)]
struct StoredSample {
    #[diesel(sql_type = BigInt)]
    deployment_id: i64,
    #[diesel(sql_type = BigInt)]
    node_id: i64,
    #[diesel(sql_type = BigInt)]
    sampled_at: i64,
    #[diesel(sql_type = Double)]
    latency_ms: f64,
    #[diesel(sql_type = Double)]
    throughput_gbps: f64,
    #[diesel(sql_type = Double)]
    error_rate: f64,
}

/// Which samples of a deployment to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryQuery {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Only this node's samples.
    pub node: Option<NodeId>,
    /// Not before this time (inclusive).
    pub start: Option<Timestamp>,
    /// Not after this time (inclusive).
    pub end: Option<Timestamp>,
    /// At most this many samples.
    pub limit: i64,
}

/// Samples newest first (samples of the same instant by descending node id), read backwards
/// along the `(deployment_id, sampled_at, node_id)` index.
pub fn query(conn: &mut DbConnection, query: &TelemetryQuery) -> Result<Vec<TelemetrySample>> {
    if let Some(node) = query.node {
        let rows = match conn {
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(inner) => query_node_by_slots(inner, query, node)?,
            #[cfg(feature = "postgres")]
            DbConnection::Postgresql(inner) => query_node_by_slots_postgres(inner, query, node)?,
        };
        return rows.into_iter().map(TelemetrySample::try_from).collect();
    }
    let rows: Vec<SampleRow> = on_backend!(conn, |inner| {
        let mut select = telemetry_samples::table
            .filter(telemetry_samples::deployment_id.eq(query.deployment.get()))
            .into_boxed();
        if let Some(node) = query.node {
            select = select.filter(telemetry_samples::node_id.eq(node.get()));
        }
        if let Some(start) = query.start {
            select = select.filter(telemetry_samples::sampled_at.ge(to_micros(start)));
        }
        if let Some(end) = query.end {
            select = select.filter(telemetry_samples::sampled_at.le(to_micros(end)));
        }
        select
            .order((
                telemetry_samples::sampled_at.desc(),
                telemetry_samples::node_id.desc(),
            ))
            .limit(query.limit)
            .select(SampleRow::as_select())
            .load(inner)?
    });
    rows.into_iter().map(TelemetrySample::try_from).collect()
}

/// One node's samples, newest first, without reading the other nodes' samples: the
/// sample key is (deployment, time, node), so step back from one stamp of the deployment to
/// the one before (a seek) and look the node up at each (a second seek). Nodes of a deployment
/// share their slots (the worker stamps every node of a tick alike, and collectors push on
/// slot boundaries), so this costs two seeks per sample. Where stamps are not shared (a
/// collector pushing each node at its own instants) the seeks stop paying off, and after
/// `4 * limit + 1,000` of them the rest of the span is scanned instead.
#[cfg(feature = "sqlite")]
fn query_node_by_slots(
    conn: &mut diesel::SqliteConnection,
    query: &TelemetryQuery,
    node: NodeId,
) -> Result<Vec<SampleRow>> {
    use diesel::dsl::max;
    use telemetry_samples as t;
    let limit = usize::try_from(query.limit).unwrap_or(0);
    let floor = query.start.map(to_micros).unwrap_or(i64::MIN);
    let mut upto = query.end.map(to_micros).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    let mut seeks = 0;
    while rows.len() < limit {
        if seeks > 4 * limit + 1_000 {
            let left = i64::try_from(limit - rows.len()).unwrap_or(i64::MAX);
            let rest: Vec<SampleRow> = t::table
                .filter(t::deployment_id.eq(query.deployment.get()))
                .filter(t::node_id.eq(node.get()))
                .filter(t::sampled_at.between(floor, upto))
                .order(t::sampled_at.desc())
                .limit(left)
                .select(SampleRow::as_select())
                .load(conn)?;
            rows.extend(rest);
            break;
        }
        seeks += 1;
        let stamp: Option<i64> = t::table
            .filter(t::deployment_id.eq(query.deployment.get()))
            .filter(t::sampled_at.between(floor, upto))
            .select(max(t::sampled_at))
            .first(conn)?;
        let Some(stamp) = stamp else { break };
        let row: Option<SampleRow> = t::table
            .filter(t::deployment_id.eq(query.deployment.get()))
            .filter(t::sampled_at.eq(stamp))
            .filter(t::node_id.eq(node.get()))
            .select(SampleRow::as_select())
            .first(conn)
            .optional()?;
        rows.extend(row);
        if stamp == i64::MIN {
            break;
        }
        upto = stamp - 1;
    }
    Ok(rows)
}

#[cfg(feature = "postgres")]
/// The slot walk of `query_node_by_slots` (SQLite) as one statement on PostgreSQL, where each
/// seek of the loop would be a round trip (90 – 105 ms for 720 samples among 10,000 nodes): a recursive query walks the
/// deployment's stamps newest first (a "loose index scan") and a lateral lookup finds the node
/// at each. PostgreSQL evaluates the recursion only as far as the `LIMIT` reads, so the walk
/// stops once `limit` samples are found, or when the span's stamps run out (a node with few
/// samples costs a seek per stamp of the span, bounded by raw retention).
///
/// Two things keep it fast on the time-partitioned table. Each step looks for the previous
/// stamp within the hour before first (the partitions it can be in are pruned at run time) and
/// across the whole span only if that finds none: a step over every partition costs 0.4 ms.
/// And `OFFSET 0` keeps the lateral lookup a lookup per stamp: flattened into a join, a partition
/// filled since its last `ANALYZE` led the planner to read all of the node's samples instead
/// (0.7 – 1.2 s).
fn query_node_by_slots_postgres(
    conn: &mut diesel::PgConnection,
    query: &TelemetryQuery,
    node: NodeId,
) -> Result<Vec<SampleRow>> {
    let floor = query.start.map(to_micros).unwrap_or(i64::MIN);
    let upto = query.end.map(to_micros).unwrap_or(i64::MAX);
    let mut rows: Vec<SampleRow> = diesel::sql_query(
        "WITH RECURSIVE stamps(t) AS ( \
           SELECT (SELECT max(sampled_at) FROM telemetry_samples \
                   WHERE deployment_id = $1 AND sampled_at BETWEEN $2 AND $3) \
           UNION ALL \
           SELECT COALESCE( \
             (SELECT max(sampled_at) FROM telemetry_samples WHERE deployment_id = $1 \
              AND sampled_at >= GREATEST($2, stamps.t - 3600000000) AND sampled_at < stamps.t), \
             (SELECT max(sampled_at) FROM telemetry_samples WHERE deployment_id = $1 \
              AND sampled_at >= $2 AND sampled_at < stamps.t - 3600000000)) \
           FROM stamps WHERE stamps.t IS NOT NULL) \
         SELECT s.id, s.deployment_id, s.node_id, s.sampled_at, s.latency_ms, s.throughput_gbps, \
                s.error_rate \
         FROM stamps, LATERAL (SELECT * FROM telemetry_samples x WHERE x.deployment_id = $1 \
                               AND x.sampled_at = stamps.t AND x.node_id = $4 OFFSET 0) s \
         LIMIT $5",
    )
    .bind::<BigInt, _>(query.deployment.get())
    .bind::<BigInt, _>(floor)
    .bind::<BigInt, _>(upto)
    .bind::<BigInt, _>(node.get())
    .bind::<BigInt, _>(query.limit)
    .load::<SampleRow>(conn)?;
    // Already newest first as walked; sorted so the order does not rest on the plan.
    rows.sort_by_key(|row| std::cmp::Reverse(row.sampled_at));
    Ok(rows)
}

/// How many samples a deployment has (all time).
pub fn count(conn: &mut DbConnection, deployment: DeploymentId) -> Result<i64> {
    Ok(telemetry_samples::table
        .filter(telemetry_samples::deployment_id.eq(deployment.get()))
        .count()
        .get_result(conn)?)
}

/// Feeds every sample of `deployment` stamped within `[start, end]` to `visit`, as
/// `(node, timestamp, metrics)`, straight from a database cursor: the window is never held in
/// memory (on PostgreSQL the rows are fetched one by one rather than as one result). Returns
/// how many samples were visited.
pub fn scan_window(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    start: Timestamp,
    end: Timestamp,
    visit: impl FnMut(NodeId, Timestamp, Metrics),
) -> Result<u64> {
    scan_window_of(conn, deployment, start, end, NodeShare::ALL, visit)
}

/// [`scan_window`] for the nodes of `share` only.
pub fn scan_window_of(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    start: Timestamp,
    end: Timestamp,
    share: NodeShare,
    mut visit: impl FnMut(NodeId, Timestamp, Metrics),
) -> Result<u64> {
    let mut visited = 0;
    let mut each = |row: (i64, i64, f64, f64, f64)| -> Result<()> {
        let (node, at, latency_ms, throughput_gbps, error_rate) = row;
        visit(
            NodeId(node),
            from_micros("telemetry_samples", at)?,
            Metrics {
                latency_ms,
                throughput_gbps,
                error_rate,
            },
        );
        visited += 1;
        Ok(())
    };
    use telemetry_samples as t;
    let all = t::table
        .filter(t::deployment_id.eq(deployment.get()))
        .filter(t::sampled_at.ge(to_micros(start)))
        .filter(t::sampled_at.le(to_micros(end)))
        .select((
            t::node_id,
            t::sampled_at,
            t::latency_ms,
            t::throughput_gbps,
            t::error_rate,
        ));
    // Every node: no condition on the node at all.
    if share == NodeShare::ALL {
        scan_in_key_order!(
            conn, all,
            rows: (i64, i64, f64, f64, f64),
            key: (t::sampled_at, t::node_id),
            names: ("sampled_at", "node_id"),
            key_of: |row| (row.1, row.0),
            each,
        );
    } else {
        scan_in_key_order!(
            conn, all.filter(share.condition()),
            rows: (i64, i64, f64, f64, f64),
            key: (t::sampled_at, t::node_id),
            names: ("sampled_at", "node_id"),
            key_of: |row| (row.1, row.0),
            each,
        );
    }
    Ok(visited)
}

/// Stores samples pushed for `deployment`, all or nothing: if any names a node that is not one
/// of the deployment's, nothing is stored and the indexes of those samples are returned;
/// otherwise the number of new samples (see [`insert_batch`]). The check and the insert share
/// one write transaction, so a node cannot be deleted in between.
pub fn insert_for_deployment(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    samples: &[NewSample],
) -> Result<Result<usize, Vec<usize>>> {
    write_transaction(conn, |conn| {
        // Locked, not just looked up: a delete cannot commit between this check and the insert.
        let lock = crate::deployment_rows::DeploymentLock::AddRows;
        if crate::deployment_rows::lock(conn, &[deployment], lock)?.is_empty() {
            return Err(StorageError::DeploymentNotFound);
        }
        let ids: Vec<NodeId> = samples.iter().map(|s| s.node_id).collect();
        let known = crate::nodes::ids_in_deployment(conn, deployment, &ids)?;
        let strangers: Vec<usize> = samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.deployment_id != deployment || !known.contains(&s.node_id))
            .map(|(index, _)| index)
            .collect();
        if !strangers.is_empty() {
            return Ok(Err(strangers));
        }
        Ok(Ok(insert_rows(conn, samples)?))
    })
}
