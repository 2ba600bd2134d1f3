//! Every repository behaviour, run on SQLite and on PostgreSQL.

use chrono::{DateTime, Duration};
use netorch_domain::{
    DeploymentId, DomainError, EventType, Metrics, NewDeployment, NewSample, Node, NodeId,
    NodeState, NodeTrigger, OperatorAction, Timestamp, WorkerKind,
};
use netorch_storage::events::EventQuery;
use netorch_storage::nodes::{NodeChange, NodeFilter};
use netorch_storage::retention::Retention;
use netorch_storage::telemetry::TelemetryQuery;
use netorch_storage::{
    DbConnection, StorageError, deployments, events, heartbeats, migrations, nodes, retention,
    telemetry,
};
use netorch_testkit::{TestDatabase, backend_tests};

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 123_456_000).expect("valid time")
}

fn new_deployment(name: &str, nodes: u32) -> NewDeployment {
    NewDeployment {
        name: name.to_owned(),
        description: Some(format!("{name} description")),
        target_node_count: nodes,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    }
}

fn all_nodes(conn: &mut DbConnection, deployment: DeploymentId) -> Vec<Node> {
    nodes::list(conn, deployment, &NodeFilter::default())
        .expect("list nodes")
        .nodes
}

fn sample(node: &Node, at: Timestamp, latency_ms: f64) -> NewSample {
    NewSample {
        node_id: node.id,
        deployment_id: node.deployment_id,
        timestamp: at,
        metrics: Metrics {
            latency_ms,
            throughput_gbps: 9.5,
            error_rate: 0.1,
        },
    }
}

/// Every event of `deployment` (up to 1,000), in order.
fn events_of(conn: &mut DbConnection, deployment: DeploymentId) -> Vec<netorch_domain::Event> {
    events::list(
        conn,
        &EventQuery {
            limit: 1000,
            ..EventQuery::of_deployment(deployment)
        },
    )
    .expect("events")
}

/// The names of the listed worker loops, newest first.
fn loop_names(conn: &mut DbConnection) -> Vec<String> {
    heartbeats::list(conn)
        .expect("list")
        .into_iter()
        .map(|b| b.name)
        .collect()
}

/// Drives a node through `triggers`, returning it as it ends.
fn drive(conn: &mut DbConnection, node: &Node, triggers: &[NodeTrigger], now: Timestamp) -> Node {
    let mut node = node.clone();
    for trigger in triggers {
        node = nodes::transition(conn, &node, *trigger, &NodeChange::default(), now)
            .expect("transition")
            .expect("no concurrent writer");
    }
    node
}

fn create_makes_every_node_pending_in_one_go(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let created =
        deployments::create(&mut conn, &new_deployment("edge", 12), None, t0()).expect("create");
    assert_eq!(created.name, "edge");
    assert_eq!(created.description.as_deref(), Some("edge description"));
    assert_eq!(created.target_node_count, 12);
    assert_eq!(created.created_at, t0());
    assert_eq!(
        deployments::get(&mut conn, created.id).expect("get"),
        created
    );

    let nodes = all_nodes(&mut conn, created.id);
    assert_eq!(nodes.len(), 12);
    for (index, node) in nodes.iter().enumerate() {
        assert_eq!(node.name, format!("node-{:03}", index + 1));
        assert_eq!(
            node.hostname.as_deref(),
            Some(format!("switch-{}-{:03}", created.id, index + 1).as_str())
        );
        assert_eq!(node.state, NodeState::Pending);
        assert_eq!(node.attempt, 0);
        assert_eq!(node.ip_address, None);
        assert_eq!(node.state_changed_at, t0());
    }
    assert!(
        nodes.windows(2).all(|w| w[0].id < w[1].id),
        "ascending id order"
    );

    let counts = deployments::node_state_counts(&mut conn, created.id).expect("counts");
    assert_eq!((counts.pending, counts.total()), (12, 12));

    let log = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(created.id),
            after: None,
            event_type: None,
            node: None,
            actor: None,
            limit: 100,
        },
    )
    .expect("events");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, EventType::DeploymentCreated);
}

fn create_refuses_zero_nodes_and_writes_nothing(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let err = deployments::create(&mut conn, &new_deployment("empty", 0), None, t0())
        .expect_err("0 nodes");
    assert!(matches!(err, StorageError::InvalidInput(_)), "{err:?}");
    assert_eq!(deployments::count(&mut conn).expect("count"), 0);
}

