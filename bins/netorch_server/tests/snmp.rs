//! "Monitoring real switches over SNMP" (docs/COLLECTORS.md), end to end, with the recipe's own
//! files (docs/snmp/): `snmpsim` (PyPI) serves three agents recorded from real switches and
//! routers (`snmpsim-data`, their counters made to move by scripts/snmp-lab.py); Debian's
//! `prometheus-snmp-exporter` polls them with the recipe's module; Debian's `prometheus`
//! scrapes the exporter with the recipe's config, turns the counters into netorch's three
//! metrics with the recipe's recording rules, and remote-writes them, with the `deployment` and
//! `node` labels of the switches file, to the real `netorch-server` (keys on, the collector's
//! key read from a file). netorch then holds, for every switch, exactly the readings Prometheus
//! recorded, with real traffic in them; a switch listed without a `node` label is named after
//! its host, and refused as no node netorch has; on SQLite and PostgreSQL.
//!
//! Skipped (with a note) where snmpsim, the SNMP exporter or Prometheus is missing, unless
//! `NETORCH_REQUIRE_SNMP` is set (CI sets it, and `NETORCH_SNMPSIM` to the venv's
//! `snmpsim-command-responder`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::prometheus::{Readings, readings, refused, stored};
use support::*;

/// The recipe's files.
fn recipe(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/snmp")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with `from` replaced by `to`, where the recipe must say `from` (a test that edits
/// what is no longer there would test something else than the recipe).
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the recipe no longer says {from:?}");
    text.replace(from, to)
}

/// snmpsim's responder, when it and the rest of the chain are installed.
fn chain_installed() -> Option<PathBuf> {
    let required = std::env::var_os("NETORCH_REQUIRE_SNMP").is_some();
    let snmpsim = std::env::var_os("NETORCH_SNMPSIM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("snmpsim-command-responder"))
                    .find(|path| path.is_file())
            })
        })
        .filter(|path| path.is_file());
    let missing: Vec<&str> = [
        (
            "snmpsim (pip install snmpsim snmpsim-data)",
            snmpsim.is_some(),
        ),
        (
            "prometheus-snmp-exporter",
            installed("prometheus-snmp-exporter"),
        ),
        ("prometheus", installed("prometheus")),
    ]
    .into_iter()
    .filter(|(_, there)| !there)
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        return snmpsim;
    }
    assert!(
        !required,
        "NETORCH_REQUIRE_SNMP is set but {missing:?} missing"
    );
    eprintln!("skipped: {missing:?} not installed");
    None
}

/// A loopback UDP port free a moment ago.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Three SNMP agents recorded from real devices, on loopback: their ports.
fn agents(snmpsim: &Path, dir: &Path) -> (Vec<Killed>, Vec<u16>) {
    // The venv's Python has snmpsim-data; scripts/snmp-lab.py writes agent-1..3.
    let python = snmpsim.with_file_name("python");
    let lab = dir.join("lab");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/snmp-lab.py");
    let made = Command::new(&python)
        .arg(&script)
        .arg(&lab)
        .stdout(Stdio::null())
        .output()
        .expect("run scripts/snmp-lab.py");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut processes = Vec::new();
    let mut ports = Vec::new();
    for agent in 1..=3 {
        let data = lab.join(format!("agent-{agent}"));
        let port = free_udp_port();
        let log = std::fs::File::create(data.join("snmpsim.log")).expect("log");
        processes.push(Killed(
            Command::new(snmpsim)
                .arg(format!("--data-dir={}", data.display()))
                .arg(format!("--cache-dir={}", data.join("cache").display()))
                .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
                // snmpsim refuses to run as root unless told to (CI runs as root).
                .env("SNMPSIM_ALLOW_ROOT", "true")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start snmpsim"),
        ));
        ports.push(port);
    }
    (processes, ports)
}

/// The SNMP exporter with the recipe's module: the process, and its address.
fn exporter(dir: &Path) -> (Killed, String) {
    let config = dir.join("snmp.yml");
    std::fs::write(&config, recipe("snmp.yml")).expect("write");
    let addr = format!("127.0.0.1:{}", free_port());
    let process = Killed(
        Command::new("prometheus-snmp-exporter")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-snmp-exporter"),
    );
    wait_for("the SNMP exporter", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&addr).ok()
    });
    (process, addr)
}

/// The recipe's `prometheus.yml`, polling every second, with this test's files and addresses.
fn prometheus_config(dir: &Path, exporter: &str, netorch: &str) -> String {
    std::fs::write(
        dir.join("netorch-snmp-rules.yml"),
        recipe("netorch-snmp-rules.yml"),
    )
    .expect("write");
    let config = recipe("prometheus.yml");
    let config = replaced(&config, "scrape_interval: 15s", "scrape_interval: 1s");
    let config = replaced(
        &config,
        "evaluation_interval: 15s",
        "evaluation_interval: 1s",
    );
    let config = replaced(&config, "/etc/prometheus/", &format!("{}/", dir.display()));
    let config = replaced(
        &config,
        "replacement: 127.0.0.1:9116",
        &format!("replacement: {exporter}"),
    );
    replaced(
        &config,
        "http://127.0.0.1:8000/",
        &format!("http://{netorch}/"),
    )
}

