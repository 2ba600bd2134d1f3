//! A real Alertmanager (Debian's `prometheus-alertmanager`, on a loopback port, with a config
//! written here) hears netorch: the real `netorch-server` (embedded workers at time scale 20,
//! alerts every half second) fires for the simulated hardware's degraded nodes and tells an
//! `alertmanager` receiver; Alertmanager's webhook (a loopback sink here) receives `firing`,
//! `amtool alert query` lists the alert, and once the deployment is deleted its alerts resolve
//! and the webhook receives `resolved` for the same alert. Skipped (with a note) where
//! Alertmanager is not installed, unless `NETORCH_REQUIRE_ALERTMANAGER` is set (CI sets it).

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn installed(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
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

#[test]
fn a_real_alertmanager_hears_netorch_fire_and_resolve() {
    if !installed("prometheus-alertmanager") || !installed("amtool") {
        assert!(
            std::env::var_os("NETORCH_REQUIRE_ALERTMANAGER").is_none(),
            "NETORCH_REQUIRE_ALERTMANAGER is set but prometheus-alertmanager or amtool is missing"
        );
        eprintln!(
            "skipped: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, got) = sink();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: sink\n  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sink\n    webhook_configs:\n      - url: {hook}\n        send_resolved: true\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let am_url = format!("http://127.0.0.1:{port}");
    let _alertmanager = Killed(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    let am_addr = format!("127.0.0.1:{port}");
    wait_for("Alertmanager to be ready", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&am_addr).ok().and_then(|_| {
            let (status, _, _) = exchange(
                &am_addr,
                "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            (status == 200).then_some(())
        })
    });

    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    let server = start_with(
        &url,
        &[
            "--time-scale",
            "20",
            "--alert-interval-ms",
            "500",
            "--shutdown-grace",
            "0.2",
        ],
    );
    let addr = server.addr.as_str();
    let (status, receiver) = request(
        addr,
        "POST",
        "/receivers",
        Some(&json!({"name": "am", "kind": "alertmanager", "url": am_url})),
    );
    assert_eq!(status, 201, "{receiver}");
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

    // The degraded nodes (ids ending in 8 or 9) fire; Alertmanager's webhook hears it.
    let fired = wait_for(
        "a firing alert at the webhook",
        Duration::from_secs(90),
        || {
            let firing = alerts_with(&got, "firing");
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
    let query = Command::new("amtool")
        .args([
            "alert",
            "query",
            "--alertmanager.url",
            &am_url,
            "-o",
            "extended",
        ])
        .output()
        .expect("amtool");
    let listed = String::from_utf8_lossy(&query.stdout);
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
            alerts_with(&got, "resolved")
                .into_iter()
                .any(|(n, l)| n == node && l == labels)
                .then_some(())
        },
    );
}
