//! Telemetry for days on a fake clock: 1,000 running nodes sampled every 5 s by the real
//! telemetry tick, each tick followed by the expiry the worker runs, for
//! `NETORCH_LONG_RUN_DAYS` simulated days (default 3: 52 M samples). Prints the database size
//! twelve times over the run (it stops growing once expiry keeps pace), the ingest rate with
//! rollups and expiry included, and the report and series timings at the end.
//!
//! On SQLite by default; on PostgreSQL with `NETORCH_LONG_RUN_BACKEND=postgres` (and
//! `NETORCH_TEST_POSTGRES_URL`). Raw samples are kept 24 hours (`NETORCH_LONG_RUN_RAW_HOURS`),
//! minute rollups 7 days (`NETORCH_LONG_RUN_MINUTES_HOURS`).
//!
//! `cargo bench -p netorch_api --bench long_run`.

use chrono::{DateTime, Duration, Utc};
use netorch_analytics::{AnalysisConfig, Method};
use netorch_domain::{NewDeployment, NodeState, Resolution};
use netorch_service::bottlenecks::ReportQuery;
use netorch_simulator::SimulatedHardware;
use netorch_storage::retention::{self, Retention};
use netorch_storage::{Database, deployments, rollups};
use netorch_testkit::TestDatabase;
use netorch_workers::{lifecycle_tick, telemetry_tick};
use std::time::Instant;

const NODES: u32 = 1_000;
const INTERVAL: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

/// On SQLite the file's size (with its WAL) and the part of it in use (pages not on the free
/// list); on PostgreSQL the telemetry tables' size, every partition and index included. MiB.
fn sizes(db: &TestDatabase) -> (f64, f64) {
    let used = retention::stored_bytes(&mut db.db.get().expect("connection")).unwrap_or(0) as f64;
    let Some(path) = db.url().strip_prefix("sqlite://") else {
        return (used / 1048576.0, used / 1048576.0);
    };
    let file = std::fs::metadata(path).map_or(0, |m| m.len()) as f64;
    let wal = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len()) as f64;
    ((file + wal) / 1048576.0, used / 1048576.0)
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn report_ms(
    db: &Database,
    d: netorch_domain::DeploymentId,
    now: DateTime<Utc>,
    minutes: i64,
) -> f64 {
    let started = Instant::now();
    let config = AnalysisConfig::new(Method::Robust, None).expect("config");
    let query = ReportQuery::last_minutes(d, minutes, now).with_config(config);
    netorch_service::bottlenecks::report(db, query).expect("report");
    ms(started)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let days: i64 = std::env::var("NETORCH_LONG_RUN_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(3);
    let postgres = std::env::var("NETORCH_LONG_RUN_BACKEND").is_ok_and(|b| b == "postgres");
    let test_db = if postgres {
        TestDatabase::postgres().expect("NETORCH_TEST_POSTGRES_URL names the PostgreSQL server")
    } else {
        TestDatabase::sqlite()
    };
    let db = &test_db.db;
    let new = NewDeployment {
        name: "long-run".into(),
        description: None,
        target_node_count: NODES,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    let d = deployments::create(&mut db.get().expect("connection"), &new, None, t0())
        .expect("create")
        .id;
    let hw = SimulatedHardware::default();
    for second in (0..=60).step_by(2) {
        lifecycle_tick(
            &mut db.get().expect("connection"),
            &hw,
            t0() + Duration::seconds(second),
        )
        .expect("lifecycle");
    }
    let counts =
        deployments::node_state_counts(&mut db.get().expect("connection"), d).expect("counts");
    // Minute rollups are kept 7 days by default, so within a shorter run they still grow (by
    // about 10 MB per simulated hour here); NETORCH_LONG_RUN_MINUTES_HOURS shortens their
    // retention to show the whole database level off.
    let minutes = std::env::var("NETORCH_LONG_RUN_MINUTES_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .map_or(Retention::default().minutes, Duration::hours);
    // NETORCH_LONG_RUN_RAW_HOURS shortens raw retention (default 24 h), to see the size level
    // off in a shorter run.
    let raw = std::env::var("NETORCH_LONG_RUN_RAW_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .map_or(Duration::hours(24), Duration::hours);
    let retention = Retention {
        raw,
        minutes,
        ..Retention::default()
    };
    println!(
        "{}: {} of {NODES} nodes running, {days} simulated days at 5 s slots, raw samples kept {} h, minute rollups {} h",
        if postgres { "postgres" } else { "sqlite" },
        counts.get(NodeState::Running),
        raw.num_hours(),
        minutes.num_hours()
    );
    let start = t0() + Duration::minutes(2);
    let ticks = days * 24 * 720;
    // Twelve lines of sizes whatever the length (every 6 hours over the default 3 days).
    let print_every = (days * 24 / 12).max(1) * 720;
    let started = Instant::now();
    let (mut written, mut expired, mut dropped, mut window_written) = (0u64, 0u64, 0u64, 0u64);
    let mut window_started = Instant::now();
    let mut slowest_expiry = 0.0f64;
    for tick in 0..ticks {
        let now = start + Duration::seconds(5 * tick);
        let t = telemetry_tick(db, &hw, INTERVAL, now).expect("tick");
        written += t.written as u64;
        window_written += t.written as u64;
        let expiry = Instant::now();
        let done = retention::expire(&mut db.get().expect("connection"), &retention, now, || true)
            .expect("expire");
        expired += done.rows as u64;
        dropped += done.partitions.dropped as u64;
        slowest_expiry = slowest_expiry.max(ms(expiry));
        if (tick + 1) % print_every == 0 {
            let (file, used) = sizes(&test_db);
            println!(
                "  +{:>2} h: {written:>10} samples written, {expired:>10} rows expired, {dropped:>3} partitions dropped; file {file:>7.1} MiB, in use {used:>7.1} MiB; since the last line ingested at {:>7.0} samples/s (ticks and expiry), slowest expiry call {slowest_expiry:.1} ms",
                (tick + 1) / 720,
                window_written as f64 / window_started.elapsed().as_secs_f64()
            );
            window_written = 0;
            window_started = Instant::now();
            slowest_expiry = 0.0;
        }
    }
    let end = start + Duration::seconds(5 * (ticks - 1));
    println!(
        "  whole run: {written} samples in {:.0} s ({:.0} samples/s with rollups and expiry)",
        started.elapsed().as_secs_f64(),
        written as f64 / started.elapsed().as_secs_f64()
    );
    for minutes in [10, 60] {
        let runs: Vec<f64> = (0..3).map(|_| report_ms(db, d, end, minutes)).collect();
        println!("  robust report, {minutes} min window: {runs:.1?} ms");
    }
    let node = netorch_domain::NodeId(7);
    let runs: Vec<f64> = (0..3)
        .map(|_| {
            let started = Instant::now();
            rollups::node_series(
                &mut db.get().expect("connection"),
                d,
                node,
                Resolution::Minute,
                end - Duration::hours(24),
                end,
                10_000,
            )
            .expect("series");
            ms(started)
        })
        .collect();
    println!("  node series, last 24 h at 1m: {runs:.2?} ms");
    let runs: Vec<f64> = (0..3)
        .map(|_| {
            let started = Instant::now();
            rollups::fleet_series(
                &mut db.get().expect("connection"),
                d,
                Resolution::Minute,
                end - Duration::hours(24),
                end,
                10_000,
            )
            .expect("series");
            ms(started)
        })
        .collect();
    println!("  fleet series, last 24 h at 1m: {runs:.2?} ms");
}
