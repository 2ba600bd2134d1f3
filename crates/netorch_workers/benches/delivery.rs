//! Delivery latency when 1,000 alerts fire at once (issue 27): a deployment of 10,000 nodes on
//! SQLite, 1,000 of them over a node threshold rule, one evaluation opens 1,000 firing alerts
//! and writes 3,000 notifications (an Alertmanager, a webhook and a PagerDuty receiver, each a
//! loopback sink answering 200). Prints the evaluation's time and how long delivery passes take
//! until the outbox is empty, with how many requests each receiver got.
//!
//! `cargo bench -p netorch_workers --bench delivery`.

use chrono::{DateTime, Duration, TimeDelta, Utc};
use netorch_domain::alert::{
    AlertRules, Comparison, NewReceiver, ReceiverKind, Severity, ThresholdRule, ThresholdScope,
    Timing,
};
use netorch_domain::{MetricKind, Metrics, NewDeployment, NewSample, NodeId};
use netorch_service::alerts;
use netorch_storage::alerts::{evaluations, notifications};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{deployments, nodes, telemetry};
use netorch_testkit::TestDatabase;
use netorch_workers::delivery::{DeliveryOptions, deliver};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_003_600 + 17, 0).expect("valid time")
}

/// A loopback receiver answering 200 to everything; counts the requests.
fn sink() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let counted = Arc::clone(&counted);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                // Keep-alive: one request after another on the connection.
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    let mut any = false;
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        any = true;
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        line.clear();
                    }
                    if !any {
                        return;
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    counted.fetch_add(1, Ordering::Relaxed);
                    if stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

fn main() {
    let t = TestDatabase::sqlite();
    let mut conn = t.db.get().expect("connection");
    let (am, am_count) = sink();
    let (hook, hook_count) = sink();
    let (pd, pd_count) = sink();
    for (name, kind, url, secret) in [
        ("am", ReceiverKind::Alertmanager, am, None),
        ("hook", ReceiverKind::Webhook, hook, Some("k")),
        (
            "pd",
            ReceiverKind::PagerDuty,
            pd,
            Some("R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"),
        ),
    ] {
        let new = NewReceiver {
            name: name.into(),
            kind,
            url,
            secret: secret.map(str::to_owned),
        };
        alerts::create_receiver(&mut conn, &new, t0()).expect("receiver");
    }
    let rules = AlertRules {
        thresholds: vec![ThresholdRule {
            name: "slow".into(),
            metric: MetricKind::LatencyMs,
            op: Comparison::Above,
            value: 50.0,
            scope: ThresholdScope::Node,
            window_seconds: 60,
            timing: Timing {
                for_seconds: 0,
                resolve_after_seconds: 0,
            },
            severity: Severity::Critical,
        }],
        ..AlertRules::default()
    };
    let mut rules = rules;
    rules.bottleneck.enabled = false;
    let new = NewDeployment {
        alert_rules: rules,
        ..NewDeployment::new("bench", 10_000)
    };
    let d = deployments::create(&mut conn, &new, None, t0() - Duration::hours(1)).expect("create");
    let ids: Vec<NodeId> = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes
        .into_iter()
        .map(|n| n.id)
        .collect();
    let mut samples = Vec::new();
    for step in 0..12 {
        let at = t0() - Duration::seconds(60) + Duration::seconds(5 * step);
        for id in &ids {
            let slow = id.get() % 10 == 0;
            samples.push(NewSample {
                node_id: *id,
                deployment_id: d.id,
                timestamp: at,
                metrics: Metrics {
                    latency_ms: if slow { 80.0 } else { 10.0 },
                    throughput_gbps: 9.0,
                    error_rate: 0.1,
                },
            });
        }
    }
    telemetry::insert_batch(&mut conn, &samples).expect("insert");
    let interval = TimeDelta::seconds(30);
    let slot = alerts::slot_of(t0(), interval);
    assert!(
        evaluations::claim(&mut conn, d.id, slot, "bench", t0() + interval, t0()).expect("claim")
    );
    drop(conn);
    let began = Instant::now();
    let applied = alerts::evaluate_deployment(&t.db, d.id, slot, t0())
        .expect("evaluate")
        .expect("applied");
    let evaluated = began.elapsed();
    let options = DeliveryOptions {
        batch: 500,
        ..DeliveryOptions::default()
    };
    let began = Instant::now();
    let mut passes = 0;
    loop {
        passes += 1;
        deliver(&t.db, &options, t0()).expect("deliver");
        let (pending, _) = notifications::backlog(&mut t.db.get().expect("c")).expect("backlog");
        if pending == 0 {
            break;
        }
    }
    let delivered = began.elapsed();
    println!(
        "{} alerts fired in one evaluation of {:.0} ms; 3 receivers, {} notifications delivered in {:.0} ms ({passes} passes of at most {}): Alertmanager {} requests, webhook {}, PagerDuty {}",
        applied.fired.len(),
        evaluated.as_secs_f64() * 1e3,
        applied.fired.len() * 3,
        delivered.as_secs_f64() * 1e3,
        options.batch,
        am_count.load(Ordering::Relaxed),
        hook_count.load(Ordering::Relaxed),
        pd_count.load(Ordering::Relaxed),
    );
}
