//! Whether the telemetry export keeps up with a 100,000-node fleet at the default interval on
//! PostgreSQL (issue 30): 10 deployments of 10,000 running nodes, the telemetry tick every 5 s
//! of real time (100,000 samples a tick, 20,000 a second) and an exporter sending them to a real
//! VictoriaMetrics on loopback, side by side on this machine for a minute. Prints each tick's
//! duration (the target: within its 5 s interval), the export's lag sampled every 0.5 s (the
//! target: under two intervals, 10 s) and its throughput.
//!
//! `NETORCH_TEST_POSTGRES_URL=postgres://... cargo bench -p netorch_workers --bench export`
//! (needs `victoria-metrics`: `apt-get install victoria-metrics`). `NETORCH_BENCH_SECONDS`
//! sets the run's length (60 by default); `NETORCH_BENCH_NO_EXPORT=1` runs the ticks alone, the
//! baseline of what the export takes from them.

use chrono::{TimeDelta, Timelike};
use netorch_domain::{NewDeployment, Timestamp};
use netorch_simulator::SimulatedHardware;
use netorch_storage::{Database, deployments, export};
use netorch_testkit::TestDatabase;
use netorch_workers::export::{EXPORT_INTERVAL, ExportTarget, Exporter, PASS_BUDGET};
use netorch_workers::{lifecycle_tick, slot_start, telemetry_tick};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const DEPLOYMENTS: u32 = 10;
const NODES_PER_DEPLOYMENT: u32 = 10_000;
const INTERVAL: TimeDelta = TimeDelta::seconds(5);

fn seed(db: &Database) -> Timestamp {
    // Ten minutes ago, so that the lifecycle driven with a fake clock ends in the past.
    let t0 = slot_start(
        chrono::Utc::now().with_nanosecond(0).expect("time") - TimeDelta::minutes(10),
        INTERVAL,
    );
    let mut conn = db.get().expect("connection");
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
        deployments::create(&mut conn, &new, None, t0).expect("create");
    }
    let hw = SimulatedHardware::default();
    for second in (0..=40).step_by(2) {
        lifecycle_tick(&mut conn, &hw, t0 + TimeDelta::seconds(second)).expect("tick");
    }
    t0
}

