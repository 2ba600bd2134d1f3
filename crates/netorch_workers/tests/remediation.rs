//! Self-healing on the simulated hardware at time scale 100, with a fake clock, on SQLite and
//! PostgreSQL: the lifecycle, telemetry and alerts loops run as a worker runs them. A degraded
//! node (the simulator's `id % 10` of 8 or 9) fires two alerts (bottleneck and a latency
//! threshold), is re-provisioned once after `after_seconds`, comes back healthy (the
//! simulator's fault rule) and its alerts resolve; never more than `max_concurrent` are on their
//! way back. With a fault across the
//! fleet (a threshold every node exceeds), remediation stops at `max_unhealthy_percent`, the
//! deployment says why, an alert fires; once the fault is gone it goes on again.

use chrono::{DateTime, Duration, TimeDelta};
use netorch_domain::alert::{
    AlertName, AlertRules, BottleneckRule, Comparison, ThresholdRule, ThresholdScope, Timing,
};
use netorch_domain::{
    AlertState, DeploymentChanges, DeploymentId, EventType, MetricKind, NewDeployment, NodeState,
    Remediation, RolloutPolicy, Severity, Timestamp,
};
use netorch_simulator::{SimulatedHardware, degraded};
use netorch_storage::alerts::{self as stored_alerts, AlertFilter};
use netorch_storage::{DbConnection, deployments};
use netorch_testkit::{TestDatabase, backend_tests, events_of, nodes_of as fleet};
use netorch_workers::{lifecycle_tick, telemetry_tick};
use std::collections::BTreeMap;

const TELEMETRY: TimeDelta = TimeDelta::seconds(5);
const ALERTS: TimeDelta = TimeDelta::seconds(10);

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn policy() -> Remediation {
    Remediation {
        after_seconds: 60,
        max_concurrent: 2,
        max_unhealthy_percent: 40.0,
    }
}

fn quick() -> Timing {
    Timing {
        for_seconds: 30,
        resolve_after_seconds: 60,
    }
}

fn create(t: &TestDatabase, rules: AlertRules) -> DeploymentId {
    let new = NewDeployment {
        rollout: RolloutPolicy {
            // The simulator fails some configurations: they come back by themselves.
            max_retries: 5,
            ..RolloutPolicy::default()
        },
        alert_rules: rules,
        remediation: Some(policy()),
        ..NewDeployment::new("healing", 20)
    };
    let mut conn = t.db.get().expect("connection");
    deployments::create(&mut conn, &new, None, t0())
        .expect("create")
        .id
}

/// The worker's loops for `seconds` of fake time from `from`, 5 s a step, calling `each` after
/// every step; returns where it stopped.
fn run(
    t: &TestDatabase,
    hw: &SimulatedHardware,
    from: Timestamp,
    seconds: i64,
    mut each: impl FnMut(&mut DbConnection, Timestamp),
) -> Timestamp {
    let mut now = from;
    while now < from + Duration::seconds(seconds) {
        now += TELEMETRY;
        let mut conn = t.db.get().expect("connection");
        lifecycle_tick(&mut conn, hw, now).expect("lifecycle");
        drop(conn);
        telemetry_tick(&t.db, hw, TELEMETRY, now).expect("telemetry");
        netorch_service::alerts::evaluate(&t.db, "worker-1", ALERTS, now).expect("alerts");
        let mut conn = t.db.get().expect("connection");
        each(&mut conn, now);
    }
    now
}

