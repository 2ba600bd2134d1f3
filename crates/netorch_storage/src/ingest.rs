//! What the collectors' protocols (Prometheus remote write, InfluxDB line protocol, OTLP) store:
//! their labels resolved to deployments and nodes, and samples assembled from metrics that may
//! arrive in different requests. A reading whose three metrics are all in hand is a sample at
//! once; one that lacks some waits in `telemetry_partials` until the request that brings the
//! rest, and the workers delete what waited too long ([`expire`]).

use crate::schema::{deployments, nodes, telemetry_partials, telemetry_samples};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError, write_transaction};
use diesel::prelude::*;
use netorch_domain::{DeploymentId, Metrics, NewSample, NodeId, Timestamp};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a deployment label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentMatch {
    /// One deployment.
    One(DeploymentId),
    /// Several deployments share the name: an id is needed.
    Ambiguous,
}

/// The deployments `labels` name, each an id (digits) or a name; a label that names none is
/// absent from the map.
pub fn resolve_deployments(
    conn: &mut DbConnection,
    labels: &[&str],
) -> Result<HashMap<String, DeploymentMatch>> {
    let (ids, names) = ids_and_texts(labels);
    let mut found = HashMap::with_capacity(ids.len() + names.len());
    for chunk in ids.chunks(10_000) {
        let rows: Vec<i64> = deployments::table
            .filter(deployments::id.eq_any(chunk))
            .select(deployments::id)
            .load(conn)?;
        found.extend(
            rows.into_iter()
                .map(|id| (id.to_string(), DeploymentMatch::One(DeploymentId(id)))),
        );
    }
    for chunk in names.chunks(10_000) {
        let rows: Vec<(i64, String)> = deployments::table
            .filter(deployments::name.eq_any(chunk))
            .select((deployments::id, deployments::name))
            .load(conn)?;
        for (id, name) in rows {
            found
                .entry(name)
                .and_modify(|m| *m = DeploymentMatch::Ambiguous)
                .or_insert(DeploymentMatch::One(DeploymentId(id)));
        }
    }
    Ok(found)
}

/// `labels`, each once: the ids among them, and the others (names, hostnames).
fn ids_and_texts<'a>(labels: &[&'a str]) -> (Vec<i64>, Vec<&'a str>) {
    let mut wanted: Vec<&str> = labels.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let ids = wanted.iter().filter_map(|l| id_in(l)).collect();
    wanted.retain(|l| id_in(l).is_none());
    (ids, wanted)
}

/// A label's id: digits only, without a sign or leading zero (`007` is a name).
fn id_in(label: &str) -> Option<i64> {
    let plain = !label.is_empty()
        && label.bytes().all(|b| b.is_ascii_digit())
        && !(label.len() > 1 && label.starts_with('0'));
    plain.then(|| label.parse().ok()).flatten()
}

/// The nodes of `deployment` that `labels` name, each an id (digits), a name (`node-007`) or a
/// hostname; a label that names none is absent from the map. A name wins over another node's
/// hostname.
pub fn resolve_nodes(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    labels: &[&str],
) -> Result<HashMap<String, NodeId>> {
    let (ids, texts) = ids_and_texts(labels);
    let mut found = HashMap::with_capacity(ids.len() + texts.len());
    for chunk in ids.chunks(10_000) {
        let rows: Vec<i64> = nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::id.eq_any(chunk))
            .select(nodes::id)
            .load(conn)?;
        found.extend(rows.into_iter().map(|id| (id.to_string(), NodeId(id))));
    }
    for chunk in texts.chunks(10_000) {
        // Hostnames need not be unique: of the nodes sharing one, the oldest (lowest id) is
        // named by it, whatever order the rows come in (inserted last, it wins).
        let by_hostname: Vec<(i64, Option<String>)> = nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::hostname.eq_any(chunk))
            .order(nodes::id.desc())
            .select((nodes::id, nodes::hostname))
            .load(conn)?;
        found.extend(
            by_hostname
                .into_iter()
                .filter_map(|(id, host)| host.map(|host| (host, NodeId(id)))),
        );
        let by_name: Vec<(i64, String)> = nodes::table
            .filter(nodes::deployment_id.eq(deployment.get()))
            .filter(nodes::name.eq_any(chunk))
            .select((nodes::id, nodes::name))
            .load(conn)?;
        found.extend(by_name.into_iter().map(|(id, name)| (name, NodeId(id))));
    }
    Ok(found)
}

