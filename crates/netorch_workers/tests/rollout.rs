//! Rollout control driven with a fake clock, on SQLite and PostgreSQL: `max_in_flight`,
//! `max_failure_percent` with pause and resume, automatic retries with backoff, phase
//! timeouts, and the status and progress kept with the counters.

use chrono::{DateTime, Duration};
use netorch_domain::{
    DeploymentChanges, DeploymentId, DeploymentStatus, EventType, NewDeployment, Node, NodeState,
    PauseReason, Phase, PhaseStatus, Progress, Provisioner, RolloutPolicy, Timestamp,
};
use netorch_simulator::{SimulatedHardware, configuration_fails};
use netorch_storage::events::EventQuery;
use netorch_storage::{DbConnection, deployments, events, nodes};
use netorch_testkit::{TestDatabase, backend_tests, events_of, nodes_of as fleet};
use netorch_workers::lifecycle_tick;
use std::sync::Barrier;

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn at(seconds: i64) -> Timestamp {
    t0() + Duration::seconds(seconds)
}

fn create(conn: &mut DbConnection, nodes: u32, rollout: RolloutPolicy) -> DeploymentId {
    let new = NewDeployment {
        name: "rollout".into(),
        description: None,
        target_node_count: nodes,
        rollout,
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    deployments::create(conn, &new, None, t0())
        .expect("create")
        .id
}

/// The deployment's status, progress and counters, after checking that the counters equal a
/// count of its nodes (the retrying ones included).
fn status(conn: &mut DbConnection, d: DeploymentId) -> (DeploymentStatus, Progress) {
    let (deployment, counts) = deployments::get_with_counts(conn, d).expect("get");
    assert_eq!(
        counts,
        deployments::count_node_states(conn, d).expect("count"),
        "the counters follow the nodes"
    );
    (
        DeploymentStatus::of(deployment.paused_at.is_some(), &counts),
        Progress::of(&counts),
    )
}

/// The simulated hardware, on which configuration fails for every node with an even id, on
/// every attempt.
struct EvenNodesFail(SimulatedHardware);

impl Provisioner for EvenNodesFail {
    fn assign_address(&self, node: &Node) -> Result<Option<String>, String> {
        self.0.assign_address(node)
    }

    fn phase_status(&self, node: &Node, phase: Phase, now: Timestamp) -> PhaseStatus {
        match self.0.phase_status(node, phase, now) {
            PhaseStatus::InProgress => PhaseStatus::InProgress,
            _ if phase == Phase::Configuring && node.id.get() % 2 == 0 => {
                PhaseStatus::Failed("even nodes fail".into())
            }
            other => other,
        }
    }

    fn earliest_completion(&self, node: &Node, phase: Phase) -> chrono::TimeDelta {
        self.0.earliest_completion(node, phase)
    }
}

fn max_in_flight_caps_the_nodes_in_a_phase_even_with_two_workers(t: &TestDatabase) {
    let hw = SimulatedHardware::default();
    let d = {
        let mut conn = t.db.get().expect("connection");
        create(
            &mut conn,
            30,
            RolloutPolicy {
                max_in_flight: Some(4),
                ..RolloutPolicy::default()
            },
        )
    };
    let barrier = Barrier::new(2);
    let mut seconds = 0;
    loop {
        seconds += 1;
        assert!(seconds < 600, "the rollout never finished");
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    let mut conn = t.db.get().expect("connection");
                    barrier.wait();
                    lifecycle_tick(&mut conn, &hw, at(seconds)).expect("tick");
                });
            }
        });
        let mut conn = t.db.get().expect("connection");
        let counts = deployments::node_state_counts(&mut conn, d).expect("counts");
        assert!(
            counts.provisioning + counts.configuring <= 4,
            "at {seconds} s: {counts:?}"
        );
        let (state, progress) = status(&mut conn, d);
        if progress.finished == progress.total {
            assert_ne!(state, DeploymentStatus::Progressing);
            break;
        }
        assert_eq!(state, DeploymentStatus::Progressing);
    }
    let mut conn = t.db.get().expect("connection");
    // Nodes started lowest id first, each once.
    let started: Vec<i64> = events_of(&mut conn, d, EventType::StateChange)
        .iter()
        .filter(|e| e.metadata["to_state"] == "PROVISIONING")
        .map(|e| e.node_id.expect("node").get())
        .collect();
    let mut sorted = started.clone();
    sorted.sort_unstable();
    assert_eq!(started, sorted);
    assert_eq!(started.len(), 30);
    // Four at a time: far longer than the ~20 s one wave takes.
    assert!(seconds > 60, "finished after {seconds} s");
}

