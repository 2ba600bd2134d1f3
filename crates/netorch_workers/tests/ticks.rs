//! The worker ticks driven with a fake clock, on SQLite and PostgreSQL.

use chrono::{DateTime, Duration};
use netorch_domain::{
    DeploymentId, EventType, NewDeployment, Node, NodeId, NodeState, TelemetryOrigin, Timestamp,
    WorkerKind,
};
use netorch_simulator::{SimulatedHardware, configuration_fails, metrics_at};
use netorch_storage::events::EventQuery;
use netorch_storage::telemetry::TelemetryQuery;
use netorch_storage::{Database, DbConnection, deployments, events, heartbeats, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests, nodes_of as fleet};
use netorch_workers::{
    TickLimits, WorkerOptions, lifecycle_tick, lifecycle_tick_with, slot_start, telemetry_tick,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};

const TELEMETRY_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn create(conn: &mut DbConnection, nodes: u32) -> DeploymentId {
    create_at(conn, nodes, t0())
}

fn create_at(conn: &mut DbConnection, nodes: u32, at: Timestamp) -> DeploymentId {
    let new = NewDeployment {
        name: "fleet".into(),
        description: None,
        target_node_count: nodes,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    deployments::create(conn, &new, None, at)
        .expect("create")
        .id
}

fn state_changes(conn: &mut DbConnection, deployment: DeploymentId) -> Vec<netorch_domain::Event> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = events::list(
            conn,
            &EventQuery {
                deployment: Some(deployment),
                after,
                event_type: Some(EventType::StateChange),
                node: None,
                actor: None,
                limit: 1000,
            },
        )
        .expect("events");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        all.extend(page);
    }
    all
}

/// Ticks the lifecycle every 2 s from t0 + 2 s to t0 + `seconds`.
fn drive_lifecycle(conn: &mut DbConnection, hw: &SimulatedHardware, seconds: i64) {
    for step in 1..=seconds / 2 {
        lifecycle_tick(conn, hw, t0() + Duration::seconds(2 * step)).expect("tick");
    }
}

fn a_40_node_deployment_runs_with_exactly_the_rule_s_failures(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    // Another deployment first, so that ids and deployment ids differ.
    create(&mut conn, 3);
    let d = create(&mut conn, 40);

    // First tick: every node starts provisioning and gets its address.
    let first = lifecycle_tick(&mut conn, &hw, t0() + Duration::seconds(2)).expect("tick");
    assert_eq!((first.planned, first.applied), (43, 43));
    let provisioning = fleet(&mut conn, d);
    assert!(
        provisioning
            .iter()
            .all(|n| n.state == NodeState::Provisioning)
    );
    let addresses: HashSet<_> = provisioning
        .iter()
        .map(|n| n.ip_address.clone().expect("address"))
        .collect();
    assert_eq!(addresses.len(), 40);

    // Longest path: 2 s + 7 s provisioning + 11 s configuring, at 2 s ticks: done by 24 s.
    drive_lifecycle(&mut conn, &hw, 30);
    let done = fleet(&mut conn, d);
    let failed: Vec<i64> = done
        .iter()
        .filter(|n| n.state == NodeState::Failed)
        .map(|n| n.id.get())
        .collect();
    let want: Vec<i64> = done
        .iter()
        .filter(|n| configuration_fails(n.id, d, 0))
        .map(|n| n.id.get())
        .collect();
    assert_eq!(failed, want);
    assert!(!want.is_empty(), "the rule fails some of 40 nodes");
    assert!(
        done.iter()
            .all(|n| n.state == NodeState::Running || failed.contains(&n.id.get()))
    );
    for node in done.iter().filter(|n| n.state == NodeState::Failed) {
        assert_eq!(
            node.failure_reason.as_deref(),
            Some(netorch_simulator::CONFIGURATION_FAILURE_REASON)
        );
    }

    // Exactly three state changes per node, in order.
    let mut per_node: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    for e in state_changes(&mut conn, d) {
        let step = (
            e.metadata["from_state"].as_str().unwrap_or("").to_owned(),
            e.metadata["to_state"].as_str().unwrap_or("").to_owned(),
        );
        per_node
            .entry(e.node_id.expect("node event").get())
            .or_default()
            .push(step);
    }
    assert_eq!(per_node.len(), 40);
    for (id, steps) in per_node {
        let last = if failed.contains(&id) {
            "FAILED"
        } else {
            "RUNNING"
        };
        assert_eq!(
            steps,
            vec![
                ("PENDING".into(), "PROVISIONING".into()),
                ("PROVISIONING".into(), "CONFIGURING".into()),
                ("CONFIGURING".into(), last.into()),
            ],
            "node {id}"
        );
    }
    // The deployment's counters agree with its nodes.
    assert_eq!(
        deployments::node_state_counts(&mut conn, d).expect("counters"),
        deployments::count_node_states(&mut conn, d).expect("truth")
    );
    // A further tick has nothing to do.
    let idle = lifecycle_tick(&mut conn, &hw, t0() + Duration::seconds(60)).expect("tick");
    assert_eq!(idle.applied, 0);
}