fn list_is_newest_first_and_paged(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let ids: Vec<DeploymentId> = (0..5)
        .map(|i| {
            deployments::create(&mut conn, &new_deployment(&format!("d{i}"), 1), None, t0())
                .expect("create")
                .id
        })
        .collect();
    let listed: Vec<DeploymentId> = deployments::list(&mut conn, 0, 100)
        .expect("list")
        .iter()
        .map(|(d, _)| d.id)
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    let page: Vec<DeploymentId> = deployments::list(&mut conn, 1, 2)
        .expect("list")
        .iter()
        .map(|(d, _)| d.id)
        .collect();
    assert_eq!(page, newest_first[1..3].to_vec());
    assert_eq!(deployments::count(&mut conn).expect("count"), 5);
}

fn node_queries_filter_by_state_and_page(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d =
        deployments::create(&mut conn, &new_deployment("filter", 10), None, t0()).expect("create");
    let nodes_before = all_nodes(&mut conn, d.id);
    for node in &nodes_before[..4] {
        drive(&mut conn, node, &[NodeTrigger::StartProvisioning], t0());
    }
    let filter = NodeFilter {
        state: Some(NodeState::Provisioning),
        skip: 1,
        limit: Some(2),
    };
    let page = nodes::list(&mut conn, d.id, &filter).expect("list");
    assert_eq!(page.total, 4);
    assert_eq!(
        page.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![nodes_before[1].id, nodes_before[2].id]
    );
    let pending = nodes::list(
        &mut conn,
        d.id,
        &NodeFilter {
            state: Some(NodeState::Pending),
            ..NodeFilter::default()
        },
    )
    .expect("list");
    assert_eq!((pending.total, pending.nodes.len()), (6, 6));
    let counts = deployments::node_state_counts(&mut conn, d.id).expect("counts");
    assert_eq!((counts.pending, counts.provisioning), (6, 4));
    assert_eq!(
        counts,
        deployments::count_node_states(&mut conn, d.id).expect("truth")
    );
}

fn missing_rows_are_typed_errors(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let a = deployments::create(&mut conn, &new_deployment("a", 2), None, t0()).expect("create");
    let b = deployments::create(&mut conn, &new_deployment("b", 2), None, t0()).expect("create");
    let node_of_b = all_nodes(&mut conn, b.id)[0].id;
    assert!(matches!(
        deployments::get(&mut conn, DeploymentId(999_999)),
        Err(StorageError::DeploymentNotFound)
    ));
    assert!(matches!(
        nodes::list(&mut conn, DeploymentId(999_999), &NodeFilter::default()),
        Err(StorageError::DeploymentNotFound)
    ));
    assert!(matches!(
        nodes::get(&mut conn, a.id, node_of_b),
        Err(StorageError::NodeNotFound)
    ));
    assert!(matches!(
        nodes::get(&mut conn, DeploymentId(999_999), node_of_b),
        Err(StorageError::DeploymentNotFound)
    ));
    assert_eq!(
        nodes::get(&mut conn, b.id, node_of_b).expect("get").id,
        node_of_b
    );
}

fn delete_cascades_and_keeps_the_deleted_event(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let doomed =
        deployments::create(&mut conn, &new_deployment("doomed", 3), None, t0()).expect("create");
    let kept =
        deployments::create(&mut conn, &new_deployment("kept", 2), None, t0()).expect("create");
    let doomed_nodes = all_nodes(&mut conn, doomed.id);
    let kept_nodes = all_nodes(&mut conn, kept.id);
    drive(
        &mut conn,
        &doomed_nodes[0],
        &[NodeTrigger::StartProvisioning],
        t0(),
    );
    let samples: Vec<NewSample> = doomed_nodes
        .iter()
        .chain(&kept_nodes)
        .map(|n| sample(n, t0(), 10.0))
        .collect();
    assert_eq!(
        telemetry::insert_batch(&mut conn, &samples).expect("insert"),
        5
    );

    deployments::delete(&mut conn, doomed.id, None, t0() + Duration::seconds(1)).expect("delete");

    assert!(matches!(
        deployments::get(&mut conn, doomed.id),
        Err(StorageError::DeploymentNotFound)
    ));
    assert!(matches!(
        nodes::get(&mut conn, doomed.id, doomed_nodes[0].id),
        Err(StorageError::DeploymentNotFound)
    ));
    assert!(
        nodes::ids_in_deployment(
            &mut conn,
            doomed.id,
            &doomed_nodes.iter().map(|n| n.id).collect::<Vec<_>>()
        )
        .expect("ids")
        .is_empty()
    );
    assert_eq!(telemetry::count(&mut conn, doomed.id).expect("count"), 0);
    let log = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(doomed.id),
            after: None,
            event_type: None,
            node: None,
            actor: None,
            limit: 100,
        },
    )
    .expect("events");
    // The audit log is append-only: the deployment's history outlives it, the delete last.
    assert_eq!(
        log.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        vec![
            EventType::DeploymentCreated,
            EventType::StateChange,
            EventType::DeploymentDeleted
        ]
    );
    assert_eq!(log[2].metadata["node_count"], 3);

    // The other deployment is untouched.
    assert_eq!(all_nodes(&mut conn, kept.id).len(), 2);
    assert_eq!(telemetry::count(&mut conn, kept.id).expect("count"), 2);
    // Deleting again is "not found", and ids are never reused.
    assert!(matches!(
        deployments::delete(&mut conn, doomed.id, None, t0()),
        Err(StorageError::DeploymentNotFound)
    ));
    let next =
        deployments::create(&mut conn, &new_deployment("next", 1), None, t0()).expect("create");
    assert!(next.id > kept.id);
}

