//! Telemetry ingest throughput: batched insert against one transaction per sample, on SQLite
//! (a file) and on PostgreSQL (when `NETORCH_TEST_POSTGRES_URL` is set).
//!
//! `cargo bench -p netorch_storage --bench ingest` prints samples/s for each.

use chrono::{DateTime, Duration};
use netorch_domain::{Metrics, NewDeployment, NewSample, Timestamp};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::retention::Retention;
use netorch_storage::{Database, deployments, nodes, partitions, telemetry};
use netorch_testkit::TestDatabase;
use std::time::Instant;

const NODES: u32 = 1_000;
const BATCH: usize = 100_000;
const ROUNDS: usize = 9;
const BASELINE_SAMPLES: usize = 2_000;

fn epoch() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

/// `BATCH` samples: every node, `BATCH / NODES` consecutive 5 s slots from `first_slot`.
fn batch(db: &Database, first_slot: i64) -> Vec<NewSample> {
    let mut conn = db.get().expect("connection");
    let (d, _) = deployments::list(&mut conn, 0, 1).expect("list").remove(0);
    let fleet = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    let slots = BATCH as i64 / i64::from(NODES);
    (first_slot..first_slot + slots)
        .flat_map(|slot| {
            fleet.iter().map(move |node| NewSample {
                node_id: node.id,
                deployment_id: node.deployment_id,
                timestamp: epoch() + Duration::seconds(5 * slot),
                metrics: Metrics {
                    latency_ms: 10.0 + (node.id.get() % 10) as f64,
                    throughput_gbps: 9.5,
                    error_rate: 0.1,
                },
            })
        })
        .collect()
}

fn run(label: &str, test_db: &TestDatabase) {
    let db = &test_db.db;
    let mut conn = db.get().expect("connection");
    let new = NewDeployment {
        name: "bench".into(),
        description: None,
        target_node_count: NODES,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    deployments::create(&mut conn, &new, None, epoch()).expect("create");
    // As a telemetry worker would have: PostgreSQL's time partitions for now and ahead.
    partitions::maintain(&mut conn, &Retention::default(), epoch()).expect("partitions");
    drop(conn);

    let slots_per_batch = BATCH as i64 / i64::from(NODES);
    let mut rates = Vec::new();
    for round in 0..ROUNDS {
        let samples = batch(db, round as i64 * slots_per_batch);
        let mut conn = db.get().expect("connection");
        let started = Instant::now();
        let inserted = telemetry::insert_batch(&mut conn, &samples).expect("insert");
        let elapsed = started.elapsed();
        assert_eq!(inserted, samples.len());
        rates.push(samples.len() as f64 / elapsed.as_secs_f64());
    }
    eprintln!(
        "{label} rounds: {:?}",
        rates
            .iter()
            .map(|r| (*r / 1000.0) as u64)
            .collect::<Vec<_>>()
    );
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];

    // Baseline: what a naive collector does, one transaction per sample.
    let samples = batch(db, ROUNDS as i64 * slots_per_batch);
    let mut conn = db.get().expect("connection");
    let started = Instant::now();
    for sample in &samples[..BASELINE_SAMPLES] {
        telemetry::insert_batch(&mut conn, std::slice::from_ref(sample)).expect("insert one");
    }
    let baseline = BASELINE_SAMPLES as f64 / started.elapsed().as_secs_f64();

    println!(
        "{label:<10} batched ({BATCH} samples/batch, median of {ROUNDS}): {median:>10.0} samples/s   \
         one transaction per sample: {baseline:>8.0} samples/s   ({:.0}x)",
        median / baseline
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    run("sqlite", &TestDatabase::sqlite());
    match TestDatabase::postgres() {
        Some(db) => run("postgres", &db),
        None => println!("postgres   skipped: set NETORCH_TEST_POSTGRES_URL to measure it"),
    }
}