fn phases_take_their_simulated_time(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    let d = create(&mut conn, 10);
    lifecycle_tick(&mut conn, &hw, t0()).expect("tick");
    // Each node moves to CONFIGURING exactly 3 + id % 5 seconds after it started provisioning.
    for second in 1..=8 {
        lifecycle_tick(&mut conn, &hw, t0() + Duration::seconds(second)).expect("tick");
        for node in fleet(&mut conn, d) {
            let due = 3 + node.id.get() % 5;
            let want = if second >= due {
                NodeState::Configuring
            } else {
                NodeState::Provisioning
            };
            assert_eq!(node.state, want, "node {} at {second} s", node.id);
        }
    }
}

fn telemetry_writes_the_formula_once_per_node_and_slot(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    let d = create(&mut conn, 40);
    drive_lifecycle(&mut conn, &hw, 30);
    let running: Vec<Node> = fleet(&mut conn, d)
        .into_iter()
        .filter(|n| n.state == NodeState::Running)
        .collect();

    let now = t0() + Duration::milliseconds(32_700);
    let tick = telemetry_tick(&t.db, &hw, TELEMETRY_INTERVAL, now).expect("tick");
    let slot = slot_start(now, TELEMETRY_INTERVAL);
    assert_eq!(slot, t0() + Duration::seconds(30));
    assert_eq!(
        (tick.slot, tick.nodes, tick.written),
        (slot, running.len(), running.len())
    );
    // Again in the same slot: nothing new.
    let again =
        telemetry_tick(&t.db, &hw, TELEMETRY_INTERVAL, now + Duration::seconds(1)).expect("tick");
    assert_eq!(again.written, 0);

    let samples = telemetry::query(
        &mut conn,
        &TelemetryQuery {
            deployment: d,
            node: None,
            start: None,
            end: None,
            limit: 1000,
        },
    )
    .expect("query");
    assert_eq!(samples.len(), running.len());
    for sample in &samples {
        assert_eq!(sample.timestamp, slot);
        assert_eq!(
            sample.metrics,
            metrics_at(sample.node_id, slot),
            "node {}",
            sample.node_id
        );
    }
    // Failed nodes send nothing.
    let sampled: HashSet<NodeId> = samples.iter().map(|s| s.node_id).collect();
    assert_eq!(sampled, running.iter().map(|n| n.id).collect());
}

/// A deployment whose telemetry is only pushed runs its lifecycle like any other, but the
/// telemetry tick samples only the simulated deployment beside it; its pushed samples are all
/// it has.
fn a_pushed_only_deployment_gets_no_sampled_telemetry(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    let simulated = create(&mut conn, 10);
    let pushed = deployments::create(
        &mut conn,
        &NewDeployment {
            telemetry: TelemetryOrigin::Pushed,
            alert_rules: Default::default(),
            ..NewDeployment::new("collected", 10)
        },
        None,
        t0(),
    )
    .expect("create");
    assert_eq!(pushed.telemetry, TelemetryOrigin::Pushed);
    assert_eq!(
        deployments::get(&mut conn, pushed.id)
            .expect("get")
            .telemetry,
        TelemetryOrigin::Pushed
    );
    drive_lifecycle(&mut conn, &hw, 30);
    let running = |conn: &mut DbConnection, d| {
        fleet(conn, d)
            .into_iter()
            .filter(|n| n.state == NodeState::Running)
            .count()
    };
    let (simulated_running, pushed_running) =
        (running(&mut conn, simulated), running(&mut conn, pushed.id));
    assert!(simulated_running > 0 && pushed_running > 0);

    let now = t0() + Duration::seconds(31);
    let tick = telemetry_tick(&t.db, &hw, TELEMETRY_INTERVAL, now).expect("tick");
    assert_eq!(
        (tick.nodes, tick.written),
        (simulated_running, simulated_running)
    );
    let read = |conn: &mut DbConnection, deployment| {
        telemetry::query(
            conn,
            &TelemetryQuery {
                deployment,
                node: None,
                start: None,
                end: None,
                limit: 1000,
            },
        )
        .expect("query")
        .len()
    };
    assert_eq!(read(&mut conn, simulated), simulated_running);
    assert_eq!(read(&mut conn, pushed.id), 0);
}

