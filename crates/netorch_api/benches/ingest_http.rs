//! Samples a second through each way in over HTTP (the JSON push, Prometheus remote write,
//! InfluxDB line protocol, OTLP/HTTP), beside the storage's own floor measured in the same run
//! (`telemetry::insert_batch` of the same samples in the same batches), on a SQLite file, or on
//! PostgreSQL with `NETORCH_BENCH_POSTGRES=1` (and `NETORCH_TEST_POSTGRES_URL`).
//!
//! The server is netorch's own (`server::serve`, two HTTP workers) in this process; the load
//! client is not the bottleneck: its bodies are encoded before the clock starts, and
//! `CONNECTIONS` threads each keep one connection and send the next request as soon as the
//! answer arrives. Every request carries [`per_request`] samples (a node's three metrics count as
//! one), each new.
//!
//! ```sh
//! cargo bench -p netorch_api --bench ingest_http
//! NETORCH_BENCH_PER_REQUEST=10000 cargo bench -p netorch_api --bench ingest_http
//! NETORCH_BENCH_POSTGRES=1 NETORCH_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p netorch_api --bench ingest_http
//! ```

use actix_web::{App, web};
use chrono::{DateTime, Duration, Utc};
use netorch_api::ApiState;
use netorch_api::collectors::otlp::messages as otlp;
use netorch_api::collectors::remote_write::{Sample, v1};
use netorch_domain::{DeploymentId, Metrics, NewDeployment, NewSample, NodeId};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{deployments, nodes, telemetry};
use netorch_testkit::TestDatabase;
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

const NODES: usize = 10_000;
const SAMPLES: usize = 200_000;
const CONNECTIONS: usize = 4;

/// Samples a request (`NETORCH_BENCH_PER_REQUEST`: 1,000 by default, as Prometheus sends; at
/// most 10,000, the JSON push's limit, and a divisor of the fleet).
fn per_request() -> usize {
    std::env::var("NETORCH_BENCH_PER_REQUEST")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| (1..=NODES).contains(n) && NODES.is_multiple_of(*n))
        .unwrap_or(1_000)
}

/// One request, encoded: its head and body.
struct Encoded {
    head: String,
    body: Vec<u8>,
}

/// The time of the samples of request `i` of way `way`: way `way` in its own hour of the last
/// day, request `i` in its own 5 s slot (a slot holds one request of each tenth of the nodes).
fn time_of(base: DateTime<Utc>, way: usize, i: usize) -> DateTime<Utc> {
    base + Duration::hours(way as i64 * 3)
        + Duration::seconds(5 * (i / (NODES / per_request())) as i64)
}

/// The nodes of request `i`.
fn nodes_of(fleet: &[NodeId], i: usize) -> &[NodeId] {
    let per_request = per_request();
    let start = (i % (NODES / per_request)) * per_request;
    &fleet[start..start + per_request]
}

fn values(node: NodeId) -> [f64; 3] {
    [10.0 + (node.get() % 10) as f64, 9.5, 0.125]
}

fn request(path: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Encoded {
    let encoding = encoding.map_or(String::new(), |e| format!("Content-Encoding: {e}\r\n"));
    Encoded {
        head: format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
             {encoding}Content-Length: {}\r\n\r\n",
            body.len()
        ),
        body,
    }
}

fn json_push(deployment: DeploymentId, fleet: &[NodeId], at: DateTime<Utc>, i: usize) -> Encoded {
    let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let samples: Vec<serde_json::Value> = nodes_of(fleet, i)
        .iter()
        .map(|node| {
            let [l, t, e] = values(*node);
            serde_json::json!({"node_id": node.get(), "timestamp": stamp, "latency_ms": l,
                               "throughput_gbps": t, "error_rate": e})
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "samples": samples })).expect("json");
    request(
        &format!("/deployments/{deployment}/telemetry"),
        "application/json",
        None,
        body,
    )
}

