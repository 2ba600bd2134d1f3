//! The telemetry export's storage: the samples in the order an exporter sends them, and a
//! cursor per target with a lease, so that any number of workers export each stored sample at
//! least once, in order, one worker at a time per target.
//!
//! **The order.** An export position is a number every stored sample has and that only grows
//! in commit order, so that "everything up to position P was sent" stays true however the
//! writers interleave:
//! - On SQLite it is the sample's id. Write transactions run one at a time and reserve their ids
//!   inside (`id_counters`), so a sample committed later always has a larger id.
//! - On PostgreSQL ids cannot serve: they come from a sequence with `CACHE 1000`, so a
//!   connection may commit id 5 an hour after another committed id 1,500. The position is the
//!   id of the transaction that stored the sample (`txid`, stamped by the column's default), and
//!   an exporter reads only below the oldest transaction still running (the current
//!   snapshot's `xmin`): every transaction below it has ended, so no sample can appear there any
//!   more. A transaction's samples share a position and are read together, whole
//!   ([`read_after`]). Samples stored before migration `000018` are stamped 0 and are not
//!   exported.
//!
//! **The lease.** [`claim`] makes a worker the target's exporter until `now + lease` when the
//! target is free, its lease has expired, or the worker holds it already; [`advance`] moves the
//! cursor only for the holder. A worker that loses its lease (it stalled past it, another took
//! over) cannot move the cursor back or forward: what it sent meanwhile is sent again by the
//! new holder (at least once; receivers drop a sample they hold already).
//!
//! Architecture Invariant: the cursor only moves forward, and only for the lease holder.

use crate::connection::write_transaction;
use crate::schema::export_cursors;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use netorch_domain::{DeploymentId, Metrics, NodeId, SampleId, TelemetrySample, Timestamp};
use std::collections::HashMap;

/// Samples exported in the order of their positions, after a position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportBatch {
    /// The samples, whole transactions of them on PostgreSQL.
    pub samples: Vec<TelemetrySample>,
    /// The position of the last of them: the cursor once they are sent (the one asked after
    /// when there are none).
    pub position: i64,
    /// True when more samples wait past `position` (the batch stopped at its limit).
    pub more: bool,
    /// True when committed samples wait behind a transaction still running (PostgreSQL): they
    /// are past the horizon and will be read once it ends. A transaction left open (a session
    /// idle in transaction) holds the export back for as long: the export is not caught up.
    pub held_back: bool,
}

