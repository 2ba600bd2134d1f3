//! The bottleneck report through the service crate, on both backends: the report finds the
//! slow node by either method, names it, refuses a deployment that does not exist, and a plan
//! cannot be asked for a part it does not have.

use chrono::{DateTime, Duration, Utc};
use netorch_analytics::{AnalysisConfig, Method};
use netorch_domain::{DeploymentId, Metrics, NewDeployment, NewSample};
use netorch_service::ServiceError;
use netorch_service::bottlenecks::{self, ReportPlan, ReportQuery};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{StorageError, deployments, nodes, telemetry};
use netorch_testkit::{TestDatabase, backend_tests};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T10:30:17Z")
        .expect("valid")
        .to_utc()
}

/// A deployment of 10 nodes with `minutes` of readings every 5 s before `now()`, node-004 slow.
fn seeded(t: &TestDatabase, minutes: i64) -> DeploymentId {
    let mut conn = t.db.get().expect("connection");
    let start = now() - Duration::minutes(minutes);
    let d = deployments::create(&mut conn, &NewDeployment::new("seeded", 10), None, start)
        .expect("create");
    let fleet = nodes::list(&mut conn, d.id, &NodeFilter::default())
        .expect("nodes")
        .nodes;
    let mut samples = Vec::new();
    for step in 0..(minutes * 12) {
        for node in &fleet {
            let slow = node.name == "node-004";
            let wobble = ((node.id.get() + step) % 3) as f64 * 0.3;
            samples.push(NewSample {
                node_id: node.id,
                deployment_id: d.id,
                timestamp: start + Duration::seconds(5 * step),
                metrics: Metrics {
                    latency_ms: if slow { 70.0 } else { 10.0 } + wobble,
                    throughput_gbps: 9.0 - wobble,
                    error_rate: if slow { 2.0 } else { 0.1 } + wobble / 10.0,
                },
            });
        }
    }
    telemetry::insert_batch(&mut conn, &samples).expect("insert");
    d.id
}

fn the_report_names_the_slow_node_by_either_method(t: &TestDatabase) {
    // Ninety minutes, so the z-score method reads an hour rollup and the robust one minutes.
    let d = seeded(t, 90);
    for method in Method::ALL {
        let config = AnalysisConfig::new(method, None).expect("config");
        let query = ReportQuery::last_minutes(d, 80, now()).with_config(config);
        let report = bottlenecks::report(&t.db, query).expect("report");
        let flagged = report.flagged_names();
        assert_eq!(flagged, ["node-004"], "{method}");
        assert_eq!(report.analysis.nodes_analyzed, 10, "{method}");
        // Every sample in the window once: from its first instant, 12 readings a minute for
        // 80 minutes (the last, 5 s before its end), for 10 nodes.
        assert_eq!(report.analysis.samples_analyzed, 80 * 12 * 10, "{method}");
    }
}

fn a_missing_deployment_and_a_missing_part_are_errors(t: &TestDatabase) {
    let query = ReportQuery::last_minutes(DeploymentId(424_242), 10, now());
    assert!(matches!(
        bottlenecks::report(&t.db, query),
        Err(ServiceError::Storage(StorageError::DeploymentNotFound))
    ));
    let plan = ReportPlan::new(query);
    assert_eq!(plan.part_count(), 2);
    let mut conn = t.db.get().expect("connection");
    assert!(matches!(
        plan.read_part(&mut conn, 2),
        Err(ServiceError::Invalid(_))
    ));
}

backend_tests!(
    the_report_names_the_slow_node_by_either_method,
    a_missing_deployment_and_a_missing_part_are_errors,
);