fn transitions_follow_the_state_machine_and_log_one_event_each(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &new_deployment("sm", 1), None, t0()).expect("create");
    let node = all_nodes(&mut conn, d.id).remove(0);
    let later = t0() + Duration::seconds(2);
    let change = NodeChange {
        ip_address: Some("10.0.0.7".into()),
        failure_reason: None,
        actor: None,
    };
    let provisioning = nodes::transition(
        &mut conn,
        &node,
        NodeTrigger::StartProvisioning,
        &change,
        later,
    )
    .expect("transition")
    .expect("won");
    assert_eq!(provisioning.state, NodeState::Provisioning);
    assert_eq!(provisioning.version, node.version + 1);
    assert_eq!(
        nodes::get(&mut conn, d.id, node.id).expect("get"),
        provisioning
    );

    // Illegal: RUNNING is not reachable from PROVISIONING; nothing changes.
    let err = nodes::transition(
        &mut conn,
        &provisioning,
        NodeTrigger::ConfigurationSucceeded,
        &NodeChange::default(),
        later,
    )
    .expect_err("illegal");
    assert!(
        matches!(
            err,
            StorageError::Domain(DomainError::IllegalTransition { .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        nodes::get(&mut conn, d.id, node.id).expect("get"),
        provisioning
    );

    let configuring = drive(
        &mut conn,
        &provisioning,
        &[NodeTrigger::ProvisioningSucceeded],
        later,
    );
    let failed = nodes::transition(
        &mut conn,
        &configuring,
        NodeTrigger::ConfigurationFailed,
        &NodeChange {
            ip_address: None,
            failure_reason: Some("config push rejected".into()),
            actor: None,
        },
        later,
    )
    .expect("transition")
    .expect("won");
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("config push rejected")
    );
    assert_eq!(
        failed.ip_address.as_deref(),
        Some("10.0.0.7"),
        "the address is kept"
    );
    assert_eq!(nodes::get(&mut conn, d.id, node.id).expect("get"), failed);

    let log = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(d.id),
            after: None,
            event_type: Some(EventType::StateChange),
            node: Some(node.id),
            actor: None,
            limit: 100,
        },
    )
    .expect("events");
    let steps: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e.metadata["from_state"].as_str().unwrap_or("").to_owned(),
                e.metadata["to_state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("PENDING".into(), "PROVISIONING".into()),
            ("PROVISIONING".into(), "CONFIGURING".into()),
            ("CONFIGURING".into(), "FAILED".into()),
        ]
    );
    assert!(log.iter().all(|e| e.metadata["attempt"] == 0));
    assert_eq!(log[2].metadata["failure_reason"], "config push rejected");
}

fn retry_restarts_a_failed_node_and_refuses_others(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d =
        deployments::create(&mut conn, &new_deployment("retry", 2), None, t0()).expect("create");
    let pair = all_nodes(&mut conn, d.id);
    let failed = drive(
        &mut conn,
        &pair[0],
        &[
            NodeTrigger::StartProvisioning,
            NodeTrigger::ProvisioningFailed,
        ],
        t0(),
    );
    assert_eq!(failed.state, NodeState::Failed);

    let retried = nodes::retry(&mut conn, d.id, failed.id, None, t0()).expect("retry");
    assert_eq!(
        (
            retried.state,
            retried.attempt,
            retried.failure_reason.clone()
        ),
        (NodeState::Pending, 1, None)
    );
    assert_eq!(
        nodes::get(&mut conn, d.id, failed.id).expect("get"),
        retried
    );
    let log = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(d.id),
            after: None,
            event_type: Some(EventType::NodeRetry),
            node: None,
            actor: None,
            limit: 10,
        },
    )
    .expect("events");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].metadata["attempt"], 1);
    assert_eq!(log[0].metadata["from_state"], "FAILED");
    assert_eq!(log[0].metadata["to_state"], "PENDING");

    match nodes::retry(&mut conn, d.id, pair[1].id, None, t0()) {
        Err(StorageError::Domain(DomainError::IllegalTransition {
            from,
            allowed_actions,
            ..
        })) => {
            assert_eq!(from, NodeState::Pending);
            assert!(allowed_actions.is_empty());
        }
        other => panic!("retry of a pending node: {other:?}"),
    }
    assert!(matches!(
        nodes::retry(&mut conn, d.id, NodeId(987_654), None, t0()),
        Err(StorageError::NodeNotFound)
    ));
    assert_eq!(OperatorAction::Retry.as_str(), "retry");
}