fn too_many_failures_pause_the_rollout_until_resumed(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = EvenNodesFail(SimulatedHardware::default());
    let d = create(
        &mut conn,
        40,
        RolloutPolicy {
            max_in_flight: Some(4),
            max_failure_percent: Some(25.0),
            ..RolloutPolicy::default()
        },
    );
    let mut second = 0;
    let paused_at = loop {
        second += 1;
        assert!(second < 600, "never paused");
        lifecycle_tick(&mut conn, &hw, at(second)).expect("tick");
        let (deployment, _) = deployments::get_with_counts(&mut conn, d).expect("get");
        if deployment.paused_at.is_some() {
            break second;
        }
    };
    let (state, _) = status(&mut conn, d);
    assert_eq!(state, DeploymentStatus::Paused);
    let counts = deployments::node_state_counts(&mut conn, d).expect("counts");
    // Half the nodes fail: the limit trips once 10 nodes are finished, over 25 %.
    let finished = counts.running + counts.failed;
    assert!(
        finished >= 10 && counts.failed * 100 > 25 * finished,
        "{counts:?}"
    );
    let paused = events_of(&mut conn, d, EventType::DeploymentPaused);
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].metadata["reason"], "max_failure_percent");
    assert_eq!(paused[0].metadata["failed_nodes"], counts.failed);
    assert_eq!(paused[0].metadata["finished_nodes"], finished);
    // While paused no node leaves PENDING; those in a phase finish it.
    for s in paused_at + 1..paused_at + 120 {
        lifecycle_tick(&mut conn, &hw, at(s)).expect("tick");
    }
    let later = deployments::node_state_counts(&mut conn, d).expect("counts");
    assert_eq!(later.pending, counts.pending);
    assert_eq!(later.provisioning + later.configuring, 0);
    // Pausing again changes nothing; resuming lets nodes start, and the next failure pauses
    // it again (the share is still over the limit).
    let (again, _) = deployments::pause(
        &mut conn,
        d,
        PauseReason::Operator,
        None,
        at(paused_at + 120),
    )
    .expect("pause");
    assert!(again.paused_at.is_some());
    assert_eq!(
        events_of(&mut conn, d, EventType::DeploymentPaused).len(),
        1
    );
    let (resumed, _) =
        deployments::resume(&mut conn, d, None, at(paused_at + 121)).expect("resume");
    assert!(resumed.paused_at.is_none());
    assert_eq!(status(&mut conn, d).0, DeploymentStatus::Progressing);
    let mut s = paused_at + 121;
    loop {
        s += 1;
        assert!(s < paused_at + 600, "never paused again");
        lifecycle_tick(&mut conn, &hw, at(s)).expect("tick");
        if deployments::get(&mut conn, d)
            .expect("get")
            .paused_at
            .is_some()
        {
            break;
        }
    }
    assert_eq!(
        events_of(&mut conn, d, EventType::DeploymentPaused).len(),
        2
    );
    assert_eq!(
        events_of(&mut conn, d, EventType::DeploymentResumed).len(),
        1
    );
    // Removing the limit and resuming lets the rollout finish, degraded.
    let changes = DeploymentChanges {
        max_failure_percent: Some(None),
        ..DeploymentChanges::default()
    };
    deployments::update(&mut conn, d, &changes, None, at(s)).expect("update");
    deployments::resume(&mut conn, d, None, at(s)).expect("resume");
    for step in s + 1..s + 400 {
        lifecycle_tick(&mut conn, &hw, at(step)).expect("tick");
    }
    let (state, progress) = status(&mut conn, d);
    assert_eq!(state, DeploymentStatus::Degraded);
    assert_eq!(progress.finished, 40);
    let counts = deployments::node_state_counts(&mut conn, d).expect("counts");
    let want = fleet(&mut conn, d)
        .iter()
        .filter(|n| n.id.get() % 2 == 0 || configuration_fails(n.id, d, 0))
        .count();
    assert_eq!(counts.failed, want as u64);
    let updated = events_of(&mut conn, d, EventType::DeploymentUpdated);
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0].metadata["changes"],
        serde_json::json!({"max_failure_percent": null})
    );
}

