//! A real Alertmanager (Debian's `prometheus-alertmanager`, on a loopback port, with a config
//! written here) hears netorch. The real `netorch-server` (embedded workers at time scale 20,
//! alerts every half second) tells an `alertmanager` receiver, and Alertmanager's webhook (a
//! loopback sink here) hears what Alertmanager passes on:
//!
//! - the simulated hardware's degraded nodes fire, `amtool alert query` lists the alert, and
//!   once the deployment is deleted the webhook receives `resolved` for the same alert;
//! - in a deployment whose telemetry is pushed (no simulated samples at all), nodes the test
//!   pushes slow fire, an Alertmanager silence (made with `amtool`) keeps one of them from the
//!   webhook while Alertmanager shows it suppressed, and once the pushes turn healthy the other
//!   resolves with the same labels; on SQLite and, where `NETORCH_TEST_POSTGRES_URL` is set,
//!   PostgreSQL.
//!
//! Skipped (with a note) where Alertmanager is not installed, unless
//! `NETORCH_REQUIRE_ALERTMANAGER` is set (CI sets it).

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// A loopback sink for Alertmanager's webhook: every JSON body it gets.
fn sink() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(value) = serde_json::from_slice(&body)
            {
                kept.lock().expect("lock").push(value);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// The alerts of every webhook message received so far with `status`, as (node, fingerprint).
fn alerts_with(got: &Arc<Mutex<Vec<Value>>>, status: &str) -> Vec<(String, Value)> {
    got.lock()
        .expect("lock")
        .iter()
        .flat_map(|m| m["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["status"] == status)
        .map(|a| {
            (
                a["labels"]["node"].as_str().unwrap_or_default().to_owned(),
                a["labels"].clone(),
            )
        })
        .collect()
}

/// Whether the test can run: Alertmanager and amtool are installed (a failure where CI requires
/// them, a note otherwise).
fn alertmanager_installed() -> bool {
    if installed("prometheus-alertmanager") && installed("amtool") {
        return true;
    }
    assert!(
        std::env::var_os("NETORCH_REQUIRE_ALERTMANAGER").is_none(),
        "NETORCH_REQUIRE_ALERTMANAGER is set but prometheus-alertmanager or amtool is missing"
    );
    eprintln!(
        "skipped: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
    );
    false
}

/// A running Alertmanager whose only route is a webhook to a loopback sink.
struct Alertmanager {
    _process: Killed,
    /// Its base URL.
    url: String,
    /// Every message its webhook sent.
    heard: Arc<Mutex<Vec<Value>>>,
}

impl Alertmanager {
    /// Starts one with its config and storage in `dir`; every alert is its own group, sent a
    /// second after it arrives and again on resolve.
    fn start(dir: &std::path::Path) -> Self {
        let (hook, heard) = sink();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: sink\n  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sink\n    webhook_configs:\n      - url: {hook}\n        send_resolved: true\n"
            ),
        )
        .expect("config");
        let port = free_port();
        let process = Killed(
            Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start alertmanager"),
        );
        let addr = format!("127.0.0.1:{port}");
        wait_for("Alertmanager to be ready", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr).ok().and_then(|_| {
                let (status, _, _) = exchange(
                    &addr,
                    "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                (status == 200).then_some(())
            })
        });
        Alertmanager {
            _process: process,
            url: format!("http://{addr}"),
            heard,
        }
    }

    /// A netorch server on `database_url` that tells this Alertmanager: the receiver is added
    /// with `netorch-server receivers add` before the server first starts, as an operator sets
    /// one up.
    fn netorch(&self, database_url: &str) -> Server {
        let added = Command::new(server_binary())
            .args(["receivers", "add", "--name", "am", "--kind", "alertmanager"])
            .args(["--url", &self.url, "--database-url", database_url])
            .arg("--create-database")
            .output()
            .expect("netorch-server receivers add");
        assert!(added.status.success(), "{added:?}");
        let server = start_with(
            database_url,
            &[
                "--time-scale",
                "20",
                "--alert-interval-ms",
                "500",
                "--shutdown-grace",
                "0.2",
            ],
        );
        let (status, receivers) = request(&server.addr, "GET", "/receivers", None);
        assert_eq!(status, 200, "{receivers}");
        assert_eq!(receivers["receivers"][0]["url"], self.url.as_str());
        server
    }

    /// `amtool` run against this Alertmanager; its standard output.
    fn amtool(&self, args: &[&str]) -> String {
        let output = Command::new("amtool")
            .args(args)
            .args(["--alertmanager.url", &self.url])
            .output()
            .expect("amtool");
        assert!(output.status.success(), "amtool {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The alerts Alertmanager holds, from its own API.
    fn alerts(&self) -> Vec<Value> {
        let addr = self.url.trim_start_matches("http://");
        let (status, _, body) = exchange(
            addr,
            "GET /api/v2/alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

#[test]
fn a_real_alertmanager_hears_netorch_fire_and_resolve() {
    if !alertmanager_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let am = Alertmanager::start(dir.path());
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    let server = am.netorch(&url);
    let addr = server.addr.as_str();
    let (status, created) = request(
        addr,
        "POST",
        "/deployments",
        Some(
            &json!({"name": "watched", "target_node_count": 20, "alert_rules": {
            "bottleneck": {"window_seconds": 30, "for_seconds": 1, "resolve_after_seconds": 1}}}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let got = &am.heard;

    // The degraded nodes (ids ending in 8 or 9) fire; Alertmanager's webhook hears it.
    let fired = wait_for(
        "a firing alert at the webhook",
        Duration::from_secs(90),
        || {
            let firing = alerts_with(got, "firing");
            (!firing.is_empty()).then_some(firing)
        },
    );
    let (node, labels) = fired[0].clone();
    assert_eq!(labels["alertname"], "NetorchNodeBottleneck");
    assert_eq!(labels["deployment"], id.to_string());
    let (_, node_json) = request(
        addr,
        "GET",
        &format!("/deployments/{id}/nodes/{node}"),
        None,
    );
    let node_id = node_json["id"].as_i64().expect("node id");
    assert!(
        node_id % 10 >= 8,
        "node {node} ({node_id}) is one of the degraded"
    );
    // amtool lists it while it fires.
    let listed = am.amtool(&["alert", "query", "-o", "extended"]);
    assert!(
        listed.contains("NetorchNodeBottleneck") && listed.contains(&node),
        "{listed}"
    );
    let (_, outbox) = request(addr, "GET", "/notifications?state=delivered", None);
    assert!(
        !outbox["notifications"].as_array().expect("list").is_empty(),
        "{outbox}"
    );

    // The deployment goes: its alerts resolve, and Alertmanager says so.
    let (status, _) = request(addr, "DELETE", &format!("/deployments/{id}"), None);
    assert_eq!(status, 204);
    wait_for(
        "the resolve at the webhook",
        Duration::from_secs(60),
        || {
            alerts_with(got, "resolved")
                .into_iter()
                .any(|(n, l)| n == node && l == labels)
                .then_some(())
        },
    );
}

/// Pushes one sample per node every 300 ms until dropped: nodes 3 and 7 at 200 ms latency
/// while `slow` is set, every other node (and then they too) near 10 ms, a little apart so the
/// fleet has a spread to compare with.
struct Collector {
    slow: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pushed: Arc<std::sync::atomic::AtomicUsize>,
}

impl Collector {
    fn start(addr: &str, deployment: i64, nodes: u32) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let slow = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let pushed = Arc::new(AtomicUsize::new(0));
        let (addr, flags) = (
            addr.to_owned(),
            (slow.clone(), stop.clone(), pushed.clone()),
        );
        std::thread::spawn(move || {
            let (slow, stop, pushed) = flags;
            while !stop.load(Ordering::Relaxed) {
                let samples: Vec<Value> = (1..=nodes)
                    .map(|n| {
                        let degraded = slow.load(Ordering::Relaxed) && (n == 3 || n == 7);
                        json!({"node_id": format!("node-{n:03}"),
                               "latency_ms": if degraded { 200.0 } else { 10.0 + f64::from(n) / 2.0 },
                               "throughput_gbps": 9.0, "error_rate": 0.1})
                    })
                    .collect();
                let (status, body) = request(
                    &addr,
                    "POST",
                    &format!("/deployments/{deployment}/telemetry"),
                    Some(&json!({ "samples": samples })),
                );
                assert_eq!(status, 202, "{body}");
                pushed.fetch_add(samples.len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Collector { slow, stop, pushed }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Nodes slowed by pushed telemetry fire; an Alertmanager silence keeps one from the webhook;
/// healthy pushes resolve the other.
fn pushed_slow_nodes_fire_are_silenced_and_resolve(database_url: &str, dir: &std::path::Path) {
    use std::sync::atomic::Ordering;
    let am = Alertmanager::start(dir);
    let server = am.netorch(database_url);
    let addr = server.addr.as_str();
    let nodes = 10;
    let (status, created) = request(
        addr,
        "POST",
        "/deployments",
        Some(
            &json!({"name": "pushed", "target_node_count": nodes, "telemetry_origin": "pushed",
            "alert_rules": {"bottleneck": {
                "window_seconds": 20, "for_seconds": 1, "resolve_after_seconds": 1}}}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    wait_for("every node running", Duration::from_secs(60), || {
        let (_, d) = request(addr, "GET", &format!("/deployments/{id}"), None);
        (d["node_states"]["RUNNING"] == nodes).then_some(())
    });
    // Alertmanager silences node-007 of this deployment before anything fires.
    let deployment_matcher = format!("deployment={id}");
    let silence = am.amtool(&[
        "silence",
        "add",
        "--author=test",
        "--comment=maintenance on node-007",
        "--duration=1h",
        &deployment_matcher,
        "node=node-007",
    ]);
    assert!(!silence.trim().is_empty(), "amtool prints the silence's id");

    let collector = Collector::start(addr, id, nodes);
    let deployment_label = id.to_string();
    let fired = wait_for(
        "node-003 firing at the webhook",
        Duration::from_secs(60),
        || {
            alerts_with(&am.heard, "firing")
                .into_iter()
                .find(|(n, l)| n == "node-003" && l["deployment"] == deployment_label.as_str())
        },
    );
    let labels = fired.1;
    assert_eq!(labels["alertname"], "NetorchNodeBottleneck");
    // netorch fired node-007 too and Alertmanager holds it, suppressed by the silence.
    let suppressed = wait_for(
        "node-007 suppressed in Alertmanager",
        Duration::from_secs(30),
        || {
            am.alerts()
                .into_iter()
                .find(|a| a["labels"]["node"] == "node-007" && a["status"]["state"] == "suppressed")
        },
    );
    assert!(
        !suppressed["status"]["silencedBy"]
            .as_array()
            .expect("silencedBy")
            .is_empty(),
        "{suppressed}"
    );
    let (_, ours) = request(
        addr,
        "GET",
        &format!("/deployments/{id}/alerts?state=firing"),
        None,
    );
    let firing: Vec<&str> = ours["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["labels"]["node"].as_str())
        .collect();
    assert!(
        firing.contains(&"node-003") && firing.contains(&"node-007"),
        "{ours}"
    );
    // Alertmanager groups each alert alone and sends a group a second after it arrives: a few
    // seconds after node-003's message, node-007's would have come unless silenced.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !alerts_with(&am.heard, "firing")
            .iter()
            .any(|(n, _)| n == "node-007"),
        "the silenced alert reached the webhook"
    );

    // The pushes turn healthy: once the slow samples leave the 20-second window, node-003
    // resolves, and the webhook hears it with the same labels.
    collector.slow.store(false, Ordering::Relaxed);
    wait_for(
        "node-003's resolve at the webhook",
        Duration::from_secs(90),
        || {
            alerts_with(&am.heard, "resolved")
                .into_iter()
                .any(|(n, l)| n == "node-003" && l == labels)
                .then_some(())
        },
    );
    assert!(collector.pushed.load(Ordering::Relaxed) > 0);
    // Only pushes: the deployment holds no sample the simulated hardware wrote.
    let (_, samples) = request(
        addr,
        "GET",
        &format!("/deployments/{id}/telemetry?limit=1000"),
        None,
    );
    for sample in samples["samples"].as_array().expect("samples") {
        let latency = sample["latency_ms"].as_f64().expect("latency");
        assert!(
            latency == 200.0 || (10.0..=15.0).contains(&latency),
            "{sample}"
        );
    }
}

#[test]
fn pushed_slow_nodes_fire_are_silenced_and_resolve_on_sqlite() {
    if !alertmanager_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    pushed_slow_nodes_fire_are_silenced_and_resolve(&url, dir.path());
}

#[test]
fn pushed_slow_nodes_fire_are_silenced_and_resolve_on_postgres() {
    if !alertmanager_installed() {
        return;
    }
    let Some(db) = netorch_testkit::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    pushed_slow_nodes_fire_are_silenced_and_resolve(db.url(), dir.path());
}
