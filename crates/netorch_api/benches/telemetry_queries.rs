//! Telemetry queries at fleet scale, on SQLite (a file) and on PostgreSQL (when
//! `NETORCH_TEST_POSTGRES_URL` is set): the bottleneck report over 10- and 60-minute windows of
//! 10,000 nodes and a 10-minute window of 100,000 nodes, one node's last 720 raw samples, and a
//! node's and the fleet's last 24 hours at one-minute steps. Samples are stored through the real
//! ingest path (rollups included): 60 minutes at 5 s slots, and before that 23 hours at one
//! sample per node and minute, so that 24 hours of minute rollups exist.
//!
//! `cargo bench -p netorch_api --bench telemetry_queries`; `NETORCH_BENCH_SKIP_SQLITE=1`
//! measures PostgreSQL alone, `NETORCH_BENCH_SKIP_100K=1` leaves out the 100,000-node part,
//! `NETORCH_BENCH_HISTORY_HOURS=N` seeds `N` hours of minute samples before the last hour instead
//! of 23 (faster to seed; the 24-hour series then cover less), `NETORCH_BENCH_MINUTES_PAST_HOUR=M`
//! ends the windows `M` minutes later into the hour than the default 17 seconds.

use chrono::{DateTime, Duration, Utc};
use netorch_analytics::{AnalysisConfig, Method, StreamingAnalysis};
use netorch_domain::{DeploymentId, Metrics, NewDeployment, NewSample, NodeId, Resolution};
use netorch_service::bottlenecks::{ReportQuery, window_parts};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::retention::Retention;
use netorch_storage::telemetry::TelemetryQuery;
use netorch_storage::{Database, DbConnection, deployments, nodes, partitions, rollups, telemetry};
use netorch_testkit::TestDatabase;
use std::time::Instant;

const RUNS: usize = 5;

/// The benchmark's "now": 17.25 s past an hour, or `NETORCH_BENCH_MINUTES_PAST_HOUR` minutes
/// later (where a window ending now falls inside its last hour changes which rollups it reads).
fn now() -> DateTime<Utc> {
    static NOW: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| {
        let minutes: i64 = std::env::var("NETORCH_BENCH_MINUTES_PAST_HOUR")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        DateTime::from_timestamp(1_800_003_600 + 17 + 60 * minutes, 250_000_000)
            .expect("valid time")
    })
}

