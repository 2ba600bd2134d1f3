//! Telemetry rollups, on SQLite and on PostgreSQL: kept at ingest, equal to summaries of the
//! stored samples, late and duplicate samples handled, deleted with their deployment.

use chrono::{DateTime, Duration};
use netorch_domain::{
    DeploymentId, Metrics, NewDeployment, NewSample, Node, Resolution, SampleSummary, Timestamp,
};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::rollups::{self, SeriesBucket, WindowPart};
use netorch_storage::telemetry::TelemetryQuery;
use netorch_storage::{DbConnection, deployments, nodes, telemetry};
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
    };
    let d = deployments::create(conn, &new, t0()).expect("create");
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
}

fn a_window_from_rollups_stands_for_every_sample_in_it(t: &TestDatabase) {
    let mut conn = t.db.get().expect("connection");
    let (d, all) = fleet(&mut conn, 3);
    let mut batch = Vec::new();
    for slot in 0..200 {
        for node in &all {
            batch.push(sample(
                node,
                t0() + Duration::seconds(5 * slot),
                slot as f64,
            ));
        }
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let windows = [
        (t0() + Duration::seconds(7), t0() + Duration::seconds(601)),
        (t0() + Duration::seconds(20), t0() + Duration::seconds(80)), // whole minute only
        (t0() + Duration::seconds(21), t0() + Duration::seconds(38)), // inside one minute
        (t0(), t0() + Duration::seconds(995)),
    ];
    for (start, end) in windows {
        let mut raw: BTreeMap<i64, SampleSummary> = BTreeMap::new();
        let raw_count = telemetry::scan_window(&mut conn, d, start, end, |node, at, m| {
            raw.entry(node.get())
                .and_modify(|s| s.push(at, &m))
                .or_insert_with(|| SampleSummary::of(at, &m));
        })
        .expect("raw");
        let mut rolled: BTreeMap<i64, SampleSummary> = BTreeMap::new();
        let mut minutes = 0;
        let count = rollups::scan_window(&mut conn, d, start, end, |part| {
            let (node, summary) = match part {
                WindowPart::Sample(node, at, m) => (node, SampleSummary::of(at, &m)),
                WindowPart::Minute(node, _, s) => {
                    minutes += 1;
                    (node, *s)
                }
            };
            rolled
                .entry(node.get())
                .and_modify(|s| s.merge(&summary))
                .or_insert(summary);
        })
        .expect("rollups");
        assert_eq!(count, raw_count, "{start} .. {end}");
        assert_eq!(rolled.len(), raw.len());
        for (node, want) in &raw {
            let got = &rolled[node];
            assert_eq!((got.count, got.newest), (want.count, want.newest));
            for (g, w) in got.metrics().into_iter().zip(want.metrics()) {
                assert!(close(g.mean, w.mean) && close(g.m2, w.m2));
            }
        }
        assert!(
            end - start < Duration::seconds(60) || minutes > 0,
            "{start} .. {end}"
        );
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
    deployments::delete(&mut conn, d, t0()).expect("delete");
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
    let mut batch = Vec::new();
    for slot in 0..(3 * 720) {
        for node in &all {
            batch.push(sample(
                node,
                t0() + Duration::seconds(5 * slot),
                slot as f64,
            ));
        }
    }
    telemetry::insert_batch(&mut conn, &batch).expect("insert");
    let now = t0() + Duration::hours(3);
    let retention = Retention {
        raw: Duration::hours(1),
        minutes: Duration::minutes(150),
        hours: Duration::days(1),
    };
    let chunk = retention::expire_chunk(&mut conn, d, Tier::Raw, &retention, now).expect("chunk");
    assert_eq!(
        chunk as i64, CHUNK_ROWS,
        "one chunk deletes exactly a chunk"
    );
    let deleted = retention::expire(&mut conn, &retention, now, || true).expect("expire");
    let left = everything(&mut conn, d);
    assert!(left.iter().all(|s| s.timestamp >= now - Duration::hours(1)));
    assert_eq!(left.len(), 720 * 50, "exactly the last hour is kept");
    let far = (t0() - Duration::days(1), t0() + Duration::days(1));
    let minutes = rollups::fleet_series(&mut conn, d, Resolution::Minute, far.0, far.1, 10_000)
        .expect("minutes");
    assert!(
        minutes
            .iter()
            .all(|b| b.start >= now - Duration::minutes(150))
    );
    assert_eq!(minutes.len(), 150);
    let hours =
        rollups::fleet_series(&mut conn, d, Resolution::Hour, far.0, far.1, 10_000).expect("hours");
    assert_eq!(
        hours.len(),
        4,
        "hour rollups outlive the samples they summarise"
    );
    // Two hours of samples; 31 minutes (the first one partial) of 50 node rows and a fleet row.
    assert_eq!(deleted + chunk, 2 * 720 * 50 + 31 * 51);
    // Nothing left to expire: a no-op.
    assert_eq!(
        retention::expire(&mut conn, &retention, now, || true).expect("again"),
        0
    );
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

backend_tests!(
    one_nodes_samples_are_found_when_stamps_are_not_shared,
    expiry_deletes_each_tier_past_its_retention_in_chunks,
    rollups_summarise_exactly_the_stored_samples,
    a_window_from_rollups_stands_for_every_sample_in_it,
    a_deployments_delete_removes_its_rollups,
);