fn failed_nodes_retry_with_backoff_until_their_budget_is_spent(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = EvenNodesFail(SimulatedHardware::default());
    let d = create(
        &mut conn,
        4,
        RolloutPolicy {
            max_retries: 2,
            ..RolloutPolicy::default()
        },
    );
    let even: Vec<Node> = fleet(&mut conn, d)
        .into_iter()
        .filter(|n| n.id.get() % 2 == 0)
        .collect();
    assert_eq!(even.len(), 2);
    let mut saw_retrying = false;
    for second in 1..=300 {
        lifecycle_tick(&mut conn, &hw, at(second)).expect("tick");
        let (state, progress) = status(&mut conn, d);
        let counts = deployments::node_state_counts(&mut conn, d).expect("counts");
        if counts.retrying > 0 {
            saw_retrying = true;
            assert_eq!(state, DeploymentStatus::Progressing);
            assert!(progress.finished < 4);
        }
    }
    assert!(saw_retrying);
    let (state, progress) = status(&mut conn, d);
    assert_eq!((state, progress.finished), (DeploymentStatus::Degraded, 4));
    for node in even {
        let now = nodes::get(&mut conn, d, node.id).expect("node");
        assert_eq!(now.state, NodeState::Failed);
        assert_eq!(now.attempt, 2, "two automatic retries, then no more");
        assert_eq!(now.retry_at, None);
        let history = events::list(
            &mut conn,
            &EventQuery {
                deployment: Some(d),
                after: None,
                event_type: None,
                node: Some(node.id),
                actor: None,
                limit: 1000,
            },
        )
        .expect("events");
        let failed: Vec<Timestamp> = history
            .iter()
            .filter(|e| e.metadata.get("to_state") == Some(&"FAILED".into()))
            .map(|e| e.created_at)
            .collect();
        let retried: Vec<&netorch_domain::Event> = history
            .iter()
            .filter(|e| e.event_type == EventType::NodeAutoRetried)
            .collect();
        assert_eq!((failed.len(), retried.len()), (3, 2));
        // Backoff: 10 s after the first failure, 20 s after the second (ticks are 1 s apart).
        assert_eq!(retried[0].created_at - failed[0], Duration::seconds(10));
        assert_eq!(retried[1].created_at - failed[1], Duration::seconds(20));
        assert_eq!(retried[1].metadata["attempt"], 2);
        assert_eq!(retried[1].metadata["max_retries"], 2);
    }
}

fn hanging_nodes_time_out_and_their_retry_runs(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default().with_hang_every(3);
    let d = create(
        &mut conn,
        12,
        RolloutPolicy {
            max_retries: 1,
            phase_timeout_seconds: Some(30),
            ..RolloutPolicy::default()
        },
    );
    let hanging: Vec<Node> = fleet(&mut conn, d)
        .into_iter()
        .filter(|n| n.id.get() % 3 == 0)
        .collect();
    assert_eq!(hanging.len(), 4);
    for second in 1..=200 {
        lifecycle_tick(&mut conn, &hw, at(second)).expect("tick");
    }
    let timed_out = events_of(&mut conn, d, EventType::NodeTimedOut);
    let mut ids: Vec<i64> = timed_out
        .iter()
        .map(|e| e.node_id.expect("node").get())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        hanging.iter().map(|n| n.id.get()).collect::<Vec<_>>(),
        "exactly the hanging nodes time out, once each"
    );
    for event in &timed_out {
        assert_eq!(event.metadata["from_state"], "CONFIGURING");
        assert_eq!(event.metadata["timeout_seconds"], 30);
        assert_eq!(
            event.metadata["failure_reason"],
            "configuring timed out after 30 s"
        );
    }
    for node in hanging {
        let now = nodes::get(&mut conn, d, node.id).expect("node");
        assert_eq!(now.attempt, 1);
        // Its retry does not hang: it succeeds, unless the simulator's failure rule fails it.
        let want = if configuration_fails(node.id, d, 1) {
            NodeState::Failed
        } else {
            NodeState::Running
        };
        assert_eq!(now.state, want, "{now:?}");
    }
    let (state, progress) = status(&mut conn, d);
    assert_eq!(progress.finished, 12);
    assert_ne!(state, DeploymentStatus::Progressing);
}

fn a_deployment_without_rollout_settings_starts_every_node_at_once(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    let d = create(&mut conn, 50, RolloutPolicy::default());
    lifecycle_tick(&mut conn, &hw, t0()).expect("tick");
    let counts = deployments::node_state_counts(&mut conn, d).expect("counts");
    assert_eq!(counts.provisioning, 50);
    // A failed node stays failed until an operator retries it; nothing times out.
    for second in 1..=600 {
        lifecycle_tick(&mut conn, &hw, at(second)).expect("tick");
    }
    let counts = deployments::node_state_counts(&mut conn, d).expect("counts");
    assert_eq!(counts.provisioning + counts.configuring + counts.pending, 0);
    assert_eq!(counts.retrying, 0);
    assert!(events_of(&mut conn, d, EventType::NodeAutoRetried).is_empty());
    let (state, _) = status(&mut conn, d);
    let want = if counts.failed > 0 {
        DeploymentStatus::Degraded
    } else {
        DeploymentStatus::Complete
    };
    assert_eq!(state, want);
}