fn switches_report_through_prometheus(database_url: &str, dir: &Path, snmpsim: &Path) {
    let admin = keys(
        database_url,
        &["create", "--name", "root", "--role", "admin"],
    );
    let admin = admin.trim().to_owned();
    let collector = keys(
        database_url,
        &["create", "--name", "prom", "--role", "collector"],
    );
    std::fs::write(dir.join("netorch.token"), collector.trim()).expect("token file");
    let server = start_with(database_url, &["--workers", "none", "--auth", "keys"]);
    let addr = server.addr.as_str();
    let (status, created) = request_as(
        addr,
        &admin,
        "POST",
        "/deployments",
        Some(&serde_json::json!({
            "name": "edge-west", "target_node_count": 3, "telemetry_origin": "pushed"
        })),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let (_, listed) = request_as(
        addr,
        &admin,
        "GET",
        &format!("/deployments/{id}/nodes"),
        None,
    );
    let nodes: Vec<(i64, String)> = listed["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let id = n["id"].as_i64().expect("id");
            (id, n["node_id"].as_str().expect("name").to_owned())
        })
        .collect();
    assert_eq!(nodes.len(), 3);

    let (_agents, ports) = agents(snmpsim, dir);
    let (_exporter, exporter) = exporter(dir);
    // The switches file: the deployment by name; the first two nodes by name, the third by
    // its id (the `node` label Prometheus sends is what netorch is told).
    let mut labels = BTreeMap::new();
    let mut switches = String::new();
    for (index, ((node_id, name), port)) in nodes.iter().zip(&ports).enumerate() {
        let label = if index == 2 {
            node_id.to_string()
        } else {
            name.clone()
        };
        switches.push_str(&format!(
            "- targets: ['127.0.0.1:{port}']\n  labels:\n    deployment: edge-west\n    \
             node: '{label}'\n"
        ));
        labels.insert(*node_id, label);
    }
    // And the first switch again, by a host name and no `node` label: the recipe's relabelling
    // names the node after the host, here one netorch does not know.
    switches.push_str(&format!(
        "- targets: ['localhost:{}']\n  labels:\n    deployment: edge-west\n",
        ports[0]
    ));
    std::fs::write(dir.join("netorch-switches.yml"), switches).expect("write");
    let (_prometheus, prom) =
        support::prometheus::start(dir, &prometheus_config(dir, &exporter, addr));

    // Remote write trails the evaluations by up to its batch deadline (5 s): what Prometheus
    // recorded until ten seconds ago is in netorch, exactly, and nothing else is; once that is
    // a few polls of every switch.
    let settled = |readings: Readings, cut: i64| -> Readings {
        readings
            .into_iter()
            .filter(|((_, at), _)| *at <= cut)
            .collect()
    };
    let polls = |readings: &Readings, label: &str| {
        readings.keys().filter(|(node, _)| node == label).count()
    };
    let got = wait_for(
        "netorch to hold what Prometheus recorded, a few polls of every switch",
        Duration::from_secs(90),
        || {
            let cut = chrono::Utc::now().timestamp_millis() - 10_000;
            let expected: Readings = settled(readings(&prom), cut)
                .into_iter()
                .filter(|((node, _), _)| node != "localhost")
                .collect();
            let got = settled(stored(addr, &admin, id, &labels), cut);
            let enough = labels.values().all(|label| polls(&expected, label) >= 3);
            (enough && got == expected).then_some(got)
        },
    );
    for label in labels.values() {
        let of_node: Vec<[Option<f64>; 3]> = got
            .iter()
            .filter(|((node, _), _)| node == label)
            .map(|(_, values)| *values)
            .collect();
        assert!(of_node.len() >= 3, "{label}: {of_node:?}");
        for [latency, throughput, error_rate] in of_node {
            // The counters move (a recording's own counters never do): traffic, some errors,
            // and a poll that took time.
            assert!(latency.is_some_and(|v| v > 0.0), "{label}: {latency:?}");
            assert!(
                throughput.is_some_and(|v| v > 0.0),
                "{label}: {throughput:?}"
            );
            assert!(
                error_rate.is_some_and(|v| v > 0.0),
                "{label}: {error_rate:?}"
            );
        }
    }
    // The unlabelled switch was recorded as node "localhost", and netorch refused its readings
    // as of no node it has, and nothing else.
    assert!(
        readings(&prom).keys().any(|(node, _)| node == "localhost"),
        "the relabelling names an unlabelled switch after its host"
    );
    let refused = refused(addr, &admin, "prometheus_remote_write");
    assert!(
        !refused.is_empty()
            && refused
                .iter()
                .all(|l| l.contains("reason=\"unknown_node\"")),
        "{refused:?}"
    );
}

/// Runs `promtool ARGS` in `dir`; fails with its output unless it succeeds.
fn promtool(args: &[&str], dir: &Path) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_recipes_rules_pass_their_promtool_test_and_its_config_is_valid() {
    if !installed("promtool") {
        assert!(
            std::env::var_os("NETORCH_REQUIRE_PROMTOOL").is_none(),
            "NETORCH_REQUIRE_PROMTOOL is set but promtool is missing"
        );
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/snmp");
    promtool(&["test", "rules", "netorch-snmp-rules.test.yml"], &dir);
    let scratch = tempfile::tempdir().expect("tempdir");
    let config = scratch.path().join("prometheus.yml");
    std::fs::write(
        &config,
        prometheus_config(scratch.path(), "127.0.0.1:9116", "127.0.0.1:8000"),
    )
    .expect("write");
    std::fs::write(scratch.path().join("netorch.token"), "ntk_x").expect("write");
    std::fs::write(
        scratch.path().join("netorch-switches.yml"),
        recipe("switches.yml"),
    )
    .expect("write");
    promtool(&["check", "config", "prometheus.yml"], scratch.path());
}

#[test]
fn switches_report_through_prometheus_on_sqlite() {
    let Some(snmpsim) = chain_installed() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    switches_report_through_prometheus(&url, dir.path(), &snmpsim);
}

#[test]
fn switches_report_through_prometheus_on_postgres() {
    let Some(snmpsim) = chain_installed() else {
        return;
    };
    let Some(db) = netorch_testkit::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    switches_report_through_prometheus(db.url(), dir.path(), &snmpsim);
}
