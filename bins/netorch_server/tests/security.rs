//! The security defects an outside test of the release server found (issue 25), each
//! reproduced against the real `netorch-server` binary on port 0: cross-site requests and DNS
//! rebinding on the default loopback setup, unknown methods that grew memory, stored texts
//! amplified into huge answers, forged future samples and collectors that reached every
//! deployment, tokens in the query string, streams that outlived their key, floods of bad
//! tokens, and names that hide what they say. docs/SECURITY.md names each guarantee with its
//! test.

mod support;

use serde_json::{Value, json};
use std::io::BufRead;
use std::time::{Duration, Instant};
use support::*;

/// A deployment's count of deployments, read as the server's own pages would.
fn deployment_count(addr: &str, token: &str) -> usize {
    let (status, list) = request_as(addr, token, "GET", "/deployments?limit=1000", None);
    assert_eq!(status, 200, "{list}");
    list.as_array().map_or(0, Vec::len)
}

#[test]
fn pages_of_other_origins_and_rebound_names_can_neither_change_nor_read() {
    let db = netorch_testkit::TestDatabase::sqlite();
    // The default setup: loopback, no keys.
    let server = start_with(db.url(), &["--workers", "none"]);
    let addr = server.addr.clone();
    let id = create(&addr, "kept", 2);
    let node = {
        let (_, nodes) = request(&addr, "GET", &format!("/deployments/{id}/nodes"), None);
        nodes["nodes"][0]["id"].as_i64().expect("a node")
    };
    let evil = "Origin: https://evil.example";
    let create_body = r#"{"name": "csrf", "target_node_count": 1}"#;
    let push_body = format!(
        r#"{{"samples": [{{"node_id": {node}, "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0}}]}}"#
    );
    // What a page of another origin can send without a preflight: text/plain and form bodies,
    // and bodiless POSTs; a DELETE or PATCH after a preflight nobody granted.
    let attempts: Vec<(&str, String, Vec<&str>, Option<&str>)> = vec![
        (
            "POST",
            "/deployments".into(),
            vec![evil, "Content-Type: text/plain"],
            Some(create_body),
        ),
        (
            "POST",
            "/deployments".into(),
            vec![evil, "Content-Type: application/x-www-form-urlencoded"],
            Some(create_body),
        ),
        (
            "POST",
            "/deployments".into(),
            vec![evil, "Content-Type: application/json"],
            Some(create_body),
        ),
        ("POST", format!("/deployments/{id}/pause"), vec![evil], None),
        (
            "POST",
            format!("/deployments/{id}/telemetry"),
            vec![evil, "Content-Type: text/plain"],
            Some(push_body.as_str()),
        ),
        (
            "PATCH",
            format!("/deployments/{id}"),
            vec![evil, "Content-Type: application/json"],
            Some(r#"{"name": "owned"}"#),
        ),
        ("DELETE", format!("/deployments/{id}"), vec![evil], None),
        (
            "POST",
            "/deployments".into(),
            vec!["Origin: null", "Content-Type: text/plain"],
            Some(create_body),
        ),
    ];
    for (method, path, headers, body) in &attempts {
        let (status, _, text) = send(&addr, method, path, headers, *body);
        assert_eq!(status, 403, "{method} {path} {headers:?}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("--cors-origin")),
            "{body}"
        );
    }
    // Without an Origin (curl, collectors), a body that is not JSON is still never read as JSON.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let header = format!("Content-Type: {content_type}");
        let (status, _, text) = send(&addr, "POST", "/deployments", &[&header], Some(create_body));
        assert_eq!(status, 415, "{content_type}: {text}");
        assert!(text.contains("application/json"), "{text}");
    }
    // A rebound name: the page's own name in Host, for reads and changes alike.
    for (method, path) in [
        ("GET", "/deployments".to_owned()),
        ("GET", format!("/deployments/{id}/events")),
        ("DELETE", format!("/deployments/{id}")),
        ("GET", "/health".to_owned()),
        ("GET", "/ui".to_owned()),
        ("GET", "/openapi.json".to_owned()),
    ] {
        let port = addr.rsplit(':').next().expect("port");
        let host = format!("Host: attacker.example:{port}");
        let (status, _, text) = send(&addr, method, &path, &[&host], None);
        assert_eq!(status, 421, "{method} {path}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("--allowed-host attacker.example")),
            "{body}"
        );
    }
    // Nothing changed: one deployment, still named as made, not paused, no sample.
    assert_eq!(deployment_count(&addr, ""), 1);
    let (_, detail) = request(&addr, "GET", &format!("/deployments/{id}"), None);
    assert_eq!(
        (detail["name"].as_str(), &detail["paused_at"]),
        (Some("kept"), &Value::Null)
    );
    let (_, samples) = request(&addr, "GET", &format!("/deployments/{id}/telemetry"), None);
    assert_eq!(samples["total"], 0);
    // The server's own pages (same origin) and names given with --allowed-host may.
    let own = format!("Origin: http://{addr}");
    let (status, _, text) = send(
        &addr,
        "POST",
        "/deployments",
        &[&own, "Content-Type: application/json"],
        Some(create_body),
    );
    assert_eq!(status, 201, "{text}");
    drop(server);

    let server = start_with(
        db.url(),
        &[
            "--workers",
            "none",
            "--allowed-host",
            "netorch.example",
            "--cors-origin",
            "https://grafana.example",
        ],
    );
    let addr = server.addr.clone();
    let port = addr.rsplit(':').next().expect("port");
    let named = format!("Host: netorch.example:{port}");
    let named_origin = format!("Origin: http://netorch.example:{port}");
    let (status, _, text) = send(
        &addr,
        "POST",
        "/deployments",
        &[&named, &named_origin, "Content-Type: application/json"],
        Some(create_body),
    );
    assert_eq!(status, 201, "{text}");
    let (status, _, text) = send(
        &addr,
        "POST",
        "/deployments",
        &[
            "Origin: https://grafana.example",
            "Content-Type: application/json",
        ],
        Some(create_body),
    );
    assert_eq!(status, 201, "{text}");
    // A preflight from an origin not allowed: refused in JSON like every other error.
    let (status, head, text) = send(
        &addr,
        "OPTIONS",
        "/deployments",
        &[
            "Origin: https://evil.example",
            "Access-Control-Request-Method: POST",
        ],
        None,
    );
    assert!((400..500).contains(&status), "{head}{text}");
    let body: Value = serde_json::from_str(&text).expect("a JSON body");
    assert!(
        body["detail"].is_string() && body["request_id"].is_string(),
        "{body}"
    );
    let (status, head, _) = send(
        &addr,
        "OPTIONS",
        "/deployments",
        &[
            "Origin: https://grafana.example",
            "Access-Control-Request-Method: POST",
        ],
        None,
    );
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header(&head, "access-control-allow-origin").as_deref(),
        Some("https://grafana.example")
    );
    assert_eq!(deployment_count(&addr, ""), 4);
}

