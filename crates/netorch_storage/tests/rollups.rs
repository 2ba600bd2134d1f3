//! Telemetry rollups, on SQLite and on PostgreSQL: kept at ingest, equal to summaries of the
//! stored samples, late and duplicate samples handled, deleted with their deployment.

use chrono::{DateTime, Duration};
use netorch_domain::{
    DeploymentId, Metrics, NewDeployment, NewSample, Node, Resolution, SampleSummary, Timestamp,
};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::rollups::{self, SeriesBucket, WindowDetail, WindowPart};
use netorch_storage::telemetry::TelemetryQuery;
use netorch_storage::{Backend, DbConnection, deployments, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};
use std::collections::BTreeMap;

fn t0() -> Timestamp {
    // 40 seconds into a minute, 20 minutes before an hour ends.
    DateTime::from_timestamp(1_800_000_000 - 1_200 + 40, 0).expect("valid time")
}

fn fleet(conn: &mut DbConnection, nodes: u32) -> (DeploymentId, Vec<Node>) {
    let new = NewDeployment {
        name: "rollups".into(),
        description: None,
        target_node_count: nodes,
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

fn sample(node: &Node, at: Timestamp, seed: f64) -> NewSample {
    NewSample {
        node_id: node.id,
        deployment_id: node.deployment_id,
        timestamp: at,
        metrics: Metrics {
            latency_ms: 10.0 + seed.sin().abs() * 5.0 + node.id.get() as f64,
            throughput_gbps: 9.0 + seed.cos(),
            error_rate: (seed * 0.37).fract().abs(),
        },
    }
}

fn everything(
    conn: &mut DbConnection,
    deployment: DeploymentId,
) -> Vec<netorch_domain::TelemetrySample> {
    telemetry::query(
        conn,
        &TelemetryQuery {
            deployment,
            node: None,
            start: None,
            end: None,
            limit: 1_000_000,
        },
    )
    .expect("query")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

fn assert_same(label: &str, got: &SampleSummary, want: &SampleSummary) {
    assert_eq!(
        (got.count, got.newest),
        (want.count, want.newest),
        "{label}"
    );
    for (g, w) in got.metrics().into_iter().zip(want.metrics()) {
        assert!(
            close(g.mean, w.mean),
            "{label}: mean {} vs {}",
            g.mean,
            w.mean
        );
        assert!(close(g.m2, w.m2), "{label}: m2 {} vs {}", g.m2, w.m2);
        assert_eq!((g.min, g.max), (w.min, w.max), "{label}");
    }
}

/// Checks every rollup of `deployment` against summaries computed from its stored samples.
fn check_rollups(conn: &mut DbConnection, deployment: DeploymentId, all: &[Node]) {
    let stored = everything(conn, deployment);
    let far = (t0() - Duration::days(1), t0() + Duration::days(1));
    for resolution in Resolution::ALL {
        let mut per_node: BTreeMap<(i64, i64), SampleSummary> = BTreeMap::new();
        let mut per_bucket: BTreeMap<i64, (SampleSummary, std::collections::BTreeSet<i64>)> =
            BTreeMap::new();
        // Oldest first, as the samples were merged in no particular order anyway.
        for s in stored.iter().rev() {
            let bucket = resolution.bucket_of(s.timestamp.timestamp_micros());
            per_node
                .entry((s.node_id.get(), bucket))
                .and_modify(|r| r.push(s.timestamp, &s.metrics))
                .or_insert_with(|| SampleSummary::of(s.timestamp, &s.metrics));
            let entry = per_bucket.entry(bucket).or_insert_with(|| {
                (
                    SampleSummary::of(s.timestamp, &s.metrics),
                    Default::default(),
                )
            });
            if !entry.1.is_empty() {
                entry.0.push(s.timestamp, &s.metrics);
            }
            entry.1.insert(s.node_id.get());
        }
        for node in all {
            let series: Vec<SeriesBucket> =
                rollups::node_series(conn, deployment, node.id, resolution, far.0, far.1, 10_000)
                    .expect("node series");
            let want: Vec<(&(i64, i64), &SampleSummary)> = per_node
                .iter()
                .filter(|((n, _), _)| *n == node.id.get())
                .collect();
            assert_eq!(series.len(), want.len(), "{resolution:?} node {}", node.id);
            for (got, ((_, bucket), want)) in series.iter().zip(want) {
                assert_eq!(got.start.timestamp_micros(), *bucket);
                assert_same(
                    &format!("{resolution:?} node {}", node.id),
                    &got.summary,
                    want,
                );
            }
        }
        let series = rollups::fleet_series(conn, deployment, resolution, far.0, far.1, 10_000)
            .expect("fleet series");
        assert_eq!(series.len(), per_bucket.len(), "{resolution:?} fleet");
        for (got, (bucket, (want, nodes))) in series.iter().zip(&per_bucket) {
            assert_eq!(got.start.timestamp_micros(), *bucket);
            assert_eq!(got.nodes, nodes.len() as u64);
            assert_same(&format!("{resolution:?} fleet"), &got.summary, want);
        }
    }
}

fn rollups_summarise_exactly_the_stored_samples(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 4);
    // 30 minutes of 5 s slots for every node, crossing an hour, in one batch...
    let mut batch = Vec::new();
    for slot in 0..360 {
        for node in &all {
            batch.push(sample(
                node,
                t0() + Duration::seconds(5 * slot),
                slot as f64,
            ));
        }
    }
    let (first, rest) = batch.split_at(batch.len() / 2);
    telemetry::insert_batch(&mut conn, first).expect("first half");
    check_rollups(&mut conn, d, &all);
    // ...then the rest, out of order: the newest slots first.
    let mut rest = rest.to_vec();
    rest.reverse();
    telemetry::insert_batch(&mut conn, &rest).expect("second half");
    check_rollups(&mut conn, d, &all);

    // A late push into old buckets (at odd seconds: new keys), mixed with re-sent samples at
    // new values (taken keys: not stored, so not counted) and a repeat within the batch.
    let mut late = Vec::new();
    for (i, node) in all.iter().enumerate() {
        late.push(sample(
            node,
            t0() + Duration::seconds(3 + 60 * i as i64),
            1_000.0,
        ));
        late.push(sample(node, t0() + Duration::seconds(10), 2_000.0));
    }
    late.push(late[0]);
    let stored = telemetry::insert_batch(&mut conn, &late).expect("late");
    assert_eq!(stored, all.len());
    check_rollups(&mut conn, d, &all);
    // Pushed through the API's path too.
    let mut pushed = vec![sample(&all[0], t0() - Duration::seconds(1), 7.0)];
    pushed.push(sample(&all[1], t0(), 8.0)); // taken
    let outcome = telemetry::insert_for_deployment(&mut conn, d, &pushed).expect("push");
    assert_eq!(outcome, Ok(1));
    check_rollups(&mut conn, d, &all);
    // A new hour reached by turns: the odd nodes, then the even ones between them, then all
    // again; each bucket counts each node once.
    let later = t0() + Duration::hours(3);
    for (round, pick) in [[1, 3], [0, 2]].iter().enumerate() {
        let batch: Vec<NewSample> = pick
            .iter()
            .map(|&i| sample(&all[i], later + Duration::seconds(round as i64), 3.0))
            .collect();
        telemetry::insert_batch(&mut conn, &batch).expect("by turns");
        check_rollups(&mut conn, d, &all);
    }
    let again: Vec<NewSample> = all
        .iter()
        .map(|n| sample(n, later + Duration::seconds(30), 4.0))
        .collect();
    telemetry::insert_batch(&mut conn, &again).expect("all again");
    check_rollups(&mut conn, d, &all);
}

/// Per node, what a window's parts add up to: count, newest, and per metric the sums around a
/// fixed shift (so that parts can be taken away as well as added).
#[derive(Default)]
struct Tally {
    count: i64,
    newest: Option<Timestamp>,
    sums: [(f64, f64); 3],
}

impl Tally {
    const SHIFT: [f64; 3] = [12.0, 9.0, 0.5];

    fn apply(&mut self, summary: &SampleSummary, sign: f64) {
        let n = summary.count as f64;
        for (metric, m) in summary.metrics().into_iter().enumerate() {
            let d = m.mean - Self::SHIFT[metric];
            self.sums[metric].0 += sign * n * d;
            self.sums[metric].1 += sign * (m.m2 + n * d * d);
        }
        self.count += sign as i64 * summary.count as i64;
        if sign > 0.0 {
            self.newest = self.newest.max(Some(summary.newest));
        }
    }

    fn check(&self, label: &str, want: &SampleSummary) {
        assert_eq!(self.count, want.count as i64, "{label}");
        assert_eq!(self.newest, Some(want.newest), "{label}");
        let n = self.count as f64;
        for (metric, w) in want.metrics().into_iter().enumerate() {
            let (s1, s2) = self.sums[metric];
            let (mean, m2) = (Self::SHIFT[metric] + s1 / n, s2 - s1 * s1 / n);
            assert!(close(mean, w.mean), "{label}: mean {mean} vs {}", w.mean);
            assert!(
                (m2 - w.m2).abs() <= 1e-9 * w.m2.abs().max(1.0),
                "{label}: m2 {m2} vs {}",
                w.m2
            );
        }
    }
}

/// Every part of `scan_window` at `detail`, tallied per node; and the count it returned.
fn tally_window(
    conn: &mut DbConnection,
    d: DeploymentId,
    window: (Timestamp, Timestamp),
    detail: WindowDetail,
) -> (BTreeMap<i64, Tally>, u64, [usize; 5]) {
    let mut tallies: BTreeMap<i64, Tally> = BTreeMap::new();
    // Samples, minutes, hours, minutes taken away, samples taken away.
    let mut parts = [0; 5];
    let count = rollups::scan_window(conn, d, window, detail, |part| {
        let (node, summary, sign, kind) = match part {
            WindowPart::Sample(node, at, m) => (node, SampleSummary::of(at, &m), 1.0, 0),
            WindowPart::Minute(node, _, s) => (node, *s, 1.0, 1),
            WindowPart::Hour(node, _, s) => (node, *s, 1.0, 2),
            WindowPart::LessMinute(node, _, s) => (node, *s, -1.0, 3),
            WindowPart::LessSample(node, at, m) => (node, SampleSummary::of(at, &m), -1.0, 4),
        };
        parts[kind] += 1;
        tallies.entry(node.get()).or_default().apply(&summary, sign);
    })
    .expect("rollups");
    tallies.retain(|_, t| t.count != 0);
    (tallies, count, parts)
}

fn a_window_from_rollups_stands_for_every_sample_in_it(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 3);
    // Three hours at 20 s from t0 (20 minutes before an hour ends); the third node stops
    // 25 minutes in, early in the second hour.
    let mut batch = Vec::new();
    for slot in 0..540 {
        let at = t0() + Duration::seconds(20 * slot);
        for node in &all {
            if node.id.get() != all[2].id.get() || slot < 75 {
                batch.push(sample(node, at, slot as f64));
            }
        }
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let hour = DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
    let last = t0() + Duration::seconds(20 * 539);
    let windows = [
        (t0() + Duration::seconds(7), t0() + Duration::seconds(601)),
        (t0() + Duration::seconds(20), t0() + Duration::seconds(80)), // whole minute only
        (t0() + Duration::seconds(21), t0() + Duration::seconds(38)), // inside one minute
        (t0(), t0() + Duration::seconds(995)),
        // Head minutes, two whole hours, tail minutes (samples follow the window).
        (
            hour - Duration::seconds(5 * 60 - 7),
            hour + Duration::seconds(125 * 60 + 10),
        ),
        // Most of an hour (the third node's samples of it all before the window), and most of
        // the last hour, up to the newest sample.
        (hour + Duration::seconds(20 * 60 + 1), last),
        // Ending mid-minute after the newest sample, as a window ending now does.
        (
            hour + Duration::seconds(50 * 60 + 30),
            last + Duration::seconds(5),
        ),
        (t0(), last),
    ];
    for (start, end) in windows {
        let mut raw: BTreeMap<i64, SampleSummary> = BTreeMap::new();
        let raw_count = telemetry::scan_window(&mut conn, d, start, end, |node, at, m| {
            raw.entry(node.get())
                .and_modify(|s| s.push(at, &m))
                .or_insert_with(|| SampleSummary::of(at, &m));
        })
        .expect("raw");
        for detail in [WindowDetail::Minutes, WindowDetail::Coarsest] {
            let label = format!("{start} .. {end}, {detail:?}");
            let (tallies, count, parts) = tally_window(&mut conn, d, (start, end), detail);
            assert_eq!(count, raw_count, "{label}");
            assert_eq!(
                tallies.keys().collect::<Vec<_>>(),
                raw.keys().collect::<Vec<_>>(),
                "{label}"
            );
            for (node, want) in &raw {
                tallies[node].check(&format!("{label}, node {node}"), want);
            }
            assert!(
                end - start < Duration::seconds(60) || parts[1] + parts[2] > 0,
                "{label}"
            );
            if detail == WindowDetail::Minutes {
                assert_eq!(parts[2] + parts[3], 0, "{label}");
            }
            if start.timestamp() % 60 > 0
                && start.timestamp() % 60 < 30
                && end - start > Duration::minutes(1)
            {
                // A first minute mostly inside the window is read whole, less what precedes.
                assert!(parts[4] > 0, "{label}: {parts:?}");
            }
            if detail == WindowDetail::Minutes {
            } else if end - start > Duration::minutes(100) {
                // Hours stand for most of a long window: fewer rows than its minutes.
                assert!(parts[2] > 0, "{label}");
                assert!(
                    parts[1] + parts[2] + parts[3] < 3 * 60,
                    "{label}: {parts:?}"
                );
            }
        }
    }
}

fn a_deployments_delete_removes_its_rollups(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 2);
    let (kept, other) = fleet(&mut conn, 1);
    let batch: Vec<NewSample> = all
        .iter()
        .chain(&other)
        .map(|n| sample(n, t0(), 1.0))
        .collect();
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    deployments::delete(&mut conn, d, None, t0()).expect("delete");
    let far = (t0() - Duration::days(1), t0() + Duration::days(1));
    for resolution in Resolution::ALL {
        assert!(
            rollups::fleet_series(&mut conn, d, resolution, far.0, far.1, 10)
                .expect("series")
                .is_empty()
        );
        assert!(
            rollups::node_series(&mut conn, d, all[0].id, resolution, far.0, far.1, 10)
                .expect("series")
                .is_empty()
        );
        let series =
            rollups::fleet_series(&mut conn, kept, resolution, far.0, far.1, 10).expect("series");
        assert_eq!(series.len(), 1, "the other deployment keeps its rollups");
    }
}

fn expiry_deletes_each_tier_past_its_retention_in_chunks(t: &TestDatabase) {
    use netorch_storage::retention::{self, CHUNK_ROWS, Retention, Tier};
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 50);
    // 3 hours of 5 s slots for 50 nodes: 108,000 samples, more than ten chunks of them.
    let slots: Vec<Timestamp> = (0..(3 * 720))
        .map(|slot| t0() + Duration::seconds(5 * slot))
        .collect();
    let mut batch = Vec::new();
    for (slot, at) in slots.iter().enumerate() {
        for node in &all {
            batch.push(sample(node, *at, slot as f64));
        }
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let now = t0() + Duration::hours(3);
    let retention = Retention {
        raw: Duration::hours(1),
        minutes: Duration::minutes(150),
        hours: Duration::days(1),
        events: Duration::days(400),
    };
    let chunk = retention::expire_chunk(&mut conn, d, Tier::Raw, &retention, now).expect("chunk");
    assert_eq!(
        chunk as i64, CHUNK_ROWS,
        "one chunk deletes exactly a chunk"
    );
    let expiry = retention::expire(&mut conn, &retention, now, || true).expect("expire");
    // SQLite deletes exactly what is past retention. PostgreSQL drops whole partitions and
    // keeps the one holding the cutoff (created by this first expiry, which moved the rows of
    // its range out of the default partition): its rows from the start of that hour or day stay.
    let (raw_from, minutes_from) = match t.db.backend() {
        Backend::Sqlite => (now - Duration::hours(1), now - Duration::minutes(150)),
        Backend::Postgres => {
            let floor = |at: Timestamp, width: i64| {
                DateTime::from_timestamp(at.timestamp() - at.timestamp().rem_euclid(width), 0)
                    .expect("valid")
            };
            (
                floor(now - Duration::hours(1), 3_600),
                floor(now - Duration::minutes(150), 86_400),
            )
        }
    };
    if t.db.backend() == Backend::Postgres {
        assert!(expiry.partitions.created > 0 && expiry.partitions.moved > 0);
    }
    let left = everything(&mut conn, d);
    assert!(left.iter().all(|s| s.timestamp >= raw_from));
    let kept_slots = slots.iter().filter(|at| **at >= raw_from).count();
    assert_eq!(left.len(), kept_slots * 50, "exactly the retained samples");
    let minute_of = |at: &Timestamp| at.timestamp() - at.timestamp().rem_euclid(60);
    let all_minutes: std::collections::BTreeSet<i64> = slots.iter().map(minute_of).collect();
    let kept_minutes = all_minutes
        .iter()
        .filter(|m| **m >= minutes_from.timestamp())
        .count();
    let far = (t0() - Duration::days(1), t0() + Duration::days(1));
    let minutes = rollups::fleet_series(&mut conn, d, Resolution::Minute, far.0, far.1, 10_000)
        .expect("minutes");
    assert!(minutes.iter().all(|b| b.start >= minutes_from));
    assert_eq!(minutes.len(), kept_minutes);
    let hours =
        rollups::fleet_series(&mut conn, d, Resolution::Hour, far.0, far.1, 10_000).expect("hours");
    assert_eq!(
        hours.len(),
        4,
        "hour rollups outlive the samples they summarise"
    );
    // The expired samples; the expired minutes, 50 node rows and a fleet row each.
    assert_eq!(
        expiry.rows + chunk,
        (slots.len() - kept_slots) * 50 + (all_minutes.len() - kept_minutes) * 51
    );
    // Nothing left to expire: a no-op.
    assert_eq!(
        retention::expire(&mut conn, &retention, now, || true).expect("again"),
        retention::Expiry::default()
    );
}

/// PostgreSQL: partitions are made ahead (rows already in the default partition move into
/// them), any number of workers can maintain them at once, rollups work across them, and
/// expiry drops the partitions wholly past retention. SQLite has none of this: a no-op.
fn time_partitions_are_made_ahead_and_dropped_when_expired(t: &TestDatabase) {
    use netorch_storage::partitions;
    use netorch_storage::retention::{self, Retention};
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 20);
    // Samples kept 2 hours (hourly partitions), rollups as by default.
    let retention = Retention {
        raw: Duration::hours(2),
        ..Retention::default()
    };
    let hour = |h: i64| t0() + Duration::hours(h);
    let slots = |from: Timestamp, to: Timestamp| {
        let mut batch = Vec::new();
        let mut at = from;
        while at < to {
            for node in &all {
                batch.push(sample(node, at, at.timestamp() as f64));
            }
            at += Duration::seconds(60);
        }
        batch
    };
    // Stored before any partition exists: in the default partitions.
    telemetry::insert_batch(&mut conn, &slots(hour(-2), hour(0))).expect("before");
    if t.db.backend() == Backend::Sqlite {
        assert_eq!(
            partitions::maintain(&mut conn, &retention, t0()).expect("maintain"),
            partitions::Maintenance::default()
        );
        assert!(partitions::list(&mut conn).expect("list").is_empty());
        return;
    }
    // Two workers at once, each on its own connection.
    let done: Vec<partitions::Maintenance> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut conn = t.db.get().expect("connection");
                    // A call that waits past LOCK_TIMEOUT for the other's lock leaves the rest
                    // for the next, by design (a busy CI machine showed it); the next call goes
                    // on, as a worker's next tick would.
                    let mut total = partitions::Maintenance::default();
                    for _ in 0..100 {
                        let call =
                            partitions::maintain(&mut conn, &retention, t0()).expect("maintain");
                        total.created += call.created;
                        total.dropped += call.dropped;
                        total.moved += call.moved;
                        if !call.deferred {
                            return total;
                        }
                    }
                    panic!("maintenance still deferred after 100 calls");
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    assert!(done.iter().all(|m| !m.deferred && m.dropped == 0));
    let created: usize = done.iter().map(|m| m.created).sum();
    let listed = partitions::list(&mut conn).expect("list");
    assert_eq!(created, listed.len(), "each partition made once");
    // Rollup partitions, made here or by the migration (the defaults), leave half of each page
    // free for HOT updates; raw samples, never updated, fill theirs.
    #[derive(diesel::QueryableByName)]
    struct Options {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        options: String,
    }
    let options: Vec<Options> = diesel::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT c.relname::text AS name, coalesce(array_to_string(c.reloptions, ','), '') \
             AS options FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent::regclass::text IN ('telemetry_samples', 'telemetry_minutes', \
             'telemetry_hours', 'fleet_telemetry_minutes', 'fleet_telemetry_hours', \
             'telemetry_sealed_minutes')",
        ),
        &mut conn,
    )
    .expect("reloptions");
    assert_eq!(
        options.len(),
        listed.len() + 6,
        "the partitions and six defaults"
    );
    for Options { name, options } in &options {
        let expected = if name.starts_with("telemetry_samples") {
            ""
        } else {
            "fillfactor=50"
        };
        assert_eq!(options, expected, "{name}");
    }
    // Raw: from the cutoff's hour (05:00; t0 is 07:40:40) to two past now's.
    let raw: Vec<&partitions::Partition> = listed
        .iter()
        .filter(|p| p.table == "telemetry_samples")
        .collect();
    assert_eq!(raw.len(), 3 + partitions::AHEAD as usize);
    assert!(raw.iter().any(|p| p.start <= t0() && t0() < p.end));
    // 2,400 samples (05:40:40 to 07:39:40, a minute apart, 20 nodes); as many node minutes
    // and 120 fleet minutes; 3 hours (05 to 07) of 20 node rows and a fleet row.
    assert_eq!(
        done.iter().map(|m| m.moved).sum::<usize>(),
        2_400 + 2_400 + 120 + 3 * 20 + 3,
        "every row stored before moved into its partition"
    );
    // Stored after: straight into the partitions; rollups still equal the samples.
    telemetry::insert_batch(&mut conn, &slots(hour(0), hour(2))).expect("after");
    check_rollups(&mut conn, d, &all);
    assert_eq!(everything(&mut conn, d).len(), 4 * 60 * 20);
    // An hour on (10:40:40): the raw partitions that end before the cutoff 08:40:40 go whole,
    // with their rows; the one holding the cutoff stays.
    let later = hour(3);
    let expiry = retention::expire(&mut conn, &retention, later, || true).expect("expire");
    assert!(expiry.partitions.dropped > 0 && !expiry.partitions.deferred);
    assert_eq!(expiry.partitions.dropped, 3, "hours 05, 06 and 07");
    let cutoff_hour = hour(1) - Duration::seconds(hour(1).timestamp().rem_euclid(3_600));
    let left = everything(&mut conn, d);
    assert!(
        left.iter().all(|s| s.timestamp >= cutoff_hour),
        "no sample older than the partition holding the cutoff"
    );
    // 08:00:40 to 09:39:40, a minute apart.
    assert_eq!(left.len(), 100 * 20);
    let raw_after: Vec<partitions::Partition> = partitions::list(&mut conn)
        .expect("list")
        .into_iter()
        .filter(|p| p.table == "telemetry_samples")
        .collect();
    assert!(raw_after.iter().all(|p| p.end > later - Duration::hours(2)));
    assert!(raw_after.iter().any(|p| p.start <= later && later < p.end));
}