fn every_node_change_raises_the_node_version_and_nothing_else_does(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &new_deployment("versioned", 2), None, t0())
        .expect("create");
    let other =
        deployments::create(&mut conn, &new_deployment("other", 1), None, t0()).expect("create");
    let version =
        |conn: &mut DbConnection, id| deployments::nodes_version(conn, id).expect("version");
    let start = version(&mut conn, d.id);
    let pair = all_nodes(&mut conn, d.id);
    let mut seen = vec![start];
    let node = drive(&mut conn, &pair[0], &[NodeTrigger::StartProvisioning], t0());
    seen.push(version(&mut conn, d.id));
    let failed = drive(&mut conn, &node, &[NodeTrigger::ProvisioningFailed], t0());
    seen.push(version(&mut conn, d.id));
    nodes::retry(&mut conn, d.id, failed.id, None, t0()).expect("retry");
    seen.push(version(&mut conn, d.id));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // Telemetry, another deployment's nodes and reads leave it alone.
    let last = version(&mut conn, d.id);
    telemetry::insert_batch(&mut conn, &[sample(&pair[1], t0(), 1.0)]).expect("sample");
    let lone = all_nodes(&mut conn, other.id);
    drive(&mut conn, &lone[0], &[NodeTrigger::StartProvisioning], t0());
    all_nodes(&mut conn, d.id);
    assert_eq!(version(&mut conn, d.id), last);
    assert!(matches!(
        deployments::nodes_version(&mut conn, DeploymentId(987_654)),
        Err(StorageError::DeploymentNotFound)
    ));
}