#[derive(QueryableByName)]
struct PositionedRow {
    #[diesel(sql_type = BigInt)]
    position: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
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

impl PositionedRow {
    fn sample(&self) -> Result<TelemetrySample> {
        Ok(TelemetrySample {
            id: SampleId(self.id),
            node_id: NodeId(self.node_id),
            deployment_id: DeploymentId(self.deployment_id),
            timestamp: from_micros("telemetry_samples", self.sampled_at)?,
            metrics: Metrics {
                latency_ms: self.latency_ms,
                throughput_gbps: self.throughput_gbps,
                error_rate: self.error_rate,
            },
        })
    }
}

const COLUMNS: &str = "id, deployment_id, node_id, sampled_at, latency_ms, throughput_gbps, \
                       error_rate";

/// The samples stored after `position`, about `limit` of them, in time order (batches follow
/// each other in position order). On PostgreSQL a transaction's samples are never split: the
/// batch ends with the whole transaction holding the `limit`-th sample (a transaction stores at
/// most a telemetry tick's page or one push, so a batch stays bounded), and holds nothing of a
/// transaction still running or of one behind it.
pub fn read_after(conn: &mut DbConnection, position: i64, limit: usize) -> Result<ExportBatch> {
    let limit = limit.max(1);
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let (rows, more, held_back): (Vec<PositionedRow>, bool, bool) = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => {
            let rows: Vec<PositionedRow> = diesel::sql_query(format!(
                "SELECT id AS position, {COLUMNS} FROM telemetry_samples \
                 WHERE id > ? ORDER BY id LIMIT ?"
            ))
            .bind::<BigInt, _>(position)
            .bind::<BigInt, _>(limit_sql)
            .load(inner)?;
            let more = rows.len() == limit;
            (rows, more, false)
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => {
            // Read first, in its own statement: every transaction below it had ended when it
            // was read, so the later statement's snapshot sees all their samples.
            let horizon: Horizon = diesel::sql_query(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon",
            )
            .get_result(inner)?;
            // The transaction holding the limit-th sample past the position (found along the
            // index, without reading the rows) is the batch's last: its samples are read whole,
            // and nothing is read twice or thrown away.
            let last: Option<Last> = diesel::sql_query(
                "SELECT txid AS last FROM telemetry_samples WHERE txid > $1 AND txid < $2 \
                 ORDER BY txid OFFSET $3 LIMIT 1",
            )
            .bind::<BigInt, _>(position)
            .bind::<BigInt, _>(horizon.horizon)
            .bind::<BigInt, _>(limit_sql - 1)
            .get_result(inner)
            .optional()?;
            let through = last.as_ref().map_or(horizon.horizon - 1, |l| l.last);
            let rows: Vec<PositionedRow> = diesel::sql_query(format!(
                "SELECT txid AS position, {COLUMNS} FROM telemetry_samples \
                 WHERE txid > $1 AND txid <= $2"
            ))
            .bind::<BigInt, _>(position)
            .bind::<BigInt, _>(through)
            .load(inner)?;
            let held_back = last.is_none()
                && diesel::select(diesel::dsl::exists(
                    crate::schema::telemetry_samples::table.filter(
                        diesel::dsl::sql::<diesel::sql_types::Bool>("txid >= ")
                            .bind::<BigInt, _>(horizon.horizon),
                    ),
                ))
                .get_result::<bool>(inner)?;
            (rows, last.is_some(), held_back)
        }
    };
    let position = rows.iter().map(|r| r.position).max().unwrap_or(position);
    let mut samples: Vec<TelemetrySample> = rows
        .iter()
        .map(PositionedRow::sample)
        .collect::<Result<_>>()?;
    // In time order (then node), so that a batch cut into requests sends each series' points
    // in time order across them.
    samples.sort_unstable_by_key(|s| (s.timestamp, s.node_id));
    Ok(ExportBatch {
        samples,
        position,
        more,
        held_back,
    })
}

#[cfg(feature = "postgres")]
#[derive(QueryableByName)]
struct Last {
    #[diesel(sql_type = BigInt)]
    last: i64,
}

#[cfg(feature = "postgres")]
#[derive(QueryableByName)]
struct Horizon {
    #[diesel(sql_type = BigInt)]
    horizon: i64,
}

/// A target's cursor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCursor {
    /// The target's URL.
    pub target: String,
    /// The last exported position.
    pub position: i64,
    /// The worker exporting to it, while its lease holds.
    pub holder: Option<String>,
    /// Until when the holder's lease holds.
    pub lease_until: Option<Timestamp>,
    /// When an exporter last found nothing left to send.
    pub caught_up_at: Option<Timestamp>,
    /// Samples sent, ever.
    pub exported: i64,
    /// The last failure, until a send succeeds.
    pub last_error: Option<String>,
    /// When it failed.
    pub failed_at: Option<Timestamp>,
    /// When the target was first exported to.
    pub created_at: Timestamp,
}

impl ExportCursor {
    /// How far behind the export is at `now`: everything stored (committed) before `now` minus
    /// this was sent. From the first claim when it never caught up.
    pub fn lag(&self, now: Timestamp) -> chrono::TimeDelta {
        (now - self.caught_up_at.unwrap_or(self.created_at)).max(chrono::TimeDelta::zero())
    }

    /// Whether `worker` holds the lease at `now`.
    pub fn held_by(&self, worker: &str, now: Timestamp) -> bool {
        self.holder.as_deref() == Some(worker) && self.lease_until.is_some_and(|until| until > now)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = export_cursors)]