fn one_nodes_samples_are_found_when_stamps_are_not_shared(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 3);
    // Node 0 at even slots, node 1 at odd slots, node 2 only at slot 7: few shared stamps.
    let mut batch = Vec::new();
    for slot in 0..40 {
        batch.push(sample(
            &all[(slot % 2) as usize],
            t0() + Duration::seconds(slot),
            slot as f64,
        ));
    }
    batch.push(sample(&all[2], t0() + Duration::seconds(7), 7.0));
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let read =
        |conn: &mut DbConnection, node: &Node, limit: i64, end: Option<Timestamp>| -> Vec<i64> {
            let query = TelemetryQuery {
                deployment: d,
                node: Some(node.id),
                start: Some(t0() + Duration::seconds(2)),
                end,
                limit,
            };
            telemetry::query(conn, &query)
                .expect("query")
                .iter()
                .map(|s| (s.timestamp - t0()).num_seconds())
                .collect()
        };
    assert_eq!(read(&mut conn, &all[0], 3, None), vec![38, 36, 34]);
    assert_eq!(
        read(&mut conn, &all[1], 2, Some(t0() + Duration::seconds(20))),
        vec![19, 17]
    );
    assert_eq!(
        read(&mut conn, &all[2], 10, None),
        vec![7],
        "a lone sample far down the span"
    );
    assert_eq!(
        read(&mut conn, &all[0], 100, None).len(),
        19,
        "slots 2 to 38, start inclusive"
    );
}

