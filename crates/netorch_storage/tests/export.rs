//! The telemetry export's storage, on SQLite and on PostgreSQL: samples read after a position
//! come once each, in commit order, transactions whole; a transaction still running holds back
//! what committed after it; one worker at a time holds a target's lease and moves its cursor.

use chrono::{DateTime, TimeDelta};
use netorch_domain::{DeploymentId, Metrics, NewDeployment, NewSample, Node, Timestamp};
use netorch_storage::export::{self, ExportBatch, Sent};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{Backend, DbConnection, deployments, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use std::collections::BTreeSet;

fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn fleet(conn: &mut DbConnection, name: &str, count: u32) -> (DeploymentId, Vec<Node>) {
    let new = NewDeployment {
        name: name.into(),
        description: None,
        target_node_count: count,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
        remediation: None,
    };
    let d = deployments::create(conn, &new, None, t0()).expect("create");
    let all = nodes::list(conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    (d.id, all)
}

fn slot(nodes: &[Node], second: i64) -> Vec<NewSample> {
    nodes
        .iter()
        .map(|node| NewSample {
            node_id: node.id,
            deployment_id: node.deployment_id,
            timestamp: t0() + TimeDelta::seconds(second),
            metrics: Metrics {
                latency_ms: 10.0 + second as f64,
                throughput_gbps: 9.0,
                error_rate: 0.5,
            },
        })
        .collect()
}

/// Reads everything after `position` in batches of `limit` until `expected` samples came (on
/// PostgreSQL another test's transaction, running on the same server, may hold the horizon back
/// for a moment): the batches, and the last position.
fn read_expecting(
    conn: &mut DbConnection,
    mut position: i64,
    limit: usize,
    expected: usize,
) -> (Vec<ExportBatch>, i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut batches = Vec::new();
    loop {
        let (more, at) = read_all(conn, position, limit);
        position = at;
        batches.extend(more);
        let got: usize = batches.iter().map(|b| b.samples.len()).sum();
        if got >= expected || std::time::Instant::now() > deadline {
            return (batches, position);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Reads everything after `position` in batches of `limit`: the batches, and the last position.
fn read_all(conn: &mut DbConnection, mut position: i64, limit: usize) -> (Vec<ExportBatch>, i64) {
    let mut batches = Vec::new();
    loop {
        let batch = export::read_after(conn, position, limit).expect("read");
        assert!(batch.position >= position, "the position never goes back");
        position = batch.position;
        let more = batch.more;
        if !batch.samples.is_empty() {
            batches.push(batch);
        }
        if !more {
            return (batches, position);
        }
    }
}

fn keys(batches: &[ExportBatch]) -> Vec<(i64, i64)> {
    batches
        .iter()
        .flat_map(|b| &b.samples)
        .map(|s| (s.node_id.get(), s.timestamp.timestamp()))
        .collect()
}

fn samples_come_once_each_in_commit_order(db: &TestDatabase) {
    let mut conn = db.db.get().expect("conn");
    let (_, nodes) = fleet(&mut conn, "export", 30);
    // Three transactions of 30 samples, the second stored before the first in time (a
    // collector's backfill): the export follows the commits, not the clocks.
    for second in [10, 0, 20] {
        telemetry::insert_batch(&mut conn, &slot(&nodes, second)).expect("insert");
    }
    // A duplicate stores nothing, so it exports nothing.
    telemetry::insert_batch(&mut conn, &slot(&nodes, 10)).expect("insert again");

    // Small batches: every stored sample once.
    let (small, _) = read_expecting(&mut conn, 0, 7, 90);
    let got = keys(&small);
    assert_eq!(got.len(), 90, "every stored sample once");
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 90);
    match db.db.backend() {
        // A transaction is read whole: 30 at a time whatever the limit.
        Backend::Postgres => assert!(small.iter().all(|b| b.samples.len() == 30)),
        Backend::Sqlite => assert!(small.iter().all(|b| b.samples.len() <= 7)),
    }
    for batch in &small {
        assert!(
            batch
                .samples
                .windows(2)
                .all(|w| w[0].timestamp <= w[1].timestamp),
            "a batch is in time order"
        );
    }
    // A batch a transaction: the order between them is the order they were stored in.
    let (batches, end) = read_expecting(&mut conn, 0, 30, 90);
    let got = keys(&batches);
    let seconds: Vec<i64> = got.iter().map(|(_, at)| at - t0().timestamp()).collect();
    let firsts: Vec<i64> = [0, 30, 60].iter().map(|&i| seconds[i]).collect();
    assert_eq!(firsts, [10, 0, 20], "in commit order");
    assert!(
        seconds.chunks(30).all(|c| c.iter().all(|s| *s == c[0])),
        "{seconds:?}"
    );
    // A batch ends with the whole transaction holding its limit-th sample.
    if db.db.backend() == Backend::Postgres {
        let before = batches[0].position - 1;
        let batch = export::read_after(&mut conn, before, 60).expect("read");
        assert_eq!((batch.samples.len(), batch.more), (60, true));
        assert_eq!(batch.position, batches[1].position);
        let batch = export::read_after(&mut conn, before, 61).expect("read");
        assert_eq!(batch.samples.len(), 90);
    }

    // Nothing more until something is stored; then only that.
    let (none, same) = read_all(&mut conn, end, 7);
    assert!(none.is_empty());
    assert_eq!(same, end);
    telemetry::insert_batch(&mut conn, &slot(&nodes, 30)).expect("insert");
    let (later, _) = read_expecting(&mut conn, end, 1_000, 30);
    assert_eq!(keys(&later).len(), 30);
    assert!(
        keys(&later)
            .iter()
            .all(|(_, at)| *at == t0().timestamp() + 30)
    );
}

fn the_lease_lets_one_worker_move_the_cursor(db: &TestDatabase) {
    let mut conn = db.db.get().expect("conn");
    let target = "http://127.0.0.1:8428/api/v1/write";
    let lease = TimeDelta::seconds(15);
    let at = |s: i64| t0() + TimeDelta::seconds(s);
    let sent = |position, samples, caught_up_at| Sent {
        position,
        samples,
        caught_up_at,
    };

    let first = export::claim(&mut conn, target, "w1", at(0), lease).expect("claim");
    assert!(first.held_by("w1", at(0)));
    assert_eq!((first.position, first.exported), (0, 0));
    assert_eq!(first.lag(at(4)), TimeDelta::seconds(4), "never caught up");

    assert!(export::renew(&mut conn, target, "w1", at(0), lease).expect("renew"));
    assert!(!export::renew(&mut conn, target, "w2", at(0), lease).expect("renew"));
    let other = export::claim(&mut conn, target, "w2", at(1), lease).expect("claim");
    assert!(!other.held_by("w2", at(1)) && other.held_by("w1", at(1)));
    assert!(!export::advance(&mut conn, target, "w2", sent(99, 5, None), at(1), lease).expect("a"));

    assert!(
        export::advance(
            &mut conn,
            target,
            "w1",
            sent(40, 30, Some(at(2))),
            at(2),
            lease
        )
        .expect("advance")
    );
    // A position behind the cursor never moves it back.
    assert!(export::advance(&mut conn, target, "w1", sent(10, 0, None), at(3), lease).expect("a"));
    let c = export::cursor(&mut conn, target)
        .expect("read")
        .expect("cursor");
    assert_eq!((c.position, c.exported), (40, 30));
    assert_eq!(c.caught_up_at, Some(at(2)), "kept when not caught up again");
    assert_eq!(c.lag(at(10)), TimeDelta::seconds(8));

    assert!(export::record_failure(&mut conn, target, "w1", "503", at(4), lease).expect("f"));
    let c = export::cursor(&mut conn, target)
        .expect("read")
        .expect("cursor");
    assert_eq!(c.last_error.as_deref(), Some("503"));
    assert_eq!(c.failed_at, Some(at(4)));

    // w1 stalls past its lease (renewed at 4 s, so until 19 s): w2 takes over.
    let taken = export::claim(&mut conn, target, "w2", at(20), lease).expect("claim");
    assert!(taken.held_by("w2", at(20)));
    assert_eq!(taken.position, 40, "where w1 left it");
    assert!(
        !export::advance(&mut conn, target, "w1", sent(50, 1, None), at(20), lease).expect("a")
    );
    assert!(
        !export::record_failure(&mut conn, target, "w1", "late", at(20), lease).expect("f"),
        "a worker without the lease records nothing"
    );
    assert!(export::advance(&mut conn, target, "w2", sent(50, 3, None), at(21), lease).expect("a"));
    let c = export::cursor(&mut conn, target)
        .expect("read")
        .expect("cursor");
    assert_eq!((c.position, c.exported, c.last_error), (50, 33, None));

    // A clean stop hands the target over at once.
    export::release(&mut conn, target, "w2").expect("release");
    let next = export::claim(&mut conn, target, "w1", at(22), lease).expect("claim");
    assert!(next.held_by("w1", at(22)));
    assert_eq!(
        export::cursors(&mut conn)
            .expect("all")
            .iter()
            .map(|c| c.target.as_str())
            .collect::<Vec<_>>(),
        [target]
    );
}

fn names_are_read_for_the_ids_that_exist(db: &TestDatabase) {
    let mut conn = db.db.get().expect("conn");
    let (d, nodes) = fleet(&mut conn, "edge-north", 3);
    let names = export::names(
        &mut conn,
        &[d.get(), 999_999],
        &[nodes[0].id.get(), nodes[2].id.get(), 999_999],
    )
    .expect("names");
    assert_eq!(names.deployments.len(), 1);
    assert_eq!(names.deployments[&d.get()], "edge-north");
    assert_eq!(names.nodes[&nodes[2].id.get()], "node-003");
    assert_eq!(names.nodes.len(), 2);
}

backend_tests!(
    samples_come_once_each_in_commit_order,
    the_lease_lets_one_worker_move_the_cursor,
    names_are_read_for_the_ids_that_exist,
);

/// On PostgreSQL a transaction still running holds back every sample committed after it began
/// writing: its samples will commit at a smaller position, and a cursor past them would skip
/// them.
mod postgres_only {
    use super::*;
    use diesel::Connection;

    netorch_testkit::postgres_test! {
        fn a_running_transaction_holds_back_what_commits_after_it() {
            let db = TestDatabase::postgres().expect("NETORCH_TEST_POSTGRES_URL");
            let mut setup = db.db.get().expect("conn");
            // Two deployments, so that the two writers share no rollup row (the second would
            // wait for the first's lock).
            let (_, nodes) = fleet(&mut setup, "export", 10);
            let (_, others) = fleet(&mut setup, "other", 10);
            let (_, start) = read_all(&mut setup, 0, 1_000);

            let mut slow = db.db.get().expect("conn");
            let mut fast = db.db.get().expect("conn");
            let position = slow
                .transaction::<_, diesel::result::Error, _>(|slow| {
                    telemetry::insert_batch(slow, &slot(&nodes, 0)).expect("insert, uncommitted");
                    telemetry::insert_batch(&mut fast, &slot(&others, 5)).expect("insert, committed");
                    let (held, position) = read_all(&mut setup, start, 1_000);
                    assert!(held.is_empty(), "nothing while the first transaction runs");
                    assert_eq!(position, start);
                    // And the export knows it is not caught up.
                    let batch = export::read_after(&mut setup, start, 1_000).expect("read");
                    assert!(batch.samples.is_empty() && !batch.more && batch.held_back);
                    Ok(position)
                })
                .expect("commit");
            // A batch a transaction (limit 1), so that the order between them shows.
            let (batches, _) = read_expecting(&mut setup, position, 1, 20);
            let seconds: Vec<i64> = keys(&batches)
                .iter()
                .map(|(_, at)| at - t0().timestamp())
                .collect();
            assert_eq!(seconds.len(), 20);
            assert!(seconds[..10].iter().all(|s| *s == 0), "{seconds:?}");
            assert!(seconds[10..].iter().all(|s| *s == 5), "{seconds:?}");
        }
    }
}
