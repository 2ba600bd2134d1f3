//! Writes racing the creation of PostgreSQL's time partitions (issue 25): a push whose rows were
//! routed to a default partition while a partition of their range was being attached used to
//! fail (`new row for relation "telemetry_samples_default" violates partition constraint`, a
//! 500 at the API). Partition creation must never make a write fail. On SQLite (no partitions)
//! the same writes run as a baseline.

use chrono::{DateTime, Duration};
use netorch_domain::{Metrics, NewDeployment, NewSample, Timestamp};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::partitions;
use netorch_storage::retention::Retention;
use netorch_storage::{Backend, deployments, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// The start of an hour.
fn t0() -> Timestamp {
    DateTime::from_timestamp(1_800_000_000 / 3_600 * 3_600, 0).expect("valid time")
}

fn writes_racing_the_partitions_of_their_range_never_fail(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let new = NewDeployment {
        name: "race".into(),
        description: None,
        target_node_count: 8,
        rollout: Default::default(),
        telemetry: Default::default(),
        alert_rules: Default::default(),
        provisioning: Default::default(),
    };
    let d = deployments::create(&mut conn, &new, None, t0()).expect("create");
    let all = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
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

backend_tests!(writes_racing_the_partitions_of_their_range_never_fail);
