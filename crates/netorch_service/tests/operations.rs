//! The operations the API offers, called as plain Rust on both backends: a deployment's life
//! (create, list, get, change, pause, resume, delete), its nodes by id and name, a push all or
//! nothing with names resolved, reads filtered by node, the audit log followed past a delete,
//! and keys made, refused and revoked.

use chrono::{DateTime, Duration, Utc};
use netorch_domain::NodeTrigger;
use netorch_domain::{
    DeploymentChanges, EventType, Metrics, NewDeployment, NodeId, NodeRef, NodeState, Role,
};
use netorch_service::deployments::{self, Page};
use netorch_service::events::{self, EventQuery};
use netorch_service::keys::{self, KeyRequest};
use netorch_service::nodes::{self, NodeFilter};
use netorch_service::telemetry::{self, PushOutcome, PushedSample, TelemetryQuery};
use netorch_service::{ServiceError, workers};
use netorch_storage::StorageError;
use netorch_storage::nodes::{NodeChange, transition};
use netorch_testkit::{TestDatabase, backend_tests};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T16:30:00Z")
        .expect("valid")
        .to_utc()
}

fn reading(node: NodeRef, seconds_ago: i64) -> PushedSample {
    PushedSample {
        node,
        timestamp: Some(now() - Duration::seconds(seconds_ago)),
        metrics: Metrics {
            latency_ms: 12.0,
            throughput_gbps: 8.5,
            error_rate: 0.2,
        },
    }
}

fn a_deployment_lives_and_is_deleted_through_the_service(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let created = deployments::create(
        &mut conn,
        &NewDeployment::new("edge", 4),
        Some("ops"),
        now(),
    )
    .expect("create");
    let id = created.deployment.id;
    assert_eq!(created.nodes.pending, 4);
    assert_eq!(created.nodes.total(), 4);
    deployments::create(&mut conn, &NewDeployment::new("core", 2), None, now()).expect("create");

    // Newest first, paged.
    let first = deployments::list(&mut conn, Page::first(1)).expect("list");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].deployment.name, "core");
    let second = deployments::list(&mut conn, Page::first(1).next(first.len())).expect("list");
    assert_eq!(second[0].deployment.id, id);
    assert_eq!(deployments::count(&mut conn).expect("count"), 2);

    let changes = DeploymentChanges {
        name: Some("edge-west".to_owned()),
        ..DeploymentChanges::default()
    };
    let changed = deployments::update(&mut conn, id, &changes, Some("ops"), now()).expect("patch");
    assert_eq!(changed.deployment.name, "edge-west");
    let paused = deployments::pause(&mut conn, id, Some("ops"), now()).expect("pause");
    assert_eq!(paused.deployment.paused_at, Some(now()));
    let resumed = deployments::resume(&mut conn, id, Some("ops"), now()).expect("resume");
    assert_eq!(resumed.deployment.paused_at, None);
    assert_eq!(
        deployments::get(&mut conn, id)
            .expect("get")
            .deployment
            .name,
        "edge-west"
    );

    deployments::delete(&mut conn, id, Some("admin"), now()).expect("delete");
    assert!(matches!(
        deployments::get(&mut conn, id),
        Err(ServiceError::Storage(StorageError::DeploymentNotFound))
    ));
    // The log outlives the deployment, its delete last; a follower learns it is gone.
    let followed = events::follow(&mut conn, id, None, 100).expect("follow");
    assert!(!followed.deployment_exists);
    let kinds: Vec<EventType> = followed.events.iter().map(|e| e.event_type).collect();
    assert_eq!(kinds.first(), Some(&EventType::DeploymentCreated));
    assert_eq!(kinds.last(), Some(&EventType::DeploymentDeleted));
    assert!(kinds.contains(&EventType::DeploymentPaused));
    let tail = events::cursor_before_last(&mut conn, id, 1).expect("cursor");
    let last = events::follow(&mut conn, id, tail, 100).expect("follow");
    assert_eq!(last.events.len(), 1);
    assert_eq!(last.events[0].event_type, EventType::DeploymentDeleted);
}

