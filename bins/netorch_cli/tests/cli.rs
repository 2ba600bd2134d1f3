//! The real `netorch` binary against the real `netorch-server` on port 0, on both backends: a
//! rollout waited for exits 0 when COMPLETE and 2 when DEGRADED, failed nodes retried, the
//! tables and `-o json` (exactly the API's JSON), one-line errors that name the role a command
//! needs, `events --follow` printing every event once and in order across a `kill -9` and
//! restart of the server, and completions and a man page from the same definitions.

use netorch_testkit::{TestDatabase, backend_tests};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// The `netorch` binary under test.
fn cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netorch"));
    command
        .env_remove("NETORCH_URL")
        .env_remove("NETORCH_TOKEN")
        .env_remove("NETORCH_TOKEN_FILE")
        .env("NO_COLOR", "1");
    command
}

/// The server binary, beside this test's (`target/debug/netorch-server`: `cargo test
/// --workspace` builds it), or built here when it is missing (`cargo test -p netorch_cli` builds
/// only this package's binaries; `cargo test` holds the build directory while its tests run, so
/// this runs cargo only when there is nothing to use).
fn server_binary() -> PathBuf {
    static BUILT: Once = Once::new();
    if let Ok(path) = std::env::var("NETORCH_TEST_SERVER_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("netorch-server");
    if path.exists() {
        return path;
    }
    BUILT.call_once(|| {
        let built = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "netorch_server",
                "--bin",
                "netorch-server",
            ])
            .status()
            .expect("cargo build");
        assert!(built.success(), "building netorch-server failed");
    });
    path
}

/// A running server; killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(database_url: &str, bind: &str, args: &[&str]) -> Server {
    let mut child = Command::new(server_binary())
        .args(["--database-url", database_url, "--bind", bind])
        .args(["--time-scale", "50", "--shutdown-grace", "0.2"])
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netorch-server");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log = Arc::new(Mutex::new(String::new()));
    let addr = loop {
        let line = lines.next().expect("the server's log").expect("a line");
        log.lock().expect("log").push_str(&(line.clone() + "\n"));
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .trim_end_matches(',')
                .to_owned();
        }
    };
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().expect("log").push_str(&(line + "\n"));
        }
    });
    Server {
        child,
        url: format!("http://{addr}"),
        log,
    }
}

/// `netorch ARGS` against `server`: its output.
fn run(server: &Server, args: &[&str]) -> Output {
    cli()
        .args(["--url", &server.url])
        .args(args)
        .output()
        .expect("run netorch")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).expect("JSON")
}

/// Asserts `netorch` exited with `code`, showing what it printed when not.
fn exits(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{}{}",
        stdout(output),
        stderr(output)
    );
}

/// The API's own answer to `GET path` (a bare GET over TCP: the test needs no HTTP client of
/// its own).
fn api(server: &Server, path: &str) -> Value {
    let host = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(body).expect("JSON")
}