struct CursorRow {
    target: String,
    position: i64,
    holder: Option<String>,
    lease_until: Option<i64>,
    caught_up_at: Option<i64>,
    exported: i64,
    last_error: Option<String>,
    failed_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<CursorRow> for ExportCursor {
    type Error = crate::StorageError;

    fn try_from(row: CursorRow) -> Result<Self> {
        let at = |micros: Option<i64>| micros.map(|m| from_micros("export_cursors", m)).transpose();
        Ok(ExportCursor {
            target: row.target,
            position: row.position,
            holder: row.holder,
            lease_until: at(row.lease_until)?,
            caught_up_at: at(row.caught_up_at)?,
            exported: row.exported,
            last_error: row.last_error,
            failed_at: at(row.failed_at)?,
            created_at: from_micros("export_cursors", row.created_at)?,
        })
    }
}

/// Makes `worker` the exporter of `target` until `now + lease` if the target is free, its lease
/// expired, or `worker` holds it already (the lease is renewed); creates the target's cursor at
/// the start on its first claim. Returns the cursor as it is after the claim: held by `worker`
/// or by another (see [`ExportCursor::held_by`]).
pub fn claim(
    conn: &mut DbConnection,
    target: &str,
    worker: &str,
    now: Timestamp,
    lease: chrono::TimeDelta,
) -> Result<ExportCursor> {
    let (now_us, until_us) = (to_micros(now), to_micros(now + lease));
    write_transaction(conn, |conn| {
        let values = (
            export_cursors::target.eq(target),
            export_cursors::position.eq(0_i64),
            export_cursors::exported.eq(0_i64),
            export_cursors::created_at.eq(now_us),
            export_cursors::updated_at.eq(now_us),
        );
        on_backend!(conn, |inner| diesel::insert_into(export_cursors::table)
            .values(values)
            .on_conflict_do_nothing()
            .execute(inner))?;
        diesel::update(
            export_cursors::table
                .filter(export_cursors::target.eq(target))
                .filter(
                    export_cursors::holder
                        .is_null()
                        .or(export_cursors::holder.eq(worker))
                        .or(export_cursors::lease_until.lt(now_us))
                        .or(export_cursors::lease_until.is_null()),
                ),
        )
        .set((
            export_cursors::holder.eq(worker),
            export_cursors::lease_until.eq(until_us),
        ))
        .execute(conn)?;
        cursor(conn, target)?.ok_or(crate::StorageError::InvalidInput(format!(
            "the export cursor of {target} vanished"
        )))
    })
}

/// Renews `worker`'s lease on `target` until `now + lease`, while it holds it (one statement:
/// what an exporter does after every request); false when it does not hold it any more.
pub fn renew(
    conn: &mut DbConnection,
    target: &str,
    worker: &str,
    now: Timestamp,
    lease: chrono::TimeDelta,
) -> Result<bool> {
    let changed = diesel::update(
        export_cursors::table
            .filter(export_cursors::target.eq(target))
            .filter(export_cursors::holder.eq(worker))
            .filter(export_cursors::lease_until.ge(to_micros(now))),
    )
    .set(export_cursors::lease_until.eq(to_micros(now + lease)))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The cursor of `target`, if it was ever exported to.
pub fn cursor(conn: &mut DbConnection, target: &str) -> Result<Option<ExportCursor>> {
    export_cursors::table
        .filter(export_cursors::target.eq(target))
        .select(CursorRow::as_select())
        .first(conn)
        .optional()?
        .map(ExportCursor::try_from)
        .transpose()
}

/// Every target's cursor, by URL.
pub fn cursors(conn: &mut DbConnection) -> Result<Vec<ExportCursor>> {
    export_cursors::table
        .order(export_cursors::target.asc())
        .select(CursorRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ExportCursor::try_from)
        .collect()
}

/// What a holder records after sending a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The batch's position (its last sample's).
    pub position: i64,
    /// Samples sent.
    pub samples: i64,
    /// When nothing was left to send after it: the start of the read that found it so.
    pub caught_up_at: Option<Timestamp>,
}

/// Moves `target`'s cursor to `sent.position` (never back), adds the samples sent, clears the
/// last failure and renews `worker`'s lease until `now + lease`; only while `worker` holds it.
/// False when it does not (another took over): nothing is changed, and the caller stops.
pub fn advance(
    conn: &mut DbConnection,
    target: &str,
    worker: &str,
    sent: Sent,
    now: Timestamp,
    lease: chrono::TimeDelta,
) -> Result<bool> {
    let now_us = to_micros(now);
    let held = export_cursors::table
        .filter(export_cursors::target.eq(target))
        .filter(export_cursors::holder.eq(worker))
        .filter(export_cursors::lease_until.ge(now_us));
    let caught_up = sent.caught_up_at.map(to_micros);
    let changed = diesel::update(held)
        .set((
            export_cursors::position.eq(diesel::dsl::sql::<BigInt>("CASE WHEN position > ")
                .bind::<BigInt, _>(sent.position)
                .sql(" THEN position ELSE ")
                .bind::<BigInt, _>(sent.position)
                .sql(" END")),
            export_cursors::exported.eq(export_cursors::exported + sent.samples),
            export_cursors::caught_up_at.eq(
                diesel::dsl::sql::<diesel::sql_types::Nullable<BigInt>>("COALESCE(")
                    .bind::<diesel::sql_types::Nullable<BigInt>, _>(caught_up)
                    .sql(", caught_up_at)"),
            ),
            export_cursors::last_error.eq(None::<String>),
            export_cursors::failed_at.eq(None::<i64>),
            export_cursors::lease_until.eq(to_micros(now + lease)),
            export_cursors::updated_at.eq(now_us),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Records that a send to `target` failed (`error`, at `now`) and renews `worker`'s lease, so
/// that it keeps the target while it retries; false when `worker` no longer holds it.
pub fn record_failure(
    conn: &mut DbConnection,
    target: &str,
    worker: &str,
    error: &str,
    now: Timestamp,
    lease: chrono::TimeDelta,
) -> Result<bool> {
    let now_us = to_micros(now);
    let changed = diesel::update(
        export_cursors::table
            .filter(export_cursors::target.eq(target))
            .filter(export_cursors::holder.eq(worker))
            .filter(export_cursors::lease_until.ge(now_us)),
    )
    .set((
        export_cursors::last_error.eq(netorch_domain::excerpt(error)),
        export_cursors::failed_at.eq(now_us),
        export_cursors::lease_until.eq(to_micros(now + lease)),
        export_cursors::updated_at.eq(now_us),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Gives up `worker`'s lease on `target` (a clean stop), so another worker takes over at once.
pub fn release(conn: &mut DbConnection, target: &str, worker: &str) -> Result<()> {
    diesel::update(
        export_cursors::table
            .filter(export_cursors::target.eq(target))
            .filter(export_cursors::holder.eq(worker)),
    )
    .set((
        export_cursors::holder.eq(None::<String>),
        export_cursors::lease_until.eq(None::<i64>),
    ))
    .execute(conn)?;
    Ok(())
}

/// The names series are labelled with: deployments' and nodes' by id, for the ids given that
/// still exist (a node removed by a scale-down, a deleted deployment, are missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Deployment names by id.
    pub deployments: HashMap<i64, String>,
    /// Node names by id.
    pub nodes: HashMap<i64, String>,
}

/// The names of `deployments` and `nodes` (see [`Names`]).
pub fn names(conn: &mut DbConnection, deployments: &[i64], nodes: &[i64]) -> Result<Names> {
    use crate::schema::{deployments as d, nodes as n};
    let mut names = Names::default();
    for chunk in deployments.chunks(10_000) {
        names.deployments.extend(
            d::table
                .filter(d::id.eq_any(chunk))
                .select((d::id, d::name))
                .load::<(i64, String)>(conn)?,
        );
    }
    for chunk in nodes.chunks(10_000) {
        names.nodes.extend(
            n::table
                .filter(n::id.eq_any(chunk))
                .select((n::id, n::name))
                .load::<(i64, String)>(conn)?,
        );
    }
    Ok(names)
}