fn scaling_adds_nodes_numbered_on_and_removes_the_newest(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    let d = create(&mut conn, 10, RolloutPolicy::default());
    for second in 1..=30 {
        lifecycle_tick(&mut conn, &hw, at(second)).expect("tick");
    }
    let scale = |conn: &mut DbConnection, to: u32, when: i64| {
        let changes = DeploymentChanges {
            target_node_count: Some(to),
            ..DeploymentChanges::default()
        };
        deployments::update(conn, d, &changes, None, at(when)).expect("scale")
    };
    let names = |conn: &mut DbConnection| -> Vec<String> {
        fleet(conn, d).into_iter().map(|n| n.name).collect()
    };

    // Up: four pending nodes numbered on.
    let (scaled, counts) = scale(&mut conn, 14, 31);
    assert_eq!(scaled.target_node_count, 14);
    assert_eq!(counts.pending, 4);
    assert_eq!(
        names(&mut conn)[10..],
        ["node-011", "node-012", "node-013", "node-014"]
    );
    assert_eq!(status(&mut conn, d).0, DeploymentStatus::Progressing);
    for second in 32..=60 {
        lifecycle_tick(&mut conn, &hw, at(second)).expect("tick");
    }
    let (_, progress) = status(&mut conn, d);
    assert_eq!((progress.finished, progress.total), (14, 14));

    // Down: the eight newest are decommissioned, then removed once released (2 s).
    let before = fleet(&mut conn, d);
    let (scaled, counts) = scale(&mut conn, 6, 61);
    assert_eq!(scaled.target_node_count, 6);
    assert_eq!((counts.decommissioning, counts.kept()), (8, 6));
    let (state, progress) = status(&mut conn, d);
    assert_eq!(state, DeploymentStatus::Progressing);
    assert_eq!(progress.total, 6);
    for node in fleet(&mut conn, d) {
        let index: usize = node.name["node-".len()..].parse().expect("number");
        let want = if index > 6 {
            NodeState::Decommissioning
        } else {
            before[index - 1].state
        };
        assert_eq!(node.state, want, "{}", node.name);
    }
    // No telemetry is collected from them.
    let running = nodes::running_page(&mut conn, None, 1000).expect("running");
    assert!(running.iter().all(|n| n.state == NodeState::Running));
    assert!(
        running
            .iter()
            .filter(|n| n.deployment_id == d)
            .all(|n| n.name.as_str() <= "node-006")
    );
    lifecycle_tick(&mut conn, &hw, at(62)).expect("tick");
    assert_eq!(fleet(&mut conn, d).len(), 14, "still being released");
    lifecycle_tick(&mut conn, &hw, at(63)).expect("tick");
    assert_eq!(
        names(&mut conn),
        [
            "node-001", "node-002", "node-003", "node-004", "node-005", "node-006"
        ]
    );
    let (state, progress) = status(&mut conn, d);
    assert_ne!(state, DeploymentStatus::Progressing);
    assert_eq!((progress.finished, progress.total), (6, 6));
    let removed = events_of(&mut conn, d, EventType::NodeDecommissioned);
    assert_eq!(removed.len(), 8);
    assert!(
        removed
            .iter()
            .all(|e| e.metadata.get("failure_reason").is_none())
    );
    let scaled = events_of(&mut conn, d, EventType::DeploymentScaled);
    assert_eq!(scaled.len(), 2);
    assert_eq!(
        serde_json::Value::Object(scaled[1].metadata.clone()),
        serde_json::json!({"from_node_count": 14, "to_node_count": 6, "added_nodes": 0,
            "decommissioned_nodes": 8})
    );

    // Up again: numbered on from the highest name left.
    scale(&mut conn, 8, 64);
    assert_eq!(names(&mut conn)[6..], ["node-007", "node-008"]);
    // The same count changes nothing and records nothing.
    scale(&mut conn, 8, 65);
    assert_eq!(
        events_of(&mut conn, d, EventType::DeploymentScaled).len(),
        3
    );
}

backend_tests!(
    scaling_adds_nodes_numbered_on_and_removes_the_newest,
    max_in_flight_caps_the_nodes_in_a_phase_even_with_two_workers,
    too_many_failures_pause_the_rollout_until_resumed,
    failed_nodes_retry_with_backoff_until_their_budget_is_spent,
    hanging_nodes_time_out_and_their_retry_runs,
    a_deployment_without_rollout_settings_starts_every_node_at_once,
);
