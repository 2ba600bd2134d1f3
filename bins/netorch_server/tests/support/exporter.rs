//! A small Prometheus exporter on loopback for the collector tests: gauges of netorch's three
//! metrics for a deployment's nodes, new values every scrape, until stopped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A running exporter.
pub struct Exporter {
    /// Where it listens (`127.0.0.1:port`).
    pub addr: String,
    /// Set to serve no series any more (the series end, as a switch taken away).
    pub stopped: Arc<AtomicBool>,
    /// Scrapes answered with series so far: scrape `k` (from 0) served [`values`]`(k, n)`.
    pub served: Arc<AtomicU64>,
}

/// The values of scrape `k` for node `n` (1-based): latency, throughput, error rate; no two
/// scrapes of the first 105 alike.
pub fn values(k: u64, n: u64) -> [f64; 3] {
    [
        10.0 + (k % 7) as f64 + n as f64 * 0.25,
        9.0 + (k % 3) as f64 * 0.5,
        0.125 * ((k + n) % 5) as f64,
    ]
}

/// The scrape whose values for node `n` are `got`, if any of the first 105.
pub fn scrape_of(n: u64, got: [f64; 3]) -> Option<u64> {
    (0..105).find(|k| values(*k, n) == got)
}

impl Exporter {
    /// Serves `nodes` nodes (`node-001`, ...) of `deployment` (the `deployment` label).
    pub fn start(deployment: &str, nodes: u64) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let deployment = deployment.to_owned();
        let stopped = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (stop, count) = (Arc::clone(&stopped), Arc::clone(&served));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut body = String::new();
                if !stop.load(Ordering::SeqCst) {
                    let k = count.fetch_add(1, Ordering::SeqCst);
                    for (index, metric) in ["latency_ms", "throughput_gbps", "error_rate"]
                        .into_iter()
                        .enumerate()
                    {
                        body.push_str(&format!("# TYPE netorch_{metric} gauge\n"));
                        for n in 1..=nodes {
                            body.push_str(&format!(
                                "netorch_{metric}{{deployment=\"{deployment}\",node=\"node-{n:03}\"}} {}\n",
                                values(k, n)[index]
                            ));
                        }
                    }
                }
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Exporter {
            addr,
            stopped,
            served,
        }
    }

    /// Serves no series from now on.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Scrapes answered with series so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

/// A deployment of `nodes` nodes whose telemetry only collectors push, made on the server at
/// `addr`: its id, and its nodes' names by id.
pub fn pushed_deployment(
    addr: &str,
    name: &str,
    nodes: u32,
) -> (i64, std::collections::BTreeMap<i64, String>) {
    let (status, created) = super::request(
        addr,
        "POST",
        "/deployments",
        Some(&serde_json::json!({
            "name": name, "target_node_count": nodes, "telemetry_origin": "pushed"
        })),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let (_, listed) = super::request(addr, "GET", &format!("/deployments/{id}/nodes"), None);
    let names = listed["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["id"].as_i64().expect("id"),
                n["node_id"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    (id, names)
}