#[test]
fn unknown_methods_grow_neither_memory_nor_metrics_nor_the_log() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let server = start_with(db.url(), &["--workers", "none", "--access-log"]);
    let addr = server.addr.clone();
    let pid = server.child.id();
    // Warm up (the allocator's first arenas, the metrics' first series).
    for _ in 0..50 {
        let _ = exchange_bytes(
            &addr,
            format!("XWARM /deployments HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
    }
    let before = rss_kib(pid);
    let mut seed = 0x9e37_79b9_u64;
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..2_000 {
        let method: String = (0..30_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'A' + (seed % 26) as u8)
            })
            .collect();
        let raw =
            format!("{method} /deployments HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let (status, _) = exchange_bytes(&addr, raw.as_bytes());
        *answers.entry(status).or_insert(0) += 1;
    }
    let after = rss_kib(pid);
    assert_eq!(answers.get(&405), Some(&2_000), "{answers:?}");
    // The old server grew from 22.5 MB to 84 MB here, and never gave it back.
    assert!(
        after < before + 16 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    let (status, _, metrics) = get_text(&addr, "/metrics", "scrape");
    assert_eq!(status, 200);
    assert!(
        metrics.len() < 256 * 1024,
        "/metrics is {} bytes",
        metrics.len()
    );
    assert!(
        metrics.contains("method=\"other\",status=\"405\""),
        "{metrics}"
    );
    let log = server.log.lock().expect("log").clone();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_048, "a log line of {longest} bytes");
    assert!(log.len() < 4 << 20, "the log holds {} bytes", log.len());
}