/// Reads longer than a page (PostgreSQL reads 20,000 rows at a time) see every row once.
fn reads_longer_than_a_page_see_every_row_once(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 400);
    // One sample per node and minute, 61 minutes: 24,400 samples and as many minute rows.
    let start = t0() - Duration::seconds(40);
    let mut batch = Vec::new();
    for minute in 0..61 {
        for node in &all {
            batch.push(sample(
                node,
                start + Duration::minutes(minute),
                minute as f64,
            ));
        }
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let end = start + Duration::minutes(61);
    let mut seen = std::collections::HashSet::new();
    let read = telemetry::scan_window(&mut conn, d, start, end, |node, at, _| {
        assert!(seen.insert((node, at)), "sample read twice");
    })
    .expect("scan");
    assert_eq!((read, seen.len()), (24_400, 24_400));
    let mut minutes = std::collections::HashSet::new();
    rollups::scan_rollups(
        &mut conn,
        Resolution::Minute,
        d,
        start.timestamp_micros(),
        end.timestamp_micros(),
        |node, minute, summary| {
            assert_eq!(summary.count, 1);
            assert!(minutes.insert((node, minute)), "minute read twice");
        },
    )
    .expect("minutes");
    assert_eq!(minutes.len(), 24_400);
}

/// One node's samples are found across gaps longer than the hour PostgreSQL's walk looks back
/// in first, and across partitions (made here as a worker would).
fn one_nodes_samples_are_found_across_long_gaps(t: &TestDatabase) {
    use netorch_storage::partitions;
    use netorch_storage::retention::Retention;
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 3);
    partitions::maintain(&mut conn, &Retention::default(), t0() + Duration::hours(5))
        .expect("partitions");
    let stamps = [
        t0() - Duration::days(3),
        t0(),
        t0() + Duration::hours(3),
        t0() + Duration::hours(3) + Duration::seconds(5),
    ];
    let batch: Vec<NewSample> = stamps
        .iter()
        .flat_map(|at| all.iter().map(|node| sample(node, *at, 1.0)))
        .collect();
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let found = telemetry::query(
        &mut conn,
        &TelemetryQuery {
            deployment: d,
            node: Some(all[1].id),
            start: None,
            end: None,
            limit: 10,
        },
    )
    .expect("query");
    let got: Vec<Timestamp> = found.iter().map(|s| s.timestamp).collect();
    let mut want = stamps.to_vec();
    want.reverse();
    assert_eq!(got, want);
    assert!(found.iter().all(|s| s.node_id == all[1].id));
}