fn remote_write(
    deployment: DeploymentId,
    fleet: &[NodeId],
    at: DateTime<Utc>,
    i: usize,
) -> Encoded {
    let label = |name: &str, value: String| v1::Label {
        name: name.into(),
        value,
    };
    let timeseries = nodes_of(fleet, i)
        .iter()
        .flat_map(|node| {
            ["latency_ms", "throughput_gbps", "error_rate"]
                .into_iter()
                .zip(values(*node))
                .map(move |(metric, value)| v1::TimeSeries {
                    labels: vec![
                        label("__name__", format!("netorch_{metric}")),
                        label("deployment", deployment.to_string()),
                        label("node", node.get().to_string()),
                    ],
                    samples: vec![Sample {
                        value,
                        timestamp: at.timestamp_millis(),
                    }],
                    histograms: Vec::new(),
                })
        })
        .collect();
    let raw = v1::WriteRequest { timeseries }.encode_to_vec();
    let body = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy");
    request(
        "/api/v1/write",
        "application/x-protobuf",
        Some("snappy"),
        body,
    )
}

fn line_protocol(
    deployment: DeploymentId,
    fleet: &[NodeId],
    at: DateTime<Utc>,
    i: usize,
) -> Encoded {
    let mut body = String::new();
    for node in nodes_of(fleet, i) {
        let [l, t, e] = values(*node);
        body.push_str(&format!(
            "netorch,deployment={deployment},node={} latency_ms={l},throughput_gbps={t},\
             error_rate={e} {}\n",
            node.get(),
            at.timestamp_millis()
        ));
    }
    request(
        "/api/v2/write?precision=ms",
        "text/plain",
        None,
        body.into_bytes(),
    )
}

fn otlp_metrics(
    deployment: DeploymentId,
    fleet: &[NodeId],
    at: DateTime<Utc>,
    i: usize,
) -> Encoded {
    let text = |key: &str, value: String| otlp::KeyValue {
        key: key.into(),
        value: Some(otlp::AnyValue {
            string_value: Some(value),
            int_value: None,
        }),
    };
    let metrics = ["latency_ms", "throughput_gbps", "error_rate"]
        .into_iter()
        .enumerate()
        .map(|(index, metric)| otlp::Metric {
            name: format!("netorch_{metric}"),
            gauge: Some(otlp::Numbers {
                data_points: nodes_of(fleet, i)
                    .iter()
                    .map(|node| otlp::NumberDataPoint {
                        attributes: vec![text("node", node.get().to_string())],
                        time_unix_nano: u64::try_from(at.timestamp_nanos_opt().expect("nanos"))
                            .expect("after 1970"),
                        as_double: Some(values(*node)[index]),
                        as_int: None,
                    })
                    .collect(),
            }),
            ..Default::default()
        })
        .collect();
    let body = otlp::ExportMetricsServiceRequest {
        resource_metrics: vec![otlp::ResourceMetrics {
            resource: Some(otlp::Resource {
                attributes: vec![text("deployment", deployment.to_string())],
            }),
            scope_metrics: vec![otlp::ScopeMetrics { metrics }],
        }],
    }
    .encode_to_vec();
    request("/v1/metrics", "application/x-protobuf", None, body)
}

