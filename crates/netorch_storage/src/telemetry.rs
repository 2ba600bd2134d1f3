//! Telemetry samples: batched ingest (the hot path, written per backend) and queries.

use crate::connection::write_transaction;
use crate::schema::telemetry_samples;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double};
use netorch_domain::{DeploymentId, Metrics, NewSample, NodeId, SampleId, TelemetrySample, Timestamp};

#[derive(Insertable)]
#[diesel(table_name = telemetry_samples)]
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

#[derive(Queryable, Selectable)]
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

/// Rows per multi-row INSERT on SQLite: 6 columns stay under its 32,766 bound parameters.
const SQLITE_CHUNK: usize = 5_000;
/// Rows per `unnest` INSERT on PostgreSQL: big enough to amortise the round trip, small enough
/// to keep the bound arrays in the tens of megabytes.
const POSTGRES_CHUNK: usize = 50_000;

/// Stores `samples` in one transaction (a savepoint inside a caller's transaction), a few
/// statements per batch, and returns how many were new. A sample whose (node, timestamp) is
/// already stored, or repeated within the batch, is stored once.
///
/// The caller vouches that each sample's `deployment_id` is its node's deployment (the telemetry
/// worker reads them from the nodes; the API checks pushed samples with
/// [`crate::nodes::ids_in_deployment`]).
pub fn insert_batch(conn: &mut DbConnection, samples: &[NewSample]) -> Result<usize> {
    if samples.is_empty() {
        return Ok(0);
    }
    write_transaction(conn, |conn| match conn {
        DbConnection::Sqlite(conn) => {
            let mut inserted = 0;
            let mut rows = Vec::with_capacity(SQLITE_CHUNK.min(samples.len()));
            for chunk in samples.chunks(SQLITE_CHUNK) {
                rows.clear();
                rows.extend(chunk.iter().map(NewSampleRow::from));
                inserted += diesel::insert_or_ignore_into(telemetry_samples::table)
                    .values(&rows)
                    .execute(conn)?;
            }
            Ok(inserted)
        }
        DbConnection::Postgresql(conn) => {
            // One statement binds six arrays; the server unnests them into rows. As fast as
            // COPY for batches of this size, and it keeps ON CONFLICT.
            let mut inserted = 0;
            for chunk in samples.chunks(POSTGRES_CHUNK) {
                let mut deployment_ids = Vec::with_capacity(chunk.len());
                let mut node_ids = Vec::with_capacity(chunk.len());
                let mut sampled_at = Vec::with_capacity(chunk.len());
                let mut latency = Vec::with_capacity(chunk.len());
                let mut throughput = Vec::with_capacity(chunk.len());
                let mut error_rate = Vec::with_capacity(chunk.len());
                for sample in chunk {
                    deployment_ids.push(sample.deployment_id.get());
                    node_ids.push(sample.node_id.get());
                    sampled_at.push(to_micros(sample.timestamp));
                    latency.push(sample.metrics.latency_ms);
                    throughput.push(sample.metrics.throughput_gbps);
                    error_rate.push(sample.metrics.error_rate);
                }
                inserted += diesel::sql_query(
                    "INSERT INTO telemetry_samples \
                     (deployment_id, node_id, sampled_at, latency_ms, throughput_gbps, error_rate) \
                     SELECT * FROM unnest($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT DO NOTHING",
                )
                .bind::<Array<BigInt>, _>(&deployment_ids)
                .bind::<Array<BigInt>, _>(&node_ids)
                .bind::<Array<BigInt>, _>(&sampled_at)
                .bind::<Array<Double>, _>(&latency)
                .bind::<Array<Double>, _>(&throughput)
                .bind::<Array<Double>, _>(&error_rate)
                .execute(conn)?;
            }
            Ok(inserted)
        }
    })
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
        .order((telemetry_samples::sampled_at.desc(), telemetry_samples::node_id.desc()))
        .limit(query.limit)
        .select(SampleRow::as_select())
        .load(conn)?
        .into_iter()
        .map(TelemetrySample::try_from)
        .collect()
}

/// How many samples a deployment has (all time).
pub fn count(conn: &mut DbConnection, deployment: DeploymentId) -> Result<i64> {
    Ok(telemetry_samples::table
        .filter(telemetry_samples::deployment_id.eq(deployment.get()))
        .count()
        .get_result(conn)?)
}
