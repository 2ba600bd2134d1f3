//! What a telemetry tick costs SQLite itself (issue 10's million-node tick): for a fleet of
//! `NETORCH_BENCH_NODES` running nodes (default 950,000, the million-node run's), three slots
//! five seconds apart in one minute, each stored in pages of 25,000 samples as the worker
//! stores them (one write transaction per page). Run twice on fresh files:
//!
//! - through the product's path (`telemetry::insert_slot_page`: samples and rollups bound from
//!   Rust);
//! - as bare SQL from a staging table, each page one `INSERT` of the samples and one upsert of the
//!   minute and of the hour rows with the same merge: SQLite's own work, no binding, no Rust.
//!
//! The first slot creates each node's minute and hour rows; the next two rewrite them, which is
//! the tick at full strength. `cargo bench -p netorch_storage --bench sqlite_tick_floor`.

use chrono::{DateTime, Duration};
use diesel::RunQueryDsl;
use netorch_domain::{Metrics, NewDeployment, NewSample, NodeId, Timestamp};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{DbConnection, deployments, nodes, telemetry};
use netorch_testkit::TestDatabase;
use std::time::Instant;

const PAGE: i64 = 25_000;
const SLOTS: i64 = 3;

fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn metrics(node: i64) -> Metrics {
    Metrics {
        latency_ms: 10.0 + (node % 7) as f64 * 0.1,
        throughput_gbps: 9.0 - (node % 5) as f64 * 0.1,
        error_rate: 0.1,
    }
}

/// Each slot through the product's path; the seconds of each slot.
fn product(nodes: i64) -> Vec<f64> {
    let t = TestDatabase::sqlite();
    let mut conn = t.db.get().expect("connection");
    // Samples of a deployment that does not exist are not stored.
    let new = NewDeployment {
        name: "floor".into(),
        description: None,
        target_node_count: u32::try_from(nodes).expect("nodes fit a u32"),
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    let deployment = deployments::create(&mut conn, &new, None, epoch()).expect("create");
    let ids: Vec<NodeId> = nodes::list(&mut conn, deployment.id, &NodeFilter::default())
        .expect("nodes")
        .nodes
        .into_iter()
        .map(|node| node.id)
        .collect();
    (0..SLOTS)
        .map(|slot| {
            let at = epoch() + Duration::seconds(5 * slot);
            let started = Instant::now();
            for page in ids.chunks(PAGE as usize) {
                let page: Vec<NewSample> = page
                    .iter()
                    .map(|node| NewSample {
                        node_id: *node,
                        deployment_id: deployment.id,
                        timestamp: at,
                        metrics: metrics(node.get()),
                    })
                    .collect();
                telemetry::insert_slot_page(&mut conn, &page).expect("page");
            }
            started.elapsed().as_secs_f64()
        })
        .collect()
}

/// The `DO UPDATE` of a rollup upsert: Chan's merge of count, mean and M2, and min and max.
fn merge(table: &str) -> String {
    let mut set = format!(
        " DO UPDATE SET sample_count = {table}.sample_count + excluded.sample_count, \
         newest = max({table}.newest, excluded.newest)"
    );
    for m in ["latency", "throughput", "error"] {
        let n = format!("({table}.sample_count + excluded.sample_count)");
        let d = format!("(excluded.{m}_mean - {table}.{m}_mean)");
        set += &format!(
            ", {m}_mean = {table}.{m}_mean + {d} * excluded.sample_count / {n}, \
             {m}_m2 = {table}.{m}_m2 + excluded.{m}_m2 + {d} * {d} * {table}.sample_count \
             * excluded.sample_count / {n}, \
             {m}_min = min({table}.{m}_min, excluded.{m}_min), \
             {m}_max = max({table}.{m}_max, excluded.{m}_max)"
        );
    }
    set
}

/// Each slot as bare SQL from a staging table; per slot the seconds spent storing samples,
/// upserting minute rows, upserting hour rows and committing.
fn bare(nodes: i64) -> Vec<[f64; 4]> {
    let t = TestDatabase::sqlite();
    let mut pooled = t.db.get().expect("connection");
    let DbConnection::Sqlite(conn) = &mut *pooled else {
        panic!("a SQLite test database");
    };
    let run = |conn: &mut diesel::SqliteConnection, sql: &str| {
        diesel::sql_query(sql).execute(conn).expect(sql);
    };
    run(
        conn,
        "CREATE TEMP TABLE staging (node INTEGER PRIMARY KEY, lat REAL, thr REAL, err REAL)",
    );
    run(
        conn,
        &format!(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {nodes}) \
             INSERT INTO staging SELECT x, 10.0 + (x % 7) * 0.1, 9.0 - (x % 5) * 0.1, 0.1 FROM n"
        ),
    );
    let columns = "(deployment_id, bucket, node_id, sample_count, newest, latency_mean, \
         latency_m2, latency_min, latency_max, throughput_mean, throughput_m2, throughput_min, \
         throughput_max, error_mean, error_m2, error_min, error_max)";
    (0..SLOTS)
        .map(|slot| {
            let at = (epoch() + Duration::seconds(5 * slot)).timestamp_micros();
            let (minute, hour) = (at - at % 60_000_000, at - at % 3_600_000_000);
            let mut spent = [0.0; 4];
            for first in (1..=nodes).step_by(PAGE as usize) {
                let page = format!("WHERE node >= {first} AND node < {}", first + PAGE);
                run(conn, "BEGIN IMMEDIATE");
                let statements = [
                    format!(
                        "INSERT INTO telemetry_samples SELECT 1, {at}, node, \
                         {slot} * 10000000 + node, lat, thr, err FROM staging {page}"
                    ),
                    format!(
                        "INSERT INTO telemetry_minutes {columns} SELECT 1, {minute}, node, 1, \
                         {at}, lat, 0, lat, lat, thr, 0, thr, thr, err, 0, err, err FROM staging \
                         {page} ON CONFLICT (deployment_id, bucket, node_id){}",
                        merge("telemetry_minutes")
                    ),
                    format!(
                        "INSERT INTO telemetry_hours {columns} SELECT 1, {hour}, node, 1, \
                         {at}, lat, 0, lat, lat, thr, 0, thr, thr, err, 0, err, err FROM staging \
                         {page} ON CONFLICT (deployment_id, bucket, node_id){}",
                        merge("telemetry_hours")
                    ),
                    "COMMIT".to_string(),
                ];
                for (i, sql) in statements.iter().enumerate() {
                    let started = Instant::now();
                    run(conn, sql);
                    spent[i] += started.elapsed().as_secs_f64();
                }
            }
            spent
        })
        .collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let nodes: i64 = std::env::var("NETORCH_BENCH_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(950_000);
    println!("{nodes} running nodes, pages of {PAGE}, slots 5 s apart in one minute");
    for (slot, seconds) in product(nodes).into_iter().enumerate() {
        println!("  product path, slot {slot}: {seconds:.2} s");
    }
    for (slot, [samples, minutes, hours, commit]) in bare(nodes).into_iter().enumerate() {
        println!(
            "  bare SQL,     slot {slot}: {:.2} s (samples {samples:.2}, minute rows {minutes:.2}, \
             hour rows {hours:.2}, commits {commit:.2})",
            samples + minutes + hours + commit
        );
    }
}
