//! What an external provisioner's run costs (issue 31): 1,000 nodes through a `command` profile
//! whose program is a trivial shell script, driven as a worker's lifecycle loop drives them
//! (runs settled, the tick, runs started, every 100 ms of real time) until every node runs.
//! Prints the rollout's time, the runs a second, what each run costs the worker (starting it:
//! the claim, the process's start and its record; settling it: the poll, the output read and
//! the result recorded) and how long the lifecycle ticks took while runs were in flight.
//!
//! `cargo bench -p netorch_workers --bench provisioners` (SQLite); with
//! `NETORCH_TEST_POSTGRES_URL` set, PostgreSQL too. `NETORCH_BENCH_NODES` changes the size and
//! `NETORCH_BENCH_CONCURRENCY` the profile's `max_concurrent_runs` (64 by default).

use netorch_domain::{NewDeployment, NodeState, Provisioning};
use netorch_simulator::SimulatedHardware;
use netorch_storage::Database;
use netorch_storage::{deployments, nodes::NodeFilter};
use netorch_testkit::TestDatabase;
use netorch_workers::provisioners::{Profiles, RunDriver};
use netorch_workers::{Provisioners, TickLimits, lifecycle_tick_using};
use std::time::{Duration, Instant};

fn stats(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} ticks)",
        at(0.5),
        at(0.95),
        at(1.0),
        values.len()
    )
}

fn run(label: &str, db: &Database, nodes: u32, concurrency: u32) {
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("trivial.sh");
    std::fs::write(&script, "#!/bin/sh\ncat > /dev/null\n").expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let profiles = Profiles::parse(&format!(
        "[profiles.bench]\nkind = \"command\"\ncommand = [\"{}\"]\nmax_concurrent_runs = {concurrency}\n",
        script.display()
    ))
    .expect("profiles");
    let mut conn = db.get().expect("connection");
    let new = NewDeployment {
        provisioning: Provisioning {
            profile: "bench".into(),
            parameters: Default::default(),
        },
        ..NewDeployment::new("bench", nodes)
    };
    let d = deployments::create(&mut conn, &new, None, chrono::Utc::now())
        .expect("create")
        .id;
    let driver = RunDriver::new(profiles, format!("bench-{}", std::process::id()));
    let simulator = SimulatedHardware::default();
    let external = ["bench".to_owned()];
    let provisioners = Provisioners {
        builtin: &simulator,
        external: &external,
    };
    let (mut settle, mut tick, mut start) = (Vec::new(), Vec::new(), Vec::new());
    let (mut started, mut settled) = (0, 0);
    let began = Instant::now();
    loop {
        let round = Instant::now();
        let now = chrono::Utc::now();
        let t = Instant::now();
        let s = driver.settle(&mut conn, now).expect("settle");
        settle.push(t.elapsed().as_secs_f64() * 1e3);
        settled += s.succeeded + s.failed + s.timed_out + s.cancelled;
        let t = Instant::now();
        lifecycle_tick_using(&mut conn, provisioners, now, TickLimits::default()).expect("tick");
        if driver.running() > 0 || started > 0 && settled < 2 * nodes as usize {
            tick.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        let s = driver.start(&mut conn, now).expect("start");
        start.push(t.elapsed().as_secs_f64() * 1e3);
        started += s.started;
        let (_, counts) = deployments::get_with_counts(&mut conn, d).expect("counts");
        if counts.running + counts.failed == u64::from(nodes) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(600),
            "not done: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(100).saturating_sub(round.elapsed()));
    }
    let wall = began.elapsed().as_secs_f64();
    let running = netorch_storage::nodes::list(
        &mut conn,
        d,
        &NodeFilter {
            state: Some(NodeState::Running),
            ..NodeFilter::default()
        },
    )
    .expect("nodes")
    .total;
    assert_eq!(running, i64::from(nodes), "every node runs");
    let start_ms: f64 = start.iter().sum();
    let settle_ms: f64 = settle.iter().sum();
    println!("{label}: {nodes} nodes, {started} runs, max_concurrent_runs {concurrency}");
    println!(
        "  rollout {wall:.1} s: {:.0} runs/s ({:.1} ms of wall time a node for two phases)",
        started as f64 / wall,
        wall * 1e3 / f64::from(nodes)
    );
    println!(
        "  worker's cost a run: starting {:.2} ms, settling {:.2} ms (sums {:.0} ms and {:.0} ms)",
        start_ms / started as f64,
        settle_ms / started as f64,
        start_ms,
        settle_ms
    );
    println!(
        "  lifecycle ticks with runs in flight: {}",
        stats(&mut tick)
    );
}

fn main() {
    let nodes: u32 = std::env::var("NETORCH_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let concurrency: u32 = std::env::var("NETORCH_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let sqlite = TestDatabase::sqlite();
    run("SQLite", &sqlite.db, nodes, concurrency);
    if let Some(pg) = TestDatabase::postgres() {
        run("PostgreSQL", &pg.db, nodes, concurrency);
    }
}
