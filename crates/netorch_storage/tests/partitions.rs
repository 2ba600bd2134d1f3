//! Writes racing the creation of PostgreSQL's time partitions (issue 25): a push whose rows were
//! routed to a default partition while a partition of their range was being attached used to
//! fail (`new row for relation "telemetry_samples_default" violates partition constraint`, a
//! 500 at the API). Partition creation must never make a write fail. On SQLite (no partitions)
//! the same writes run as a baseline.
//!
//! And a deployment's delete racing a partition's creation must take every row of it: a
//! delete that had planned its partitions before a new one was attached used to miss the rows
//! the maintainer moved into it (the chaos check found 1,050 samples of a deleted deployment).

use chrono::{DateTime, Duration};
use netorch_domain::{Metrics, NewDeployment, NewSample, Timestamp};
use netorch_storage::partitions;
use netorch_storage::retention::Retention;
use netorch_storage::{Backend, deployments, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// The start of an hour.
fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000 / 3_600 * 3_600, 0).expect("valid time")
}

/// A deployment of `nodes` nodes made at `t0`, with its nodes.
fn deployment(
    conn: &mut netorch_storage::DbConnection,
    name: &str,
    nodes: u32,
) -> (netorch_domain::Deployment, Vec<netorch_domain::Node>) {
    let d =
        deployments::create(conn, &NewDeployment::new(name, nodes), None, t0()).expect("create");
    let all = netorch_testkit::nodes_of(conn, d.id);
    (d, all)
}