fn rollouts_exit_by_how_they_went(t: &TestDatabase) {
    let server = start(t.url(), "127.0.0.1:0", &[]);

    // Three nodes: all run (the simulator fails a node where (id + deployment + attempt) % 20
    // is 0: none of ids 1-3 of deployment 1).
    let out = run(&server, &["deploy", "small", "--nodes", "3", "--wait"]);
    exits(&out, 0);
    let summary = stdout(&out);
    assert!(
        summary.contains("deployment 1 small: COMPLETE, 3 of 3 running, 0 failed"),
        "{summary}"
    );
    // Progress went to standard error, a line per change (not a terminal here).
    assert!(stderr(&out).contains("RUNNING 3"), "{}", stderr(&out));

    // Twenty nodes: exactly one fails, the rollout is DEGRADED: exit status 2.
    let out = run(
        &server,
        &["deploy", "big", "--nodes", "20", "--wait", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let degraded: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(degraded["status"], "DEGRADED");
    assert_eq!(degraded["node_states"]["FAILED"], 1);
    let id = degraded["id"].as_i64().expect("id");

    let failed = json(&run(
        &server,
        &["nodes", &id.to_string(), "--state", "failed", "-o", "json"],
    ));
    assert_eq!(failed["total"], 1, "{failed}");
    let name = failed["nodes"][0]["node_id"]
        .as_str()
        .expect("name")
        .to_owned();
    let table = stdout(&run(
        &server,
        &["nodes", &id.to_string(), "--state", "FAILED"],
    ));
    assert!(table.starts_with("NODE"), "{table}");
    assert!(table.contains(&name), "{table}");

    // Retried (its next attempt runs), then watched to COMPLETE.
    let out = run(&server, &["retry", &id.to_string(), "--all-failed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&name), "{}", stdout(&out));
    let out = run(&server, &["watch", &id.to_string(), "--timeout", "60s"]);
    exits(&out, 0);
    assert!(
        stdout(&out).contains("COMPLETE, 20 of 20 running"),
        "{}",
        stdout(&out)
    );

    // Telemetry names its nodes as people know them, numbers rounded as measurements.
    let deployment = id.to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while json(&run(&server, &["telemetry", &deployment, "-o", "json"]))["samples"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(std::time::Instant::now() < deadline, "no telemetry in 30 s");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let table = stdout(&run(&server, &["telemetry", &deployment]));
    for line in table.lines().skip(1) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(cells[1].starts_with("node-"), "{table}");
        assert_eq!(
            cells[2].split_once('.').map(|(_, d)| d.len()),
            Some(2),
            "{table}"
        );
    }
    let top = stdout(&run(&server, &["top", &deployment, "--method", "zscore"]));
    for line in top.lines().skip(1) {
        let score = line.split_whitespace().nth(1).expect("a score");
        assert_eq!(
            score.split_once('.').map(|(_, d)| d.len()),
            Some(2),
            "{top}"
        );
    }

    // A silence of any matchers, written as amtool writes them.
    let silence = json(&run(
        &server,
        &[
            "silence",
            "--matcher",
            "severity=critical",
            "--matcher",
            "node=~node-00[1-3]",
            "--matcher",
            "rule!=latency",
            "--for",
            "1h",
            "-m",
            "maintenance",
            "-o",
            "json",
        ],
    ));
    assert_eq!(
        silence["matchers"],
        serde_json::json!([
            {"name": "severity", "value": "critical", "is_equal": true, "is_regex": false},
            {"name": "node", "value": "node-00[1-3]", "is_equal": true, "is_regex": true},
            {"name": "rule", "value": "latency", "is_equal": false, "is_regex": false},
        ]),
        "{silence}"
    );
    let out = run(
        &server,
        &["silence", "--matcher", "severity", "--for", "1h", "-m", "x"],
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(stderr(&out).contains("not a matcher"), "{}", stderr(&out));

    // -o json is exactly the API's JSON.
    assert_eq!(
        json(&run(&server, &["ls", "-o", "json"])),
        api(&server, "/deployments?limit=100")
    );
    assert_eq!(
        json(&run(&server, &["get", "1", "-o", "json"])),
        api(&server, "/deployments/1")
    );
    let listing = stdout(&run(&server, &["ls"]));
    let header = listing.lines().next().expect("a header");
    assert!(header.starts_with("ID  NAME"), "{listing}");
    assert!(listing.contains("COMPLETE"), "{listing}");

    // Scale, pause, resume, delete.
    let scaled = json(&run(&server, &["scale", "1", "5", "-o", "json"]));
    assert_eq!(scaled["target_node_count"], 5);
    let paused = json(&run(&server, &["pause", "1", "-o", "json"]));
    assert_eq!(paused["status"], "PAUSED");
    let out = run(&server, &["watch", "1"]);
    assert_eq!(out.status.code(), Some(3), "a paused rollout is unfinished");
    assert!(
        stdout(&out).contains("netorch resume 1"),
        "{}",
        stdout(&out)
    );
    let resumed = json(&run(&server, &["resume", "1", "-o", "json"]));
    assert_ne!(resumed["status"], "PAUSED");
    let out = run(&server, &["rm", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&server, &["get", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("GET /deployments/1: 404"), "{error}");
    assert!(error.contains("(request "), "{error}");
}

fn errors_name_the_role_a_command_needs(t: &TestDatabase) {
    let keys = |args: &[&str]| {
        let out = Command::new(server_binary())
            .arg("keys")
            .args(args)
            .args(["--database-url", t.url(), "--create-database"])
            .output()
            .expect("keys");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    let admin = keys(&["create", "--name", "root", "--role", "admin"]);
    let viewer = keys(&["create", "--name", "wall", "--role", "viewer"]);
    let server = start(
        t.url(),
        "127.0.0.1:0",
        &["--auth", "keys", "--workers", "none"],
    );

    let out = run(&server, &["ls"]);
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("401") && error.contains("NETORCH_TOKEN"),
        "{error}"
    );

    let made = cli()
        .args([
            "--url",
            &server.url,
            "deploy",
            "edge",
            "--nodes",
            "2",
            "-o",
            "json",
        ])
        .env("NETORCH_TOKEN", &admin)
        .output()
        .expect("run");
    let made = json(&made);
    let id = made["id"].as_i64().expect("id").to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{viewer}\n")).expect("write");
    let file = file.to_str().expect("path");
    let out = run(&server, &["--token-file", file, "get", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&server, &["--token-file", file, "rm", &id]);
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("403") && error.contains("this needs a key of the admin role"),
        "{error}"
    );
    assert!(error.contains("(request "), "{error}");
    let out = run(&server, &["--token-file", file, "scale", &id, "3"]);
    assert!(
        stderr(&out).contains("operator (or above)"),
        "{}",
        stderr(&out)
    );
    // Unreachable: one line saying where it tried.
    let out = cli()
        .args(["--url", "http://127.0.0.1:9", "ls"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("127.0.0.1:9"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

fn events_are_followed_across_a_server_restart(t: &TestDatabase) {
    // A fixed port, so the restarted server is where the follower left it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = start(t.url(), &bind, &[]);
    let out = run(
        &server,
        &["deploy", "followed", "--nodes", "6", "-o", "json"],
    );
    let id = json(&out)["id"].as_i64().expect("id").to_string();
    let mut follower = cli()
        .args([
            "--url",
            &server.url,
            "events",
            &id,
            "--follow",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("follow");
    let printed = Arc::new(Mutex::new(Vec::<Value>::new()));
    let lines = BufReader::new(follower.stdout.take().expect("stdout")).lines();
    let kept = Arc::clone(&printed);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock()
                .expect("printed")
                .push(serde_json::from_str(&line).expect("one event a line"));
        }
    });
    let wait_for = |what: &str, check: &dyn Fn(&[Value]) -> bool| {
        let started = Instant::now();
        while !check(&printed.lock().expect("printed")) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the rollout's events", &|events| events.len() >= 6);

    // kill -9, then the same database on the same port; the scale after the restart makes
    // events the follower can only have read from the new server.
    let _ = server.child.kill();
    let _ = server.child.wait();
    std::thread::sleep(Duration::from_millis(500));
    server = start(t.url(), &bind, &[]);
    let out = run(&server, &["scale", &id, "9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let done = run(&server, &["watch", &id, "--timeout", "60s"]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    let all = api(&server, &format!("/deployments/{id}/events?limit=1000"));
    let expected = all["events"].as_array().expect("events").len();
    wait_for("every event after the restart", &|events| {
        events.len() >= expected
    });

    // Deleting the deployment ends the stream: the follower exits 0.
    let out = run(&server, &["rm", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = follower.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the follower did not end"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{:?}",
        server.log.lock().expect("log").len()
    );
    std::thread::sleep(Duration::from_millis(200));
    let printed = printed.lock().expect("printed").clone();
    let ids: Vec<i64> = printed
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    let all = api(&server, &format!("/deployments/{id}/events?limit=1000"));
    let recorded: Vec<i64> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(
        ids, recorded,
        "every event once, in order, across the restart"
    );
    assert_eq!(
        printed.last().expect("events")["event_type"],
        "DEPLOYMENT_DELETED"
    );
}

backend_tests!(
    rollouts_exit_by_how_they_went,
    errors_name_the_role_a_command_needs,
    events_are_followed_across_a_server_restart
);

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = cli().args(["completions", shell]).output().expect("run");
        assert!(out.status.success());
        let text = stdout(&out);
        for command in ["deploy", "watch", "events", "all-failed"] {
            assert!(text.contains(command), "{shell}: {command}");
        }
    }
    let out = cli().arg("man").output().expect("run");
    let page = stdout(&out);
    assert!(page.contains(".TH netorch"), "{page}");
    assert!(page.contains("NETORCH_URL"), "{page}");
    let help = stdout(&cli().arg("--help").output().expect("run"));
    assert!(help.contains("Exit status: 0"), "{help}");
    // A reader that goes away (`netorch man | head`) ends it quietly, as it ends other tools.
    let mut child = cli()
        .arg("man")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "");
}
