//! The one mapping of the collectors' protocols, on both backends: points resolved by their
//! deployment and node labels (ids, names), a node's three metrics assembled into one sample
//! when they arrive in one request or in several, re-sent points stored once, every refused
//! point counted with its reason, and readings whose metrics never all arrive expired.

use chrono::{DateTime, Duration, Utc};
use netorch_domain::ingest::{Accepted, Batch, Point, Protocol, Refusal};
use netorch_domain::{DeploymentId, MetricKind, NewDeployment};
use netorch_service::deployments;
use netorch_service::ingest::{self, Ingested, WAIT_FOR_METRICS};
use netorch_service::telemetry::{self, TelemetryQuery};
use netorch_storage::DbConnection;
use netorch_testkit::{TestDatabase, backend_tests};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-07T01:30:00Z")
        .expect("valid")
        .to_utc()
}

fn accepted() -> Accepted {
    Accepted {
        earliest: now() - Duration::hours(24),
        latest: now() + Duration::seconds(1),
    }
}

fn point(deployment: &str, node: &str, metric: MetricKind, seconds_ago: i64, value: f64) -> Point {
    Point {
        deployment: deployment.into(),
        node: node.into(),
        metric,
        at: now() - Duration::seconds(seconds_ago),
        value,
    }
}

/// The three metrics of one reading.
fn reading(deployment: &str, node: &str, seconds_ago: i64) -> Vec<Point> {
    vec![
        point(deployment, node, MetricKind::LatencyMs, seconds_ago, 12.5),
        point(
            deployment,
            node,
            MetricKind::ThroughputGbps,
            seconds_ago,
            9.25,
        ),
        point(deployment, node, MetricKind::ErrorRate, seconds_ago, 0.5),
    ]
}

fn send(conn: &mut DbConnection, points: Vec<Point>, scope: Option<&[DeploymentId]>) -> Ingested {
    let batch = Batch {
        points,
        ..Batch::default()
    };
    ingest::ingest(
        conn,
        Protocol::PrometheusRemoteWrite,
        batch,
        scope,
        accepted(),
        now(),
    )
    .expect("ingest")
}

fn refused(outcome: &Ingested) -> Vec<(Refusal, u64)> {
    outcome.refused.iter().map(|(r, n, _)| (r, n)).collect()
}

fn stored(conn: &mut DbConnection, deployment: DeploymentId) -> Vec<(i64, f64, f64, f64)> {
    let query = TelemetryQuery {
        deployment,
        node: None,
        start: None,
        end: None,
        limit: 1000,
    };
    let mut rows: Vec<(i64, f64, f64, f64)> = telemetry::read(conn, query, None)
        .expect("read")
        .into_iter()
        .map(|s| {
            (
                s.node_id.get(),
                s.metrics.latency_ms,
                s.metrics.throughput_gbps,
                s.metrics.error_rate,
            )
        })
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    rows
}