fn writes_racing_the_partitions_of_their_range_never_fail(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (_, all) = deployment(&mut conn, "race", 8);
    drop(conn);
    // Raw samples kept an hour, so each maintenance call below makes the partition of the
    // hour the writers are writing into (two ahead of its `now`) and drops old ones.
    let retention = Retention {
        raw: Duration::hours(1),
        ..Retention::default()
    };
    let hour = AtomicI64::new(0);
    let stop = AtomicBool::new(false);
    let stored = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let created = AtomicUsize::new(0);
    /// Stops the writers however the scope ends (a failed maintenance call too).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for (writer, node) in all.iter().enumerate() {
            let (hour, stop, stored, failures) = (&hour, &stop, &stored, &failures);
            scope.spawn(move || {
                let mut step = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    step += 1;
                    // One sample a push, as a collector without timestamps sends them, in the
                    // hour whose partition is about to be made.
                    let at = t0()
                        + Duration::hours(hour.load(Ordering::SeqCst))
                        + Duration::microseconds(step * 1_000 + writer as i64);
                    let sample = NewSample {
                        node_id: node.id,
                        deployment_id: node.deployment_id,
                        timestamp: at,
                        metrics: Metrics {
                            latency_ms: 10.0,
                            throughput_gbps: 9.0,
                            error_rate: 0.1,
                        },
                    };
                    // A connection a write, as the API's handlers take them.
                    let mut conn = t.db.get().expect("connection");
                    match telemetry::insert_batch(&mut conn, &[sample]) {
                        Ok(_) => {
                            stored.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(error) => {
                            eprintln!("a write failed: {error}");
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        for h in 0..12 {
            hour.store(h, Ordering::SeqCst);
            // Rows of hour h pile up in the default partition, then its partition is made.
            std::thread::sleep(std::time::Duration::from_millis(60));
            let now = t0() + Duration::hours(h - partitions::AHEAD);
            let mut conn = t.db.get().expect("connection");
            for _ in 0..100 {
                let done = partitions::maintain(&mut conn, &retention, now).expect("maintain");
                created.fetch_add(done.created, Ordering::SeqCst);
                if !done.deferred {
                    break;
                }
            }
        }
    });
    let failures = failures.load(Ordering::SeqCst);
    let stored = stored.load(Ordering::SeqCst);
    assert_eq!(
        failures,
        0,
        "{failures} of {} writes failed",
        failures + stored
    );
    assert!(stored > 100, "the writers wrote ({stored})");
    if t.db.backend() == Backend::Postgres {
        // Each hour's partition was made while its rows arrived.
        assert!(created.load(Ordering::SeqCst) >= 12, "partitions were made");
    }
}

/// The maintainer's side of the race, played step by step on a connection of its own as
/// `partitions::maintain` makes a partition (its lock, a table, the default partition locked,
/// the rows of the range moved, the attach), with a delete started in between, at the one point
/// where the delete used to plan its partitions and then wait: once the default partition is
/// locked. Before the fix the delete waited for that lock with its plan made; now it waits for
/// the maintainer's lock first, and sees the new partition.
fn a_delete_racing_a_partitions_creation_takes_every_row(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = deployment(&mut conn, "doomed", 4);
    // Ten hours ahead of anything made: these rows wait in the default partition.
    let hour = t0() + Duration::hours(10);
    let samples: Vec<NewSample> = (0..50)
        .flat_map(|step| {
            all.iter().map(move |node| NewSample {
                node_id: node.id,
                deployment_id: node.deployment_id,
                timestamp: hour + Duration::seconds(step),
                metrics: Metrics {
                    latency_ms: 10.0,
                    throughput_gbps: 9.0,
                    error_rate: 0.1,
                },
            })
        })
        .collect();
    assert_eq!(
        telemetry::insert_batch(&mut conn, &samples).expect("insert"),
        200
    );
    if t.db.backend() == Backend::Sqlite {
        // No partitions: the delete takes every row.
        deployments::delete(&mut conn, d.id, None, t0()).expect("delete");
        assert_eq!(samples_of(&mut conn, d.id.get()), 0);
        return;
    }
    drop(conn);
    #[cfg(feature = "postgres")]
    race_the_maintainer(t, d.id, hour);
}

#[cfg(feature = "postgres")]
fn race_the_maintainer(t: &TestDatabase, d: netorch_domain::DeploymentId, hour: Timestamp) {
    use diesel::RunQueryDsl;
    let mut maintainer = t.db.get().expect("connection");
    let netorch_storage::DbConnection::Postgresql(pg) = &mut *maintainer else {
        unreachable!("the backend is PostgreSQL")
    };
    let width = partitions::width(netorch_storage::retention::Tier::Raw);
    let start = hour.timestamp_micros() / width * width;
    let (index, end) = (start / width, start + width);
    let table = format!("telemetry_samples_p{index}");
    let run = |pg: &mut diesel::PgConnection, sql: String| {
        diesel::sql_query(sql)
            .execute(pg)
            .expect("maintainer's step");
    };
    run(pg, "BEGIN".into());
    run(
        pg,
        format!(
            "SELECT pg_advisory_xact_lock({}, hashtext(current_schema()))",
            netorch_storage::locks::PARTITION_MAINTENANCE_CLASS
        ),
    );
    run(
        pg,
        format!("CREATE TABLE {table} (LIKE telemetry_samples INCLUDING DEFAULTS)"),
    );
    run(
        pg,
        "LOCK TABLE telemetry_samples_default IN ACCESS EXCLUSIVE MODE".into(),
    );
    std::thread::scope(|scope| {
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let deleting = scope.spawn(move || {
            let mut conn = t.db.get().expect("connection");
            pid_tx.send(backend_pid(&mut conn)).expect("send");
            deployments::delete(&mut conn, d, None, t0())
        });
        // Until the delete waits for a lock (on the maintainer's, or on the default partition).
        let pid = pid_rx.recv().expect("the deleter's pid");
        let mut watcher = t.db.get().expect("connection");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !waits_for_a_lock(&mut watcher, pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the delete never waited"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        run(
            pg,
            format!(
                "WITH moved AS (DELETE FROM telemetry_samples_default \
                 WHERE sampled_at >= {start} AND sampled_at < {end} RETURNING *) \
                 INSERT INTO {table} SELECT * FROM moved"
            ),
        );
        run(
            pg,
            format!(
                "ALTER TABLE telemetry_samples ATTACH PARTITION {table} \
                 FOR VALUES FROM ({start}) TO ({end})"
            ),
        );
        run(pg, "COMMIT".into());
        deleting.join().expect("the deleter").expect("delete");
    });
    let mut conn = t.db.get().expect("connection");
    assert_eq!(
        samples_of(&mut conn, d.get()),
        0,
        "the delete took the rows moved into the new partition"
    );
}

fn samples_of(conn: &mut netorch_storage::DbConnection, deployment: i64) -> i64 {
    count(
        conn,
        &format!("SELECT count(*) AS n FROM telemetry_samples WHERE deployment_id = {deployment}"),
    )
}

#[cfg(feature = "postgres")]
fn backend_pid(conn: &mut netorch_storage::DbConnection) -> i64 {
    count(conn, "SELECT pg_backend_pid()::bigint AS n")
}

#[cfg(feature = "postgres")]
fn waits_for_a_lock(conn: &mut netorch_storage::DbConnection, pid: i64) -> bool {
    count(
        conn,
        &format!(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = {pid} AND wait_event_type = 'Lock'"
        ),
    ) > 0
}

fn count(conn: &mut netorch_storage::DbConnection, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = diesel::sql_query(sql);
    match conn {
        netorch_storage::DbConnection::Sqlite(inner) => query.get_result::<Count>(inner),
        #[cfg(feature = "postgres")]
        netorch_storage::DbConnection::Postgresql(inner) => query.get_result::<Count>(inner),
    }
    .expect("count")
    .n
}

backend_tests!(
    writes_racing_the_partitions_of_their_range_never_fail,
    a_delete_racing_a_partitions_creation_takes_every_row
);
