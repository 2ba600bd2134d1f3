//! What the end-to-end tests of the real `netorch-server` binary share: starting it on port 0
//! and reading where it listens, raw HTTP/1.1 over TCP, the `keys` command, and polling.

#![allow(dead_code)]

pub mod exporter;
pub mod prometheus;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 exchange: the status and the JSON body.
pub fn request(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    request_as(addr, "", method, path, body)
}

/// [`request`] with `Authorization: Bearer <token>` unless `token` is empty.
pub fn request_as(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let authorization = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let (status, _, body) = exchange(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        ),
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The value of the header `name` in a response's `head`, if it has one.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Sends `raw` (a whole HTTP/1.1 request that asks to close) to `addr`; the status, the
/// response's head (read it with [`header`]) and its body, de-chunked.
pub fn exchange(addr: &str, raw: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Everything the server has logged so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn start(database_url: &str) -> Server {
    start_with(
        database_url,
        &["--time-scale", "50", "--shutdown-grace", "0.2"],
    )
}

pub fn start_with(database_url: &str, args: &[&str]) -> Server {
    start_on("127.0.0.1:0", database_url, args)
}

/// [`start_with`] listening on `bind`.
pub fn start_on(bind: &str, database_url: &str, args: &[&str]) -> Server {
    let mut child = Command::new(server_binary())
        .args(["--database-url", database_url, "--bind", bind])
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netorch-server");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let addr = loop {
        let line = lines
            .next()
            .expect("the server logs where it listens")
            .expect("log line");
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
    // Keep draining the log so the server never blocks on a full pipe.
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().expect("log").push_str(&(line + "\n"));
        }
    });
    Server { child, addr, log }
}

/// The binary under test: this build's, or the one `NETORCH_TEST_SERVER_BINARY` names (to show
/// that a test fails on an earlier build).
pub fn server_binary() -> String {
    std::env::var("NETORCH_TEST_SERVER_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_netorch-server").to_owned())
}

/// Sends the server SIGTERM.
pub fn sigterm(server: &Server) {
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
}

/// Creates a deployment of `nodes` nodes; its id.
pub fn create(addr: &str, name: &str, nodes: u32) -> i64 {
    let (status, created) = request(
        addr,
        "POST",
        "/deployments",
        Some(&json!({"name": name, "target_node_count": nodes})),
    );
    assert_eq!(status, 201, "{created}");
    created["id"].as_i64().expect("id")
}

/// Polls `check` every 50 ms until it returns `Some`, for at most 30 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`eventually`] with a limit of its own, polling every 200 ms: for real third-party programs
/// (Alertmanager, Prometheus), which take their own time.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A third-party program the test started, killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `binary --version` runs: the program is installed.
pub fn installed(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A loopback port free a moment ago, for a program that takes its port as a flag.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Runs `netorch-server keys ...` on `database_url`; its standard output.
pub fn keys(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(server_binary())
        .arg("keys")
        .args(args)
        .args(["--database-url", database_url])
        // Keys are often made before the server first starts, as an operator would.
        .arg("--create-database")
        .output()
        .expect("run netorch-server keys");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// One response read off a keep-alive connection: its status, whether the server closes the
/// connection after it, and its body; `None` when the connection ended before a whole response
/// arrived.
pub fn read_response(reader: &mut BufReader<TcpStream>) -> Option<(u16, bool, String)> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if line == "connection: close" {
            close = true;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((status, close, String::from_utf8_lossy(&body).into_owned()))
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the process's status")
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Sends `raw` (any bytes) and reads the answer to its end: the status (0 when none came) and
/// the whole text.
pub fn exchange_bytes(addr: &str, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = stream.write_all(raw);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The JSON body of a whole response `text`.
pub fn json_body(text: &str) -> Value {
    let (_, body) = text.split_once("\r\n\r\n").expect("a header block");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `method path` with the extra `headers` (each `Name: value`) and an optional body, as raw
/// HTTP/1.1 that asks to close; the status, head and body.
pub fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        raw.push_str(&format!("Host: {addr}\r\n"));
    }
    for header in headers {
        raw.push_str(header);
        raw.push_str("\r\n");
    }
    let body = body.unwrap_or_default();
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    exchange(addr, &raw)
}

/// `GET path` with an `X-Request-Id`; the status, the response's `X-Request-Id` and the body
/// as text.
pub fn get_text(addr: &str, path: &str, request_id: &str) -> (u16, Option<String>, String) {
    let (status, head, body) = exchange(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Request-Id: {request_id}\r\n\r\n"
        ),
    );
    (status, header(&head, "x-request-id"), body)
}

/// Opens `GET path` as a long answer (an event stream) with `Authorization: Bearer token`
/// unless `token` is empty; the connection, to read as it comes (30 s for each read).
pub fn open_stream(addr: &str, path: &str, token: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let authorization = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Connection: close\r\n\r\n"
    )
    .expect("send");
    BufReader::new(stream)
}