/// Sends `requests` over `CONNECTIONS` keep-alive connections; the seconds it took.
fn send_all(addr: SocketAddr, requests: Vec<Encoded>) -> f64 {
    let mut shares: Vec<Vec<Encoded>> = (0..CONNECTIONS).map(|_| Vec::new()).collect();
    for (i, encoded) in requests.into_iter().enumerate() {
        shares[i % CONNECTIONS].push(encoded);
    }
    let started = Instant::now();
    let threads: Vec<_> = shares
        .into_iter()
        .map(|share| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                for encoded in share {
                    stream.write_all(encoded.head.as_bytes()).expect("head");
                    stream.write_all(&encoded.body).expect("body");
                    let mut status = String::new();
                    reader.read_line(&mut status).expect("status");
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).expect("header");
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().expect("length");
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("body");
                    let code = status.split_whitespace().nth(1).unwrap_or_default();
                    assert!(
                        code.starts_with('2'),
                        "{status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client");
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    // SQLite by default; the PostgreSQL server of NETORCH_TEST_POSTGRES_URL (a fresh schema)
    // with NETORCH_BENCH_POSTGRES=1.
    let t = if std::env::var_os("NETORCH_BENCH_POSTGRES").is_some() {
        TestDatabase::postgres().expect("NETORCH_BENCH_POSTGRES needs NETORCH_TEST_POSTGRES_URL")
    } else {
        TestDatabase::sqlite()
    };
    println!(
        "backend: {}",
        if t.db.backend() == netorch_storage::Backend::Postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let db = t.db.clone();
    let now = Utc::now();
    let mut conn = db.get().expect("connection");
    let mut new = NewDeployment::new("bench", NODES as u32);
    new.telemetry = netorch_domain::TelemetryOrigin::Pushed;
    let deployment = deployments::create(&mut conn, &new, None, now)
        .expect("create")
        .id;
    let fleet: Vec<NodeId> = nodes::list(&mut conn, deployment, &NodeFilter::default())
        .expect("nodes")
        .nodes
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(fleet.len(), NODES);
    let base = now - Duration::hours(20);

    // The server, in this process, on a free loopback port.
    let (tx, rx) = std::sync::mpsc::channel();
    let state =
        web::Data::new(ApiState::new(db.clone(), NODES as u32).with_max_body_bytes(64 << 20));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let app_state = state.clone();
            let serving = netorch_api::server::serve(
                listener,
                state,
                netorch_api::server::ServeOptions { workers: 2 },
                move || {
                    App::new()
                        .app_data(app_state.clone())
                        .configure(netorch_api::configure)
                },
            )
            .expect("serve");
            tx.send(serving.addr()).expect("address");
            let (server, _shutdown) = serving.into_parts();
            let _ = server.await;
        });
    });
    let addr = rx.recv().expect("address");

    let per_request = per_request();
    let requests = SAMPLES / per_request;
    println!(
        "ingest over HTTP, SQLite, {NODES} nodes, {requests} requests of {per_request} samples, \
         {CONNECTIONS} connections:"
    );
    type Encode = fn(DeploymentId, &[NodeId], DateTime<Utc>, usize) -> Encoded;
    let ways: [(&str, Encode); 4] = [
        ("JSON push", json_push),
        ("Prometheus remote write", remote_write),
        ("InfluxDB line protocol", line_protocol),
        ("OTLP/HTTP protobuf", otlp_metrics),
    ];
    let total = SAMPLES as f64;
    for (way, (name, encode)) in ways.into_iter().enumerate() {
        let encoded: Vec<Encoded> = (0..requests)
            .map(|i| encode(deployment, &fleet, time_of(base, way, i), i))
            .collect();
        let bytes: usize = encoded.iter().map(|r| r.body.len()).sum();
        let seconds = send_all(addr, encoded);
        println!(
            "  {name:<26} {:>9.0} samples/s  ({:.2} s, {:.1} KB a request)",
            total / seconds,
            seconds,
            bytes as f64 / requests as f64 / 1024.0
        );
    }
    // The floor: the same samples in the same batches, straight into storage.
    let batches: Vec<Vec<NewSample>> = (0..requests)
        .map(|i| {
            let at = time_of(base, ways.len(), i);
            nodes_of(&fleet, i)
                .iter()
                .map(|node| {
                    let [l, t, e] = values(*node);
                    NewSample {
                        node_id: *node,
                        deployment_id: deployment,
                        timestamp: at,
                        metrics: Metrics {
                            latency_ms: l,
                            throughput_gbps: t,
                            error_rate: e,
                        },
                    }
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for batch in &batches {
        telemetry::insert_batch(&mut conn, batch).expect("insert");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {:<26} {:>9.0} samples/s  ({seconds:.2} s): the floor",
        "storage (insert_batch)",
        total / seconds
    );
    let stored = telemetry::count(&mut conn, deployment).expect("count");
    assert_eq!(stored as usize, SAMPLES * (ways.len() + 1));
}
