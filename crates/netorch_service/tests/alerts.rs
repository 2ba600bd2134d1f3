//! Alert evaluation through the service crate, on both backends: a slow node goes pending,
//! fires once, clears and resolves once; an evaluation of a slot already applied writes
//! nothing; a fleet-wide slowdown fires the fleet threshold while the bottleneck rule stays
//! quiet; acknowledgements and silences mark alerts and are audited; a deleted deployment's
//! alerts resolve with it.

use chrono::{DateTime, Duration, TimeDelta, Utc};
use netorch_domain::alert::{
    AlertRules, Comparison, Matcher, NewSilence, ThresholdRule, ThresholdScope, Timing,
};
use netorch_domain::{
    AlertState, DeploymentId, EventType, MetricKind, Metrics, NewDeployment, NewSample, Severity,
};
use netorch_service::ServiceError;
use netorch_service::alerts::{self, AlertRef};
use netorch_storage::alerts::{AlertFilter, evaluations};
use netorch_storage::events::EventQuery;
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{StorageError, deployments, events, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T10:30:00Z")
        .expect("valid")
        .to_utc()
}

const INTERVAL: TimeDelta = TimeDelta::seconds(30);

/// Quick rules: the bottleneck rule over 5 minutes, firing after 60 s, resolving after 60 s.
fn quick_rules() -> AlertRules {
    let mut rules = AlertRules::default();
    rules.bottleneck.window_seconds = 300;
    rules.bottleneck.timing = Timing {
        for_seconds: 60,
        resolve_after_seconds: 60,
    };
    rules
}

fn create(t: &TestDatabase, rules: AlertRules) -> DeploymentId {
    let mut conn = t.db.get().expect("connection");
    let new = NewDeployment {
        alert_rules: rules,
        ..NewDeployment::new("watched", 10)
    };
    deployments::create(&mut conn, &new, None, t0() - Duration::hours(1))
        .expect("create")
        .id
}