#[test]
fn stored_texts_are_bounded_and_so_are_the_answers_that_copy_them() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let server = start_with(db.url(), &["--workers", "none"]);
    let addr = server.addr.clone();
    let id = create(&addr, "big", 1);
    // 7 MB of description: refused, whatever the body limit.
    let huge = "x".repeat(7_000_000);
    let (status, body) = request(
        &addr,
        "PATCH",
        &format!("/deployments/{id}"),
        Some(&json!({ "description": huge })),
    );
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_too_long");
    assert_eq!(body["detail"][0]["ctx"]["max_length"], 4096);
    // The longest accepted one, changed five times: each event keeps an excerpt.
    for round in 0..5 {
        let text: String = format!("{round}").repeat(4096);
        let (status, _) = request(
            &addr,
            "PATCH",
            &format!("/deployments/{id}"),
            Some(&json!({ "description": text })),
        );
        assert_eq!(status, 200);
    }
    let (_, events) = request(
        &addr,
        "GET",
        &format!("/deployments/{id}/events?limit=1000&event_type=DEPLOYMENT_UPDATED"),
        None,
    );
    let events = events["events"].as_array().expect("events").clone();
    assert_eq!(events.len(), 5);
    for event in &events {
        let kept = event["metadata"]["changes"]["description"]
            .as_str()
            .expect("an excerpt");
        assert!(
            kept.chars().count() <= 257 && kept.ends_with('\u{2026}'),
            "{kept}"
        );
    }
    // Descriptions that grow six-fold as JSON (control characters are escaped): a listing of
    // a thousand stays within a MiB a page, and paging gets them all.
    let dense: String = "\u{1}".repeat(4096);
    for n in 0..60 {
        let (status, body) = request(
            &addr,
            "POST",
            "/deployments",
            Some(&json!({"name": format!("d{n}"), "description": dense, "target_node_count": 1})),
        );
        assert_eq!(status, 201, "{body}");
    }
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let (status, _, text) = get_text(
            &addr,
            &format!("/deployments?limit=1000&skip={seen}"),
            "page",
        );
        assert_eq!(status, 200);
        assert!(text.len() <= 1 << 20, "a page of {} bytes", text.len());
        let page: Vec<Value> = serde_json::from_str(&text).expect("an array");
        if page.is_empty() {
            break;
        }
        seen += page.len();
        pages += 1;
    }
    assert_eq!(seen, 61);
    assert!(pages >= 2, "the listing was cut by size ({pages} page)");
}

netorch_testkit::backend_tests!(
    samples_are_readings_of_now_and_collectors_reach_their_own_deployments,
    an_open_stream_ends_when_its_key_is_revoked
);

/// A sample dated in the future (the forged readings that displaced the real ones), in year
/// 9999 (which outlived retention) or before the raw retention is refused, each by its index;
/// a collector key limited to a deployment pushes there only, and says so.
fn samples_are_readings_of_now_and_collectors_reach_their_own_deployments(
    t: &netorch_testkit::TestDatabase,
) {
    let url = t.url().to_owned();
    let admin = keys(&url, &["create", "--name", "root", "--role", "admin"]);
    let admin = admin.trim().to_owned();
    let server = start_with(&url, &["--workers", "none", "--auth", "keys"]);
    let addr = server.addr.clone();
    let made = |name: &str| {
        let (status, body) = request_as(
            &addr,
            &admin,
            "POST",
            "/deployments",
            Some(&json!({"name": name, "target_node_count": 60})),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("id")
    };
    let (mine, other) = (made("rack4"), made("rack5"));
    let collector = keys(
        &url,
        &[
            "create",
            "--name",
            "rack4-collector",
            "--role",
            "collector",
            "--deployment",
            &mine.to_string(),
        ],
    );
    let collector = collector.trim().to_owned();
    let (_, nodes) = request_as(
        &addr,
        &admin,
        "GET",
        &format!("/deployments/{mine}/nodes"),
        None,
    );
    let node50 = nodes["nodes"][49]["id"].as_i64().expect("node 50");
    let now = chrono::Utc::now();
    let at = |offset: chrono::Duration| (now + offset).to_rfc3339();
    let sample = |timestamp: Value| json!({"node_id": node50, "timestamp": timestamp, "latency_ms": 900.0, "throughput_gbps": 0.1, "error_rate": 50.0});
    // The attack: 40 samples 2 to 22 s ahead.
    let forged: Vec<Value> = (0..40)
        .map(|i| sample(json!(at(chrono::Duration::milliseconds(2_000 + i * 500)))))
        .collect();
    let push = |token: &str, deployment: i64, samples: Vec<Value>| {
        request_as(
            &addr,
            token,
            "POST",
            &format!("/deployments/{deployment}/telemetry"),
            Some(&json!({ "samples": samples })),
        )
    };
    let (status, body) = push(&collector, mine, forged);
    assert_eq!(status, 422, "{body}");
    let named: Vec<i64> = body["detail"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert_eq!(e["loc"][3], "timestamp", "{e}");
            e["loc"][2].as_i64().expect("index")
        })
        .collect();
    assert_eq!(named, (0..40).collect::<Vec<_>>());
    for stamp in [
        json!("9999-12-31T23:59:59Z"),
        json!(at(-chrono::Duration::hours(25))),
    ] {
        let (status, body) = push(&collector, mine, vec![sample(stamp.clone())]);
        assert_eq!(status, 422, "{stamp}: {body}");
    }
    // Readings of now (and a second ahead, a clock's drift) are taken.
    let fine = vec![
        sample(Value::Null),
        sample(json!(at(chrono::Duration::milliseconds(500)))),
        sample(json!(at(-chrono::Duration::hours(23)))),
    ];
    let (status, body) = push(&collector, mine, fine);
    assert_eq!((status, body), (202, json!({"accepted": 3, "stored": 3})));
    // Its own deployment only.
    let (_, other_nodes) = request_as(
        &addr,
        &admin,
        "GET",
        &format!("/deployments/{other}/nodes"),
        None,
    );
    let foreign = other_nodes["nodes"][0]["id"].as_i64().expect("node");
    let (status, body) = push(
        &collector,
        other,
        vec![json!({"node_id": foreign, "latency_ms": 1, "throughput_gbps": 1, "error_rate": 0})],
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("limited to")),
        "{body}"
    );
    let (status, me) = request_as(&addr, &collector, "GET", "/whoami", None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["role"].as_str(), &me["deployments"]),
        (Some("collector"), &json!([mine]))
    );
    let listed = keys(&url, &["list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with("rack4-collector "))
        .expect("listed");
    assert_eq!(
        line.split_whitespace().last(),
        Some(mine.to_string().as_str()),
        "{listed}"
    );
    // A deployment that does not exist cannot be a key's.
    let output = std::process::Command::new(server_binary())
        .args([
            "keys",
            "create",
            "--name",
            "typo",
            "--role",
            "collector",
            "--deployment",
            "999",
        ])
        .args(["--database-url", &url])
        .output()
        .expect("run keys");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("deployments that exist"));
}