fn nothing_is_written_for_a_deployment_after_its_delete_commits(t: &TestDatabase) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    for round in 0..3 {
        let mut conn = t.db.get().expect("connection");
        let doomed = deployments::create(&mut conn, &new_deployment("doomed", 60), None, t0())
            .expect("create");
        let kept =
            deployments::create(&mut conn, &new_deployment("kept", 5), None, t0()).expect("create");
        let doomed_nodes = all_nodes(&mut conn, doomed.id);
        let kept_nodes = all_nodes(&mut conn, kept.id);
        drop(conn);
        let (batches, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
        let deleted = AtomicBool::new(false);
        std::thread::scope(|scope| {
            // Should this thread fail (a delete that times out on a loaded machine), the writers
            // stop too, so that the test fails with its message instead of waiting forever.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _stop_writers = StopOnDrop(&stop);
            // Three writers of samples: pushes (checked against the deployment) and worker-style
            // batches mixing both deployments.
            for writer in 0..3_i64 {
                let (db, batches, stop, deleted) = (&t.db, &batches, &stop, &deleted);
                let (doomed_nodes, kept_nodes) = (&doomed_nodes, &kept_nodes);
                scope.spawn(move || {
                    let mut conn = db.get().expect("connection");
                    for slot in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let at = t0() + Duration::seconds(slot * 3 + writer);
                        let batch: Vec<NewSample> =
                            doomed_nodes.iter().map(|n| sample(n, at, 1.0)).collect();
                        let outcome = if writer == 0 {
                            telemetry::insert_for_deployment(&mut conn, doomed.id, &batch)
                                .map(|r| r.expect("all nodes belong"))
                        } else {
                            let mut mixed = batch;
                            mixed.extend(kept_nodes.iter().map(|n| sample(n, at, 2.0)));
                            telemetry::insert_batch(&mut conn, &mixed)
                        };
                        match outcome {
                            Ok(_) => {}
                            Err(StorageError::DeploymentNotFound)
                                if deleted.load(Ordering::SeqCst) => {}
                            Err(e) => panic!("writer {writer}: {e}"),
                        }
                        batches.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            // A lifecycle-style writer moving the doomed deployment's nodes.
            {
                let (db, stop) = (&t.db, &stop);
                let doomed_nodes = &doomed_nodes;
                scope.spawn(move || {
                    let mut conn = db.get().expect("connection");
                    for node in doomed_nodes {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let plan = nodes::TransitionPlan::new(
                            node,
                            NodeTrigger::StartProvisioning,
                            NodeChange::default(),
                        )
                        .expect("plan");
                        nodes::apply_transitions(&mut conn, &[plan], t0())
                            .expect("a transition never fails for a race");
                    }
                });
            }
            // Waits for the writers to have written `target` batches; gives up (stopping them,
            // so the scope ends) if one of them died and the count stalls.
            let wait_for = |target: usize| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while batches.load(Ordering::SeqCst) < target {
                    if std::time::Instant::now() > deadline {
                        stop.store(true, Ordering::SeqCst);
                        panic!("round {round}: the writers stalled (one of them failed)");
                    }
                    std::thread::yield_now();
                }
            };
            // The delete, once the writers are well under way.
            wait_for(9);
            deleted.store(true, Ordering::SeqCst);
            deployments::delete(&mut t.db.get().expect("connection"), doomed.id, None, t0())
                .expect("delete");
            // Let the writers run past the delete before stopping them.
            wait_for(batches.load(Ordering::SeqCst) + 9);
            stop.store(true, Ordering::SeqCst);
        });
        let mut conn = t.db.get().expect("connection");
        assert_eq!(
            telemetry::count(&mut conn, doomed.id).expect("count"),
            0,
            "round {round}: samples of the deleted deployment"
        );
        assert!(telemetry::count(&mut conn, kept.id).expect("count") > 0);
        // Its history stays (the log is append-only), and nothing follows the delete's event.
        let left = events_of(&mut conn, doomed.id);
        let kinds: Vec<EventType> = left.iter().map(|e| e.event_type).collect();
        assert_eq!(
            kinds.first(),
            Some(&EventType::DeploymentCreated),
            "round {round}"
        );
        assert_eq!(
            kinds.last(),
            Some(&EventType::DeploymentDeleted),
            "round {round}"
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EventType::DeploymentDeleted)
                .count(),
            1,
            "round {round}"
        );
    }
}

fn silent_loops_are_forgotten_and_the_list_is_bounded(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let interval = std::time::Duration::from_secs(2);
    for i in 0..(heartbeats::LISTED_LOOPS + 5) {
        let at = t0() + Duration::seconds(i);
        heartbeats::record(
            &mut conn,
            &format!("w{i}"),
            WorkerKind::Lifecycle,
            interval,
            at,
            at,
        )
        .expect("beat");
    }
    let listed = heartbeats::list(&mut conn).expect("list");
    assert_eq!(listed.len() as i64, heartbeats::LISTED_LOOPS, "bounded");
    assert_eq!(
        listed[0].name,
        format!("w{}", heartbeats::LISTED_LOOPS + 4),
        "newest first"
    );
    // A new loop twenty minutes on forgets those silent for the default fifteen.
    let later = t0() + Duration::minutes(20);
    heartbeats::record(
        &mut conn,
        "fresh",
        WorkerKind::Telemetry,
        interval,
        later,
        later,
    )
    .expect("beat");
    let names = loop_names(&mut conn);
    assert_eq!(names, ["fresh"]);
    // A worker configured to forget after a minute does so.
    let much_later = later + Duration::minutes(2);
    heartbeats::record_with(
        &mut conn,
        "next",
        WorkerKind::Telemetry,
        interval,
        much_later,
        much_later,
        Duration::minutes(1),
    )
    .expect("beat");
    let names = loop_names(&mut conn);
    assert_eq!(names, ["next"]);
}

fn guarded_update_race_has_exactly_one_winner(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &new_deployment("race", 1), None, t0()).expect("create");
    let node = all_nodes(&mut conn, d.id).remove(0);
    drop(conn);
    for round in 0..5 {
        let current = nodes::get(&mut t.db.get().expect("connection"), d.id, node.id).expect("get");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (db, current, barrier) = (&t.db, &current, &barrier);
                    scope.spawn(move || {
                        let mut conn = db.get().expect("connection");
                        barrier.wait();
                        let trigger = if current.state == NodeState::Pending {
                            NodeTrigger::StartProvisioning
                        } else if current.state == NodeState::Provisioning {
                            NodeTrigger::ProvisioningFailed
                        } else {
                            NodeTrigger::Retry
                        };
                        nodes::transition(&mut conn, current, trigger, &NodeChange::default(), t0())
                            .expect("no error, only a lost race")
                            .is_some()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(
            outcomes.iter().filter(|won| **won).count(),
            1,
            "round {round}: {outcomes:?}"
        );
    }
    let mut conn = t.db.get().expect("connection");
    let log = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(d.id),
            after: None,
            event_type: None,
            node: Some(node.id),
            actor: None,
            limit: 100,
        },
    )
    .expect("events");
    assert_eq!(log.len(), 5, "one event per transition");
    assert_eq!(
        nodes::get(&mut conn, d.id, node.id).expect("get").version,
        5
    );
}

