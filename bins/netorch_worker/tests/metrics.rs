//! The real `netorch-worker` binary with `--metrics-bind` on port 0: its `/metrics` counts the
//! rollout it works through, and passes `promtool check metrics`.

use netorch_domain::NewDeployment;
use netorch_storage::{Database, deployments};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `GET /metrics` at `addr`: the body.
fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

/// The worker process, killed (and reaped) when the test ends, pass or fail.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    netorch_testkit::exposed_sample(text, series)
}

#[test]
fn a_workers_metrics_count_the_rollout_it_works_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("worker.db").display());
    let db = Database::connect(&url).expect("database");
    let new = NewDeployment {
        name: "scraped".into(),
        description: None,
        target_node_count: 10,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    deployments::create(
        &mut db.get().expect("connection"),
        &new,
        None,
        chrono::Utc::now(),
    )
    .expect("create");

    let mut worker = Running(
        Command::new(env!("CARGO_BIN_EXE_netorch-worker"))
            .args(["--database-url", &url, "--time-scale", "50"])
            .args(["--metrics-bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start netorch-worker"),
    );
    let stderr = worker.0.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the worker logs where its metrics are")
            .expect("log line");
        if let Some(rest) = line.split("metrics at http://").nth(1) {
            break rest.trim_end_matches("/metrics").to_owned();
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));

    let started = Instant::now();
    let text = loop {
        let text = scrape(&addr);
        let running = sample(
            &text,
            "netorch_lifecycle_transitions_total{state=\"RUNNING\"}",
        );
        let sampled = sample(
            &text,
            "netorch_telemetry_samples_written_total{source=\"worker\"}",
        );
        if running == Some(10.0) && sampled.is_some_and(|n| n >= 10.0) {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the rollout did not show:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(worker);
    assert_eq!(
        sample(
            &text,
            "netorch_lifecycle_transitions_total{state=\"PROVISIONING\"}"
        ),
        Some(10.0)
    );
    assert!(sample(&text, "netorch_database_connections_max").is_some_and(|n| n >= 1.0));
    // A worker reports its own work only: the fleet gauges are the server's.
    assert_eq!(sample(&text, "netorch_nodes{state=\"RUNNING\"}"), None);
    assert_eq!(sample(&text, "netorch_http_requests_in_flight"), Some(0.0));

    netorch_testkit::promtool(&["check", "metrics"], &text);
}
