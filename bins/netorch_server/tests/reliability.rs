//! The reliability defects found by rerunning the chaos experiments (issue 25), each reproduced
//! against the real `netorch-server` binary on port 0: pushes failing while a new PostgreSQL
//! database gets its first partitions, readiness that flapped on a full disk, errors actix
//! answered with an empty body, connections reset in the last instant of a drain, a stalled
//! upload that held the exit, and lock errors logged at the start of a new SQLite file.
//! docs/RELIABILITY.md names each guarantee with its test.

mod support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::*;

netorch_testkit::backend_tests!(pushes_racing_a_new_worker_on_a_new_database_all_succeed);

/// A new database, pushers of one-sample batches without timestamps, and a worker that starts
/// a second later and makes the time partitions (on PostgreSQL) while they push: no push may
/// fail. (Before the fix, about 1 % did, with 500 `violates partition constraint`.)
fn pushes_racing_a_new_worker_on_a_new_database_all_succeed(t: &netorch_testkit::TestDatabase) {
    let url = t.url().to_owned();
    let server = start_with(&url, &["--workers", "none"]);
    let addr = server.addr.clone();
    let id = create(&addr, "race", 50);
    let (_, nodes) = request(&addr, "GET", &format!("/deployments/{id}/nodes"), None);
    let nodes: Vec<i64> = nodes["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect();
    let stop = AtomicBool::new(false);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let worker = std::thread::scope(|scope| {
        for pusher in 0..8 {
            let (addr, nodes, stop, ok, failed) = (&addr, &nodes, &stop, &ok, &failed);
            scope.spawn(move || {
                let mut i = pusher;
                while !stop.load(Ordering::SeqCst) {
                    i += 8;
                    let node = nodes[i % nodes.len()];
                    let body = json!({"samples": [{"node_id": node, "latency_ms": 1.0, "throughput_gbps": 9.0, "error_rate": 0.1}]});
                    let (status, answer) =
                        request(addr, "POST", &format!("/deployments/{id}/telemetry"), Some(&body));
                    if status == 202 {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        eprintln!("push answered {status}: {answer}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs(1));
        // The worker: a second server on the same database, with the embedded workers.
        let worker = start_with(&url, &["--time-scale", "1", "--shutdown-grace", "0"]);
        eventually("the worker's first telemetry tick", || {
            let (_, health) = request(&worker.addr, "GET", "/health", None);
            (health["active_workers"] == true).then_some(())
        });
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        worker
    });
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert_eq!(failed, 0, "{failed} of {} pushes failed", ok + failed);
    assert!(ok > 100, "{ok} pushes");
    drop(worker);
}

/// Pushes of 5,000 samples each until the database is full; its id and the nodes.
fn fill(addr: &str, nodes: usize) -> (i64, Vec<i64>) {
    let filler = create(addr, "filler", nodes as u32);
    let (_, listed) = request(addr, "GET", &format!("/deployments/{filler}/nodes"), None);
    let ids: Vec<i64> = listed["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect();
    let mut millis = (chrono::Utc::now() - chrono::Duration::hours(20)).timestamp_millis();
    for _ in 0..2_000 {
        let samples: Vec<Value> = (0..5_000)
            .map(|i| {
                millis += 1;
                json!({"node_id": ids[i % ids.len()], "timestamp": millis as f64 / 1000.0,
                       "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0})
            })
            .collect();
        let (status, body) = request(
            addr,
            "POST",
            &format!("/deployments/{filler}/telemetry"),
            Some(&json!({ "samples": samples })),
        );
        if status == 507 {
            return (filler, ids);
        }
        assert_eq!(status, 202, "{body}");
    }
    panic!("the database never filled");
}

#[test]
fn readiness_holds_while_a_push_does_not_fit_and_clears_once_one_does() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let server = start_with(db.url(), &["--workers", "none", "--sqlite-max-mb", "8"]);
    let addr = server.addr.clone();
    let keep = create(&addr, "keep", 1);
    let (filler, ids) = fill(&addr, 100);
    // Small writes fit between the large ones that do not: readiness must not follow them.
    let mut ready_answers = Vec::new();
    for round in 0..20 {
        let small = json!({"samples": [{"node_id": ids[round % ids.len()], "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0}]});
        let _ = request(
            &addr,
            "POST",
            &format!("/deployments/{filler}/telemetry"),
            Some(&small),
        );
        let (status, body) = request(&addr, "GET", "/ready", None);
        ready_answers.push((
            status,
            body["status"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    assert!(
        ready_answers
            .iter()
            .all(|(status, said)| *status == 503 && said == "writes_failing"),
        "{ready_answers:?}"
    );
    let (_, health) = request(&addr, "GET", "/health", None);
    assert_eq!(health["database"], "writes_failing");
    // Room for any push again: readiness comes back by itself.
    let (status, _) = request(&addr, "DELETE", &format!("/deployments/{filler}"), None);
    assert_eq!(status, 204);
    let (status, body) = request(&addr, "GET", "/ready", None);
    assert_eq!((status, body), (200, json!({"status": "ready"})));
    let (status, _) = request(&addr, "POST", &format!("/deployments/{keep}/pause"), None);
    assert_eq!(status, 200);
}

#[test]
fn requests_actix_cannot_parse_are_answered_in_json_and_counted() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let server = start_with(db.url(), &["--workers", "none", "--access-log"]);
    let addr = server.addr.clone();
    let long_path = format!(
        "GET /{} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        "a".repeat(100_000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\n{}\r\n",
        "X-A: b\r\n".repeat(100)
    );
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nX-A: {}\r\n\r\n",
        "b".repeat(200_000)
    );
    let smuggled = format!(
        "POST /deployments HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    for (raw, want) in [
        (long_path.as_bytes(), 414),
        (b"GARBAGE\r\n\r\n".as_slice(), 400),
        (b"GET / HTTP/9.9\r\n\r\n".as_slice(), 400),
        (many_headers.as_bytes(), 431),
        (huge_header.as_bytes(), 431),
        (smuggled.as_bytes(), 400),
    ] {
        let (status, text) = exchange_bytes(&addr, raw);
        assert_eq!(status, want, "{}", &text[..text.len().min(300)]);
        let body = json_body(&text);
        assert!(
            body["detail"].is_string() && body["request_id"].is_string(),
            "{body}"
        );
        assert_eq!(
            header(&text, "x-request-id").as_deref(),
            body["request_id"].as_str(),
            "{text}"
        );
    }
    // A head that stops arriving: 408 in JSON once its time is up.
    let started = Instant::now();
    let (status, text) = exchange_bytes(&addr, b"GET /health HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(status, 408, "{text}");
    json_body(&text);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server goes on, and counted them.
    let (status, _) = request(&addr, "GET", "/health", None);
    assert_eq!(status, 200);
    let (_, _, metrics) = get_text(&addr, "/metrics", "scrape");
    let malformed: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("netorch_http_requests_total{route=\"malformed\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(malformed, 7.0, "{metrics}");
}

#[derive(Debug, Default)]
struct Outcomes {
    /// Answered (any status).
    answered: u64,
    /// Refused at connect: the server no longer listens, which loses nothing.
    refused: u64,
    /// Written whole, then the connection ended without an answer: must never happen.
    dropped: u64,
}

#[test]
fn connections_opened_as_a_drain_ends_are_refused_or_answered_never_dropped() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let mut server = start_with(db.url(), &["--workers", "none", "--shutdown-grace", "0.5"]);
    let addr = server.addr.clone();
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let outcomes: Vec<Outcomes> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16)
            .map(|_| {
                let (addr, stop, answered) = (&addr, &stop, &answered);
                scope.spawn(move || {
                    let mut tally = Outcomes::default();
                    while !stop.load(Ordering::SeqCst) {
                        // A new connection for every request, as clients that send
                        // `Connection: close` (and many balancers' health checks) do.
                        let Ok(mut stream) = TcpStream::connect(addr.as_str()) else {
                            tally.refused += 1;
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        };
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                        let request = format!(
                            "GET /deployments HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                        );
                        if stream.write_all(request.as_bytes()).is_err() {
                            continue;
                        }
                        let mut response = Vec::new();
                        let _ = stream.read_to_end(&mut response);
                        if response.starts_with(b"HTTP/1.1 ") {
                            tally.answered += 1;
                            answered.fetch_add(1, Ordering::SeqCst);
                        } else {
                            tally.dropped += 1;
                        }
                    }
                    tally
                })
            })
            .collect();
        eventually("load", || {
            (answered.load(Ordering::SeqCst) > 300).then_some(())
        });
        sigterm(&server);
        let exit = eventually("the server to exit", || {
            server.child.try_wait().expect("wait")
        });
        assert!(exit.success(), "{exit:?}");
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect()
    });
    let dropped: u64 = outcomes.iter().map(|o| o.dropped).sum();
    let refused: u64 = outcomes.iter().map(|o| o.refused).sum();
    // At most the one connection the kernel may reset if it completes its handshake in the
    // microseconds between the server's last look at its queue and the socket's shutdown (the
    // old server reset 25 to 36 a run).
    assert!(
        dropped <= 1,
        "requests written whole and never answered: {outcomes:?}"
    );
    assert!(
        refused > 0,
        "the server stopped listening before it stopped: {outcomes:?}"
    );
}

#[test]
fn a_stalled_upload_neither_holds_the_exit_nor_goes_unanswered() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let mut server = start_with(db.url(), &["--workers", "none", "--shutdown-grace", "0.5"]);
    let addr = server.addr.clone();
    let mut upload = TcpStream::connect(&addr).expect("connect");
    upload
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        upload,
        "POST /deployments HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"name\": "
    )
    .expect("the start of a body");
    // The body stalls; the server is told to stop.
    std::thread::sleep(Duration::from_millis(200));
    let stopped = Instant::now();
    sigterm(&server);
    let exit = eventually("the server to exit", || {
        server.child.try_wait().expect("wait")
    });
    let took = stopped.elapsed();
    assert!(exit.success(), "{exit:?}");
    // The grace, the refusing half second, and no wait for the body (it used to be 32 s).
    assert!(took < Duration::from_secs(4), "the exit took {took:?}");
    let mut answer = String::new();
    let _ = upload.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body = json_body(&answer);
    assert_eq!(body["detail"], "Server is shutting down");
}

#[test]
fn a_new_sqlite_file_starts_without_lock_errors() {
    let dir = netorch_testkit::TestDatabase::sqlite();
    // Many pool connections opened at once on a file that does not exist yet, twenty times.
    for round in 0..20 {
        let url = format!("{}-{round}", dir.url());
        let server = start_with(&url, &["--http-workers", "16", "--workers", "none"]);
        let (status, _) = request(&server.addr, "GET", "/deployments", None);
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(100));
        let log = server.log.lock().expect("log").clone();
        assert!(
            !log.contains("ERROR") && !log.contains("database is locked"),
            "start {round}:\n{log}"
        );
    }
}
