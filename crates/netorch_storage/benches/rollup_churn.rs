//! Rollup rows under the telemetry worker's pattern on PostgreSQL: 10,000 nodes, one sample
//! each per 5 s slot, 120 slots (ten minutes), each slot its own `insert_batch`, so every
//! slot rewrites each node's minute and hour rows. Run once with the rollup partitions'
//! `fillfactor` reset to 100 (the previous build) and once as migrated (50), in the same run;
//! prints the slot's median and p90 time, the share of HOT updates and the tables' sizes.
//!
//! `NETORCH_TEST_POSTGRES_URL=... cargo bench -p netorch_storage --bench rollup_churn`

use chrono::{DateTime, Duration};
use diesel::RunQueryDsl;
use netorch_domain::{Metrics, NewDeployment, NewSample, Timestamp};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{deployments, nodes, telemetry};
use netorch_testkit::TestDatabase;
use std::time::Instant;

const NODES: u32 = 10_000;
const SLOTS: i64 = 120;
const ROLLUP_DEFAULTS: [&str; 4] = [
    "telemetry_minutes_default",
    "telemetry_hours_default",
    "fleet_telemetry_minutes_default",
    "fleet_telemetry_hours_default",
];

fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

#[derive(diesel::QueryableByName)]
struct TableStats {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    updates: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hot: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

fn run(label: &str, fillfactor: Option<u32>) {
    let t = TestDatabase::postgres().expect("NETORCH_TEST_POSTGRES_URL");
    let mut conn = t.db.get().expect("connection");
    if fillfactor.is_none() {
        for table in ROLLUP_DEFAULTS {
            diesel::sql_query(format!("ALTER TABLE {table} RESET (fillfactor)"))
                .execute(&mut conn)
                .expect("reset");
        }
    }
    let new = NewDeployment {
        name: "churn".into(),
        description: None,
        target_node_count: NODES,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    let deployment = deployments::create(&mut conn, &new, None, epoch()).expect("create");
    let fleet = nodes::list(&mut conn, deployment.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    let mut times = Vec::new();
    for slot in 0..SLOTS {
        let at = epoch() + Duration::seconds(5 * slot);
        let samples: Vec<NewSample> = fleet
            .iter()
            .map(|node| NewSample {
                node_id: node.id,
                deployment_id: node.deployment_id,
                timestamp: at,
                metrics: Metrics {
                    latency_ms: 10.0 + (node.id.get() % 10) as f64 + (slot % 7) as f64 * 0.1,
                    throughput_gbps: 9.5,
                    error_rate: 0.1,
                },
            })
            .collect();
        let started = Instant::now();
        telemetry::insert_batch(&mut conn, &samples).expect("insert");
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    // The statistics collector reports asynchronously: give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let stats: Vec<TableStats> = diesel::sql_query(
        "SELECT relname::text AS name, n_tup_upd AS updates, n_tup_hot_upd AS hot, \
         pg_total_relation_size(relid) AS bytes FROM pg_stat_user_tables \
         WHERE relname IN ('telemetry_minutes_default', 'telemetry_hours_default') \
         ORDER BY relname",
    )
    .load(&mut conn)
    .expect("stats");
    let tables: Vec<String> = stats
        .iter()
        .map(|s| {
            format!(
                "{} {:.1} MiB, {:.0} % of {} updates HOT",
                s.name.trim_end_matches("_default"),
                s.bytes as f64 / 1048576.0,
                100.0 * s.hot as f64 / s.updates.max(1) as f64,
                s.updates
            )
        })
        .collect();
    println!(
        "{label:<32} slot of {NODES} samples: median {:6.1} ms, p90 {:6.1} ms; {}",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        tables.join("; ")
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if TestDatabase::postgres().is_none() {
        println!("postgres skipped: set NETORCH_TEST_POSTGRES_URL to measure it");
        return;
    }
    for _ in 0..2 {
        run("fillfactor 100 (previous build)", None);
        run("fillfactor 50", Some(50));
    }
}