fn writers_side_by_side_count_each_node_of_a_bucket_once(t: &TestDatabase) {
    let (d, all) = {
        let mut conn = t.db.get().expect("connection");
        fleet(&mut conn, 40)
    };
    // Four writers store disjoint nodes into the same buckets at the same moments (on
    // PostgreSQL their transactions overlap; SQLite takes them in turn).
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let (all, barrier) = (&all, &barrier);
            scope.spawn(move || {
                let mut conn = t.db.get().expect("connection");
                for slot in 0..24 {
                    let batch: Vec<NewSample> = all
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 4 == writer)
                        .map(|(_, n)| sample(n, t0() + Duration::seconds(5 * slot), 1.0))
                        .collect();
                    barrier.wait();
                    telemetry::insert_batch(&mut conn, &batch).expect("store");
                }
            });
        }
    });
    let mut conn = t.db.get().expect("connection");
    check_rollups(&mut conn, d, &all);
}

fn a_page_of_a_slot_is_stored_once_and_then_skipped(t: &TestDatabase) {
    use netorch_storage::telemetry::PageOutcome;
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 6);
    let page: Vec<NewSample> = all.iter().map(|n| sample(n, t0(), 1.0)).collect();
    assert_eq!(
        telemetry::insert_slot_page(&mut conn, &page).expect("store"),
        PageOutcome::Stored(6)
    );
    assert_eq!(
        telemetry::insert_slot_page(&mut conn, &page).expect("again"),
        PageOutcome::AlreadyStored
    );
    // A page of the next slot is another page.
    let next: Vec<NewSample> = all
        .iter()
        .map(|n| sample(n, t0() + Duration::seconds(5), 2.0))
        .collect();
    if t.db.backend() == Backend::Postgres {
        // While another transaction stores it, a second writer is told so at once.
        let mut other = t.db.get().expect("connection");
        netorch_storage::write_transaction(&mut other, |other| {
            assert_eq!(
                telemetry::insert_slot_page(other, &next)?,
                PageOutcome::Stored(6)
            );
            assert_eq!(
                telemetry::insert_slot_page(&mut conn, &next)?,
                PageOutcome::Busy
            );
            Ok(())
        })
        .expect("side by side");
        assert_eq!(
            telemetry::insert_slot_page(&mut conn, &next).expect("after"),
            PageOutcome::AlreadyStored
        );
    } else {
        assert_eq!(
            telemetry::insert_slot_page(&mut conn, &next).expect("next"),
            PageOutcome::Stored(6)
        );
    }
    check_rollups(&mut conn, d, &all);
}