fn nodes_are_found_by_id_or_name_and_only_failed_ones_retried(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &NewDeployment::new("rack", 3), None, now())
        .expect("create")
        .deployment
        .id;
    let page = nodes::list(&mut conn, d, &NodeFilter::default()).expect("list");
    assert_eq!(page.total, 3);
    let second = &page.nodes[1];
    let by_name = nodes::get(&mut conn, d, &NodeRef::Name(second.name.clone())).expect("get");
    assert_eq!(by_name.id, second.id);
    assert_eq!(
        nodes::get(&mut conn, d, &NodeRef::Id(second.id))
            .expect("get")
            .name,
        second.name
    );
    assert!(matches!(
        nodes::get(&mut conn, d, &NodeRef::Name("node-999".to_owned())),
        Err(ServiceError::Storage(StorageError::NodeNotFound))
    ));
    // A pending node cannot be retried; the refusal names what it allows.
    let version = nodes::version(&mut conn, d).expect("version");
    assert!(matches!(
        nodes::retry(&mut conn, d, &NodeRef::Id(second.id), Some("ops"), now()),
        Err(ServiceError::Storage(StorageError::Domain(_)))
    ));
    assert_eq!(nodes::version(&mut conn, d).expect("version"), version);
    assert_eq!(
        nodes::get(&mut conn, d, &NodeRef::Id(second.id))
            .expect("get")
            .state,
        NodeState::Pending
    );

    // Failed (as the lifecycle worker would make it), it is retried by name, with an event
    // that the log finds by the node's name.
    let change = NodeChange::default();
    let provisioning = transition(
        &mut conn,
        second,
        NodeTrigger::StartProvisioning,
        &change,
        now(),
    )
    .expect("start")
    .expect("not raced");
    transition(
        &mut conn,
        &provisioning,
        NodeTrigger::ProvisioningFailed,
        &change,
        now(),
    )
    .expect("fail")
    .expect("not raced");
    let retried = nodes::retry(
        &mut conn,
        d,
        &NodeRef::Name(second.name.clone()),
        Some("ops"),
        now(),
    )
    .expect("retry");
    assert_eq!(retried.state, NodeState::Pending);
    assert_eq!(retried.attempt, second.attempt + 1);
    assert!(nodes::version(&mut conn, d).expect("version") > version);
    let of_node = events::list(
        &mut conn,
        d,
        EventQuery::of_deployment(d),
        Some(&NodeRef::Name(second.name.clone())),
    )
    .expect("events");
    assert_eq!(of_node.len(), 3, "{of_node:?}");
    assert!(of_node.iter().all(|e| e.node_id == Some(second.id)));
    assert_eq!(
        of_node
            .last()
            .and_then(|e| e.metadata.get("actor"))
            .and_then(|actor| actor.as_str()),
        Some("ops")
    );
}

fn a_push_stores_all_or_nothing_and_reads_filter_by_node(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let d = deployments::create(&mut conn, &NewDeployment::new("push", 2), None, now())
        .expect("create")
        .deployment
        .id;
    let fleet = nodes::list(&mut conn, d, &NodeFilter::default())
        .expect("list")
        .nodes;
    let (a, b) = (&fleet[0], &fleet[1]);

    // One unknown name among good samples: nothing is stored, and that sample is named.
    let mixed = [
        reading(NodeRef::Id(a.id), 10),
        reading(NodeRef::Name("node-404".to_owned()), 10),
        reading(NodeRef::Name(b.name.clone()), 10),
    ];
    assert_eq!(
        telemetry::push(&mut conn, d, &mixed, now()).expect("push"),
        PushOutcome::UnknownNodes(vec![1])
    );
    // An id of another deployment's node is as unknown.
    assert_eq!(
        telemetry::push(
            &mut conn,
            d,
            &[reading(NodeRef::Id(NodeId(999_999)), 5)],
            now()
        )
        .expect("push"),
        PushOutcome::UnknownNodes(vec![0])
    );
    let everything = TelemetryQuery {
        deployment: d,
        node: None,
        start: None,
        end: None,
        limit: 100,
    };
    assert!(
        telemetry::read(&mut conn, everything.clone(), None)
            .expect("read")
            .is_empty()
    );

    // By id and by name; the sample without a time is stamped now; a repeat is stored once.
    let mut good = vec![
        reading(NodeRef::Id(a.id), 10),
        reading(NodeRef::Name(b.name.clone()), 10),
        reading(NodeRef::Name(b.name.clone()), 10),
    ];
    good.push(PushedSample {
        timestamp: None,
        ..reading(NodeRef::Id(a.id), 0)
    });
    assert_eq!(
        telemetry::push(&mut conn, d, &good, now()).expect("push"),
        PushOutcome::Stored(3)
    );
    let all = telemetry::read(&mut conn, everything.clone(), None).expect("read");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].timestamp, now(), "newest first, stamped with now");
    let of_b = telemetry::read(
        &mut conn,
        everything.clone(),
        Some(&NodeRef::Name(b.name.clone())),
    )
    .expect("read");
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].node_id, b.id);
    let of_nobody = telemetry::read(
        &mut conn,
        everything.clone(),
        Some(&NodeRef::Name("node-404".to_owned())),
    )
    .expect("read");
    assert!(of_nobody.is_empty());

    // Events filtered by a name of no node find none.
    let of_nobody = events::list(
        &mut conn,
        d,
        EventQuery::of_deployment(d),
        Some(&NodeRef::Name("node-404".to_owned())),
    )
    .expect("events");
    assert!(of_nobody.is_empty());

    // A missing deployment is said as such, for reads and pushes alike.
    let missing = netorch_domain::DeploymentId(d.get() + 1000);
    assert!(matches!(
        telemetry::read(
            &mut conn,
            TelemetryQuery {
                deployment: missing,
                ..everything
            },
            None
        ),
        Err(ServiceError::Storage(StorageError::DeploymentNotFound))
    ));
    assert!(matches!(
        telemetry::push(
            &mut conn,
            missing,
            &[reading(NodeRef::Name("x".into()), 1)],
            now()
        ),
        Err(ServiceError::Storage(StorageError::DeploymentNotFound))
    ));
    assert!(
        workers::heartbeats(&mut conn)
            .expect("heartbeats")
            .is_empty()
    );
}