fn two_workers_make_each_transition_and_sample_once(t: &TestDatabase) {
    let hw = SimulatedHardware::default();
    let d = create(&mut t.db.get().expect("connection"), 60);
    let second_pool = Database::connect(t.url()).expect("second pool");
    let barrier = Arc::new(Barrier::new(2));
    std::thread::scope(|scope| {
        for db in [&t.db, &second_pool] {
            let barrier = barrier.clone();
            scope.spawn(move || {
                let mut conn = db.get().expect("connection");
                for step in 1..=20 {
                    let now = t0() + Duration::seconds(2 * step);
                    barrier.wait();
                    lifecycle_tick(&mut conn, &hw, now).expect("lifecycle tick");
                    barrier.wait();
                    telemetry_tick(db, &hw, TELEMETRY_INTERVAL, now).expect("telemetry tick");
                }
            });
        }
    });
    let mut conn = t.db.get().expect("connection");
    let changes = state_changes(&mut conn, d);
    let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for e in &changes {
        *per_node.entry(e.node_id.expect("node event")).or_default() += 1;
    }
    assert_eq!(per_node.len(), 60);
    assert!(per_node.values().all(|count| *count == 3), "{per_node:?}");
    let counters = deployments::node_state_counts(&mut conn, d).expect("counters");
    assert_eq!(
        counters,
        deployments::count_node_states(&mut conn, d).expect("truth")
    );
    assert_eq!(counters.total(), 60);

    // One sample per running node per slot: the count equals the distinct (node, slot) pairs.
    let samples = telemetry::query(
        &mut conn,
        &TelemetryQuery {
            deployment: d,
            node: None,
            start: None,
            end: None,
            limit: 100_000,
        },
    )
    .expect("query");
    let keys: HashSet<(NodeId, Timestamp)> =
        samples.iter().map(|s| (s.node_id, s.timestamp)).collect();
    assert_eq!(keys.len(), samples.len());
    assert!(!samples.is_empty());
}

fn a_retried_failed_node_runs(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    let d = create(&mut conn, 40);
    drive_lifecycle(&mut conn, &hw, 30);
    let failed: Vec<Node> = fleet(&mut conn, d)
        .into_iter()
        .filter(|n| n.state == NodeState::Failed)
        .collect();
    assert!(!failed.is_empty());
    let later = t0() + Duration::seconds(100);
    for node in &failed {
        nodes::retry(&mut conn, d, node.id, None, later).expect("retry");
    }
    for step in 1..=15 {
        lifecycle_tick(&mut conn, &hw, later + Duration::seconds(2 * step)).expect("tick");
    }
    for node in &failed {
        let now = nodes::get(&mut conn, d, node.id).expect("get");
        assert_eq!(
            (now.state, now.attempt),
            (NodeState::Running, 1),
            "node {}",
            node.id
        );
        assert_eq!(now.ip_address, node.ip_address, "keeps its address");
    }
}