/// An event stream opened with a key ends, saying why, once the key is revoked.
fn an_open_stream_ends_when_its_key_is_revoked(t: &netorch_testkit::TestDatabase) {
    let url = t.url().to_owned();
    let admin = keys(&url, &["create", "--name", "root", "--role", "admin"]);
    let viewer = keys(&url, &["create", "--name", "wall", "--role", "viewer"]);
    let (admin, viewer) = (admin.trim().to_owned(), viewer.trim().to_owned());
    let server = start_with(&url, &["--auth", "keys", "--time-scale", "50"]);
    let addr = server.addr.clone();
    let (status, body) = request_as(
        &addr,
        &admin,
        "POST",
        "/deployments",
        Some(&json!({"name": "watched", "target_node_count": 3})),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let mut reader = open_stream(&addr, &format!("/deployments/{id}/events/stream"), &viewer);
    let mut seen = String::new();
    while !seen.contains("event: DEPLOYMENT_CREATED") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("a line") > 0, "{seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    keys(&url, &["revoke", "wall"]);
    let revoked = Instant::now();
    let mut rest = String::new();
    // Until the stream ends, or for 15 s (the old server kept it open for good, sending a
    // heartbeat every 15 s).
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    while revoked.elapsed() < Duration::from_secs(15) {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => rest.push_str(&line),
            Err(_) => {}
        }
    }
    let waited = revoked.elapsed();
    assert!(
        rest.contains("event: end\r\n") || rest.contains("event: end\n"),
        "{rest}"
    );
    assert!(rest.contains("\"reason\":\"key_invalid\""), "{rest}");
    // The key cache (1 s) and a poll (1 s), with room for a loaded machine.
    assert!(
        waited < Duration::from_secs(6),
        "ended {waited:?} after the revoke"
    );
    // And it cannot be opened again.
    let (status, _) = request_as(
        &addr,
        &viewer,
        "GET",
        &format!("/deployments/{id}/events/stream"),
        None,
    );
    assert_eq!(status, 401);
}

