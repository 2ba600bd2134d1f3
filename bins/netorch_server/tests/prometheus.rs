//! A real Prometheus (Debian's `prometheus`, on a loopback port, with a config written here)
//! scrapes a small exporter the test serves (gauges with `deployment` and `node` labels for
//! netorch's three metrics, new values every scrape) and remote-writes to the real
//! `netorch-server`, a few samples a request so that a node's three series often arrive in
//! different requests. Once the exporter stops, netorch holds exactly the samples Prometheus
//! scraped (read back from Prometheus's own query API), no more, no fewer, with nothing refused;
//! on SQLite and, where `NETORCH_TEST_POSTGRES_URL` is set, PostgreSQL.
//!
//! Skipped (with a note) where Prometheus is not installed, unless `NETORCH_REQUIRE_PROMETHEUS`
//! is set (CI sets it).

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

fn prometheus_installed() -> bool {
    if installed("prometheus") {
        return true;
    }
    assert!(
        std::env::var_os("NETORCH_REQUIRE_PROMETHEUS").is_none(),
        "NETORCH_REQUIRE_PROMETHEUS is set but prometheus is missing"
    );
    eprintln!("skipped: prometheus is not installed (apt-get install prometheus)");
    false
}

/// A Prometheus scraping `target` every second and remote-writing to `netorch`, four samples a
/// request.
fn prometheus(dir: &std::path::Path, target: &str, netorch: &str) -> (Killed, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: switches\n    honor_labels: true\n\
             \x20   static_configs:\n      - targets: ['{target}']\n\
             remote_write:\n  - url: http://{netorch}/api/v1/write\n\
             \x20   write_relabel_configs:\n      - source_labels: [__name__]\n\
             \x20       regex: 'netorch_.*'\n        action: keep\n\
             \x20   queue_config:\n      batch_send_deadline: 1s\n      max_samples_per_send: 4\n\
             \x20     min_backoff: 100ms\n      max_backoff: 1s\n"
        ),
    )
    .expect("write config");
    let process = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let addr = format!("127.0.0.1:{port}");
    wait_for("Prometheus to be ready", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&addr).ok().and_then(|_| {
            let (status, _, _) = exchange(
                &addr,
                "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            (status == 200).then_some(())
        })
    });
    (process, addr)
}

/// (node name, milliseconds) → the three values.
type Readings = BTreeMap<(String, i64), [Option<f64>; 3]>;

/// Every sample Prometheus holds of netorch's metrics, from its query API.
fn scraped(prometheus: &str) -> Readings {
    let mut readings = Readings::new();
    for (index, metric) in ["latency_ms", "throughput_gbps", "error_rate"]
        .into_iter()
        .enumerate()
    {
        let (status, _, body) = exchange(
            prometheus,
            &format!(
                "GET /api/v1/query?query=netorch_{metric}%5B1h%5D HTTP/1.1\r\nHost: x\r\n\
                 Connection: close\r\n\r\n"
            ),
        );
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).expect("json");
        for series in body["data"]["result"].as_array().expect("matrix") {
            let node = series["metric"]["node"].as_str().expect("node").to_owned();
            for pair in series["values"].as_array().expect("values") {
                let at = (pair[0].as_f64().expect("time") * 1000.0).round() as i64;
                let value: f64 = pair[1].as_str().expect("value").parse().expect("number");
                readings.entry((node.clone(), at)).or_default()[index] = Some(value);
            }
        }
    }
    readings
}

/// Every sample netorch holds of `deployment`, as the same map.
fn stored(addr: &str, deployment: i64, names: &BTreeMap<i64, String>) -> Readings {
    let (status, body) = request(
        addr,
        "GET",
        &format!("/deployments/{deployment}/telemetry?limit=1000"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let node = names[&s["node_id"].as_i64().expect("node")].clone();
            let at = chrono::NaiveDateTime::parse_from_str(
                s["timestamp"].as_str().expect("timestamp"),
                "%Y-%m-%dT%H:%M:%S%.f",
            )
            .expect("time")
            .and_utc()
            .timestamp_millis();
            let value = |field: &str| s[field].as_f64();
            (
                (node, at),
                [
                    value("latency_ms"),
                    value("throughput_gbps"),
                    value("error_rate"),
                ],
            )
        })
        .collect()
}

fn prometheus_remote_writes_exactly_what_it_scraped(database_url: &str, dir: &std::path::Path) {
    let server = start_with(database_url, &["--workers", "none"]);
    let addr = server.addr.as_str();
    let (id, names) = exporter::pushed_deployment(addr, "edge-west", 3);

    let exporter = exporter::Exporter::start("edge-west", 3);
    let (_prometheus, prom) = prometheus(dir, &exporter.addr, addr);
    // A dozen scrapes, then the series end.
    wait_for("a dozen scrapes", Duration::from_secs(60), || {
        (scraped(&prom).len() >= 36).then_some(())
    });
    exporter.stop();
    std::thread::sleep(Duration::from_secs(2));
    let expected = scraped(&prom);
    assert!(expected.len() >= 36, "{} readings", expected.len());
    assert!(
        expected.values().all(|v| v.iter().all(Option::is_some)),
        "every scrape has the three metrics"
    );
    // Remote write trails the scrapes by a second or two.
    let got = wait_for(
        "netorch to hold what Prometheus scraped",
        Duration::from_secs(60),
        || {
            let got = stored(addr, id, &names);
            (got.len() >= expected.len()).then_some(got)
        },
    );
    assert_eq!(got, expected, "netorch holds exactly the scraped samples");

    // Nothing was refused: the write_relabel_configs keep netorch's series only, and the
    // staleness markers of the ended series are not readings.
    let (status, _, metrics) = exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{metrics}");
    let refused: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("netorch_ingest_rejected_total{protocol=\"prometheus_remote_write\"")
        })
        .filter(|l| !l.ends_with(" 0"))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    let written = format!(
        "netorch_telemetry_samples_written_total{{source=\"prometheus_remote_write\"}} {}",
        expected.len()
    );
    assert!(metrics.contains(&written), "{written} in:\n{metrics}");
}

#[test]
fn prometheus_remote_writes_exactly_what_it_scraped_on_sqlite() {
    if !prometheus_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    prometheus_remote_writes_exactly_what_it_scraped(&url, dir.path());
}

#[test]
fn prometheus_remote_writes_exactly_what_it_scraped_on_postgres() {
    if !prometheus_installed() {
        return;
    }
    let Some(db) = netorch_testkit::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    prometheus_remote_writes_exactly_what_it_scraped(db.url(), dir.path());
}