fn points_become_samples_by_one_mapping(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let dc = deployments::create(&mut conn, &NewDeployment::new("dc", 3), None, now())
        .expect("create")
        .deployment
        .id;
    for _ in 0..2 {
        deployments::create(&mut conn, &NewDeployment::new("twin", 1), None, now())
            .expect("create");
    }
    let page = netorch_service::nodes::list(&mut conn, dc, &Default::default()).expect("nodes");
    let nodes = page.nodes;
    let (first, second, third) = (nodes[0].id, &nodes[1].name, &nodes[2].name);
    let dc_id = dc.to_string();

    // node 1 whole, by id and the deployment's id; node 2 by name and the deployment's name, two
    // of its three metrics only; and one point for each way to be refused.
    let mut points = reading(&dc_id, &first.to_string(), 10);
    points.extend(reading("dc", second, 10).into_iter().take(2));
    points.push(point("dc", "node-999", MetricKind::LatencyMs, 10, 1.0));
    points.push(point("nope", "node-001", MetricKind::LatencyMs, 10, 1.0));
    points.push(point("twin", "node-001", MetricKind::LatencyMs, 10, 1.0));
    points.push(point("dc", third, MetricKind::LatencyMs, 10, f64::NAN));
    points.push(point("dc", third, MetricKind::ErrorRate, 10, 101.0));
    points.push(point("dc", third, MetricKind::LatencyMs, -60, 1.0));
    points.push(point("dc", third, MetricKind::LatencyMs, 25 * 3600, 1.0));
    let outcome = send(&mut conn, points, None);
    assert_eq!(outcome.accepted, 5);
    assert_eq!((outcome.new_samples, outcome.waiting), (1, 1));
    assert_eq!(
        refused(&outcome),
        [
            (Refusal::InvalidValue, 2),
            (Refusal::TooNew, 1),
            (Refusal::TooOld, 1),
            (Refusal::UnknownDeployment, 1),
            (Refusal::AmbiguousDeployment, 1),
            (Refusal::UnknownNode, 1),
        ]
    );
    let summary = outcome.refused.summary();
    assert!(
        summary.starts_with("7 points refused: 2 invalid_value"),
        "{summary}"
    );
    assert!(
        summary.contains("first: latency_ms of node \"node-999\""),
        "{summary}"
    );
    assert_eq!(stored(&mut conn, dc), [(first.get(), 12.5, 9.25, 0.5)]);

    // The missing metric in a later request completes node 2's reading.
    let last = reading("dc", second, 10).pop().expect("error rate");
    let outcome = send(&mut conn, vec![last.clone()], None);
    assert_eq!(
        (outcome.accepted, outcome.new_samples, outcome.waiting),
        (1, 1, 0)
    );
    assert_eq!(stored(&mut conn, dc).len(), 2);
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, None).expect("waiting"),
        0
    );

    // A sender's retry of everything: accepted, stored once, nothing left waiting.
    let mut again = reading(&dc_id, &first.to_string(), 10);
    again.extend(reading("dc", second, 10));
    let outcome = send(&mut conn, again, None);
    assert_eq!(
        (outcome.accepted, outcome.new_samples, outcome.waiting),
        (6, 0, 0)
    );
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, None).expect("waiting"),
        0
    );
    assert_eq!(stored(&mut conn, dc).len(), 2);

    // A key limited to other deployments reaches none of dc's nodes.
    let other = [DeploymentId(dc.get() + 1)];
    let outcome = send(&mut conn, reading("dc", third, 5), Some(&other));
    assert_eq!(outcome.accepted, 0);
    assert_eq!(refused(&outcome), [(Refusal::ForbiddenDeployment, 3)]);

    // A reading that never gets its third metric waits, then expires, counted by protocol.
    let outcome = send(
        &mut conn,
        reading("dc", third, 5).into_iter().take(2).collect(),
        None,
    );
    assert_eq!((outcome.accepted, outcome.waiting), (2, 1));
    let early = ingest::expire_waiting(&mut conn, now()).expect("expire");
    assert!(early.is_empty(), "{early:?}");
    let expired = ingest::expire_waiting(&mut conn, now() + WAIT_FOR_METRICS).expect("expire");
    assert_eq!(
        expired.into_iter().collect::<Vec<_>>(),
        [("prometheus_remote_write".to_owned(), 1)]
    );
    assert_eq!(stored(&mut conn, dc).len(), 2);

    // Points nanoseconds apart are one reading (samples are kept to the microsecond): one
    // sample, on PostgreSQL too (whose upsert refuses to touch a row twice in a statement).
    let mut close = reading("dc", third, 3);
    close[1].at += Duration::nanoseconds(100);
    close[2].at += Duration::nanoseconds(200);
    let outcome = send(&mut conn, close, None);
    assert_eq!(
        (outcome.accepted, outcome.new_samples, outcome.waiting),
        (3, 1, 0)
    );
    let mut split = reading("dc", third, 2);
    let first_part = split.remove(0);
    split[0].at += Duration::nanoseconds(300);
    send(&mut conn, vec![first_part], None);
    let outcome = send(&mut conn, split, None);
    assert_eq!((outcome.new_samples, outcome.waiting), (1, 0));

    // A reading sent whole after a part of it ends the part's wait.
    send(
        &mut conn,
        reading("dc", third, 1).into_iter().take(1).collect(),
        None,
    );
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, Some(dc)).expect("waiting"),
        1
    );
    let outcome = send(&mut conn, reading("dc", third, 1), None);
    assert_eq!((outcome.accepted, outcome.waiting), (3, 0));
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, Some(dc)).expect("waiting"),
        0
    );

    // A limited key learns nothing of other deployments: none, several or another, all alike.
    for label in ["nope", "twin", "dc"] {
        let outcome = send(
            &mut conn,
            vec![point(label, "node-001", MetricKind::LatencyMs, 5, 1.0)],
            Some(&other),
        );
        assert_eq!(
            refused(&outcome),
            [(Refusal::ForbiddenDeployment, 1)],
            "{label}"
        );
    }

    // A deployment deleted with a reading waiting takes it along.
    send(
        &mut conn,
        reading("dc", third, 4).into_iter().take(1).collect(),
        None,
    );
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, Some(dc)).expect("waiting"),
        1
    );
    deployments::delete(&mut conn, dc, None, now()).expect("delete");
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, None).expect("waiting"),
        0
    );
}