fn fleet(db: &Database, nodes: u32) -> (DeploymentId, Vec<NodeId>) {
    let mut conn = db.get().expect("connection");
    let new = NewDeployment {
        name: format!("bench-{nodes}"),
        description: None,
        target_node_count: nodes,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    let d = deployments::create(&mut conn, &new, None, now() - Duration::days(2)).expect("create");
    // As a telemetry worker would have: PostgreSQL's time partitions for the last day and ahead.
    partitions::maintain(&mut conn, &Retention::default(), now()).expect("partitions");
    let ids = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes
        .into_iter()
        .map(|n| n.id)
        .collect();
    (d.id, ids)
}

fn metrics(node: NodeId, at: DateTime<Utc>) -> Metrics {
    // One node in 50 is slow. Each node has its own small offset, and every reading wobbles
    // with time alike: a healthy fleet with some spread, none of it flagged.
    let offset = ((node.get() * 7_919) % 1_000) as f64 / 1_000.0 * 0.3;
    let wobble = ((at.timestamp() / 5) % 7) as f64 * 0.1;
    let slow = node.get() % 50 == 0;
    Metrics {
        latency_ms: if slow { 80.0 } else { 10.0 } + offset + wobble,
        throughput_gbps: if slow { 2.0 } else { 9.0 } - offset + wobble,
        error_rate: 0.1 + (offset + wobble) / 10.0,
    }
}

/// Stores samples of every node at `step` from `from` (inclusive) to `to` (exclusive).
fn seed(
    db: &Database,
    d: DeploymentId,
    ids: &[NodeId],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    step: Duration,
) -> u64 {
    let mut conn = db.get().expect("connection");
    let mut batch = Vec::with_capacity(100_000);
    let mut stored = 0;
    let mut at = from;
    while at < to {
        for id in ids {
            batch.push(NewSample {
                node_id: *id,
                deployment_id: d,
                timestamp: at,
                metrics: metrics(*id, at),
            });
        }
        if batch.len() >= 100_000 {
            stored += telemetry::insert_batch(&mut conn, &batch).expect("insert") as u64;
            batch.clear();
        }
        at += step;
    }
    stored += telemetry::insert_batch(&mut conn, &batch).expect("insert") as u64;
    stored
}

/// A report of the last `minutes`, read as the route reads it: the window's two parts at once,
/// each by `read` on its own connection and thread, merged.
fn merged_report(
    db: &Database,
    minutes: i64,
    method: Method,
    read: impl Fn(
        &mut DbConnection,
        (DateTime<Utc>, DateTime<Utc>),
        AnalysisConfig,
    ) -> StreamingAnalysis
    + Sync,
) -> (usize, u64) {
    let config = AnalysisConfig::new(method, None).expect("config");
    let parts = window_parts(now() - Duration::minutes(minutes), now(), method);
    let read = &read;
    let analyses: Vec<StreamingAnalysis> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                scope.spawn(move || read(&mut db.get().expect("connection"), range, config))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut analysis = StreamingAnalysis::new(config);
    for part in analyses {
        analysis.merge(part);
    }
    let report = analysis.finish();
    (report.bottlenecks.len(), report.samples_analyzed)
}

/// The route's report: whole minutes from rollups, the edges raw.
fn report(db: &Database, d: DeploymentId, minutes: i64, method: Method) -> (usize, u64) {
    let config = AnalysisConfig::new(method, None).expect("config");
    let query = ReportQuery::last_minutes(d, minutes, now()).with_config(config);
    let report = netorch_service::bottlenecks::report(db, query).expect("report");
    (
        report.analysis.bottlenecks.len(),
        report.analysis.samples_analyzed,
    )
}

/// The report as the previous build read it: the partial edge minutes as raw samples, every
/// whole minute as its rollup row, the window cut at its middle minute.
fn report_by_minutes(db: &Database, d: DeploymentId, minutes: i64, method: Method) -> (usize, u64) {
    let config = AnalysisConfig::new(method, None).expect("config");
    let parts = window_parts(now() - Duration::minutes(minutes), now(), Method::Robust);
    let analyses: Vec<StreamingAnalysis> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(start, end)| {
                scope.spawn(move || {
                    let mut analysis = StreamingAnalysis::new(config);
                    let conn = &mut db.get().expect("connection");
                    let minute = Resolution::Minute.micros();
                    let (s, e) = (start.timestamp_micros(), end.timestamp_micros());
                    let first_whole = Resolution::Minute.bucket_of(s + minute - 1);
                    let after_whole = Resolution::Minute.bucket_of(e + 1);
                    let at = |micros| DateTime::from_timestamp_micros(micros).expect("valid");
                    let edges = [(s, first_whole - 1), (after_whole, e)];
                    for (from, to) in edges.into_iter().filter(|(f, t)| f <= t) {
                        telemetry::scan_window(conn, d, at(from), at(to), |node, at, m| {
                            analysis.push(node, at, m)
                        })
                        .expect("edges");
                    }
                    rollups::scan_rollups(
                        conn,
                        Resolution::Minute,
                        d,
                        first_whole,
                        after_whole,
                        |node, minute, summary| analysis.push_minute(node, minute, summary),
                    )
                    .expect("minutes");
                    analysis
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut analysis = StreamingAnalysis::new(config);
    for part in analyses {
        analysis.merge(part);
    }
    let report = analysis.finish();
    (report.bottlenecks.len(), report.samples_analyzed)
}

/// The previous build's report: every raw sample of the window.
fn report_from_samples(
    db: &Database,
    d: DeploymentId,
    minutes: i64,
    method: Method,
) -> (usize, u64) {
    merged_report(db, minutes, method, |conn, (from, to), config| {
        let mut analysis = StreamingAnalysis::new(config);
        telemetry::scan_window(conn, d, from, to, |node, at, m| analysis.push(node, at, m))
            .expect("scan");
        analysis
    })
}

/// Runs `f` `RUNS` times; prints the min – max in milliseconds with what the last run returned.
fn time<T: std::fmt::Debug>(label: &str, mut f: impl FnMut() -> T) {
    let mut ms = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(f());
        ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "  {label:<44} {:>8.1} – {:>8.1} ms (median {:>8.1})   {:?}",
        ms[0],
        ms[RUNS - 1],
        ms[RUNS / 2],
        last.expect("ran")
    );
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn run(label: &str, test_db: &TestDatabase) {
    let db = &test_db.db;
    println!("{label}:");
    let (d, ids) = fleet(db, 10_000);
    let started = Instant::now();
    let history: i64 = std::env::var("NETORCH_BENCH_HISTORY_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(23);
    let older = (
        now() - Duration::hours(1 + history),
        now() - Duration::hours(1),
    );
    let mut stored = seed(db, d, &ids, older, Duration::minutes(1));
    let last_hour = (now() - Duration::hours(1), now() + Duration::seconds(1));
    stored += seed(db, d, &ids, last_hour, Duration::seconds(5));
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  seeded 10,000 nodes: {stored} samples in {seconds:.1} s ({:.0} samples/s, rollups included)",
        stored as f64 / seconds
    );
    // What the telemetry workers do as minutes go by: seal them (rollups::sealed).
    let started = Instant::now();
    let sealed = rollups::sealed::seal(&mut db.get().expect("connection"), d, now()).expect("seal");
    println!(
        "  sealed the last two hours' past minutes: {} rows ({} hours) in {:.2} s",
        sealed.rows,
        sealed.hours,
        started.elapsed().as_secs_f64()
    );
    for method in Method::ALL {
        for minutes in [10, 60] {
            time(
                &format!("report 10,000 nodes, {minutes} min, {method}"),
                || report(db, d, minutes, method),
            );
            time("  the same minute by minute (previous build)", || {
                report_by_minutes(db, d, minutes, method)
            });
            time("  the same from raw samples (issue 9's start)", || {
                report_from_samples(db, d, minutes, method)
            });
        }
    }
    let node = ids[4_321];
    time("node's last 720 raw samples", || {
        let query = TelemetryQuery {
            deployment: d,
            node: Some(node),
            start: None,
            end: None,
            limit: 720,
        };
        telemetry::query(&mut db.get().expect("connection"), &query)
            .expect("query")
            .len()
    });
    let day = (now() - Duration::hours(24), now());
    time("node series, last 24 h at 1m", || {
        let mut conn = db.get().expect("connection");
        rollups::node_series(&mut conn, d, node, Resolution::Minute, day.0, day.1, 10_000)
            .expect("series")
            .len()
    });
    time("fleet series, last 24 h at 1m", || {
        let mut conn = db.get().expect("connection");
        rollups::fleet_series(&mut conn, d, Resolution::Minute, day.0, day.1, 10_000)
            .expect("series")
            .len()
    });

    // NETORCH_BENCH_SKIP_100K=1 stops here.
    if std::env::var_os("NETORCH_BENCH_SKIP_100K").is_some() {
        return;
    }
    let (big, big_ids) = fleet(db, 100_000);
    let started = Instant::now();
    let window = (now() - Duration::minutes(11), now() + Duration::seconds(1));
    let stored = seed(db, big, &big_ids, window, Duration::seconds(5));
    println!(
        "  seeded 100,000 nodes: {stored} samples in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for method in Method::ALL {
        time(&format!("report 100,000 nodes, 10 min, {method}"), || {
            report(db, big, 10, method)
        });
    }
    println!(
        "  peak resident memory of the benchmark process: {} MiB",
        peak_rss_mib()
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // NETORCH_BENCH_SKIP_SQLITE=1 measures PostgreSQL alone.
    if std::env::var_os("NETORCH_BENCH_SKIP_SQLITE").is_none() {
        run("sqlite", &TestDatabase::sqlite());
    }
    match TestDatabase::postgres() {
        Some(db) => run("postgres", &db),
        None => println!("postgres   skipped: set NETORCH_TEST_POSTGRES_URL to measure it"),
    }
}
