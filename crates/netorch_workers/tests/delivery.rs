//! Delivery through loopback receivers, on both backends, with a fake clock: an alert that
//! fires reaches a signed webhook (retried after 503s, with backoff), a PagerDuty stub (every
//! request checked against the Events API v2 request schema) and an Alertmanager stand-in; its
//! resolve follows its firing on each, with the same fingerprint and dedup key; a receiver that
//! keeps failing fails the notification after its maximum age, and one that refuses fails it
//! at once. (The real Alertmanager is in bins/netorch_server/tests/alertmanager.rs.)

use chrono::{DateTime, Duration, TimeDelta, Utc};
use netorch_domain::alert::{AlertRules, NewReceiver, NotificationState, ReceiverKind, Timing};
use netorch_domain::{DeploymentId, Metrics, NewDeployment, NewSample};
use netorch_service::alerts;
use netorch_storage::alerts::{evaluations, notifications};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{deployments, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use netorch_workers::delivery::{
    DeliveryOptions, SIGNATURE_HEADER, TIMESTAMP_HEADER, deliver, sign,
};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T10:30:00Z")
        .expect("valid")
        .to_utc()
}

/// One request a receiver got: path, headers (lower-case names), body.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A loopback HTTP receiver: answers each request with the next scripted status (200 once the
/// script is spent) and keeps what it got.
struct Sink {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    /// While set, every request is answered 503 (the receiver is down).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink {
    fn start(script: &[u16]) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut script: VecDeque<u16> = script.iter().copied().collect();
        let got_in = Arc::clone(&got);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let down_in = Arc::clone(&down);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                got_in.lock().expect("lock").push(Received {
                    path,
                    headers,
                    body,
                });
                let status = if down_in.load(std::sync::atomic::Ordering::SeqCst) {
                    503
                } else {
                    script.pop_front().unwrap_or(200)
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{{}}"
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Sink { url, got, down }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

/// A webhook receiver's check, as docs/API.md describes it: the signature over the timestamp
/// and the body, and a timestamp within 5 minutes of the receiver's clock.
fn verify(
    secret: &str,
    request: &Received,
    receiver_now: DateTime<Utc>,
) -> Result<(), &'static str> {
    let stamp: i64 = request
        .header(TIMESTAMP_HEADER)
        .and_then(|s| s.parse().ok())
        .ok_or("no timestamp")?;
    if (receiver_now.timestamp() - stamp).abs() > 300 {
        return Err("too old");
    }
    let signature = request.header(SIGNATURE_HEADER).ok_or("no signature")?;
    if signature != sign(secret, stamp, &request.body) {
        return Err("bad signature");
    }
    Ok(())
}

/// PagerDuty's Events API v2 request schema (developer.pagerduty.com, "Send an Alert Event"):
/// the checks a real PagerDuty makes of what netorch sends.
fn check_pagerduty(event: &Value) {
    let object = event.as_object().expect("an object");
    let key = event["routing_key"].as_str().expect("routing_key");
    assert_eq!(key.len(), 32, "a routing key is 32 characters");
    let action = event["event_action"].as_str().expect("event_action");
    assert!(
        ["trigger", "acknowledge", "resolve"].contains(&action),
        "{action}"
    );
    let dedup = event["dedup_key"].as_str().expect("dedup_key");
    assert!(!dedup.is_empty() && dedup.len() <= 255);
    for field in object.keys() {
        assert!(
            [
                "routing_key",
                "event_action",
                "dedup_key",
                "payload",
                "images",
                "links",
                "client",
                "client_url"
            ]
            .contains(&field.as_str()),
            "unknown field {field}"
        );
    }
    if action == "trigger" {
        let payload = event["payload"]
            .as_object()
            .expect("a trigger needs its payload");
        let summary = payload["summary"].as_str().expect("summary");
        assert!(!summary.is_empty() && summary.chars().count() <= 1024);
        assert!(payload["source"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(
            ["critical", "error", "warning", "info"]
                .contains(&payload["severity"].as_str().expect("severity"))
        );
        let stamp = payload["timestamp"].as_str().expect("timestamp");
        assert!(DateTime::parse_from_rfc3339(stamp).is_ok(), "{stamp}");
        for field in payload.keys() {
            assert!(
                [
                    "summary",
                    "source",
                    "severity",
                    "timestamp",
                    "component",
                    "group",
                    "class",
                    "custom_details"
                ]
                .contains(&field.as_str()),
                "unknown payload field {field}"
            );
        }
    }
}

/// A deployment of 10 nodes with node-004 slow for the last 10 minutes, its bottleneck rule
/// firing at once.
fn slow_deployment(t: &TestDatabase) -> DeploymentId {
    let mut conn = t.db.get().expect("connection");
    let mut rules = AlertRules::default();
    rules.bottleneck.window_seconds = 300;
    rules.bottleneck.timing = Timing {
        for_seconds: 0,
        resolve_after_seconds: 0,
    };
    let new = NewDeployment {
        alert_rules: rules,
        ..NewDeployment::new("told", 10)
    };
    let d = deployments::create(&mut conn, &new, None, t0() - Duration::hours(1)).expect("create");
    let fleet = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    let mut samples = Vec::new();
    for step in 0..120 {
        let at = t0() - Duration::minutes(10) + Duration::seconds(5 * step);
        for node in &fleet {
            let wobble = ((node.id.get() + step) % 3) as f64 * 0.3;
            samples.push(NewSample {
                node_id: node.id,
                deployment_id: d.id,
                timestamp: at,
                metrics: Metrics {
                    latency_ms: if node.name == "node-004" { 70.0 } else { 10.0 } + wobble,
                    throughput_gbps: 9.0 - wobble,
                    error_rate: 0.1,
                },
            });
        }
    }
    telemetry::insert_batch(&mut conn, &samples).expect("insert");
    d.id
}

fn evaluate(t: &TestDatabase, d: DeploymentId, now: DateTime<Utc>) {
    let interval = TimeDelta::seconds(30);
    let slot = alerts::slot_of(now, interval);
    assert!(
        evaluations::claim(
            &mut t.db.get().expect("c"),
            d,
            slot,
            "w",
            now + interval,
            now
        )
        .expect("claim")
    );
    alerts::evaluate_deployment(&t.db, d, slot, now)
        .expect("evaluate")
        .expect("applied");
}

fn receiver(t: &TestDatabase, name: &str, kind: ReceiverKind, url: &str, secret: Option<&str>) {
    let new = NewReceiver {
        name: name.into(),
        kind,
        url: url.into(),
        secret: secret.map(str::to_owned),
    };
    alerts::create_receiver(&mut t.db.get().expect("c"), &new, t0()).expect("receiver");
}

fn options() -> DeliveryOptions {
    DeliveryOptions {
        external_url: "http://netorch.test:8000".into(),
        timeout: std::time::Duration::from_secs(5),
        max_age: TimeDelta::minutes(10),
        batch: 100,
    }
}

fn every_receiver_hears_the_firing_then_the_resolve(t: &TestDatabase) {
    const ROUTING: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";
    let hook = Sink::start(&[503, 503]);
    let duty = Sink::start(&[]);
    let manager = Sink::start(&[]);
    receiver(
        t,
        "hook",
        ReceiverKind::Webhook,
        &format!("{}/hook", hook.url),
        Some("k3y"),
    );
    receiver(
        t,
        "pd",
        ReceiverKind::PagerDuty,
        &format!("{}/v2/enqueue", duty.url),
        Some(ROUTING),
    );
    receiver(t, "am", ReceiverKind::Alertmanager, &manager.url, None);
    let d = slow_deployment(t);
    evaluate(t, d, t0());
    let opts = options();
    // Alertmanager and PagerDuty take it at once; the webhook answers 503 twice.
    let first = deliver(&t.db, &opts, t0()).expect("deliver");
    assert_eq!(
        (first.delivered, first.retried, first.failed),
        (2, 1, 0),
        "{first:?}"
    );
    // Not due again before its backoff (1 s), then 2 s after the second 503.
    assert_eq!(
        deliver(&t.db, &opts, t0() + Duration::milliseconds(500))
            .expect("d")
            .retried,
        0
    );
    let second = deliver(&t.db, &opts, t0() + Duration::seconds(1)).expect("deliver");
    assert_eq!(second.retried, 1);
    assert_eq!(
        deliver(&t.db, &opts, t0() + Duration::seconds(2))
            .expect("d")
            .delivered,
        0
    );
    let third = deliver(&t.db, &opts, t0() + Duration::seconds(4)).expect("deliver");
    assert_eq!(third.delivered, 1);
    // The deployment goes: its alert resolves, and every receiver is told, in order.
    deployments::delete(
        &mut t.db.get().expect("c"),
        d,
        None,
        t0() + Duration::seconds(5),
    )
    .expect("delete");
    let last = deliver(&t.db, &opts, t0() + Duration::seconds(6)).expect("deliver");
    assert_eq!(last.delivered, 3, "{last:?}");

    let webhook = hook.received();
    assert_eq!(webhook.len(), 4, "three tries of the firing, one resolve");
    for request in &webhook {
        assert_eq!(request.path, "/hook");
        assert_eq!(verify("k3y", request, t0()), Ok(()));
    }
    // A forgery and a replay are refused by the documented check.
    let mut tampered = webhook[3].clone();
    tampered.body[10] ^= 1;
    assert_eq!(verify("k3y", &tampered, t0()), Err("bad signature"));
    assert_eq!(
        verify("k3y", &webhook[3], t0() + Duration::minutes(6)),
        Err("too old")
    );
    assert_eq!(verify("other", &webhook[3], t0()), Err("bad signature"));
    let statuses: Vec<Value> = webhook.iter().map(|r| r.json()["status"].clone()).collect();
    assert_eq!(statuses, ["firing", "firing", "firing", "resolved"]);
    let fired = webhook[0].json();
    assert_eq!(fired["version"], "4");
    let fingerprint = fired["alerts"][0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert_eq!(webhook[3].json()["alerts"][0]["fingerprint"], fingerprint);
    assert_eq!(fired["alerts"][0]["labels"]["node"], "node-004");
    assert!(
        fired["alerts"][0]["generatorURL"]
            .as_str()
            .expect("url")
            .starts_with("http://netorch.test:8000/ui/deployments/")
    );

    let paged = duty.received();
    assert_eq!(paged.len(), 2);
    for request in &paged {
        assert_eq!(request.path, "/v2/enqueue");
        check_pagerduty(&request.json());
    }
    let actions: Vec<Value> = paged
        .iter()
        .map(|r| r.json()["event_action"].clone())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert!(
        paged
            .iter()
            .all(|r| r.json()["dedup_key"] == fingerprint.as_str())
    );

    let managed = manager.received();
    assert!(managed.iter().all(|r| r.path == "/api/v2/alerts"));
    let bodies: Vec<Value> = managed.iter().map(Received::json).collect();
    // The firing (a batch, with the minute's re-send of what fires), then the resolve, whose
    // endsAt is the resolve's time.
    let last = bodies.last().expect("the resolve");
    assert_eq!(last[0]["labels"]["node"], "node-004");
    assert_eq!(last[0]["endsAt"], "2026-12-06T10:30:05.000Z");
    assert!(
        bodies
            .iter()
            .all(|b| b.as_array().is_some_and(|a| !a.is_empty()))
    );
    let outbox = notifications::list(&mut t.db.get().expect("c"), None, None, 100).expect("list");
    assert!(
        outbox
            .iter()
            .all(|n| n.state == NotificationState::Delivered),
        "{outbox:?}"
    );
}

fn a_receiver_that_keeps_failing_fails_its_notifications(t: &TestDatabase) {
    let down = Sink::start(&[500; 64]);
    let refusing = Sink::start(&[400]);
    receiver(t, "down", ReceiverKind::Webhook, &down.url, Some("k"));
    receiver(
        t,
        "refusing",
        ReceiverKind::Webhook,
        &refusing.url,
        Some("k"),
    );
    let d = slow_deployment(t);
    evaluate(t, d, t0());
    let opts = options();
    let first = deliver(&t.db, &opts, t0()).expect("deliver");
    assert_eq!(
        (first.retried, first.failed),
        (1, 1),
        "a 400 fails at once: {first:?}"
    );
    // Retried with backoff until ten minutes old, then failed.
    let mut now = t0();
    let mut attempts = 1;
    while now < t0() + Duration::minutes(11) {
        now += Duration::seconds(20);
        let tick = deliver(&t.db, &opts, now).expect("deliver");
        attempts += tick.retried + tick.failed;
    }
    let failed = notifications::list(
        &mut t.db.get().expect("c"),
        Some(NotificationState::Failed),
        None,
        10,
    )
    .expect("list");
    assert_eq!(failed.len(), 2);
    assert!(
        failed
            .iter()
            .all(|n| n.last_error.as_deref().is_some_and(|e| e.contains("HTTP")))
    );
    assert!(
        (8..=30).contains(&attempts),
        "backoff spaced the attempts: {attempts}"
    );
    // An admin's retry sends it again.
    let again =
        alerts::retry_notification(&mut t.db.get().expect("c"), failed[0].id, now).expect("retry");
    assert_eq!(
        (again.state, again.attempts),
        (NotificationState::Pending, 0)
    );
}

fn receivers_down_for_two_minutes_hear_everything_in_order_once_back(t: &TestDatabase) {
    let hook = Sink::start(&[]);
    receiver(t, "hook", ReceiverKind::Webhook, &hook.url, Some("k"));
    let d = slow_deployment(t);
    hook.down.store(true, std::sync::atomic::Ordering::SeqCst);
    evaluate(t, d, t0());
    // The alert resolves while the receiver is still down: its firing and its resolve queue up.
    deployments::delete(
        &mut t.db.get().expect("c"),
        d,
        None,
        t0() + Duration::seconds(30),
    )
    .expect("delete");
    let opts = options();
    let mut now = t0();
    while now < t0() + Duration::seconds(240) {
        if now >= t0() + Duration::seconds(120) {
            hook.down.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        deliver(&t.db, &opts, now).expect("deliver");
        now += Duration::seconds(1);
    }
    let outbox = notifications::list(&mut t.db.get().expect("c"), None, None, 100).expect("list");
    assert_eq!(outbox.len(), 2);
    assert!(
        outbox
            .iter()
            .all(|n| n.state == NotificationState::Delivered),
        "{outbox:?}"
    );
    // Backoff: a handful of tries over the two minutes, not one a second.
    let tries = hook.received().len();
    assert!((4..=15).contains(&tries), "{tries} requests");
    let told: Vec<(String, Value)> = hook
        .received()
        .iter()
        .map(|r| {
            (
                r.json()["status"].as_str().unwrap_or_default().to_owned(),
                r.json()["alerts"][0]["fingerprint"].clone(),
            )
        })
        .collect();
    let (last_firing, first_resolved) = (
        told.iter()
            .rposition(|(status, _)| status == "firing")
            .expect("a firing"),
        told.iter()
            .position(|(status, _)| status == "resolved")
            .expect("a resolve"),
    );
    assert!(
        last_firing < first_resolved,
        "the resolve waits for its firing: {told:?}"
    );
    assert!(told.iter().all(|(_, print)| *print == told[0].1));
}

backend_tests!(
    receivers_down_for_two_minutes_hear_everything_in_order_once_back,
    every_receiver_hears_the_firing_then_the_resolve,
    a_receiver_that_keeps_failing_fails_its_notifications,
);