/// Every part a window read gives, in a fixed order: minutes as (node, minute, summary) and raw
/// samples as (node, time, metrics), so that two reads compare exactly.
type Parts = (
    Vec<(i64, i64, SampleSummary)>,
    Vec<(i64, Timestamp, [f64; 3])>,
);

fn read_parts(
    conn: &mut DbConnection,
    d: DeploymentId,
    window: (Timestamp, Timestamp),
    share: netorch_storage::node_share::NodeShare,
) -> netorch_storage::Result<Parts> {
    let (mut minutes, mut samples) = (Vec::new(), Vec::new());
    rollups::scan_window_of(
        conn,
        d,
        window,
        WindowDetail::Minutes,
        share,
        |part| match part {
            WindowPart::Minute(node, minute, s) => minutes.push((node.get(), minute, *s)),
            WindowPart::Sample(node, at, m) | WindowPart::LessSample(node, at, m) => {
                samples.push((
                    node.get(),
                    at,
                    [m.latency_ms, m.throughput_gbps, m.error_rate],
                ))
            }
            other => panic!("a minute-by-minute read gave {other:?}"),
        },
    )?;
    minutes.sort_by_key(|m| (m.0, m.1));
    samples.sort_by_key(|a| (a.0, a.1));
    Ok((minutes, samples))
}