fn duplicate_samples_are_stored_once(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &new_deployment("dup", 2), None, t0()).expect("create");
    let pair = all_nodes(&mut conn, d.id);
    let batch = vec![
        sample(&pair[0], t0(), 10.0),
        sample(&pair[0], t0(), 99.0), // repeated within the batch
        sample(&pair[1], t0(), 11.0), // same instant, other node: distinct
        sample(&pair[0], t0() + Duration::seconds(5), 12.0),
    ];
    assert_eq!(
        telemetry::insert_batch(&mut conn, &batch).expect("insert"),
        3
    );
    assert_eq!(
        telemetry::insert_batch(&mut conn, &batch).expect("insert again"),
        0
    );
    assert_eq!(telemetry::count(&mut conn, d.id).expect("count"), 3);
    let stored = telemetry::query(
        &mut conn,
        &TelemetryQuery {
            deployment: d.id,
            node: Some(pair[0].id),
            start: Some(t0()),
            end: Some(t0()),
            limit: 10,
        },
    )
    .expect("query");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].metrics.latency_ms, 10.0, "the first write wins");
}

fn telemetry_query_filters_and_orders_newest_first(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &new_deployment("tq", 3), None, t0()).expect("create");
    let other =
        deployments::create(&mut conn, &new_deployment("other", 1), None, t0()).expect("create");
    let trio = all_nodes(&mut conn, d.id);
    let mut batch = Vec::new();
    for slot in 0..10 {
        for node in &trio {
            batch.push(sample(
                node,
                t0() + Duration::seconds(5 * slot),
                slot as f64,
            ));
        }
    }
    batch.push(sample(&all_nodes(&mut conn, other.id)[0], t0(), 1.0));
    assert_eq!(
        telemetry::insert_batch(&mut conn, &batch).expect("insert"),
        31
    );

    let q = |node, start, end, limit| TelemetryQuery {
        deployment: d.id,
        node,
        start,
        end,
        limit,
    };
    let newest = telemetry::query(&mut conn, &q(None, None, None, 100)).expect("query");
    assert_eq!(newest.len(), 30);
    assert!(newest.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
    assert_eq!(newest[0].timestamp, t0() + Duration::seconds(45));
    assert_eq!(
        newest[0].timestamp.timestamp_subsec_micros(),
        123_456,
        "microseconds survive"
    );

    let limited = telemetry::query(&mut conn, &q(None, None, None, 4)).expect("query");
    assert_eq!(limited.len(), 4);

    let window = telemetry::query(
        &mut conn,
        &q(
            Some(trio[1].id),
            Some(t0() + Duration::seconds(10)),
            Some(t0() + Duration::seconds(20)),
            100,
        ),
    )
    .expect("query");
    assert_eq!(
        window
            .iter()
            .map(|s| s.metrics.latency_ms)
            .collect::<Vec<_>>(),
        vec![4.0, 3.0, 2.0]
    );
    assert!(
        window
            .iter()
            .all(|s| s.node_id == trio[1].id && s.deployment_id == d.id)
    );
}

fn events_page_with_a_cursor(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &new_deployment("ev", 3), None, t0()).expect("create");
    for node in all_nodes(&mut conn, d.id) {
        drive(&mut conn, &node, &[NodeTrigger::StartProvisioning], t0());
    }
    let page = |after| EventQuery {
        deployment: Some(d.id),
        after,
        event_type: None,
        node: None,
        actor: None,
        limit: 2,
    };
    let first = events::list(&mut conn, &page(None)).expect("events");
    let second = events::list(&mut conn, &page(first.last().map(|e| e.id))).expect("events");
    let third = events::list(&mut conn, &page(second.last().map(|e| e.id))).expect("events");
    assert_eq!((first.len(), second.len(), third.len()), (2, 2, 0));
    let ids: Vec<_> = first.iter().chain(&second).map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(first[0].event_type, EventType::DeploymentCreated);

    // Four events (created, three starts): the cursor before the last two is the second's id;
    // asking for as many as there are, or more, starts at the first.
    assert_eq!(
        events::cursor_before_last(&mut conn, d.id, 2).expect("cursor"),
        Some(ids[1])
    );
    assert_eq!(
        events::cursor_before_last(&mut conn, d.id, 4).expect("cursor"),
        None
    );
    assert_eq!(
        events::cursor_before_last(&mut conn, d.id, 9).expect("cursor"),
        None
    );
    let other =
        deployments::create(&mut conn, &new_deployment("ev2", 1), None, t0()).expect("create");
    assert_eq!(
        events::cursor_before_last(&mut conn, other.id, 1).expect("cursor"),
        None,
        "another deployment's events are not counted"
    );
}

