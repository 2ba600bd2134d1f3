//! Worker tick costs at fleet scale: a lifecycle tick over 100,000 in-flight nodes and a
//! telemetry tick over 100,000 running nodes, on SQLite (a file) and on PostgreSQL (when
//! `NETORCH_TEST_POSTGRES_URL` is set). `cargo bench -p netorch_workers --bench ticks`.

use chrono::{DateTime, Duration};
use netorch_domain::{NewDeployment, Timestamp};
use netorch_simulator::SimulatedHardware;
use netorch_storage::{DbConnection, deployments};
use netorch_testkit::TestDatabase;
use netorch_workers::{lifecycle_tick, telemetry_tick};
use std::time::Instant;

const DEPLOYMENTS: u32 = 10;
const NODES_PER_DEPLOYMENT: u32 = 10_000;
const INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn lifecycle(conn: &mut DbConnection, hw: &SimulatedHardware, at_seconds: i64, label: &str) {
    let started = Instant::now();
    let tick = lifecycle_tick(conn, hw, t0() + Duration::seconds(at_seconds)).expect("tick");
    println!(
        "  lifecycle tick at +{at_seconds:>2} s ({label}): {:>7.1} ms   read {:>6}, moved {:>6}",
        ms(started),
        tick.examined,
        tick.applied
    );
}

fn run(label: &str, test_db: &TestDatabase) {
    let total = DEPLOYMENTS * NODES_PER_DEPLOYMENT;
    println!("{label}: {total} nodes");
    let mut conn = test_db.db.get().expect("connection");
    for i in 0..DEPLOYMENTS {
        let new = NewDeployment {
            name: format!("bench-{i}"),
            description: None,
            target_node_count: NODES_PER_DEPLOYMENT,
        };
        deployments::create(&mut conn, &new, t0()).expect("create");
    }
    let hw = SimulatedHardware::default();
    lifecycle(&mut conn, &hw, 0, "all pending, every node moves");
    lifecycle(&mut conn, &hw, 2, "all provisioning, none can be done");
    lifecycle(&mut conn, &hw, 4, "provisioning, 40 % done");
    lifecycle(&mut conn, &hw, 8, "provisioning, the rest done");
    for second in (10..=30).step_by(2) {
        lifecycle_tick(&mut conn, &hw, t0() + Duration::seconds(second)).expect("tick");
    }
    for round in 0..3 {
        let now = t0() + Duration::seconds(40 + 5 * round);
        let started = Instant::now();
        let tick = telemetry_tick(&test_db.db, &hw, INTERVAL, now).expect("tick");
        let elapsed = ms(started);
        println!(
            "  telemetry tick {round}: {elapsed:>7.1} ms   {} running nodes, {} samples ({:.0} samples/s)",
            tick.nodes,
            tick.written,
            tick.written as f64 / (elapsed / 1e3)
        );
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    run("sqlite", &TestDatabase::sqlite());
    match TestDatabase::postgres() {
        Some(db) => run("postgres", &db),
        None => println!("postgres: skipped, set NETORCH_TEST_POSTGRES_URL to measure it"),
    }
}
