//! The alerts loop at fleet scale (issue 27): 10 deployments of 10,000 running nodes (100,000
//! in all) on SQLite, eleven minutes of readings at 5 s slots stored through the real ingest path
//! (rollups included), one node in 50 slow. Each deployment has the default bottleneck rule
//! (robust, 10 minutes), a node threshold rule (latency_ms > 50 over 5 minutes) and a fleet
//! threshold rule (latency_ms > 50 over 5 minutes). One pass evaluates all ten, as one alerts
//! tick does (claim, observe, decide, apply); the first opens the slow nodes' alerts, the later
//! ones find them unchanged. Prints each pass's wall time and the process's CPU time over it
//! (user + system, every thread: the report reads its window on two), and the CPU time as a
//! share of one core over the default 30 s interval: the target is at most 10 %.
//!
//! `cargo bench -p netorch_service --bench alert_evaluation`; `NETORCH_BENCH_DEPLOYMENTS=N`
//! evaluates N deployments of 10,000 instead of 10.

use chrono::{DateTime, Duration, TimeDelta, Utc};
use netorch_domain::alert::{Comparison, Severity, ThresholdRule, ThresholdScope, Timing};
use netorch_domain::{
    AlertRules, DeploymentId, MetricKind, Metrics, NewDeployment, NewSample, NodeId,
};
use netorch_service::alerts;
use netorch_storage::alerts::evaluations;
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{Database, deployments, nodes, telemetry};
use netorch_testkit::TestDatabase;
use std::time::Instant;

const NODES: u32 = 10_000;
const PASSES: usize = 5;
const INTERVAL: TimeDelta = TimeDelta::seconds(30);

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_003_600 + 17, 250_000_000).expect("valid time")
}

/// The process's CPU time so far (user + system, all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    // The kernel's clock ticks are 100 a second on Linux (USER_HZ).
    ticks / 100.0
}

fn rules() -> AlertRules {
    let threshold = |scope| ThresholdRule {
        name: match scope {
            ThresholdScope::Node => "slow".into(),
            ThresholdScope::Fleet => "fleet_slow".into(),
        },
        metric: MetricKind::LatencyMs,
        op: Comparison::Above,
        value: 50.0,
        scope,
        window_seconds: 300,
        timing: Timing::default(),
        severity: Severity::Critical,
    };
    AlertRules {
        thresholds: vec![
            threshold(ThresholdScope::Node),
            threshold(ThresholdScope::Fleet),
        ],
        ..AlertRules::default()
    }
}

fn metrics(node: NodeId, at: DateTime<Utc>) -> Metrics {
    let offset = ((node.get() * 7_919) % 1_000) as f64 / 1_000.0 * 0.3;
    let wobble = ((at.timestamp() / 5) % 7) as f64 * 0.1;
    let slow = node.get() % 50 == 0;
    Metrics {
        latency_ms: if slow { 80.0 } else { 10.0 } + offset + wobble,
        throughput_gbps: if slow { 2.0 } else { 9.0 } - offset + wobble,
        error_rate: 0.1 + (offset + wobble) / 10.0,
    }
}

fn seed(db: &Database) -> DeploymentId {
    let mut conn = db.get().expect("connection");
    let new = NewDeployment {
        alert_rules: rules(),
        ..NewDeployment::new("bench", NODES)
    };
    let d = deployments::create(&mut conn, &new, None, t0() - Duration::hours(1)).expect("create");
    let ids: Vec<NodeId> = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes
        .into_iter()
        .map(|n| n.id)
        .collect();
    let mut batch = Vec::with_capacity(100_000);
    let mut at = t0() - Duration::minutes(11);
    while at < t0() {
        for id in &ids {
            batch.push(NewSample {
                node_id: *id,
                deployment_id: d.id,
                timestamp: at,
                metrics: metrics(*id, at),
            });
        }
        if batch.len() >= 100_000 {
            telemetry::insert_batch(&mut conn, &batch).expect("insert");
            batch.clear();
        }
        at += Duration::seconds(5);
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    d.id
}

fn main() {
    let count: usize = std::env::var("NETORCH_BENCH_DEPLOYMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let t = TestDatabase::sqlite();
    let began = Instant::now();
    let fleet: Vec<DeploymentId> = (0..count).map(|_| seed(&t.db)).collect();
    println!(
        "seeded {count} deployments of {NODES} nodes, 11 minutes at 5 s, in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    for pass in 0..PASSES {
        // Each pass one interval later, as the loop runs; the readings stay those of the last
        // eleven minutes before t0 (a window ending a little later reads the same rollups).
        let now = t0() + INTERVAL * pass as i32;
        let slot = alerts::slot_of(now, INTERVAL);
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let mut fired = 0;
        let mut changes = 0;
        for d in &fleet {
            let mut conn = t.db.get().expect("connection");
            assert!(
                evaluations::claim(&mut conn, *d, slot, "bench", now + INTERVAL, now)
                    .expect("claim")
            );
            drop(conn);
            let applied = alerts::evaluate_deployment(&t.db, *d, slot, now)
                .expect("evaluate")
                .expect("applied");
            fired += applied.fired.len();
            changes += applied.changes;
        }
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "pass {pass}: {} nodes in {:.0} ms wall, {:.0} ms CPU ({:.1} % of one core every 30 s); {changes} changes, {fired} fired",
            count * NODES as usize,
            wall * 1e3,
            cpu * 1e3,
            cpu / INTERVAL.as_seconds_f64() * 100.0
        );
    }
}