fn heartbeats_are_upserted(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let interval = std::time::Duration::from_secs(2);
    heartbeats::record(&mut conn, "w1", WorkerKind::Lifecycle, interval, t0(), t0())
        .expect("record");
    heartbeats::record(&mut conn, "w1", WorkerKind::Telemetry, interval, t0(), t0())
        .expect("record");
    heartbeats::record(
        &mut conn,
        "w1",
        WorkerKind::Lifecycle,
        interval,
        t0(),
        t0() + Duration::seconds(4),
    )
    .expect("record");
    let beats = heartbeats::list(&mut conn).expect("list");
    assert_eq!(beats.len(), 2);
    // A loop silent for a day is forgotten when a new one first reports.
    let day_later = t0() + Duration::hours(25);
    heartbeats::record(
        &mut conn,
        "w2",
        WorkerKind::Lifecycle,
        interval,
        day_later,
        day_later,
    )
    .expect("record");
    let names = loop_names(&mut conn);
    assert_eq!(names, vec!["w2".to_owned()]);
    assert_eq!(beats[0].kind, WorkerKind::Lifecycle);
    assert_eq!(beats[0].last_heartbeat, t0() + Duration::seconds(4));
    assert_eq!(beats[0].interval, interval);
}

fn migrations_round_trip(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    deployments::create(&mut conn, &new_deployment("before", 1), None, t0()).expect("create");
    assert!(
        migrations::run_pending(&mut conn)
            .expect("nothing pending")
            .is_empty()
    );
    let reverted = migrations::revert_all(&mut conn).expect("down");
    assert!(!reverted.is_empty());
    assert!(deployments::count(&mut conn).is_err(), "tables are gone");
    let applied = migrations::run_pending(&mut conn).expect("up again");
    assert_eq!(applied.len(), reverted.len());
    assert_eq!(deployments::count(&mut conn).expect("count"), 0);
    deployments::create(&mut conn, &new_deployment("after", 2), None, t0()).expect("create after");
}

fn concurrent_start_up_migrates_once(t: &TestDatabase) {
    // Two more pools on the same, already-migrated database start at the same moment.
    let url = t.url().to_owned();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| netorch_storage::Database::connect(&url).map(|_| ())))
            .collect();
        for handle in handles {
            handle.join().expect("thread").expect("connect and migrate");
        }
    });
    let mut conn = t.db.get().expect("connection");
    assert!(
        migrations::run_pending(&mut conn)
            .expect("nothing pending")
            .is_empty()
    );
}

