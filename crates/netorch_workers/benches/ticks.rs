//! Worker tick costs at fleet scale: a lifecycle tick over 100,000 in-flight nodes and a
//! telemetry tick over 100,000 running nodes, on SQLite (a file) and on PostgreSQL (when
//! `NETORCH_TEST_POSTGRES_URL` is set); then the latency of telemetry pushes made while a
//! 100,000-node rollout runs, with the tick's write transactions in batches of
//! `LIFECYCLE_BATCH` nodes and, as before, one transaction per tick.
//! `cargo bench -p netorch_workers --bench ticks`.

use chrono::{DateTime, Duration};
use netorch_domain::{Metrics, NewDeployment, NewSample, Timestamp};
use netorch_simulator::SimulatedHardware;
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{DbConnection, deployments, nodes, telemetry};
use netorch_testkit::TestDatabase;
use netorch_workers::{
    LIFECYCLE_BATCH, MAX_NODES_PER_TICK, TickLimits, lifecycle_tick, lifecycle_tick_with,
    telemetry_tick,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const DEPLOYMENTS: u32 = 10;
const NODES_PER_DEPLOYMENT: u32 = 10_000;
const INTERVAL: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

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
            rollout: Default::default(),
            telemetry: Default::default(),
            alert_rules: Default::default(),
            provisioning: Default::default(),
            remediation: None,
        };
        deployments::create(&mut conn, &new, None, t0()).expect("create");
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

/// A 100,000-node rollout (10 deployments of 10,000) driven by lifecycle ticks every 2
/// simulated seconds until every node is finished, while another thread pushes 100 samples
/// (what `POST /deployments/{id}/telemetry` stores) every 20 ms on its own connection. Prints
/// the pushes' latency percentiles and the slowest tick.
fn pushes_during_rollout(label: &str, test_db: &TestDatabase, limits: TickLimits) {
    let mut conn = test_db.db.get().expect("connection");
    let collector = deployments::create(
        &mut conn,
        &NewDeployment {
            name: "collector".into(),
            description: None,
            target_node_count: 100,
            rollout: Default::default(),
            telemetry: Default::default(),
            alert_rules: Default::default(),
            provisioning: Default::default(),
            remediation: None,
        },
        None,
        t0(),
    )
    .expect("create");
    let pushed_nodes = nodes::list(&mut conn, collector.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    for i in 0..DEPLOYMENTS {
        let new = NewDeployment {
            name: format!("rollout-{i}"),
            description: None,
            target_node_count: NODES_PER_DEPLOYMENT,
            rollout: Default::default(),
            telemetry: Default::default(),
            alert_rules: Default::default(),
            provisioning: Default::default(),
            remediation: None,
        };
        deployments::create(&mut conn, &new, None, t0()).expect("create");
    }
    let hw = SimulatedHardware::default();
    let done = AtomicBool::new(false);
    let (latencies, slowest_tick) = std::thread::scope(|scope| {
        let pusher = scope.spawn(|| {
            let mut conn = test_db.db.get().expect("connection");
            let mut latencies = Vec::new();
            let mut push = 0i64;
            while !done.load(Ordering::Relaxed) {
                let at = t0() + Duration::milliseconds(push);
                let batch: Vec<NewSample> = pushed_nodes
                    .iter()
                    .map(|node| NewSample {
                        node_id: node.id,
                        deployment_id: node.deployment_id,
                        timestamp: at,
                        metrics: Metrics {
                            latency_ms: 10.0,
                            throughput_gbps: 9.0,
                            error_rate: 0.1,
                        },
                    })
                    .collect();
                let started = Instant::now();
                telemetry::insert_batch(&mut conn, &batch).expect("push");
                latencies.push(ms(started));
                push += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            latencies
        });
        let mut slowest = 0.0f64;
        let mut second = 0;
        loop {
            let started = Instant::now();
            let tick =
                lifecycle_tick_with(&mut conn, &hw, t0() + Duration::seconds(second), limits)
                    .expect("tick");
            slowest = slowest.max(ms(started));
            second += 2;
            if tick.examined == 0 && second > 60 {
                break;
            }
        }
        done.store(true, Ordering::Relaxed);
        (pusher.join().expect("pusher"), slowest)
    });
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    println!(
        "  pushes during a 100,000-node rollout, {label}: {} pushes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; slowest tick {slowest_tick:.0} ms",
        sorted.len(),
        at(0.5),
        at(0.99),
        sorted[sorted.len() - 1]
    );
}

fn rollout_comparison(label: &str, make: impl Fn() -> TestDatabase) {
    println!("{label}:");
    pushes_during_rollout(
        &format!("batches of {LIFECYCLE_BATCH}"),
        &make(),
        TickLimits::default(),
    );
    pushes_during_rollout(
        "one transaction per tick (previous build)",
        &make(),
        TickLimits {
            batch: MAX_NODES_PER_TICK,
            max_nodes: MAX_NODES_PER_TICK,
            pause: std::time::Duration::ZERO,
        },
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let postgres = TestDatabase::postgres().is_some();
    if std::env::var_os("NETORCH_BENCH_ONLY_ROLLOUT").is_none() {
        run("sqlite", &TestDatabase::sqlite());
        match TestDatabase::postgres() {
            Some(db) => run("postgres", &db),
            None => println!("postgres: skipped, set NETORCH_TEST_POSTGRES_URL to measure it"),
        }
    }
    rollout_comparison("sqlite", TestDatabase::sqlite);
    if postgres {
        rollout_comparison("postgres", || {
            TestDatabase::postgres().expect("NETORCH_TEST_POSTGRES_URL")
        });
    }
}
