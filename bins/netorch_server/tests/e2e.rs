//! End to end: the real `netorch-server` binary on port 0 with embedded workers at a high time
//! scale, driven over HTTP until a deployment runs, reports telemetry and bottlenecks, then
//! stopped with SIGTERM.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::*;

netorch_testkit::backend_tests!(
    keys_made_on_the_command_line_open_exactly_their_roles_and_are_never_kept_or_logged
);

/// On either backend: the CLI and the server share the keys through the database.
fn keys_made_on_the_command_line_open_exactly_their_roles_and_are_never_kept_or_logged(
    t: &netorch_testkit::TestDatabase,
) {
    let url = t.url().to_owned();
    // Made before the server runs, and one while it runs.
    let operator = keys(&url, &["create", "--name", "ci", "--role", "operator"]);
    let operator = operator.trim();
    assert!(operator.starts_with("ntk_"), "{operator}");
    let server = start_with(
        &url,
        &["--auth", "keys", "--access-log", "--workers", "none"],
    );
    let viewer = keys(
        &url,
        &[
            "create",
            "--name",
            "dash",
            "--role",
            "viewer",
            "--expires-in",
            "1d",
        ],
    );
    let viewer = viewer.trim();
    let addr = &server.addr;
    let body = json!({"name": "secure", "target_node_count": 1});

    assert_eq!(request(addr, "GET", "/deployments", None).0, 401);
    assert_eq!(request(addr, "GET", "/health", None).0, 200);
    assert_eq!(request_as(addr, viewer, "GET", "/deployments", None).0, 200);
    assert_eq!(
        request_as(addr, viewer, "POST", "/deployments", Some(&body)).0,
        403
    );
    assert_eq!(
        request_as(addr, operator, "POST", "/deployments", Some(&body)).0,
        201
    );
    assert_eq!(
        request_as(addr, operator, "DELETE", "/deployments/1", None).0,
        403
    );

    let listed = keys(&url, &["list"]);
    let line = |name: &str| {
        listed
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not listed: {listed}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    // name, role, created, expires, last used, revoked, deployments
    let (ci, dash) = (line("ci"), line("dash"));
    assert_eq!(ci[1], "operator", "{listed}");
    assert_eq!((ci[3], ci[5], ci[6]), ("-", "-", "*"), "{listed}");
    assert_eq!(dash[1], "viewer", "{listed}");
    assert!(dash[3] > dash[2], "expires after it was created: {listed}");
    assert!(dash[4].starts_with("20"), "it was used: {listed}");
    keys(&url, &["revoke", "ci"]);
    // A server trusts a key it found for at most a second (auth::KEY_CACHE_TTL).
    eventually("the revoked key to be refused", || {
        (request_as(addr, operator, "GET", "/deployments", None).0 == 401).then_some(())
    });

    let log = server.log.lock().expect("log").clone();
    assert!(log.contains("auth keys"), "{log}");
    assert!(
        log.contains("GET /deployments"),
        "the access log is on: {log}"
    );
    for token in [operator, viewer] {
        assert!(!log.contains(&token[4..]), "a token reached the log");
        assert!(!t.contains_text(&token[4..]), "a token is in the database");
    }
    let revoked = keys(&url, &["list"]);
    assert!(
        revoked.lines().any(|line| line.starts_with("ci ")
            && line
                .split_whitespace()
                .nth(5)
                .is_some_and(|at| at.ends_with('Z'))),
        "ci is listed as revoked: {revoked}"
    );
}

#[test]
fn keys_are_asked_for_off_loopback_and_turning_them_off_there_is_warned_of() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    // Every address, as on a real network (the test only connects on loopback).
    let server = start_on("0.0.0.0:0", &url, &["--workers", "none"]);
    let port = server.addr.rsplit(':').next().expect("port");
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(request(&addr, "GET", "/deployments", None).0, 401);
    assert_eq!(request(&addr, "GET", "/health", None).0, 200);
    let log = server.log.lock().expect("log").clone();
    assert!(log.contains("auth keys"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
    drop(server);

    let server = start_on("0.0.0.0:0", &url, &["--workers", "none", "--auth", "none"]);
    let log = server.log.lock().expect("log").clone();
    assert!(log.contains("auth none"), "{log}");
    assert!(
        log.lines()
            .any(|line| line.contains("WARN") && line.contains("not a loopback address")),
        "{log}"
    );
}

#[test]
fn a_caller_over_its_rate_gets_429_with_retry_after() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    // One request every 10 s, two at once: nothing refills during the test.
    let server = start_with(
        &url,
        &[
            "--workers",
            "none",
            "--rate-limit",
            "0.1",
            "--rate-limit-burst",
            "2",
        ],
    );
    let addr = &server.addr;
    for _ in 0..2 {
        assert_eq!(request(addr, "GET", "/deployments", None).0, 200);
    }
    let (status, head, body) = exchange(
        addr,
        &format!("GET /deployments HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 429, "{head}");
    let retry_after: u64 = header(&head, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert!(body["detail"].is_string(), "{body}");
    // Never limited: the probes.
    assert_eq!(request(addr, "GET", "/health", None).0, 200);
}

/// Sends `head` and `body` to the server, never the rest of the body; the response that comes
/// anyway.
fn refused_before_the_end(addr: &str, head: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send part of the body");
    let mut reader = BufReader::new(stream);
    let (status, _, body) = read_response(&mut reader).expect("an answer before the body ended");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn an_oversized_body_is_refused_before_it_has_all_arrived() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let server = start_with(&url, &["--workers", "none", "--max-body-bytes", "4096"]);
    let addr = &server.addr;
    let post =
        format!("POST /deployments HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n");
    // A length over the limit: refused on the head alone.
    let (status, body) = refused_before_the_end(
        addr,
        &format!("{post}Content-Length: 1000000000\r\n\r\n"),
        br#"{"name": "#,
    );
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("4096")),
        "{body}"
    );
    // A chunked body: refused once more than the limit has arrived, its end never sent.
    let mut chunk = b"2000\r\n".to_vec();
    chunk.extend([b' '; 0x2000]);
    chunk.extend(b"\r\n");
    let (status, body) = refused_before_the_end(
        addr,
        &format!("{post}Transfer-Encoding: chunked\r\n\r\n"),
        &chunk,
    );
    assert_eq!(status, 413, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    // Nothing was made, and the server goes on.
    let (status, list) = request(addr, "GET", "/deployments", None);
    assert_eq!((status, list), (200, json!([])));
}

#[test]
fn a_deployment_runs_reports_telemetry_and_bottlenecks_then_the_server_stops_cleanly() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let mut server = start(&url);
    let addr = server.addr.clone();

    let id = create(&addr, "e2e", 20);

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
    sigterm(&server);
    let exit = eventually("the server to exit", || {
        server.child.try_wait().expect("wait")
    });
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn hanging_nodes_time_out_and_a_scaled_down_deployment_loses_its_newest_nodes() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let server = start_with(&url, &["--time-scale", "50", "--simulate-hang-every", "4"]);
    let addr = server.addr.clone();
    let (status, created) = request(
        &addr,
        "POST",
        "/deployments",
        Some(
            &json!({"name": "hangs", "target_node_count": 12, "max_in_flight": 3,
            "phase_timeout_seconds": 1}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let detail = eventually("the rollout to finish", || {
        let (_, detail) = request(&addr, "GET", &format!("/deployments/{id}"), None);
        (detail["progress"]["finished"] == 12).then_some(detail)
    });
    // Nodes 4, 8 and 12 hang in CONFIGURING and time out; the others run.
    assert_eq!(detail["status"], "DEGRADED", "{detail}");
    assert_eq!(detail["node_states"]["FAILED"], 3, "{detail}");
    let (_, timed_out) = request(
        &addr,
        "GET",
        &format!("/deployments/{id}/events?event_type=NODE_TIMED_OUT"),
        None,
    );
    let mut nodes: Vec<i64> = timed_out["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["node_id"].as_i64().expect("node"))
        .collect();
    nodes.sort_unstable();
    assert_eq!(nodes, [4, 8, 12]);
    let (_, node) = request(&addr, "GET", &format!("/deployments/{id}/nodes/8"), None);
    assert_eq!(node["failure_reason"], "configuring timed out after 1 s");

    // Scale down to 6: nodes 7 to 12 are released and removed.
    let (status, scaled) = request(
        &addr,
        "PATCH",
        &format!("/deployments/{id}"),
        Some(&json!({"target_node_count": 6})),
    );
    assert_eq!(status, 200, "{scaled}");
    assert_eq!(scaled["node_states"]["DECOMMISSIONING"], 6, "{scaled}");
    let detail = eventually("the decommissioned nodes to be removed", || {
        let (_, detail) = request(&addr, "GET", &format!("/deployments/{id}"), None);
        (detail["current_node_count"] == 6).then_some(detail)
    });
    assert_eq!(detail["progress"], json!({"finished": 6, "total": 6}));
    assert_eq!(detail["status"], "DEGRADED", "node 4 is still failed");
    let (_, removed) = request(
        &addr,
        "GET",
        &format!("/deployments/{id}/events?event_type=NODE_DECOMMISSIONED"),
        None,
    );
    assert_eq!(removed["events"].as_array().map(Vec::len), Some(6));
}

#[derive(Default, Debug)]
struct Tally {
    /// Requests fully written.
    sent: u64,
    /// Of those, answered.
    answered: u64,
    /// Answered while the server was draining (`Connection: close`).
    answered_draining: u64,
    /// Written whole, and the connection ended with no answer: must never happen.
    dropped: u64,
}

#[test]
fn sigterm_drains_then_stops_without_dropping_a_received_request() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let mut server = start_with(&url, &["--workers", "none", "--shutdown-grace", "1"]);
    let addr = server.addr.clone();
    let path = format!("/deployments/{}/nodes", create(&addr, "drain", 50));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let total = std::sync::atomic::AtomicU64::new(0);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16)
            .map(|_| {
                let (addr, path, stop, total) = (&addr, &path, &stop, &total);
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    'connections: while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        // Refused: the server stopped accepting, which drops nothing.
                        let Ok(stream) = TcpStream::connect(addr.as_str()) else {
                            break;
                        };
                        stream
                            .set_read_timeout(Some(Duration::from_secs(30)))
                            .expect("timeout");
                        let mut reader = BufReader::new(stream);
                        loop {
                            let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                            if reader.get_mut().write_all(request.as_bytes()).is_err() {
                                // Not written whole: the server had closed; not a drop.
                                continue 'connections;
                            }
                            tally.sent += 1;
                            match read_response(&mut reader) {
                                // Refused while shutting down: a client goes elsewhere.
                                Some((503, ..)) => {
                                    tally.answered += 1;
                                    break 'connections;
                                }
                                Some((200, close, _)) => {
                                    tally.answered += 1;
                                    total.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                    if close {
                                        tally.answered_draining += 1;
                                        continue 'connections;
                                    }
                                }
                                Some((other, ..)) => panic!("status {other}"),
                                None => {
                                    tally.dropped += 1;
                                    continue 'connections;
                                }
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        // Under load, then SIGTERM.
        eventually("load", || {
            (total.load(std::sync::atomic::Ordering::SeqCst) > 500).then_some(())
        });
        sigterm(&server);
        // /ready turns 503 at once, while requests are still served.
        let (status, body) = eventually("/ready to say draining", || {
            let answer = request(&addr, "GET", "/ready", None);
            (answer.0 == 503).then_some(answer)
        });
        assert_eq!((status, body), (503, json!({"status": "draining"})));
        let exit = eventually("the server to exit", || {
            server.child.try_wait().expect("wait")
        });
        assert!(exit.success(), "{exit:?}");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect()
    });
    let dropped: u64 = tallies.iter().map(|t| t.dropped).sum();
    let draining: u64 = tallies.iter().map(|t| t.answered_draining).sum();
    let answered: u64 = tallies.iter().map(|t| t.answered).sum();
    assert_eq!(
        dropped, 0,
        "requests received and never answered: {tallies:?}"
    );
    assert!(
        draining > 0,
        "requests were served while draining: {tallies:?}"
    );
    assert!(answered > 500, "{tallies:?}");
}

/// The value of the exposed sample `series` in `text`.
fn sample(text: &str, series: &str) -> f64 {
    netorch_testkit::exposed_sample(text, series)
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[test]
fn metrics_move_with_a_rollout_and_logs_are_json_lines_with_request_ids() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let server = start_with(
        &url,
        &["--time-scale", "50", "--log-format", "json", "--access-log"],
    );
    let addr = server.addr.clone();
    let id = create(&addr, "observed", 20);
    eventually("every node to settle", || {
        let (_, detail) = request(&addr, "GET", &format!("/deployments/{id}"), None);
        let states = &detail["node_states"];
        (states["RUNNING"].as_i64().unwrap_or(0) + states["FAILED"].as_i64().unwrap_or(0) == 20)
            .then_some(())
    });
    let text = eventually("samples from the telemetry worker", || {
        let (status, _, text) = get_text(&addr, "/metrics", "e2e-scrape-1");
        assert_eq!(status, 200);
        (sample(
            &text,
            "netorch_telemetry_samples_written_total{source=\"worker\"}",
        ) >= 19.0)
            .then_some(text)
    });
    // Deployment 1's node 19 fails; the other 19 run (see the test above).
    assert_eq!(sample(&text, "netorch_nodes{state=\"RUNNING\"}"), 19.0);
    assert_eq!(sample(&text, "netorch_nodes{state=\"FAILED\"}"), 1.0);
    assert_eq!(
        sample(&text, "netorch_deployments{status=\"DEGRADED\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "netorch_lifecycle_transitions_total{state=\"PROVISIONING\"}"
        ),
        20.0
    );
    assert_eq!(
        sample(
            &text,
            "netorch_lifecycle_transitions_total{state=\"RUNNING\"}"
        ),
        19.0
    );
    assert!(sample(&text, "netorch_lifecycle_tick_duration_seconds_count") > 0.0);
    assert!(sample(&text, "netorch_telemetry_tick_duration_seconds_count") > 0.0);
    assert!(sample(&text, "process_cpu_seconds_total") > 0.0);
    netorch_testkit::promtool(&["check", "metrics"], &text);

    // The request id: echoed, and in the access log line, which is JSON like every line.
    let (status, echoed, body) = get_text(&addr, "/deployments/987654", "e2e-trace-42");
    assert_eq!((status, echoed.as_deref()), (404, Some("e2e-trace-42")));
    assert!(body.contains("\"request_id\":\"e2e-trace-42\""), "{body}");
    let access = eventually("the access log line", || {
        let log = server.log.lock().expect("log").clone();
        log.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["request_id"] == "e2e-trace-42")
    });
    assert_eq!(access["target"], "netorch::access");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["status"], 404);
    assert_eq!(access["route"], "/deployments/{deployment_id}");
    assert!(access["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let log = server.log.lock().expect("log").clone();
    for line in log.lines() {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            parsed["message"].is_string() && parsed["target"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn the_event_stream_shows_a_rollout_as_it_happens_and_ends_with_the_delete() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let server = start(&url);
    let addr = server.addr.clone();
    let id = create(&addr, "live", 5);

    // Read as it comes: the workers move the nodes while the stream is open, and every node
    // reaches RUNNING or FAILED on it.
    let mut reader = open_stream(&addr, &format!("/deployments/{id}/events/stream"), "");
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        reader.read_line(&mut head).expect("head");
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    let mut seen = String::new();
    let mut line = String::new();
    let finished = |seen: &str| {
        seen.matches("\"to_state\":\"RUNNING\"").count()
            + seen.matches("\"to_state\":\"FAILED\"").count()
    };
    while finished(&seen) < 5 {
        line.clear();
        assert!(reader.read_line(&mut line).expect("a line") > 0, "{seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("event: DEPLOYMENT_CREATED"));
    // The delete ends the stream after its event (the body is chunked; the markers are whole
    // lines in it).
    let (status, _) = request(&addr, "DELETE", &format!("/deployments/{id}"), None);
    assert_eq!(status, 204);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("the stream ends");
    assert!(rest.contains("event: DEPLOYMENT_DELETED"), "{rest}");
    drop(server);
}