fn sealed_minutes_read_exactly_as_the_minute_rollups(t: &TestDatabase) {
    use netorch_storage::node_share::NodeShare;
    use netorch_storage::rollups::sealed;
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 6);
    // 80 minutes of samples every 15 s, to 17 s past an hour (5 o'clock).
    let now = DateTime::from_timestamp(1_800_003_600 + 17, 0).expect("valid time");
    let mut batch = Vec::new();
    let mut at = now - Duration::minutes(80);
    let mut seed = 0.0;
    while at <= now {
        for node in &all {
            batch.push(sample(node, at, seed));
            seed += 1.0;
        }
        at += Duration::seconds(15);
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let window = (now - Duration::minutes(60), now);
    let plain = read_parts(&mut conn, d, window, NodeShare::ALL).expect("read");
    assert!(
        plain.0.len() >= 59 * 6,
        "the window's whole minutes, from rollups"
    );

    // 4 o'clock sealed whole; 4:55 is the last minute two minutes past, in 5-minute steps.
    let done = sealed::seal(&mut conn, d, now).expect("seal");
    assert_eq!(done, sealed::Sealed { hours: 2, rows: 12 });
    assert_eq!(
        sealed::seal(&mut conn, d, now).expect("again"),
        sealed::Sealed::default(),
        "nothing new to seal"
    );
    assert_eq!(
        read_parts(&mut conn, d, window, NodeShare::ALL).expect("read"),
        plain
    );
    // Read by halves of the nodes, as a long report's two threads do.
    let halves: Vec<Parts> = (0..2)
        .map(|i| {
            let share = NodeShare::new(i, 2).expect("a share");
            read_parts(&mut conn, d, window, share).expect("read")
        })
        .collect();
    let mut joined = (
        [halves[0].0.clone(), halves[1].0.clone()].concat(),
        [halves[0].1.clone(), halves[1].1.clone()].concat(),
    );
    joined.0.sort_by_key(|m| (m.0, m.1));
    joined.1.sort_by_key(|a| (a.0, a.1));
    assert_eq!(joined, plain);
    assert!(halves.iter().all(|h| !h.0.is_empty()));

    // Two workers sealing the same hours at once both succeed (the later may find an hour done
    // and leave it), and the rows are the same.
    diesel::RunQueryDsl::execute(
        diesel::sql_query("DELETE FROM telemetry_sealed_minutes"),
        &mut *conn,
    )
    .expect("unseal");
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut conn = t.db.get().expect("connection");
                    sealed::seal(&mut conn, d, now).expect("seal at once")
                })
            })
            .collect();
        let written: usize = workers
            .into_iter()
            .map(|w| w.join().expect("worker").rows)
            .sum();
        assert!((12..=24).contains(&written), "{written}");
    });
    assert_eq!(
        read_parts(&mut conn, d, window, NodeShare::ALL).expect("read"),
        plain
    );

    // A late sample for a sealed minute: that node's row fails its check and its minutes come
    // from the rollups, so the read is still exact.
    let late = vec![sample(
        &all[0],
        now - Duration::minutes(50) + Duration::seconds(3),
        0.5,
    )];
    telemetry::insert_batch(&mut conn, &late).expect("late");
    let with_late = read_parts(&mut conn, d, window, NodeShare::ALL).expect("read");
    assert_ne!(with_late, plain);
    diesel::RunQueryDsl::execute(
        diesel::sql_query("DELETE FROM telemetry_sealed_minutes"),
        &mut *conn,
    )
    .expect("unseal");
    let unsealed = read_parts(&mut conn, d, window, NodeShare::ALL).expect("read");
    assert_eq!(with_late, unsealed);

    // The rows are read: a damaged one is an error, not a wrong answer.
    sealed::seal(&mut conn, d, now).expect("seal");
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE telemetry_sealed_minutes SET minutes = $1")
            .bind::<diesel::sql_types::Binary, _>(vec![1u8, 2, 3]),
        &mut *conn,
    )
    .expect("damage");
    assert!(read_parts(&mut conn, d, window, NodeShare::ALL).is_err());
    // They go with their deployment.
    deployments::delete(&mut conn, d, None, now).expect("delete");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: Count = diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT count(*) AS n FROM telemetry_sealed_minutes"),
        &mut *conn,
    )
    .expect("count");
    assert_eq!(left.n, 0);
}

backend_tests!(
    sealed_minutes_read_exactly_as_the_minute_rollups,
    a_page_of_a_slot_is_stored_once_and_then_skipped,
    writers_side_by_side_count_each_node_of_a_bucket_once,
    one_nodes_samples_are_found_when_stamps_are_not_shared,
    expiry_deletes_each_tier_past_its_retention_in_chunks,
    rollups_summarise_exactly_the_stored_samples,
    a_window_from_rollups_stands_for_every_sample_in_it,
    a_deployments_delete_removes_its_rollups,
    time_partitions_are_made_ahead_and_dropped_when_expired,
    reads_longer_than_a_page_see_every_row_once,
    one_nodes_samples_are_found_across_long_gaps,
);
