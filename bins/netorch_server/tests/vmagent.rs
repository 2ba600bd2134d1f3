//! A real vmagent (Debian's `victoria-metrics` package) scrapes a small exporter the test serves
//! every second and remote-writes to the real `netorch-server`. netorch is stopped for a while
//! and started again on the same address and database; vmagent keeps what it scraped meanwhile
//! and sends it once netorch answers again. Once the exporter stops, netorch holds every scrape
//! the exporter served exactly once: nothing lost, nothing duplicated; on SQLite and, where
//! `NETORCH_TEST_POSTGRES_URL` is set, PostgreSQL.
//!
//! Skipped (with a note) where vmagent is not installed, unless `NETORCH_REQUIRE_VMAGENT` is set
//! (CI sets it).

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::exporter::{Exporter, pushed_deployment, scrape_of};
use support::*;

fn vmagent_installed() -> bool {
    // vmagent has no --version; -version prints it and exits.
    let runs = Command::new("vmagent")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return true;
    }
    assert!(
        std::env::var_os("NETORCH_REQUIRE_VMAGENT").is_none(),
        "NETORCH_REQUIRE_VMAGENT is set but vmagent is missing"
    );
    eprintln!("skipped: vmagent is not installed (apt-get install victoria-metrics)");
    false
}

/// A vmagent scraping `target` every second and remote-writing netorch's series to `netorch`.
fn vmagent(dir: &std::path::Path, target: &str, netorch: &str) -> Killed {
    let scrape = dir.join("scrape.yml");
    std::fs::write(
        &scrape,
        format!(
            "scrape_configs:\n  - job_name: switches\n    scrape_interval: 1s\n    \
             honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write scrape config");
    let keep = dir.join("keep.yml");
    std::fs::write(
        &keep,
        "- action: keep\n  source_labels: [__name__]\n  regex: 'netorch_.*'\n",
    )
    .expect("write relabel config");
    Killed(
        Command::new("vmagent")
            .arg(format!("-promscrape.config={}", scrape.display()))
            .arg(format!("-remoteWrite.url=http://{netorch}/api/v1/write"))
            .arg(format!("-remoteWrite.urlRelabelConfig={}", keep.display()))
            .arg(format!(
                "-remoteWrite.tmpDataPath={}",
                dir.join("vmagent").display()
            ))
            .arg("-remoteWrite.flushInterval=500ms")
            .arg(format!("-httpListenAddr=127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vmagent"),
    )
}

/// For each node, the scrapes whose values netorch holds (a scrape held twice is listed twice).
fn scrapes_held(
    addr: &str,
    deployment: i64,
    names: &BTreeMap<i64, u64>,
) -> BTreeMap<u64, Vec<u64>> {
    let (status, body) = request(
        addr,
        "GET",
        &format!("/deployments/{deployment}/telemetry?limit=1000"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut held: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for s in body["samples"].as_array().expect("samples") {
        let n = names[&s["node_id"].as_i64().expect("node")];
        let got = ["latency_ms", "throughput_gbps", "error_rate"]
            .map(|field| s[field].as_f64().expect("value"));
        let k = scrape_of(n, got).unwrap_or_else(|| panic!("no scrape served {got:?}"));
        held.entry(n).or_default().push(k);
    }
    for scrapes in held.values_mut() {
        scrapes.sort_unstable();
    }
    held
}

fn vmagent_loses_and_repeats_nothing_across_a_restart(database_url: &str, dir: &std::path::Path) {
    let bind = format!("127.0.0.1:{}", free_port());
    let args = ["--workers", "none", "--shutdown-grace", "0.2"];
    let server = start_on(&bind, database_url, &args);
    let (id, names) = pushed_deployment(&server.addr, "edge-north", 3);
    // Node id → its number in the exporter (node-001 is 1).
    let names: BTreeMap<i64, u64> = names
        .into_iter()
        .map(|(id, name)| {
            let number = name.trim_start_matches("node-").parse().expect("number");
            (id, number)
        })
        .collect();

    let exporter = Exporter::start("edge-north", 3);
    let _vmagent = vmagent(dir, &exporter.addr, &bind);
    wait_for("a few scrapes stored", Duration::from_secs(60), || {
        let held = scrapes_held(&server.addr, id, &names);
        (held.values().map(Vec::len).sum::<usize>() >= 9).then_some(())
    });

    // netorch goes away for a few scrapes, and comes back on the same address and database.
    sigterm(&server);
    drop(server);
    let before = exporter.served();
    wait_for(
        "scrapes while netorch is away",
        Duration::from_secs(30),
        || (exporter.served() >= before + 4).then_some(()),
    );
    let server = start_on(&bind, database_url, &args);
    wait_for(
        "a few scrapes after the restart",
        Duration::from_secs(30),
        || (exporter.served() >= before + 8).then_some(()),
    );
    exporter.stop();
    // A scrape that began before the stop is counted as it ends, a moment later.
    std::thread::sleep(Duration::from_millis(500));
    let served = exporter.served();

    // Every scrape served, for every node, once.
    let expected: BTreeMap<u64, Vec<u64>> = (1..=3).map(|n| (n, (0..served).collect())).collect();
    let held = wait_for("every scrape stored", Duration::from_secs(60), || {
        let held = scrapes_held(&server.addr, id, &names);
        (held.values().map(Vec::len).sum::<usize>() >= expected.values().map(Vec::len).sum())
            .then_some(held)
    });
    assert_eq!(held, expected, "each scrape stored once, none lost");
}

#[test]
fn vmagent_loses_and_repeats_nothing_across_a_restart_on_sqlite() {
    if !vmagent_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    vmagent_loses_and_repeats_nothing_across_a_restart(&url, dir.path());
}

#[test]
fn vmagent_loses_and_repeats_nothing_across_a_restart_on_postgres() {
    if !vmagent_installed() {
        return;
    }
    let Some(db) = netorch_testkit::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    vmagent_loses_and_repeats_nothing_across_a_restart(db.url(), dir.path());
}