fn two_workers_evaluate_each_slot_once_and_fire_for_the_degraded_nodes(t: &TestDatabase) {
    let hw = SimulatedHardware::default();
    let d = create(&mut t.db.get().expect("connection"), 60);
    {
        let mut conn = t.db.get().expect("connection");
        drive_lifecycle(&mut conn, &hw, 30);
        // Fourteen minutes of readings: the default rule reads ten.
        for step in 0..=14 * 12 {
            let now = t0() + Duration::seconds(30 + 5 * step);
            telemetry_tick(&t.db, &hw, TELEMETRY_INTERVAL, now).expect("telemetry tick");
        }
    }
    let second_pool = Database::connect(t.url()).expect("second pool");
    let barrier = Arc::new(Barrier::new(2));
    let interval = chrono::TimeDelta::seconds(30);
    // Slots from 11 minutes on, both workers at once: the default `for` is 2 minutes.
    let evaluated: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let workers: Vec<_> = [(&t.db, "w1"), (&second_pool, "w2")]
            .into_iter()
            .map(|(db, name)| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    (0..6)
                        .map(|slot| {
                            let now = t0() + Duration::seconds(11 * 60 + 30 * slot + 1);
                            barrier.wait();
                            netorch_service::alerts::evaluate(db, name, interval, now)
                                .expect("alerts tick")
                                .evaluated
                        })
                        .collect::<Vec<usize>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    // Each slot evaluated by exactly one of them.
    for slot in 0..6 {
        assert_eq!(evaluated[0][slot] + evaluated[1][slot], 1, "{evaluated:?}");
    }
    let mut conn = t.db.get().expect("connection");
    let fired = events::list(
        &mut conn,
        &EventQuery {
            event_type: Some(EventType::AlertFiring),
            limit: 1000,
            ..EventQuery::of_deployment(d)
        },
    )
    .expect("events");
    let fired_nodes: Vec<NodeId> = fired.iter().filter_map(|e| e.node_id).collect();
    let distinct: HashSet<NodeId> = fired_nodes.iter().copied().collect();
    assert_eq!(distinct.len(), fired_nodes.len(), "each fired once");
    let degraded_running: HashSet<NodeId> = fleet(&mut conn, d)
        .into_iter()
        .filter(|n| n.state == NodeState::Running && netorch_simulator::degraded(n.id))
        .map(|n| n.id)
        .collect();
    assert!(!degraded_running.is_empty());
    assert_eq!(distinct, degraded_running);
}

fn the_loops_tick_record_heartbeats_and_stop(t: &TestDatabase) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hw = Arc::new(SimulatedHardware::new(100.0));
    // The loops read the real clock.
    let d = create_at(&mut t.db.get().expect("connection"), 5, chrono::Utc::now());
    let options = WorkerOptions {
        name: "test-worker".into(),
        lifecycle_interval: Some(std::time::Duration::from_millis(20)),
        telemetry_interval: Some(std::time::Duration::from_millis(50)),
        alerts_interval: Some(std::time::Duration::from_millis(30)),
        ..WorkerOptions::new("test-worker")
    };
    let db = t.db.clone();
    runtime.block_on(async move {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(netorch_workers::run(
            db.clone(),
            hw.clone(),
            hw,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        // Wait (bounded) for the fleet to run and be sampled.
        let mut sampled = false;
        for _ in 0..200 {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            let mut conn = db.get().expect("connection");
            let evaluated = heartbeats::list(&mut conn)
                .expect("heartbeats")
                .iter()
                .any(|b| b.kind == WorkerKind::Alerts);
            if telemetry::count(&mut conn, d).expect("count") > 0 && evaluated {
                sampled = true;
                break;
            }
        }
        assert!(
            sampled,
            "the loops ran the deployment to RUNNING, sampled it and evaluated its rules"
        );
        stop.send(()).expect("worker listening");
        worker.await.expect("worker stopped cleanly");
    });
    let mut conn = t.db.get().expect("connection");
    let beats = heartbeats::list(&mut conn).expect("heartbeats");
    let kinds: HashSet<WorkerKind> = beats
        .iter()
        .filter(|b| b.name == "test-worker")
        .map(|b| b.kind)
        .collect();
    assert_eq!(kinds, HashSet::from(WorkerKind::LOOPS));
    // A clean stop is recorded: neither loop is alive any more, at once.
    let now = chrono::Utc::now();
    for beat in beats.iter().filter(|b| b.name == "test-worker") {
        assert!(
            beat.stopped_at.is_some(),
            "{:?} recorded its stop",
            beat.kind
        );
        assert!(!beat.is_alive(now), "{:?}", beat.kind);
    }
}

/// Every state change of a deployment as (node name, from, to, time), in order.
fn history(conn: &mut DbConnection, d: DeploymentId) -> Vec<(String, String, String, i64)> {
    let names: BTreeMap<i64, String> = fleet(conn, d)
        .into_iter()
        .map(|n| (n.id.get(), n.name))
        .collect();
    state_changes(conn, d)
        .into_iter()
        .map(|e| {
            let node = e
                .node_id
                .map(|n| names[&n.get()].clone())
                .unwrap_or_default();
            let from = e.metadata["from_state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let to = e.metadata["to_state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (node, from, to, e.created_at.timestamp_micros())
        })
        .collect()
}

/// A tick in write transactions of 7 nodes moves exactly the nodes, at exactly the ticks, that
/// a tick in one transaction does (compared against a second database of the same backend).
fn small_batches_move_the_nodes_one_transaction_moves(t: &TestDatabase) {
    let other = match t.db.backend() {
        netorch_storage::Backend::Sqlite => TestDatabase::sqlite(),
        netorch_storage::Backend::Postgres => TestDatabase::postgres().expect("postgres"),
    };
    let hw = SimulatedHardware::default();
    let limits = [
        TickLimits {
            batch: 7,
            max_nodes: 1_000,
            pause: std::time::Duration::ZERO,
        },
        TickLimits::default(),
    ];
    let mut histories = Vec::new();
    for (db, limits) in [&t.db, &other.db].into_iter().zip(limits) {
        let mut conn = db.get().expect("connection");
        let d = create(&mut conn, 40);
        let mut moved = Vec::new();
        for step in 0..=15 {
            let tick =
                lifecycle_tick_with(&mut conn, &hw, t0() + Duration::seconds(2 * step), limits)
                    .expect("tick");
            assert_eq!(tick.planned, tick.applied, "one worker: every plan applies");
            moved.push(tick.applied);
        }
        assert_eq!(
            moved[0], 40,
            "every pending node starts, across six batches"
        );
        let states = fleet(&mut conn, d);
        assert!(
            states
                .iter()
                .all(|n| matches!(n.state, NodeState::Running | NodeState::Failed))
        );
        histories.push((moved, history(&mut conn, d)));
    }
    assert_eq!(histories[0], histories[1]);
}

/// What a telemetry tick needs from its pool: with one connection left beside the caller's it
/// reads and stores in turn (it used to wait the pool's timeout for a second and fail); with
/// none left it fails at once with an error that says so.
fn a_telemetry_tick_beside_a_held_connection_still_runs(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let hw = SimulatedHardware::default();
    create(&mut conn, 10);
    drive_lifecycle(&mut conn, &hw, 30);
    drop(conn);
    let options = netorch_storage::DatabaseOptions {
        max_connections: 2,
        timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let pair = t.db.sibling(&options).expect("a pool of two");
    let held = pair.get().expect("the caller's connection");
    let started = std::time::Instant::now();
    let now = t0() + Duration::seconds(31);
    let tick = telemetry_tick(&pair, &hw, TELEMETRY_INTERVAL, now).expect("tick");
    assert!(tick.written > 0);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(300),
        "it waited for a second connection: {:?}",
        started.elapsed()
    );
    // Both of the pool's connections held: the one it needs is not there.
    let other = pair.get().expect("the second connection");
    let error = telemetry_tick(&pair, &hw, TELEMETRY_INTERVAL, now + Duration::seconds(5))
        .expect_err("no connection");
    assert!(
        matches!(error, netorch_workers::WorkerError::NoConnection { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("telemetry_tick needs a connection of the pool")
    );
    drop((held, other));
}

backend_tests!(
    a_telemetry_tick_beside_a_held_connection_still_runs,
    a_40_node_deployment_runs_with_exactly_the_rule_s_failures,
    phases_take_their_simulated_time,
    telemetry_writes_the_formula_once_per_node_and_slot,
    a_pushed_only_deployment_gets_no_sampled_telemetry,
    two_workers_make_each_transition_and_sample_once,
    two_workers_evaluate_each_slot_once_and_fire_for_the_degraded_nodes,
    a_retried_failed_node_runs,
    the_loops_tick_record_heartbeats_and_stop,
    small_batches_move_the_nodes_one_transaction_moves,
);