/// The metrics of one node's reading that one request brought; `None` for those it did not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartialSample {
    /// The node.
    pub node_id: NodeId,
    /// When it was read.
    pub timestamp: Timestamp,
    /// Milliseconds.
    pub latency_ms: Option<f64>,
    /// Gb/s.
    pub throughput_gbps: Option<f64>,
    /// Percent.
    pub error_rate: Option<f64>,
}

impl PartialSample {
    /// The sample, once every metric is in.
    pub fn complete(&self, deployment: DeploymentId) -> Option<NewSample> {
        Some(NewSample {
            node_id: self.node_id,
            deployment_id: deployment,
            timestamp: self.timestamp,
            metrics: Metrics {
                latency_ms: self.latency_ms?,
                throughput_gbps: self.throughput_gbps?,
                error_rate: self.error_rate?,
            },
        })
    }
}

/// What [`store`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// Samples new in `telemetry_samples` (complete ones, and waiting ones this completed).
    pub new_samples: usize,
    /// Readings that were already stored whole (a sender's retry): nothing to do.
    pub already_stored: usize,
    /// Readings still waiting for some metric after this request.
    pub waiting: usize,
    /// Nodes not (or no longer) of the deployment: nothing of theirs was stored.
    pub strangers: HashSet<NodeId>,
}

// A missing metric is NULL, not DEFAULT: SQLite's multi-row insert has no DEFAULT.
#[derive(Insertable)]
#[diesel(table_name = telemetry_partials, treat_none_as_default_value = false)]
struct NewPartialRow<'a> {
    node_id: i64,
    sampled_at: i64,
    deployment_id: i64,
    latency_ms: Option<f64>,
    throughput_gbps: Option<f64>,
    error_rate: Option<f64>,
    protocol: &'a str,
    received_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = telemetry_partials)]
struct PartialRow {
    node_id: i64,
    sampled_at: i64,
    latency_ms: Option<f64>,
    throughput_gbps: Option<f64>,
    error_rate: Option<f64>,
}

/// Rows a statement of parts carries: 8 columns each, well under SQLite's bound-parameter limit.
const PARTS_PER_STATEMENT: usize = 2_000;

/// Stores for `deployment`, in one write transaction under the deployment's lock (a delete
/// cannot commit in between): the `complete` samples, then the `parts`, each merged into the
/// reading waiting for it (a metric already there is kept, as a stored sample is), and the
/// readings that now have every metric moved into samples. Parts of a reading already stored
/// whole are left alone. Nodes not of the deployment are left out, named in
/// [`Stored::strangers`]; [`StorageError::DeploymentNotFound`] when it does not exist.
pub fn store(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    complete: &[NewSample],
    parts: &[PartialSample],
    protocol: &str,
    now: Timestamp,
) -> Result<Stored> {
    write_transaction(conn, |conn| {
        let lock = crate::deployment_rows::DeploymentLock::AddRows;
        if crate::deployment_rows::lock(conn, &[deployment], lock)?.is_empty() {
            return Err(StorageError::DeploymentNotFound);
        }
        let ids: Vec<NodeId> = complete
            .iter()
            .map(|s| s.node_id)
            .chain(parts.iter().map(|p| p.node_id))
            .collect();
        let known = crate::nodes::ids_in_deployment(conn, deployment, &ids)?;
        let mut stored = Stored {
            strangers: ids.into_iter().filter(|id| !known.contains(id)).collect(),
            ..Stored::default()
        };
        let complete: Vec<NewSample> = complete
            .iter()
            .filter(|s| known.contains(&s.node_id) && s.deployment_id == deployment)
            .copied()
            .collect();
        stored.new_samples = crate::telemetry::insert_rows(conn, &complete)?;
        // A reading that came whole ends any part of it still waiting (sent before, in pieces).
        delete_readings(
            conn,
            deployment,
            complete
                .iter()
                .map(|s| (s.node_id.get(), to_micros(s.timestamp))),
        )?;
        let parts: Vec<&PartialSample> = parts
            .iter()
            .filter(|p| known.contains(&p.node_id))
            .collect();
        let whole = stored_readings(conn, deployment, &parts)?;
        let parts: Vec<&PartialSample> = parts
            .into_iter()
            .filter(|p| !whole.contains(&(p.node_id.get(), to_micros(p.timestamp))))
            .collect();
        stored.already_stored = whole.len();
        let mut completed = Vec::new();
        for chunk in parts.chunks(PARTS_PER_STATEMENT) {
            let rows: Vec<NewPartialRow> = chunk
                .iter()
                .map(|p| NewPartialRow {
                    node_id: p.node_id.get(),
                    sampled_at: to_micros(p.timestamp),
                    deployment_id: deployment.get(),
                    latency_ms: p.latency_ms,
                    throughput_gbps: p.throughput_gbps,
                    error_rate: p.error_rate,
                    protocol,
                    received_at: to_micros(now),
                })
                .collect();
            let merged = merge_parts(conn, &rows)?;
            for row in merged {
                let part = PartialSample {
                    node_id: NodeId(row.node_id),
                    timestamp: from_micros("telemetry_partials", row.sampled_at)?,
                    latency_ms: row.latency_ms,
                    throughput_gbps: row.throughput_gbps,
                    error_rate: row.error_rate,
                };
                match part.complete(deployment) {
                    Some(sample) => completed.push(sample),
                    None => stored.waiting += 1,
                }
            }
        }
        stored.new_samples += crate::telemetry::insert_rows(conn, &completed)?;
        delete_readings(
            conn,
            deployment,
            completed
                .iter()
                .map(|s| (s.node_id.get(), to_micros(s.timestamp))),
        )?;
        Ok(stored)
    })
}