fn keys_are_made_once_per_name_and_revoked(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let made =
        keys::create(&mut conn, &KeyRequest::new("ci", Role::Collector), now()).expect("key");
    assert!(made.token.starts_with(keys::TOKEN_PREFIX));
    assert_eq!(made.key.role, Role::Collector);
    assert!(matches!(
        keys::create(&mut conn, &KeyRequest::new("ci", Role::Viewer), now()),
        Err(ServiceError::KeyExists(name)) if name == "ci"
    ));
    assert!(matches!(
        keys::create(&mut conn, &KeyRequest::new("a b", Role::Viewer), now()),
        Err(ServiceError::KeyName(_))
    ));
    let missing = [netorch_domain::DeploymentId(424_242)];
    let limited = KeyRequest {
        deployments: Some(&missing),
        ..KeyRequest::new("rack", Role::Operator)
    };
    let refused = keys::create(&mut conn, &limited, now());
    assert!(
        matches!(&refused, Err(ServiceError::KeyDeploymentsMissing(ids)) if ids == &missing),
        "{refused:?}"
    );
    assert_eq!(keys::list(&mut conn).expect("list").len(), 1);
    let revoked = keys::revoke(&mut conn, "ci", now()).expect("revoke");
    assert_eq!(revoked.revoked_at, Some(now()));
    assert!(matches!(
        keys::revoke(&mut conn, "nobody", now()),
        Err(ServiceError::Storage(StorageError::KeyNotFound(_)))
    ));
}

fn servers_count_the_live_ones_and_leave_when_they_stop(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let every = std::time::Duration::from_secs(1);
    let t0 = now();
    assert_eq!(
        workers::report_server(&mut conn, "a", every, t0, t0).expect("a"),
        1
    );
    assert_eq!(
        workers::report_server(&mut conn, "b", every, t0, t0).expect("b"),
        2
    );
    // A worker loop is not a server.
    netorch_storage::heartbeats::record(
        &mut conn,
        "w",
        netorch_domain::WorkerKind::Lifecycle,
        every,
        t0,
        t0,
    )
    .expect("worker");
    let later = t0 + Duration::seconds(2);
    assert_eq!(
        workers::report_server(&mut conn, "a", every, t0, later).expect("a"),
        2
    );
    // b is silent past three of its intervals: dead.
    let much_later = t0 + Duration::seconds(4);
    assert_eq!(
        workers::report_server(&mut conn, "a", every, t0, much_later).expect("a"),
        1
    );
    // b comes back, then stops cleanly: counted out at once.
    assert_eq!(
        workers::report_server(&mut conn, "b", every, t0, much_later).expect("b"),
        2
    );
    workers::report_server_stopped(&mut conn, "b", much_later).expect("stop");
    assert_eq!(
        workers::report_server(&mut conn, "a", every, t0, much_later).expect("a"),
        1
    );
    let kinds: Vec<_> = workers::heartbeats(&mut conn)
        .expect("list")
        .into_iter()
        .map(|beat| (beat.name, beat.kind.as_str()))
        .collect();
    assert!(kinds.contains(&("a".to_owned(), "server")), "{kinds:?}");
}

backend_tests!(
    servers_count_the_live_ones_and_leave_when_they_stop,
    a_deployment_lives_and_is_deleted_through_the_service,
    nodes_are_found_by_id_or_name_and_only_failed_ones_retried,
    a_push_stores_all_or_nothing_and_reads_filter_by_node,
    keys_are_made_once_per_name_and_revoked,
);