fn a_degraded_node_is_remediated_once_and_recovers(t: &TestDatabase) {
    let hw = SimulatedHardware::new(100.0);
    // Two rules that both flag the degraded nodes (50 ms and more, where the others have 24
    // at most), over windows that outlast a re-provisioning: neither may send a node back twice.
    let slow = ThresholdRule {
        name: "slow".into(),
        metric: MetricKind::LatencyMs,
        op: Comparison::Above,
        value: 40.0,
        scope: ThresholdScope::Node,
        window_seconds: 120,
        timing: quick(),
        severity: Severity::Warning,
    };
    let rules = AlertRules {
        bottleneck: BottleneckRule {
            window_seconds: 120,
            timing: quick(),
            ..BottleneckRule::default()
        },
        thresholds: vec![slow],
    };
    let d = create(t, rules);
    let degraded_ids: Vec<i64> = {
        let mut conn = t.db.get().expect("connection");
        fleet(&mut conn, d)
            .iter()
            .filter(|n| degraded(n.id))
            .map(|n| n.id.get())
            .collect()
    };
    assert_eq!(
        degraded_ids.len(),
        4,
        "20 consecutive ids hold 4 degraded nodes"
    );
    let mut most_returning = 0;
    // Half an hour: the rollout, the alerts, the remediations, the recovery, the resolves.
    let end = run(t, &hw, t0(), 1_800, |conn, _| {
        let returning = fleet(conn, d)
            .iter()
            .filter(|n| {
                n.remediated_at.is_some()
                    && (matches!(
                        n.state,
                        NodeState::Pending | NodeState::Provisioning | NodeState::Configuring
                    ) || (n.state == NodeState::Failed && n.retry_at.is_some()))
            })
            .count();
        assert!(
            returning <= policy().max_concurrent as usize,
            "{returning} on their way back"
        );
        most_returning = most_returning.max(returning);
    });
    let mut conn = t.db.get().expect("connection");
    assert_eq!(most_returning, 2, "two at once, as max_concurrent allows");
    let remediated = events_of(&mut conn, d, EventType::NodeRemediated);
    let mut per_node: BTreeMap<i64, usize> = BTreeMap::new();
    for event in &remediated {
        *per_node
            .entry(event.node_id.expect("a node's event").get())
            .or_default() += 1;
        let fingerprint = event.metadata["alert_fingerprint"].as_str().expect("named");
        let alert = stored_alerts::latest_with_fingerprint(&mut conn, fingerprint)
            .expect("the alert it names");
        assert!(
            matches!(
                alert.name,
                AlertName::NodeBottleneck | AlertName::NodeThreshold
            ),
            "{alert:?}"
        );
        assert_eq!(alert.node_id, event.node_id);
        assert_eq!(event.metadata["reason"], "remediation");
        assert_eq!(event.metadata["to_state"], "PENDING");
    }
    let want: BTreeMap<i64, usize> = degraded_ids.iter().map(|id| (*id, 1)).collect();
    assert_eq!(per_node, want, "each degraded node once, no other node");
    for node in fleet(&mut conn, d) {
        assert_eq!(node.state, NodeState::Running, "{} at {end}", node.name);
        let times = u32::from(degraded(node.id));
        assert_eq!(node.remediations, times, "{}", node.name);
    }
    // Healthy now: every node alert resolved, and none open.
    let open = stored_alerts::open_for(&mut conn, d).expect("open");
    assert!(open.is_empty(), "still open: {open:?}");
    let resolved = stored_alerts::list(
        &mut conn,
        &AlertFilter {
            deployment: Some(d),
            state: Some(AlertState::Resolved),
            ..AlertFilter::default()
        },
        None,
        100,
    )
    .expect("alerts");
    assert!(
        resolved.len() >= 8,
        "the degraded nodes' two alerts each resolved"
    );
    let (deployment, _) = deployments::get_with_counts(&mut conn, d).expect("get");
    assert_eq!(deployment.remediation_stopped, None);
    assert!(events_of(&mut conn, d, EventType::RemediationStopped).is_empty());
}