#[test]
fn tokens_in_the_query_are_neither_taken_nor_logged_and_bad_ones_are_held_off() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let url = db.url().to_owned();
    let viewer = keys(&url, &["create", "--name", "wall", "--role", "viewer"]);
    let viewer = viewer.trim().to_owned();
    let server = start_with(
        &url,
        &[
            "--workers",
            "none",
            "--auth",
            "keys",
            "--access-log",
            "--auth-failure-rate",
            "5",
        ],
    );
    let addr = server.addr.clone();
    for name in ["token", "access_token", "api_key"] {
        let (status, _, _) = send(
            &addr,
            "GET",
            &format!("/deployments?{name}={viewer}"),
            &[],
            None,
        );
        assert_eq!(
            status, 401,
            "a token is taken from the header only ({name})"
        );
    }
    // InfluxDB 1's `p` is taken on its `/write` only (this key is found, and may not push),
    // and redacted there too.
    let (status, _, _) = send(&addr, "GET", &format!("/deployments?p={viewer}"), &[], None);
    assert_eq!(status, 401, "p is InfluxDB 1's, not the API's");
    let (status, _, _) = send(
        &addr,
        "POST",
        &format!("/write?db=net&u=me&p={viewer}"),
        &[],
        Some("netorch,deployment=1,node=node-001 latency_ms=1"),
    );
    assert_eq!(status, 403, "the key of `p` is found on /write");
    let log = eventually("the access log lines", || {
        let log = server.log.lock().expect("log").clone();
        (log.matches("GET /deployments?").count() >= 4 && log.contains("POST /write?"))
            .then_some(log)
    });
    assert!(
        !log.contains(&viewer[4..]),
        "the token reached the log:\n{log}"
    );
    assert!(log.contains("token=***"), "{log}");
    assert!(log.contains("/write?db=net&u=me&p=***"), "{log}");

    // The valid key is found once (and kept a second); a flood of bad tokens from the same
    // address runs out of its budget (5 a second, 10 at once) and is answered 429, while the
    // key found a moment ago still passes.
    let auth = format!("Authorization: Bearer {viewer}");
    let bad = |i: usize| {
        let bad = format!("Authorization: Bearer ntk_{i:064x}");
        send(&addr, "GET", "/deployments", &[&bad], None)
    };
    let found = Instant::now();
    let (status, _, _) = send(&addr, "GET", "/deployments", &[&auth], None);
    assert_eq!(status, 200);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..30 {
        *statuses.entry(bad(i).0).or_insert(0) += 1;
    }
    let (status, _, _) = send(&addr, "GET", "/deployments", &[&auth], None);
    if found.elapsed() < Duration::from_millis(900) {
        assert_eq!(
            status, 200,
            "a key found within the second passes: {statuses:?}"
        );
    }
    let mut retry_after = None;
    for i in 30..200 {
        let (status, head, body) = bad(i);
        if status == 429 {
            retry_after = header(&head, "retry-after");
            assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(
        statuses.get(&429).copied().unwrap_or(0) >= 150,
        "{statuses:?}"
    );
    // The budget of 10 at once, less the four query-string attempts above.
    assert!(
        statuses.get(&401).copied().unwrap_or(0) >= 5,
        "{statuses:?}"
    );
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    // The document says so, although this server has no rate limit.
    let (status, _, document) = send(&addr, "GET", "/openapi.json", &[], None);
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&document).expect("document");
    let refused = &document["paths"]["/deployments"]["get"]["responses"]["429"]["description"];
    assert!(
        refused
            .as_str()
            .is_some_and(|d| d.contains("failed authentications")),
        "{refused}"
    );
    // Once the flood stops, the budget comes back and the key is looked up again.
    std::thread::sleep(Duration::from_millis(1_200));
    let (status, _, _) = send(&addr, "GET", "/deployments", &[&auth], None);
    assert_eq!(status, 200);
}

#[test]
fn names_keep_no_bidirectional_or_invisible_characters_and_descriptions_do() {
    let db = netorch_testkit::TestDatabase::sqlite();
    let server = start_with(db.url(), &["--workers", "none"]);
    let addr = server.addr.clone();
    for name in [
        "evil\u{202e}gnp.exe",
        "zero\u{200b}width",
        "new\nline",
        "\u{feff}bom",
    ] {
        let (status, body) = request(
            &addr,
            "POST",
            "/deployments",
            Some(&json!({"name": name, "target_node_count": 1})),
        );
        assert_eq!(status, 422, "{name:?}: {body}");
        assert_eq!(body["detail"][0]["type"], "string_pattern_mismatch");
    }
    let (status, body) = request(
        &addr,
        "POST",
        "/deployments",
        Some(
            &json!({"name": "plain", "description": "evil\u{202e}gnp.exe", "target_node_count": 1}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["description"], "evil\u{202e}gnp.exe");
}