backend_tests!(
    points_become_samples_by_one_mapping,
    a_backfill_of_many_instants_is_assembled_like_a_scrape
);

/// A sender catching up (vmagent or Prometheus after an outage) sends many instants of a few
/// nodes: the lookups of what is stored and what waits go over the batch's span, not an instant
/// at a time, and keep the same answers: parts wait, the rest completes them, a whole reading
/// ends a part still waiting, and a resend of parts of stored readings leaves nothing waiting.
fn a_backfill_of_many_instants_is_assembled_like_a_scrape(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let dc = deployments::create(&mut conn, &NewDeployment::new("dc", 2), None, now())
        .expect("create")
        .deployment
        .id;
    let id = dc.to_string();
    let instants = 300;
    let of = |metrics: &[MetricKind], seconds: std::ops::Range<i64>| -> Vec<Point> {
        let mut points = Vec::new();
        for ago in seconds {
            for node in ["node-001", "node-002"] {
                for metric in metrics {
                    points.push(point(&id, node, *metric, ago + 1, 1.0));
                }
            }
        }
        points
    };
    use MetricKind::{ErrorRate, LatencyMs, ThroughputGbps};
    // Latency of every instant: all waiting.
    let outcome = send(&mut conn, of(&[LatencyMs], 0..instants), None);
    assert_eq!((outcome.new_samples, outcome.waiting), (0, 600));
    // The other two of the first 200 instants: 400 complete, 200 still waiting.
    let outcome = send(&mut conn, of(&[ThroughputGbps, ErrorRate], 0..200), None);
    assert_eq!(outcome.new_samples, 400);
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, None).expect("waiting"),
        200
    );
    // The last 100 instants sent whole: stored, and their waiting parts end.
    let outcome = send(
        &mut conn,
        of(&[LatencyMs, ThroughputGbps, ErrorRate], 200..instants),
        None,
    );
    assert_eq!((outcome.new_samples, outcome.waiting), (200, 0));
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, None).expect("waiting"),
        0
    );
    // Parts of readings stored whole, sent again: already stored, nothing waits.
    let outcome = send(&mut conn, of(&[LatencyMs], 0..instants), None);
    assert_eq!(
        (outcome.accepted, outcome.new_samples, outcome.waiting),
        (600, 0, 0)
    );
    assert_eq!(
        netorch_storage::ingest::waiting(&mut conn, None).expect("waiting"),
        0
    );
    let query = TelemetryQuery {
        deployment: dc,
        node: None,
        start: None,
        end: None,
        limit: 10_000,
    };
    assert_eq!(
        telemetry::read(&mut conn, query, None).expect("read").len(),
        600
    );
}