fn a_fleet_wide_fault_stops_remediation_at_the_budget(t: &TestDatabase) {
    let hw = SimulatedHardware::new(100.0);
    // Every node's latency is above 1 ms: a fault of the whole fleet, as far as the rule sees.
    let everywhere = ThresholdRule {
        name: "latency_everywhere".into(),
        metric: MetricKind::LatencyMs,
        op: Comparison::Above,
        value: 1.0,
        scope: ThresholdScope::Node,
        window_seconds: 60,
        timing: quick(),
        severity: Severity::Warning,
    };
    let rules = AlertRules {
        bottleneck: BottleneckRule {
            enabled: false,
            ..BottleneckRule::default()
        },
        thresholds: vec![everywhere],
    };
    let d = create(t, rules);
    let stopped_at = run(t, &hw, t0(), 600, |_, _| {});
    let mut conn = t.db.get().expect("connection");
    assert!(
        events_of(&mut conn, d, EventType::NodeRemediated).is_empty(),
        "nothing remediated past the budget"
    );
    let (deployment, _) = deployments::get_with_counts(&mut conn, d).expect("get");
    let stop = deployment.remediation_stopped.expect("stopped");
    assert_eq!((stop.unhealthy, stop.total), (20, 20));
    assert!(
        stop.reason().contains("20 of 20 nodes are unhealthy"),
        "{}",
        stop.reason()
    );
    assert_eq!(
        events_of(&mut conn, d, EventType::RemediationStopped).len(),
        1
    );
    let open = stored_alerts::open_for(&mut conn, d).expect("open");
    let stopped_alert = open
        .iter()
        .find(|a| a.name == AlertName::RemediationStopped)
        .expect("an alert says remediation stopped");
    assert_eq!(stopped_alert.state, AlertState::Firing);
    assert_eq!(stopped_alert.severity, Severity::Critical);
    assert_eq!(stopped_alert.node_id, None);
    assert_eq!(stopped_alert.labels["rule"], "remediation");
    // The fault goes (the rule is taken away): its alerts resolve, remediation goes on.
    let fixed = DeploymentChanges {
        alert_rules: Some(AlertRules {
            bottleneck: BottleneckRule {
                enabled: false,
                ..BottleneckRule::default()
            },
            thresholds: Vec::new(),
        }),
        ..DeploymentChanges::default()
    };
    deployments::update(&mut conn, d, &fixed, None, stopped_at).expect("update");
    drop(conn);
    run(t, &hw, stopped_at, 60, |_, _| {});
    let mut conn = t.db.get().expect("connection");
    let (deployment, _) = deployments::get_with_counts(&mut conn, d).expect("get");
    assert_eq!(deployment.remediation_stopped, None);
    assert_eq!(
        events_of(&mut conn, d, EventType::RemediationResumed).len(),
        1
    );
    assert!(
        stored_alerts::open_for(&mut conn, d)
            .expect("open")
            .is_empty(),
        "the stop's alert resolved with the rest"
    );
    assert!(events_of(&mut conn, d, EventType::NodeRemediated).is_empty());
}

fn remediation_is_off_by_default_and_can_be_turned_off(t: &TestDatabase) {
    let hw = SimulatedHardware::new(100.0);
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &NewDeployment::new("plain", 20), None, t0())
        .expect("create")
        .id;
    assert_eq!(
        deployments::get_with_counts(&mut conn, d)
            .expect("get")
            .0
            .remediation,
        None
    );
    drop(conn);
    // Bottleneck alerts fire for the degraded nodes; nothing is re-provisioned.
    run(t, &hw, t0(), 900, |_, _| {});
    let mut conn = t.db.get().expect("connection");
    assert!(
        stored_alerts::open_for(&mut conn, d)
            .expect("open")
            .iter()
            .any(|a| a.state == AlertState::Firing),
        "its alerts fire"
    );
    assert!(events_of(&mut conn, d, EventType::NodeRemediated).is_empty());
    // On, then off again: the change is recorded, and the policy is gone.
    for remediation in [Some(policy()), None] {
        let change = DeploymentChanges {
            remediation: Some(remediation),
            ..DeploymentChanges::default()
        };
        let (after, _) =
            deployments::update(&mut conn, d, &change, Some("ops"), t0()).expect("update");
        assert_eq!(after.remediation, remediation);
    }
    let updates = events_of(&mut conn, d, EventType::DeploymentUpdated);
    assert_eq!(updates.len(), 2);
    assert!(updates[1].metadata["changes"]["remediation"].is_null());
    // A policy out of range is refused and changes nothing.
    let bad = DeploymentChanges {
        remediation: Some(Some(Remediation {
            max_concurrent: 0,
            ..policy()
        })),
        ..DeploymentChanges::default()
    };
    assert!(deployments::update(&mut conn, d, &bad, None, t0()).is_err());
    assert_eq!(
        deployments::get_with_counts(&mut conn, d)
            .expect("get")
            .0
            .remediation,
        None
    );
}

backend_tests!(
    a_degraded_node_is_remediated_once_and_recovers,
    a_fleet_wide_fault_stops_remediation_at_the_budget,
    remediation_is_off_by_default_and_can_be_turned_off,
);
