//! Memory stays bounded under 64 concurrent senders of maximum-size bodies (issue 28): the real
//! `netorch-server`, its body limit at `NETORCH_MEMORY_BODY_BYTES` (default 64 KiB, so the test
//! stays quick in a debug build), takes 64 senders at once, each sending one of the protocols'
//! largest bodies (12 or 13 senders each): line protocol gzipped to the most it may decode to,
//! plain line protocol at the limit, remote write snappy-compressed likewise, OTLP gzipped
//! likewise, and the JSON push at its limit. Every point is valid and stored (once), so the
//! bodies wait for the one writer as a real fleet's would; a sender told 503 tries again, as
//! real ones do. Every body is stored in the end, nothing is answered 500, and the server's
//! peak resident memory over its memory before stays within what its push gate admits (so many
//! pushes at once, each its body and what it decodes to), whatever the number of senders.

mod support;

use netorch_api::collectors::otlp::messages as otlp;
use netorch_api::collectors::remote_write::{Sample, v1};
use prost::Message;
use std::io::Write;
use std::sync::{Arc, Barrier};
use support::*;

const SENDERS: usize = 64;

fn body_limit() -> usize {
    std::env::var("NETORCH_MEMORY_BODY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 10)
}

/// How much a compressed body may decode to (`DECODED_PER_BODY_BYTE`), less a margin.
fn decoded_limit(limit: usize) -> usize {
    limit * netorch_api::collectors::DECODED_PER_BODY_BYTE - 1024
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Points of nodes 1 to 3 of `deployment`, a millisecond apart, back from `newest`.
fn line_protocol(deployment: i64, newest: i64, bytes: usize) -> Vec<u8> {
    let mut text = String::with_capacity(bytes);
    for i in 0.. {
        let line = format!(
            "netorch,deployment={deployment},node=node-{:03} latency_ms={}.5,throughput_gbps=9.5,\
             error_rate=0.25 {}\n",
            i % 3 + 1,
            i % 50,
            newest - i / 3
        );
        if text.len() + line.len() > bytes {
            break;
        }
        text.push_str(&line);
    }
    text.into_bytes()
}

fn remote_write(deployment: i64, newest: i64, bytes: usize) -> Vec<u8> {
    let label = |name: &str, value: &str| v1::Label {
        name: name.to_owned(),
        value: value.to_owned(),
    };
    let mut request = v1::WriteRequest::default();
    'fill: for node in 1..=3 {
        for metric in ["latency_ms", "throughput_gbps", "error_rate"] {
            let mut series = v1::TimeSeries {
                labels: vec![
                    label("__name__", &format!("netorch_{metric}")),
                    label("deployment", &deployment.to_string()),
                    label("node", &format!("node-{node:03}")),
                ],
                ..Default::default()
            };
            for i in 0..(bytes / 9 / 11) as i64 {
                series.samples.push(Sample {
                    value: (i % 50) as f64 + 0.5,
                    timestamp: newest - i,
                });
            }
            request.timeseries.push(series);
            if request.encoded_len() > bytes {
                request.timeseries.pop();
                break 'fill;
            }
        }
    }
    request.encode_to_vec()
}

fn otlp_metrics(deployment: i64, newest: i64, bytes: usize) -> Vec<u8> {
    let text = |key: &str, value: String| otlp::KeyValue {
        key: key.to_owned(),
        value: Some(otlp::AnyValue {
            string_value: Some(value),
            ..Default::default()
        }),
    };
    let mut metrics = Vec::new();
    for metric in ["latency_ms", "throughput_gbps", "error_rate"] {
        let data_points = (0..(bytes / 3 / 60) as i64)
            .map(|i| otlp::NumberDataPoint {
                attributes: vec![text("node", format!("node-{:03}", i % 3 + 1))],
                time_unix_nano: u64::try_from(newest - i / 3).expect("positive") * 1_000_000,
                as_double: Some((i % 50) as f64 + 0.5),
                ..Default::default()
            })
            .collect();
        metrics.push(otlp::Metric {
            name: format!("netorch_{metric}"),
            gauge: Some(otlp::Numbers { data_points }),
            ..Default::default()
        });
    }
    let request = otlp::ExportMetricsServiceRequest {
        resource_metrics: vec![otlp::ResourceMetrics {
            resource: Some(otlp::Resource {
                attributes: vec![text("deployment", deployment.to_string())],
            }),
            scope_metrics: vec![otlp::ScopeMetrics { metrics }],
        }],
    };
    let mut encoded = request.encode_to_vec();
    encoded.truncate(encoded.len().min(bytes));
    // Cut at a point would be a bad body: encode anew with fewer points when it is too long.
    if encoded.len() == bytes {
        return otlp_metrics(deployment, newest, bytes * 9 / 10);
    }
    encoded
}

fn json_push(newest: i64, limit: usize) -> Vec<u8> {
    let mut samples = Vec::new();
    for i in 0..10_000i64 {
        samples.push(serde_json::json!({
            "node_id": format!("node-{:03}", i % 3 + 1),
            "timestamp": chrono::DateTime::from_timestamp_millis(newest - i / 3)
                .expect("time").to_rfc3339(),
            "latency_ms": (i % 50) as f64 + 0.5, "throughput_gbps": 9.5, "error_rate": 0.25,
        }));
        if i % 100 == 0 && serde_json::to_vec(&samples).expect("json").len() > limit - 20_000 {
            break;
        }
    }
    serde_json::to_vec(&serde_json::json!({ "samples": samples })).expect("json")
}

/// The snappy compression of the largest body `encode` makes (asked for at most `decoded`
/// bytes) that compresses to at most `limit` bytes: samples compress two to three times only.
fn snappy_within(limit: usize, encode: impl Fn(usize) -> Vec<u8>, decoded: usize) -> Vec<u8> {
    let mut asked = decoded;
    loop {
        let compressed = snap::raw::Encoder::new()
            .compress_vec(&encode(asked))
            .expect("snappy");
        if compressed.len() <= limit {
            return compressed;
        }
        asked = asked * limit / compressed.len() * 95 / 100;
    }
}

/// A raw `POST` with `headers`: its status.
fn post(addr: &str, path: &str, headers: &str, body: &[u8]) -> u16 {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange_bytes(addr, &raw).0
}

/// The process's peak and current resident memory, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn sixty_four_senders_of_the_largest_bodies_leave_memory_bounded() {
    let limit = body_limit();
    let decoded = decoded_limit(limit);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    let server = start_with(
        &url,
        &["--workers", "none", "--max-body-bytes", &limit.to_string()],
    );
    let addr = server.addr.clone();
    let pid = server.child.id();
    let (id, _) = exporter::pushed_deployment(&addr, "bulk", 3);
    let newest = chrono::Utc::now().timestamp_millis() - 1_000;

    let bodies: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "/api/v2/write?precision=ms",
            "Content-Encoding: gzip\r\n".to_owned(),
            gzip(&line_protocol(id, newest, decoded)),
        ),
        (
            "/api/v2/write?precision=ms",
            String::new(),
            line_protocol(id, newest - 500_000, limit - 1024),
        ),
        (
            "/api/v1/write",
            "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
             X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                .to_owned(),
            snappy_within(limit, |bytes| remote_write(id, newest, bytes), decoded),
        ),
        (
            "/v1/metrics",
            "Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n".to_owned(),
            gzip(&otlp_metrics(id, newest, decoded)),
        ),
        (
            &*Box::leak(format!("/deployments/{id}/telemetry").into_boxed_str()),
            "Content-Type: application/json\r\n".to_owned(),
            json_push(newest - 1_000_000, limit),
        ),
    ];
    for (path, _, body) in &bodies {
        assert!(body.len() <= limit, "{path}: {} bytes", body.len());
    }
    // Warm up: each body once (the allocator's arenas, the statements, the first rows).
    for (path, headers, body) in &bodies {
        let status = post(&addr, path, headers, body);
        assert!(
            status == 204 || status == 202 || status == 200,
            "{path}: {status}"
        );
    }
    let (_, before) = memory_kib(pid);

    let bodies = Arc::new(bodies);
    let start = Arc::new(Barrier::new(SENDERS));
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (bodies, start, addr) = (Arc::clone(&bodies), Arc::clone(&start), addr.clone());
            std::thread::spawn(move || {
                start.wait();
                let (mut statuses, mut finals) = (Vec::new(), Vec::new());
                // One body each, the five kinds in turn (a run of every kind from every sender
                // takes minutes in a debug build; each kind is sent by 12 or 13 at once).
                for k in 0..1 {
                    let (path, headers, body) = &bodies[(sender + k) % bodies.len()];
                    // As the senders do: a 503 or 429 is tried again after a pause.
                    for _ in 0..100 {
                        let status = post(&addr, path, headers, body);
                        statuses.push((*path, status));
                        if status != 503 && status != 429 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(500));
                    }
                    finals.push(statuses.last().map_or(0, |(_, status)| *status));
                }
                (statuses, finals)
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    let mut finals = Vec::new();
    for sender in senders {
        let (tried, ended) = sender.join().expect("sender");
        for (path, status) in tried {
            *statuses.entry((path, status)).or_insert(0) += 1;
        }
        finals.extend(ended);
    }
    let (peak, after) = memory_kib(pid);
    let growth = peak.saturating_sub(before);
    println!(
        "64 senders, {} kinds of bodies of at most {} KiB (decoding to at most {} KiB): resident {} MiB \
         before, peak {} MiB (+{} MiB), {} MiB after; statuses {statuses:?}",
        bodies.len(),
        limit >> 10,
        decoded >> 10,
        before >> 10,
        peak >> 10,
        growth >> 10,
        after >> 10,
    );
    // No answer but stored or "come back later" (503, which the senders retry), and every
    // sender's body stored in the end.
    assert!(
        statuses
            .keys()
            .all(|(_, status)| [200, 202, 204, 503].contains(status)),
        "{statuses:?}"
    );
    assert_eq!(finals.len(), SENDERS);
    assert!(
        finals.iter().all(|status| [200, 202, 204].contains(status)),
        "{statuses:?}"
    );
    // What the gate admits at once (DEFAULT_CONCURRENT_PUSHES), each its body and what it
    // decodes to, twenty times over for the decoded points, the allocator and the statements;
    // and 32 MiB for the connections' caches. Without the gate, 64 senders of 256 KiB bodies
    // took 313 MiB (and SQLite's writers timed out: 500s).
    let bound =
        32 * 1024 + (netorch_api::DEFAULT_CONCURRENT_PUSHES * 20 * (limit + decoded) / 1024) as u64;
    assert!(
        growth < bound,
        "resident memory grew by {growth} KiB (bound {bound} KiB)"
    );
}