fn events_commit_in_id_order(t: &TestDatabase) {
    // Two writers: the first draws its event id and holds its transaction open; the second
    // must not be able to commit a later id before the first commits, or a reader paging with
    // `after` would step past the first event for good.
    let mut conn = t.db.get().expect("connection");
    let d =
        deployments::create(&mut conn, &new_deployment("order", 1), None, t0()).expect("create");
    let node = all_nodes(&mut conn, d.id).remove(0);
    let created = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(d.id),
            after: None,
            event_type: None,
            node: None,
            actor: None,
            limit: 10,
        },
    )
    .expect("events");
    let cursor = created.last().map(|e| e.id);
    drop(conn);
    let event = |kind: NodeTrigger| {
        netorch_domain::NewEvent::state_change(
            d.id,
            node.id,
            &node.name,
            NodeState::Pending,
            NodeState::Pending,
            0,
            t0(),
        )
        .with_metadata("writer", kind.as_str())
    };
    let (first_appended, appended) = std::sync::mpsc::channel::<()>();
    let (release_first, released) = std::sync::mpsc::channel::<()>();
    let (second_done, second_finished) = std::sync::mpsc::channel::<()>();
    let event = &event;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut conn = t.db.get().expect("connection");
            netorch_storage::write_transaction(&mut conn, |conn| -> Result<(), StorageError> {
                events::insert(conn, &event(NodeTrigger::StartProvisioning))?;
                first_appended.send(()).expect("main listening");
                released.recv().expect("main releases");
                Ok(())
            })
            .expect("first writer");
        });
        appended.recv().expect("first appended");
        scope.spawn(move || {
            let mut conn = t.db.get().expect("connection");
            events::insert(&mut conn, &event(NodeTrigger::Retry)).expect("second writer");
            second_done.send(()).expect("main listening");
        });
        // On SQLite the second writer waits for the database lock; on PostgreSQL for the
        // event-order lock. Either way it cannot finish while the first is open.
        let finished_early = second_finished
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_ok();
        let mut reader = t.db.get().expect("connection");
        let page = events::list(
            &mut reader,
            &EventQuery {
                deployment: Some(d.id),
                after: cursor,
                event_type: None,
                node: None,
                actor: None,
                limit: 10,
            },
        )
        .expect("events");
        // Release the first writer before asserting, so that a failure fails, not hangs.
        release_first.send(()).expect("first waiting");
        if !finished_early {
            second_finished.recv().expect("second finishes");
        }
        assert!(
            !finished_early,
            "the second writer committed while the first was open"
        );
        assert!(page.is_empty(), "{page:?}");
    });
    let mut conn = t.db.get().expect("connection");
    let page = events::list(
        &mut conn,
        &EventQuery {
            deployment: Some(d.id),
            after: cursor,
            event_type: None,
            node: None,
            actor: None,
            limit: 10,
        },
    )
    .expect("events");
    let writers: Vec<&str> = page
        .iter()
        .map(|e| e.metadata["writer"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(writers, vec!["start_provisioning", "retry"]);
}

/// Events leave the audit log by age only, of live and deleted deployments alike, oldest
/// first, a chunk per transaction; younger ones stay.
fn events_expire_by_age_only(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let old = t0();
    let gone =
        deployments::create(&mut conn, &new_deployment("gone", 2), None, old).expect("create");
    let live =
        deployments::create(&mut conn, &new_deployment("live", 1), None, old).expect("create");
    deployments::delete(&mut conn, gone.id, None, old + Duration::days(1)).expect("delete");
    let young = old + Duration::days(30);
    deployments::create(&mut conn, &new_deployment("young", 1), None, young).expect("create");
    let retention = Retention {
        events: Duration::days(20),
        ..Retention::default()
    };
    // Before the events are 20 days old, nothing goes.
    let early = old + Duration::days(10);
    assert_eq!(
        retention::expire_events_chunk(&mut conn, &retention, early).expect("expire"),
        0
    );
    assert_eq!(events_of(&mut conn, gone.id).len(), 2);
    // Past it, the old deployments' events go, deleted or not; the young one's stay.
    let now = old + Duration::days(40);
    let expiry = retention::expire(&mut conn, &retention, now, || true).expect("expire");
    assert_eq!(
        expiry.events, 3,
        "gone's created and deleted, live's created"
    );
    assert!(events_of(&mut conn, gone.id).is_empty());
    assert!(events_of(&mut conn, live.id).is_empty());
    assert_eq!(
        deployments::count(&mut conn).expect("count"),
        2,
        "rows stay"
    );
    let kept = events::list(&mut conn, &EventQuery::default()).expect("events");
    assert_eq!(
        kept.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        vec![EventType::DeploymentCreated]
    );
}

/// `EventQuery::of_deployment` reads a deployment's log from its first event, and
/// `events::pages` walks it a page at a time to its end.
fn the_event_log_reads_page_by_page_to_its_end(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d =
        deployments::create(&mut conn, &new_deployment("paged", 5), None, t0()).expect("create");
    let other =
        deployments::create(&mut conn, &new_deployment("other", 1), None, t0()).expect("create");
    for node in all_nodes(&mut conn, d.id) {
        drive(&mut conn, &node, &[NodeTrigger::StartProvisioning], t0());
    }
    let query = EventQuery {
        limit: 2,
        ..EventQuery::of_deployment(d.id)
    };
    let pages: Vec<Vec<netorch_domain::Event>> = events::pages(&mut conn, query)
        .collect::<Result<_, _>>()
        .expect("pages");
    // Created, then five state changes: 2 + 2 + 2, and an empty page ends a full last one.
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 2, 0]
    );
    let read: Vec<_> = pages.concat();
    assert_eq!(read, events_of(&mut conn, d.id));
    assert!(read.iter().all(|e| e.deployment_id == Some(d.id)));
    assert_eq!(events_of(&mut conn, other.id).len(), 1);
    assert_eq!(EventQuery::default().limit, EventQuery::DEFAULT_LIMIT);
}

backend_tests!(
    the_event_log_reads_page_by_page_to_its_end,
    events_expire_by_age_only,
    silent_loops_are_forgotten_and_the_list_is_bounded,
    nothing_is_written_for_a_deployment_after_its_delete_commits,
    every_node_change_raises_the_node_version_and_nothing_else_does,
    events_commit_in_id_order,
    create_makes_every_node_pending_in_one_go,
    create_refuses_zero_nodes_and_writes_nothing,
    list_is_newest_first_and_paged,
    node_queries_filter_by_state_and_page,
    missing_rows_are_typed_errors,
    delete_cascades_and_keeps_the_deleted_event,
    transitions_follow_the_state_machine_and_log_one_event_each,
    retry_restarts_a_failed_node_and_refuses_others,
    guarded_update_race_has_exactly_one_winner,
    duplicate_samples_are_stored_once,
    telemetry_query_filters_and_orders_newest_first,
    events_page_with_a_cursor,
    heartbeats_are_upserted,
    migrations_round_trip,
    concurrent_start_up_migrates_once,
);