/// Upserts `rows` into the waiting readings, a metric already there kept; every merged row as
/// it now is.
fn merge_parts(conn: &mut DbConnection, rows: &[NewPartialRow]) -> Result<Vec<PartialRow>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Double, Nullable};
    let keep = |column: &str| {
        sql::<Nullable<Double>>(&format!(
            "COALESCE(telemetry_partials.{column}, excluded.{column})"
        ))
    };
    let merged: std::result::Result<Vec<PartialRow>, diesel::result::Error> =
        on_backend!(conn, |inner| {
            diesel::insert_into(telemetry_partials::table)
                .values(rows)
                .on_conflict((telemetry_partials::node_id, telemetry_partials::sampled_at))
                .do_update()
                .set((
                    telemetry_partials::latency_ms.eq(keep("latency_ms")),
                    telemetry_partials::throughput_gbps.eq(keep("throughput_gbps")),
                    telemetry_partials::error_rate.eq(keep("error_rate")),
                ))
                .returning(PartialRow::as_returning())
                .get_results(inner)
        });
    Ok(merged?)
}

/// The readings of `parts` (node, microseconds) already stored whole, all of `deployment`'s
/// nodes. Looked up by the samples' key (deployment, instant, node), a few hundred instants and
/// a thousand nodes a statement: a scrape's batch has a few instants and is one statement; a
/// backfill's (vmagent or Prometheus catching up after an outage: hundreds of thousands of
/// instants) a statement per 500 of them, where a statement per instant took minutes.
fn stored_readings(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    parts: &[&PartialSample],
) -> Result<HashSet<(i64, i64)>> {
    let keys: HashSet<(i64, i64)> = parts
        .iter()
        .map(|p| (p.node_id.get(), to_micros(p.timestamp)))
        .collect();
    let mut instants: Vec<i64> = keys.iter().map(|(_, at)| *at).collect();
    instants.sort_unstable();
    instants.dedup();
    let mut nodes: Vec<i64> = keys.iter().map(|(node, _)| *node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut found = HashSet::new();
    for at in instants.chunks(INSTANTS_A_STATEMENT) {
        for of in nodes.chunks(NODES_A_STATEMENT) {
            let rows: Vec<(i64, i64)> = telemetry_samples::table
                .filter(telemetry_samples::deployment_id.eq(deployment.get()))
                .filter(telemetry_samples::sampled_at.eq_any(at))
                .filter(telemetry_samples::node_id.eq_any(of))
                .select((telemetry_samples::node_id, telemetry_samples::sampled_at))
                .load(conn)?;
            found.extend(rows.into_iter().filter(|key| keys.contains(key)));
        }
    }
    Ok(found)
}

/// Instants and nodes a lookup of stored readings names (well under SQLite's 32,766 bound
/// parameters together).
const INSTANTS_A_STATEMENT: usize = 500;
const NODES_A_STATEMENT: usize = 1_000;

/// Deletes the waiting readings of `deployment` at `keys` (node, microseconds), exactly those:
/// the deployment's waiting readings over the keys' span are read first (a reading waits until
/// its last metric comes, within seconds from a sender that splits its series, or at most
/// `WAIT_FOR_METRICS`: there are few, and usually none), and only the ones the keys name are
/// deleted. A waiting reading is always of its node's deployment (rows are written with it, and
/// a node never moves), so reading by deployment misses none.
fn delete_readings(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    keys: impl IntoIterator<Item = (i64, i64)>,
) -> Result<()> {
    let keys: HashSet<(i64, i64)> = keys.into_iter().collect();
    let (Some(first), Some(last)) = (
        keys.iter().map(|(_, at)| *at).min(),
        keys.iter().map(|(_, at)| *at).max(),
    ) else {
        return Ok(());
    };
    let waiting: Vec<(i64, i64)> = telemetry_partials::table
        .filter(telemetry_partials::deployment_id.eq(deployment.get()))
        .filter(telemetry_partials::sampled_at.between(first, last))
        .select((telemetry_partials::node_id, telemetry_partials::sampled_at))
        .load(conn)?;
    for (at, nodes) in by_time(waiting.into_iter().filter(|key| keys.contains(key))) {
        for chunk in nodes.chunks(10_000) {
            diesel::delete(
                telemetry_partials::table
                    .filter(telemetry_partials::sampled_at.eq(at))
                    .filter(telemetry_partials::node_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
    }
    Ok(())
}

/// `keys` (node, time) grouped by time: a request's readings share a few timestamps (a scrape's
/// or a flush's), so a statement per time with its nodes is exact and short.
fn by_time(keys: impl IntoIterator<Item = (i64, i64)>) -> BTreeMap<i64, Vec<i64>> {
    let mut grouped: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (node, at) in keys {
        grouped.entry(at).or_default().push(node);
    }
    for nodes in grouped.values_mut() {
        nodes.sort_unstable();
        nodes.dedup();
    }
    grouped
}

/// Deletes the readings that have waited since before `received_before` for a metric that
/// never came; how many, by the protocol that brought them.
pub fn expire(
    conn: &mut DbConnection,
    received_before: Timestamp,
) -> Result<BTreeMap<String, u64>> {
    let cutoff = to_micros(received_before);
    write_transaction(conn, |conn| {
        let counts: Vec<(String, i64)> = telemetry_partials::table
            .filter(telemetry_partials::received_at.lt(cutoff))
            .group_by(telemetry_partials::protocol)
            .select((telemetry_partials::protocol, diesel::dsl::count_star()))
            .load(conn)?;
        if counts.is_empty() {
            return Ok(BTreeMap::new());
        }
        diesel::delete(
            telemetry_partials::table.filter(telemetry_partials::received_at.lt(cutoff)),
        )
        .execute(conn)?;
        Ok(counts
            .into_iter()
            .map(|(protocol, n)| (protocol, u64::try_from(n).unwrap_or(0)))
            .collect())
    })
}

/// How many readings are waiting for `deployment`, or for every deployment.
pub fn waiting(conn: &mut DbConnection, deployment: Option<DeploymentId>) -> Result<u64> {
    let n: i64 = match deployment {
        Some(deployment) => telemetry_partials::table
            .filter(telemetry_partials::deployment_id.eq(deployment.get()))
            .count()
            .get_result(conn)?,
        None => telemetry_partials::table.count().get_result(conn)?,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deletes a deployment's waiting readings (with the deployment, in its transaction).
pub(crate) fn delete_deployment(conn: &mut DbConnection, id: DeploymentId) -> Result<()> {
    diesel::delete(
        telemetry_partials::table.filter(telemetry_partials::deployment_id.eq(id.get())),
    )
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_digits() {
        assert_eq!(id_in("42"), Some(42));
        assert_eq!(id_in("0"), Some(0));
        for text in [
            "",
            "007",
            "-1",
            "+1",
            "1e3",
            "node-007",
            "99999999999999999999",
        ] {
            assert_eq!(id_in(text), None, "{text}");
        }
    }

    #[test]
    fn readings_group_by_time_with_each_node_once() {
        let grouped = by_time([(3, 10), (1, 10), (3, 10), (2, 20)]);
        assert_eq!(
            grouped.into_iter().collect::<Vec<_>>(),
            [(10, vec![1, 3]), (20, vec![2])]
        );
    }
}
