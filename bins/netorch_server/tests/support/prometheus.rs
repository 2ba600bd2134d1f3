//! A real Prometheus (Debian's `prometheus`) for the collector tests: started on a loopback
//! port with a config the test writes, and read back through its query API.

use super::{Killed, exchange, free_port, wait_for};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether Prometheus is installed; a test without it is skipped (with a note), unless
/// `NETORCH_REQUIRE_PROMETHEUS` is set (CI sets it).
pub fn installed() -> bool {
    if super::installed("prometheus") {
        return true;
    }
    assert!(
        std::env::var_os("NETORCH_REQUIRE_PROMETHEUS").is_none(),
        "NETORCH_REQUIRE_PROMETHEUS is set but prometheus is missing"
    );
    eprintln!("skipped: prometheus is not installed (apt-get install prometheus)");
    false
}

/// A Prometheus running `config` (written to `dir/prometheus.yml`, its database in
/// `dir/tsdb`), once ready: the process, and its address.
pub fn start(dir: &Path, config: &str) -> (Killed, String) {
    let port = free_port();
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).expect("write config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let process = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
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

/// (node label, milliseconds) → the three values (latency, throughput, error rate).
pub type Readings = BTreeMap<(String, i64), [Option<f64>; 3]>;

/// Every sample the Prometheus at `addr` holds of netorch's three metrics (the last hour),
/// by the series' `node` label.
pub fn readings(addr: &str) -> Readings {
    let mut readings = Readings::new();
    for (index, metric) in ["latency_ms", "throughput_gbps", "error_rate"]
        .into_iter()
        .enumerate()
    {
        let (status, _, body) = exchange(
            addr,
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

/// Every sample netorch (at `addr`, read with `token`, "" for none) holds of `deployment`, as
/// the same map, its nodes named by `names` (id → the name Prometheus's `node` label has).
pub fn stored(addr: &str, token: &str, deployment: i64, names: &BTreeMap<i64, String>) -> Readings {
    let (status, body) = super::request_as(
        addr,
        token,
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

/// The server's counts of points `protocol` refused that are not 0, from its `/metrics` (read
/// with `token`, "" for none).
pub fn refused(addr: &str, token: &str, protocol: &str) -> Vec<String> {
    let authorization = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let (status, _, metrics) = exchange(
        addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}Connection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{metrics}");
    let prefix = format!("netorch_ingest_rejected_total{{protocol=\"{protocol}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect()
}
