//! A bottleneck report from a database, with the service crate alone: no HTTP framework, no
//! async runtime. Through the same operations the API calls, it makes a SQLite file, a
//! deployment of 12 nodes, pushes ten minutes of their telemetry (by node name, as a collector
//! would) in which node-003 is slow, then asks the report which nodes stand out, by both
//! methods.
//!
//! ```sh
//! cargo run -p netorch_service --example bottleneck_report
//! ```
//!
//! CI runs it, and checks that the crate's dependency tree holds no actix.

use netorch_analytics::{AnalysisConfig, Method};
use netorch_domain::{Metrics, NewDeployment, NodeRef};
use netorch_service::bottlenecks::{self, ReportQuery};
use netorch_service::chrono::{Duration, Utc};
use netorch_service::telemetry::{self, PushOutcome, PushedSample};
use netorch_service::{deployments, nodes};
use netorch_storage::Database;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("netorch-report-{}.db", std::process::id()));
    let db = Database::connect(&format!("sqlite://{}", path.display()))?;
    let now = Utc::now();
    let start = now - Duration::minutes(10);
    let mut conn = db.get()?;
    let deployment =
        deployments::create(&mut conn, &NewDeployment::new("edge", 12), None, start)?.deployment;
    let fleet = nodes::list(&mut conn, deployment.id, &nodes::NodeFilter::default())?.nodes;

    // A reading every 5 s for ten minutes; node-003 answers in about 60 ms, the rest in 12.
    let mut samples = Vec::new();
    for step in 0..120 {
        let at = start + Duration::seconds(5 * step);
        for node in &fleet {
            let slow = node.name == "node-003";
            let jitter = ((node.id.get() * 7 + step) % 5) as f64 * 0.2;
            samples.push(PushedSample {
                node: NodeRef::Name(node.name.clone()),
                timestamp: Some(at),
                metrics: Metrics {
                    latency_ms: if slow { 60.0 } else { 12.0 } + jitter,
                    throughput_gbps: if slow { 4.0 } else { 9.0 } - jitter / 10.0,
                    error_rate: 0.1 + jitter / 10.0,
                },
            });
        }
    }
    match telemetry::push(&mut conn, deployment.id, &samples, now)? {
        PushOutcome::Stored(stored) => println!("pushed {stored} samples"),
        PushOutcome::UnknownNodes(which) => {
            return Err(format!("samples {which:?} name no node of the deployment").into());
        }
    }
    drop(conn);

    for method in Method::ALL {
        let config = AnalysisConfig::new(method, None)?;
        let query = ReportQuery::last_minutes(deployment.id, 10, now).with_config(config);
        let report = bottlenecks::report(&db, query)?;
        let flagged = report.flagged_names();
        println!(
            "{method}: {} samples of {} nodes, bottlenecks {flagged:?}",
            report.analysis.samples_analyzed, report.analysis.nodes_analyzed
        );
        if flagged != ["node-003"] {
            return Err(format!("{method} should flag node-003 alone, not {flagged:?}").into());
        }
    }
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}