fn stats(label: &str, mut values: Vec<f64>, unit: &str) {
    if values.is_empty() {
        println!("  {label}: none");
        return;
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "  {label}: {} values, min {:.2} {unit}, median {median:.2} {unit}, max {:.2} {unit}",
        values.len(),
        values[0],
        values[values.len() - 1]
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(test_db) = TestDatabase::postgres() else {
        println!("export: skipped, set NETORCH_TEST_POSTGRES_URL to measure it");
        return;
    };
    let seconds: u64 = std::env::var("NETORCH_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut victoria = match Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.path().display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-dedup.minScrapeInterval=1ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            println!("export: skipped, cannot start victoria-metrics: {e}");
            return;
        }
    };
    let db = test_db.db.clone();
    let seeding = Instant::now();
    seed(&db);
    println!(
        "postgres: {} running nodes seeded in {:.1} s",
        DEPLOYMENTS * NODES_PER_DEPLOYMENT,
        seeding.elapsed().as_secs_f64()
    );
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let target = ExportTarget::new(&url, None).expect("target");
    // Start the cursor at what is stored now: the run measures keeping up, not a first backlog.
    {
        let mut conn = db.get().expect("conn");
        let now = chrono::Utc::now();
        export::claim(&mut conn, &url, "bench", now, TimeDelta::seconds(1)).expect("claim");
        let mut position = 0;
        loop {
            let batch = export::read_after(&mut conn, position, 1_000_000).expect("read");
            position = batch.position;
            if !batch.more {
                break;
            }
        }
        let sent = export::Sent {
            position,
            samples: 0,
            caught_up_at: Some(now),
        };
        export::advance(&mut conn, &url, "bench", sent, now, TimeDelta::seconds(1))
            .expect("advance");
        export::release(&mut conn, &url, "bench").expect("release");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let telemetry = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let hw = SimulatedHardware::default();
            let mut ticks = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let now = chrono::Utc::now();
                let began = Instant::now();
                let tick = telemetry_tick(&db, &hw, INTERVAL, now).expect("tick");
                ticks.push((began.elapsed().as_secs_f64(), tick.written));
                // To the next slot's start, as the worker's interval does.
                let next = slot_start(now, INTERVAL) + INTERVAL;
                let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
                std::thread::sleep(wait);
            }
            ticks
        })
    };
    let exporting = std::env::var_os("NETORCH_BENCH_NO_EXPORT").is_none();
    let exporter = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut exporter = Exporter::new(target, "bench");
            let mut passes = Vec::new();
            while exporting && !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let pass = exporter
                    .pass(&db, chrono::Utc::now(), PASS_BUDGET)
                    .expect("pass");
                passes.push((began.elapsed(), pass.clone()));
                if !pass.more {
                    std::thread::sleep(EXPORT_INTERVAL);
                }
            }
            passes
        })
    };
    let began = Instant::now();
    let mut lags = Vec::new();
    while began.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(500));
        let cursor = export::cursor(&mut db.get().expect("conn"), &url).expect("cursor");
        if let Some(cursor) = cursor {
            lags.push((
                began.elapsed(),
                cursor.lag(chrono::Utc::now()).as_seconds_f64(),
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let ticks = telemetry.join().expect("telemetry thread");
    let passes = exporter.join().expect("export thread");
    let sent: u64 = passes.iter().map(|(_, p)| p.sent).sum();
    let failed: u64 = passes.iter().map(|(_, p)| p.failed).sum();
    let _ = victoria.kill();
    let _ = victoria.wait();

    let written: usize = ticks.iter().map(|(_, w)| w).sum();
    println!(
        "postgres, {seconds} s, tick every 5 s, export every {EXPORT_INTERVAL:?} when caught up:"
    );
    stats(
        "telemetry tick",
        ticks.iter().map(|(s, _)| s * 1e3).collect(),
        "ms",
    );
    println!(
        "  samples stored: {written} ({:.0}/s); exported: {sent} ({:.0}/s) in {} passes, {failed} failed",
        written as f64 / seconds as f64,
        sent as f64 / seconds as f64,
        passes.len()
    );
    if exporting {
        // The first ticks make 300,000 new series in VictoriaMetrics, which costs it far more
        // than a point of a series it knows: the warm-up and the steady state apart.
        let warm = Duration::from_secs(15);
        stats(
            "export lag, sampled every 0.5 s, first 15 s (new series)",
            lags.iter()
                .filter(|(at, _)| *at < warm)
                .map(|(_, l)| *l)
                .collect(),
            "s",
        );
        stats(
            "export lag, sampled every 0.5 s, after",
            lags.iter()
                .filter(|(at, _)| *at >= warm)
                .map(|(_, l)| *l)
                .collect(),
            "s",
        );
        let busy: Vec<_> = passes.iter().filter(|(_, p)| p.sent > 0).collect();
        stats(
            "passes that sent: duration",
            busy.iter().map(|(d, _)| d.as_secs_f64() * 1e3).collect(),
            "ms",
        );
        stats(
            "  of which reading samples and names",
            busy.iter()
                .map(|(_, p)| p.reading.as_secs_f64() * 1e3)
                .collect(),
            "ms",
        );
        stats(
            "  of which building and encoding requests",
            busy.iter()
                .map(|(_, p)| p.encoding.as_secs_f64() * 1e3)
                .collect(),
            "ms",
        );
        stats(
            "  of which sending (until the target answered)",
            busy.iter()
                .map(|(_, p)| p.sending.as_secs_f64() * 1e3)
                .collect(),
            "ms",
        );
        stats(
            "  samples a pass",
            busy.iter().map(|(_, p)| p.sent as f64).collect(),
            "",
        );
    }
}
