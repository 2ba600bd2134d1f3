//! End to end: the real `netorch-server` binary on port 0 with embedded workers at a high time
//! scale, driven over HTTP until a deployment runs, reports telemetry and bottlenecks, then
//! stopped with SIGTERM.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 exchange: the status and the JSON body.
fn request(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let payload = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start(database_url: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netorch-server"))
        .args([
            "--database-url",
            database_url,
            "--bind",
            "127.0.0.1:0",
            "--time-scale",
            "50",
        ])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netorch-server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server logs where it listens")
            .expect("log line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .trim_end_matches(',')
                .to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most 30 s.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_deployment_runs_reports_telemetry_and_bottlenecks_then_the_server_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("e2e.db").display());
    let mut server = start(&url);
    let addr = server.addr.clone();

    let (status, created) = request(
        &addr,
        "POST",
        "/deployments",
        Some(&json!({"name": "e2e", "target_node_count": 20})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");

    // Deployment 1, ids 1..20: (id + 1) % 20 == 0 fails node 19; the rest run.
    let states = eventually("every node to settle", || {
        let (_, detail) = request(&addr, "GET", &format!("/deployments/{id}"), None);
        let states = detail["node_states"].clone();
        (states["RUNNING"].as_i64().unwrap_or(0) + states["FAILED"].as_i64().unwrap_or(0) == 20)
            .then_some(states)
    });
    assert_eq!(
        (states["RUNNING"].as_i64(), states["FAILED"].as_i64()),
        (Some(19), Some(1))
    );

    eventually("telemetry from the running nodes", || {
        let (_, samples) = request(
            &addr,
            "GET",
            &format!("/deployments/{id}/telemetry?limit=1000"),
            None,
        );
        (samples["total"].as_i64().unwrap_or(0) >= 19 * 2).then_some(())
    });
    let report = eventually("the degraded nodes to be found", || {
        let (_, report) = request(
            &addr,
            "GET",
            &format!("/deployments/{id}/bottlenecks"),
            None,
        );
        (report["total_bottlenecks"].as_i64() == Some(3)).then_some(report)
    });
    let mut names: Vec<&str> = report["bottlenecks"]
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["node_identifier"].as_str().unwrap_or(""))
        .collect();
    names.sort_unstable();
    // Nodes 8, 9 and 18 are degraded; 19 failed and sends nothing.
    assert_eq!(names, vec!["node-008", "node-009", "node-018"]);

    let (_, health) = request(&addr, "GET", "/health", None);
    assert_eq!(
        (
            health["status"].as_str(),
            health["active_workers"].as_bool()
        ),
        (Some("healthy"), Some(true))
    );

    // SIGTERM: the server drains and exits 0.
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = eventually("the server to exit", || {
        server.child.try_wait().expect("wait")
    });
    assert!(exit.success(), "{exit:?}");
}