/// Readings every 5 s in `[from, to)`, with `latency(node name)` as each node's latency.
fn push(
    t: &TestDatabase,
    d: DeploymentId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    latency: &dyn Fn(&str) -> f64,
) {
    let mut conn = t.db.get().expect("connection");
    let fleet = nodes::list(&mut conn, d, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    let mut samples = Vec::new();
    let mut at = from;
    let mut step = 0;
    while at < to {
        for node in &fleet {
            let wobble = ((node.id.get() + step) % 3) as f64 * 0.3;
            samples.push(NewSample {
                node_id: node.id,
                deployment_id: d,
                timestamp: at,
                metrics: Metrics {
                    latency_ms: latency(&node.name) + wobble,
                    throughput_gbps: 9.0 - wobble,
                    error_rate: 0.1 + wobble / 10.0,
                },
            });
        }
        at += Duration::seconds(5);
        step += 1;
    }
    telemetry::insert_batch(&mut conn, &samples).expect("insert");
}

/// Claims and evaluates `d` at `now` for the slot `now` is in, as `owner`.
fn evaluate_at(
    t: &TestDatabase,
    d: DeploymentId,
    now: DateTime<Utc>,
) -> Option<netorch_storage::alerts::Applied> {
    let slot = alerts::slot_of(now, INTERVAL);
    let claimed = evaluations::claim(
        &mut t.db.get().expect("c"),
        d,
        slot,
        "w1",
        now + INTERVAL,
        now,
    )
    .expect("claim");
    assert!(claimed, "the slot of {now} is free");
    alerts::evaluate_deployment(&t.db, d, slot, now).expect("evaluate")
}

fn alerts_of(t: &TestDatabase, d: DeploymentId) -> Vec<netorch_domain::Alert> {
    let filter = AlertFilter {
        deployment: Some(d),
        ..AlertFilter::default()
    };
    alerts::list(&mut t.db.get().expect("c"), &filter, None, 100).expect("list")
}

fn event_types(t: &TestDatabase, d: DeploymentId) -> Vec<EventType> {
    let query = EventQuery {
        limit: 1000,
        ..EventQuery::of_deployment(d)
    };
    events::list(&mut t.db.get().expect("c"), &query)
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .filter(|t| t.as_str().starts_with("ALERT") || t.as_str().starts_with("SILENCE"))
        .collect()
}

fn a_slow_node_fires_once_and_resolves_once(t: &TestDatabase) {
    let d = create(t, quick_rules());
    let slow = |name: &str| if name == "node-004" { 70.0 } else { 10.0 };
    push(
        t,
        d,
        (t0() - Duration::minutes(10), t0() + Duration::seconds(95)),
        &slow,
    );
    // First seen: pending, told to nobody.
    let applied = evaluate_at(t, d, t0()).expect("applied");
    assert_eq!((applied.fired.len(), applied.changes), (0, 1));
    let listed = alerts_of(t, d);
    assert_eq!(listed.len(), 1);
    let alert = &listed[0];
    assert_eq!(alert.state, AlertState::Pending);
    assert_eq!(alert.labels["node"], "node-004");
    assert_eq!(alert.labels["alertname"], "NetorchNodeBottleneck");
    assert_eq!(alert.labels["rule"], "bottleneck");
    assert_eq!(alert.severity, Severity::Warning);
    assert!(
        alert.annotations["summary"].contains("node-004"),
        "{:?}",
        alert.annotations
    );
    assert!(event_types(t, d).is_empty());
    // Still flagged 30 s later: still pending.
    let applied = evaluate_at(t, d, t0() + Duration::seconds(30)).expect("applied");
    assert_eq!(applied.changes, 0);
    // 60 s: fires, once.
    let applied = evaluate_at(t, d, t0() + Duration::seconds(60)).expect("applied");
    assert_eq!(applied.fired.len(), 1);
    let fired = &applied.fired[0];
    assert_eq!((fired.id, fired.state), (alert.id, AlertState::Firing));
    assert_eq!(fired.starts_at, Some(t0() + Duration::seconds(60)));
    // The same slot again (another worker, its lease ended): nothing written.
    let slot = alerts::slot_of(t0() + Duration::seconds(60), INTERVAL);
    assert_eq!(
        alerts::evaluate_deployment(&t.db, d, slot, t0() + Duration::seconds(61))
            .expect("evaluate"),
        None
    );
    assert_eq!(event_types(t, d), [EventType::AlertFiring]);
    // Healthy from here on: once its window no longer flags it, it clears, then resolves
    // 60 s later.
    let healthy = |_: &str| 10.0;
    let later = t0() + Duration::minutes(10);
    push(
        t,
        d,
        (t0() + Duration::seconds(95), later + Duration::minutes(2)),
        &healthy,
    );
    let applied = evaluate_at(t, d, later).expect("applied");
    assert_eq!((applied.resolved.len(), applied.changes), (0, 1));
    assert!(alerts_of(t, d)[0].clear_since.is_some());
    let applied = evaluate_at(t, d, later + Duration::seconds(60)).expect("applied");
    assert_eq!(applied.resolved.len(), 1);
    let resolved = &alerts_of(t, d)[0];
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(resolved.ends_at, Some(later + Duration::seconds(60)));
    assert_eq!(
        event_types(t, d),
        [EventType::AlertFiring, EventType::AlertResolved]
    );
    // By fingerprint, the latest.
    let found = alerts::get(
        &mut t.db.get().expect("c"),
        &AlertRef::parse(&resolved.fingerprint).expect("a fingerprint"),
    )
    .expect("found");
    assert_eq!(found.id, resolved.id);
}

fn a_fleet_wide_slowdown_fires_the_fleet_threshold_only(t: &TestDatabase) {
    let mut rules = quick_rules();
    rules.thresholds.push(ThresholdRule {
        name: "fleet_slow".into(),
        metric: MetricKind::LatencyMs,
        op: Comparison::Above,
        value: 25.0,
        scope: ThresholdScope::Fleet,
        window_seconds: 120,
        timing: Timing {
            for_seconds: 0,
            resolve_after_seconds: 0,
        },
        severity: Severity::Critical,
    });
    let d = create(t, rules);
    // Every node 3 times slower: none stands out from its peers.
    let all_slow = |_: &str| 30.0;
    push(t, d, (t0() - Duration::minutes(10), t0()), &all_slow);
    let applied = evaluate_at(t, d, t0()).expect("applied");
    // The bottleneck rule flags nobody (the robust method compares nodes with each other);
    // the fleet's mean is past the value, so the fleet alert fires at once (`for` 0).
    assert_eq!(applied.fired.len(), 1, "{applied:?}");
    let fleet = &applied.fired[0];
    assert_eq!(fleet.labels["alertname"], "NetorchFleetThreshold");
    assert_eq!(fleet.node_id, None);
    assert!(!fleet.labels.contains_key("node"));
    assert_eq!(fleet.severity, Severity::Critical);
    let mean: f64 = fleet.annotations["value"].parse().expect("a number");
    assert!((30.0..30.7).contains(&mean), "{mean}");
    assert_eq!(alerts_of(t, d).len(), 1, "no bottleneck alert");
}

fn acknowledgements_and_silences_are_marked_and_audited(t: &TestDatabase) {
    let mut rules = quick_rules();
    rules.bottleneck.timing.for_seconds = 0;
    let d = create(t, rules);
    let slow = |name: &str| if name == "node-004" { 70.0 } else { 10.0 };
    push(
        t,
        d,
        (t0() - Duration::minutes(10), t0() + Duration::minutes(5)),
        &slow,
    );
    let applied = evaluate_at(t, d, t0()).expect("applied");
    let alert = applied.fired[0].clone();
    let mut conn = t.db.get().expect("c");
    let by_id = AlertRef::Id(alert.id);
    let acked = alerts::acknowledge(&mut conn, &by_id, true, "ops", "looking", t0()).expect("ack");
    let ack = acked.acknowledgement.clone().expect("acknowledged");
    assert_eq!((ack.by.as_str(), ack.comment.as_str()), ("ops", "looking"));
    // Again: kept as it was, no second event.
    alerts::acknowledge(&mut conn, &by_id, true, "other", "me too", t0()).expect("ack");
    let unacked =
        alerts::acknowledge(&mut conn, &by_id, false, "ops", "wrong one", t0()).expect("unack");
    assert_eq!(unacked.acknowledgement, None);
    // A silence on the node's label marks it at once; expiring it unmarks it.
    let silence = alerts::create_silence(
        &mut conn,
        &NewSilence {
            matchers: vec![
                Matcher {
                    name: "node".into(),
                    value: "node-00[0-4]".into(),
                    is_regex: true,
                    is_equal: true,
                },
                Matcher {
                    name: "deployment".into(),
                    value: d.to_string(),
                    is_regex: false,
                    is_equal: true,
                },
            ],
            starts_at: t0(),
            ends_at: t0() + Duration::hours(1),
            created_by: "ops".into(),
            comment: "maintenance".into(),
        },
        t0(),
    )
    .expect("silence");
    assert_eq!(
        alerts::get(&mut conn, &by_id).expect("get").silenced_by,
        [silence.id]
    );
    let silenced = AlertFilter {
        silenced: Some(true),
        ..AlertFilter::default()
    };
    assert_eq!(
        alerts::list(&mut conn, &silenced, None, 10)
            .expect("list")
            .len(),
        1
    );
    alerts::expire_silence(&mut conn, silence.id, "ops", t0() + Duration::minutes(1))
        .expect("expire");
    assert!(
        alerts::get(&mut conn, &by_id)
            .expect("get")
            .silenced_by
            .is_empty()
    );
    assert_eq!(
        event_types(t, d),
        [
            EventType::AlertFiring,
            EventType::AlertAcknowledged,
            EventType::AlertUnacknowledged,
            EventType::SilenceCreated,
            EventType::SilenceExpired,
        ]
    );
    // Only a firing alert is acknowledged; an unknown one is not found.
    let missing = alerts::acknowledge(
        &mut conn,
        &AlertRef::Id(netorch_domain::AlertId(999_999)),
        true,
        "ops",
        "x",
        t0(),
    );
    assert!(matches!(
        missing,
        Err(ServiceError::Storage(StorageError::AlertNotFound))
    ));
    // Deleting the deployment resolves its alert, before the delete's own event.
    deployments::delete(&mut conn, d, None, t0() + Duration::minutes(2)).expect("delete");
    assert_eq!(
        alerts::get(&mut conn, &by_id).expect("get").state,
        AlertState::Resolved
    );
    assert_eq!(
        events::list(
            &mut conn,
            &EventQuery {
                limit: 1000,
                ..EventQuery::of_deployment(d)
            }
        )
        .expect("events")
        .iter()
        .rev()
        .take(2)
        .map(|e| e.event_type)
        .collect::<Vec<_>>(),
        [EventType::DeploymentDeleted, EventType::AlertResolved]
    );
    let resolved = alerts::acknowledge(&mut conn, &by_id, true, "ops", "late", t0());
    assert!(matches!(
        resolved,
        Err(ServiceError::Storage(StorageError::AlertNotFiring(
            AlertState::Resolved
        )))
    ));
}

fn a_claimed_slot_is_evaluated_by_one_worker(t: &TestDatabase) {
    let d = create(t, quick_rules());
    let slot = alerts::slot_of(t0(), INTERVAL);
    let mut conn = t.db.get().expect("c");
    assert!(evaluations::claim(&mut conn, d, slot, "w1", t0() + INTERVAL, t0()).expect("claim"));
    // Another worker meanwhile: the lease holds it off.
    assert!(
        !evaluations::claim(
            &mut conn,
            d,
            slot,
            "w2",
            t0() + INTERVAL,
            t0() + Duration::seconds(5)
        )
        .expect("claim")
    );
    // w1 died: once its lease ends, w2 takes the slot over.
    let late = t0() + INTERVAL + Duration::seconds(1);
    assert!(evaluations::claim(&mut conn, d, slot, "w2", late + INTERVAL, late).expect("claim"));
    assert!(evaluations::finish(&mut conn, d, slot).expect("finish"));
    // Done: nobody claims or finishes it again; the next slot is free.
    assert!(
        !evaluations::claim(
            &mut conn,
            d,
            slot,
            "w1",
            late + INTERVAL,
            late + INTERVAL * 2
        )
        .expect("claim")
    );
    assert!(!evaluations::finish(&mut conn, d, slot).expect("finish"));
    let next = slot + INTERVAL;
    assert!(evaluations::claim(&mut conn, d, next, "w1", next + INTERVAL, next).expect("claim"));
}

backend_tests!(
    a_slow_node_fires_once_and_resolves_once,
    a_fleet_wide_slowdown_fires_the_fleet_threshold_only,
    acknowledgements_and_silences_are_marked_and_audited,
    a_claimed_slot_is_evaluated_by_one_worker,
);
