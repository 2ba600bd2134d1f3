//! The telemetry export to a real VictoriaMetrics (Debian's `victoria-metrics`, on loopback), on
//! SQLite and PostgreSQL, driven with a fake clock: after a rollout, for every node the points
//! VictoriaMetrics holds equal netorch's samples, series by series; VictoriaMetrics stopped for
//! over a minute of the fleet's time mid-run and started again, the counts still match; a
//! second worker does not export while the first holds the target, and takes over once its
//! lease has run out.
//!
//! Skipped (with a note) where VictoriaMetrics is not installed, unless
//! `NETORCH_REQUIRE_VICTORIA_METRICS` is set (CI sets it).

use chrono::{TimeDelta, Timelike};
use netorch_domain::{DeploymentId, NewDeployment, NodeState, Timestamp};
use netorch_simulator::SimulatedHardware;
use netorch_storage::nodes::NodeFilter;
use netorch_storage::telemetry::TelemetryQuery;
use netorch_storage::{Database, deployments, export, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use netorch_workers::export::{ExportPass, ExportTarget, Exporter, LEASE};
use netorch_workers::{lifecycle_tick, telemetry_tick};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const SLOT: TimeDelta = TimeDelta::seconds(5);

fn installed() -> bool {
    let runs = Command::new("victoria-metrics")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        assert!(
            std::env::var_os("NETORCH_REQUIRE_VICTORIA_METRICS").is_none(),
            "NETORCH_REQUIRE_VICTORIA_METRICS is set but victoria-metrics is missing"
        );
        eprintln!("skipped: victoria-metrics is not installed (apt-get install victoria-metrics)");
    }
    runs
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A VictoriaMetrics on loopback, killed when dropped.
struct Victoria {
    child: Child,
    addr: String,
    dir: std::path::PathBuf,
}

impl Victoria {
    fn start(dir: &std::path::Path, addr: &str) -> Self {
        let child = Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", dir.display()))
            .arg(format!("-httpListenAddr={addr}"))
            // At least once means a sample may come twice: keep one per millisecond.
            .arg("-dedup.minScrapeInterval=1ms")
            // Queries see what was just written.
            .arg("-search.latencyOffset=0s")
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        let victoria = Victoria {
            child,
            addr: addr.to_owned(),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("http://{addr}/health")).call().is_err() {
            assert!(Instant::now() < deadline, "victoria-metrics did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        victoria
    }

    /// Stops it as an operator does (SIGTERM: it writes what it holds in memory and exits).
    fn stop(mut self) -> (std::path::PathBuf, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        (self.dir.clone(), self.addr.clone())
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// Points held per node id for `metric` of `deployment`, up to `at`.
    fn points(&self, metric: &str, deployment: DeploymentId, at: Timestamp) -> BTreeMap<i64, u64> {
        ureq::get(&format!("http://{}/internal/force_flush", self.addr))
            .call()
            .expect("flush");
        let query = format!(
            "count_over_time({metric}{{deployment=\"{}\"}}[1h])",
            deployment.get()
        );
        let mut response = ureq::get(&format!("http://{}/api/v1/query", self.addr))
            .query("query", &query)
            .query("time", (at.timestamp() + 1).to_string())
            .call()
            .expect("query");
        let body: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().expect("body"))
                .expect("JSON");
        body["data"]["result"]
            .as_array()
            .expect("result")
            .iter()
            .map(|series| {
                let node = series["metric"]["node_id"]
                    .as_str()
                    .expect("node_id")
                    .parse()
                    .expect("id");
                let count = series["value"][1]
                    .as_str()
                    .expect("value")
                    .parse()
                    .expect("count");
                (node, count)
            })
            .collect()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// netorch's samples per node id of `deployment`.
fn stored(db: &Database, deployment: DeploymentId) -> BTreeMap<i64, u64> {
    let samples = telemetry::query(
        &mut db.get().expect("conn"),
        &TelemetryQuery {
            deployment,
            node: None,
            start: None,
            end: None,
            limit: 1_000_000,
        },
    )
    .expect("query");
    let mut counts = BTreeMap::new();
    for s in samples {
        *counts.entry(s.node_id.get()).or_insert(0) += 1;
    }
    counts
}

/// Passes at `now` until one sends nothing more and fails nothing (on PostgreSQL another test's
/// transaction may hold the export's horizon back for a moment): the passes' totals.
fn export_all(exporter: &mut Exporter, db: &Database, now: Timestamp, expected: u64) -> ExportPass {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut total = ExportPass::default();
    loop {
        let pass = exporter
            .pass(db, now, Duration::from_secs(5))
            .expect("pass");
        assert!(pass.held, "the exporter holds its target");
        assert_eq!(pass.error, None);
        total.sent += pass.sent;
        total.rejected += pass.rejected;
        if total.sent >= expected || Instant::now() > deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn every_stored_sample_reaches_victoria_metrics_across_its_outage(t: &TestDatabase) {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let victoria = Victoria::start(dir.path(), &format!("127.0.0.1:{}", free_port()));
    // Real time, so that VictoriaMetrics takes the samples (it refuses those past its
    // retention or far ahead of its clock), at the start of a slot.
    let start =
        chrono::Utc::now().with_nanosecond(0).expect("valid time") - TimeDelta::seconds(600);
    let start = netorch_workers::slot_start(start, SLOT);
    let at = |s: i64| start + TimeDelta::seconds(s);
    let db = &t.db;
    let deployment = deployments::create(
        &mut db.get().expect("conn"),
        &NewDeployment {
            name: "edge-north".into(),
            description: None,
            target_node_count: 12,
            rollout: Default::default(),
            telemetry: Default::default(),
            alert_rules: Default::default(),
            provisioning: Default::default(),
            remediation: None,
        },
        None,
        start,
    )
    .expect("create")
    .id;
    let hardware = SimulatedHardware::new(1.0);
    for step in 1..=15 {
        lifecycle_tick(&mut db.get().expect("conn"), &hardware, at(2 * step)).expect("tick");
    }
    let running = nodes::list(
        &mut db.get().expect("conn"),
        deployment,
        &NodeFilter::default(),
    )
    .expect("nodes")
    .nodes
    .iter()
    .filter(|n| n.state == NodeState::Running)
    .count() as u64;
    assert!(running >= 10, "{running} running");

    let target = ExportTarget::new(&victoria.url(), None).expect("target");
    let mut first = Exporter::new(target.clone(), "worker-1");
    let mut second = Exporter::new(target, "worker-2");

    // Ten slots, exported as they are stored.
    let mut slot = 30;
    let mut sent = 0;
    for _ in 0..10 {
        slot += 5;
        let tick = telemetry_tick(db, &hardware, SLOT, at(slot)).expect("tick");
        sent += export_all(&mut first, db, at(slot), tick.written as u64).sent;
        let other = second
            .pass(db, at(slot), Duration::from_secs(5))
            .expect("pass");
        assert!(!other.held && other.sent == 0, "one exporter at a time");
    }
    assert_eq!(sent, 10 * running);

    // VictoriaMetrics is down for 65 s of the fleet's time: sends fail, the cursor stays.
    let (data, addr) = victoria.stop();
    let mut failed = 0;
    for _ in 0..13 {
        slot += 5;
        telemetry_tick(db, &hardware, SLOT, at(slot)).expect("tick");
        let pass = first
            .pass(db, at(slot), Duration::from_secs(5))
            .expect("pass");
        assert!(pass.held && pass.sent == 0, "{pass:?}");
        failed += pass.failed;
    }
    assert!(failed >= 13 * running, "{failed}");
    let url = format!("http://{addr}/api/v1/write");
    let cursor = export::cursor(&mut db.get().expect("conn"), &url)
        .expect("read")
        .expect("cursor");
    assert!(cursor.last_error.is_some());
    assert_eq!(cursor.exported, sent as i64);
    assert!(
        cursor.lag(at(slot)) >= TimeDelta::seconds(60),
        "{:?}",
        cursor.lag(at(slot))
    );

    // Back on the same address and data: the backlog goes out.
    let victoria = Victoria::start(&data, &addr);
    let backlog = export_all(&mut first, db, at(slot), 13 * running).sent;
    assert_eq!(backlog, 13 * running);
    let cursor = export::cursor(&mut db.get().expect("conn"), &url)
        .expect("read")
        .expect("cursor");
    assert_eq!(cursor.last_error, None);
    assert_eq!(cursor.lag(at(slot)), TimeDelta::zero());

    // The first worker stops passing (killed): once its lease is over the second takes over.
    slot += 5;
    telemetry_tick(db, &hardware, SLOT, at(slot)).expect("tick");
    let early = second
        .pass(db, at(slot), Duration::from_secs(5))
        .expect("pass");
    assert!(!early.held);
    let later = at(slot) + LEASE + TimeDelta::seconds(1);
    let taken = export_all(&mut second, db, later, running);
    assert_eq!(taken.sent, running, "where the first left off");

    let expected = stored(db, deployment);
    assert_eq!(expected.len() as u64, running);
    assert!(expected.values().all(|n| *n == 24), "{expected:?}");
    for metric in [
        "netorch_latency_ms",
        "netorch_throughput_gbps",
        "netorch_error_rate",
    ] {
        assert_eq!(
            victoria.points(metric, deployment, at(slot)),
            expected,
            "{metric}: points per node"
        );
    }
}

/// A target answering `status` to every request (HTTP/1.1, one request a connection), for the
/// export's reading of answers: which keep the samples, which skip them.
fn answering(status: Arc<AtomicU16>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let code = status.load(Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 {code} Answer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    format!("http://{addr}/api/v1/write")
}

fn answers_that_keep_the_samples_and_answers_that_skip_them(t: &TestDatabase) {
    let db = &t.db;
    let start = netorch_workers::slot_start(chrono::Utc::now() - TimeDelta::seconds(600), SLOT);
    let at = |s: i64| start + TimeDelta::seconds(s);
    deployments::create(
        &mut db.get().expect("conn"),
        &NewDeployment {
            name: "answers".into(),
            description: None,
            target_node_count: 3,
            rollout: Default::default(),
            telemetry: Default::default(),
            alert_rules: Default::default(),
            provisioning: Default::default(),
            remediation: None,
        },
        None,
        start,
    )
    .expect("create");
    let hardware = SimulatedHardware::new(1.0);
    for step in 1..=15 {
        lifecycle_tick(&mut db.get().expect("conn"), &hardware, at(2 * step)).expect("tick");
    }
    let status = Arc::new(AtomicU16::new(401));
    let url = answering(Arc::clone(&status));
    let mut exporter = Exporter::new(ExportTarget::new(&url, None).expect("target"), "w");
    let cursor = |db: &Database| {
        export::cursor(&mut db.get().expect("conn"), &url)
            .expect("read")
            .expect("cursor")
    };
    let written = telemetry_tick(db, &hardware, SLOT, at(35))
        .expect("tick")
        .written as u64;
    assert!(written > 0);
    let pass_at = |exporter: &mut Exporter, s| {
        // On PostgreSQL another test's transaction may hold the horizon back a moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pass = exporter
                .pass(db, at(s), Duration::from_secs(5))
                .expect("pass");
            if pass.sent + pass.failed + pass.rejected > 0 || Instant::now() > deadline {
                return pass;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // Credentials refused, a wrong path, a redirect, throttling, an outage: the setup's
    // fault, not the samples'. Kept, and tried again.
    for code in [401, 403, 404, 301, 413, 429, 503] {
        status.store(code, Ordering::SeqCst);
        let pass = pass_at(&mut exporter, 36);
        assert_eq!(
            (pass.sent, pass.failed, pass.rejected),
            (0, written, 0),
            "{code}"
        );
        assert_eq!(pass.error.as_deref(), Some(format!("HTTP {code}").as_str()));
        let c = cursor(db);
        assert_eq!((c.position, c.exported), (0, 0), "{code}: the cursor stays");
        assert_eq!(c.last_error, Some(format!("HTTP {code}")));
    }
    // 400: the target's verdict on the samples, which it would give again: skipped.
    status.store(400, Ordering::SeqCst);
    let pass = pass_at(&mut exporter, 37);
    assert_eq!((pass.sent, pass.failed, pass.rejected), (0, 0, written));
    assert!(cursor(db).position > 0, "the export goes on");
    // Taken: the next samples go, and only they.
    status.store(204, Ordering::SeqCst);
    let next = telemetry_tick(db, &hardware, SLOT, at(40))
        .expect("tick")
        .written as u64;
    let pass = pass_at(&mut exporter, 41);
    assert_eq!((pass.sent, pass.failed, pass.rejected), (next, 0, 0));
    assert_eq!(cursor(db).exported, next as i64);
    assert_eq!(cursor(db).last_error, None);
}

backend_tests!(
    every_stored_sample_reaches_victoria_metrics_across_its_outage,
    answers_that_keep_the_samples_and_answers_that_skip_them,
);
