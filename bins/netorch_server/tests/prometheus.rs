//! A real Prometheus (Debian's `prometheus`, on a loopback port, with a config written here)
//! scrapes a small exporter the test serves (gauges with `deployment` and `node` labels for
//! netorch's three metrics, new values every scrape) and remote-writes to the real
//! `netorch-server`, a few samples a request so that a node's three series often arrive in
//! different requests. Once the exporter stops, netorch holds exactly the samples Prometheus
//! scraped (read back from Prometheus's own query API), no more, no fewer, with nothing refused;
//! on SQLite and, where `NETORCH_TEST_POSTGRES_URL` is set, PostgreSQL.
//!
//! Skipped (with a note) where Prometheus is not installed, unless `NETORCH_REQUIRE_PROMETHEUS`
//! is set (CI sets it).

mod support;

use std::time::Duration;
use support::prometheus::{readings as scraped, stored};
use support::*;

/// A Prometheus scraping `target` every second and remote-writing to `netorch`, four samples a
/// request.
fn prometheus(dir: &std::path::Path, target: &str, netorch: &str) -> (Killed, String) {
    support::prometheus::start(
        dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: switches\n    honor_labels: true\n\
             \x20   static_configs:\n      - targets: ['{target}']\n\
             remote_write:\n  - url: http://{netorch}/api/v1/write\n\
             \x20   write_relabel_configs:\n      - source_labels: [__name__]\n\
             \x20       regex: 'netorch_.*'\n        action: keep\n\
             \x20   queue_config:\n      batch_send_deadline: 1s\n      max_samples_per_send: 4\n\
             \x20     min_backoff: 100ms\n      max_backoff: 1s\n"
        ),
    )
}

fn prometheus_remote_writes_exactly_what_it_scraped(database_url: &str, dir: &std::path::Path) {
    let server = start_with(database_url, &["--workers", "none"]);
    let addr = server.addr.as_str();
    let (id, names) = exporter::pushed_deployment(addr, "edge-west", 3);

    let exporter = exporter::Exporter::start("edge-west", 3);
    let (_prometheus, prom) = prometheus(dir, &exporter.addr, addr);
    // A dozen scrapes, then the series end.
    wait_for("a dozen scrapes", Duration::from_secs(60), || {
        (scraped(&prom).len() >= 36).then_some(())
    });
    exporter.stop();
    std::thread::sleep(Duration::from_secs(2));
    let expected = scraped(&prom);
    assert!(expected.len() >= 36, "{} readings", expected.len());
    assert!(
        expected.values().all(|v| v.iter().all(Option::is_some)),
        "every scrape has the three metrics"
    );
    // Remote write trails the scrapes by a second or two.
    let got = wait_for(
        "netorch to hold what Prometheus scraped",
        Duration::from_secs(60),
        || {
            let got = stored(addr, "", id, &names);
            (got.len() >= expected.len()).then_some(got)
        },
    );
    assert_eq!(got, expected, "netorch holds exactly the scraped samples");

    // Nothing was refused: the write_relabel_configs keep netorch's series only, and the
    // staleness markers of the ended series are not readings.
    let refused = support::prometheus::refused(addr, "", "prometheus_remote_write");
    assert!(refused.is_empty(), "{refused:?}");
    let (_, _, metrics) = exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let written = format!(
        "netorch_telemetry_samples_written_total{{source=\"prometheus_remote_write\"}} {}",
        expected.len()
    );
    assert!(metrics.contains(&written), "{written} in:\n{metrics}");
}

#[test]
fn prometheus_remote_writes_exactly_what_it_scraped_on_sqlite() {
    if !support::prometheus::installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
    prometheus_remote_writes_exactly_what_it_scraped(&url, dir.path());
}

#[test]
fn prometheus_remote_writes_exactly_what_it_scraped_on_postgres() {
    if !support::prometheus::installed() {
        return;
    }
    let Some(db) = netorch_testkit::TestDatabase::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    prometheus_remote_writes_exactly_what_it_scraped(db.url(), dir.path());
}
