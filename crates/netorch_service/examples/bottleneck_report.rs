//! A bottleneck report from a database, with the service crate alone: no HTTP framework, no
//! async runtime. It makes a SQLite file, a deployment of 12 nodes and ten minutes of their
//! telemetry in which node-003 is slow, then asks the report which nodes stand out, by both
//! methods.
//!
//! ```sh
//! cargo run -p netorch_service --example bottleneck_report
//! ```
//!
//! CI runs it, and checks that the crate's dependency tree holds no actix.

use netorch_analytics::{AnalysisConfig, Method};
use netorch_domain::{Metrics, NewDeployment, NewSample};
use netorch_service::bottlenecks::{self, ReportQuery};
use netorch_service::chrono::{Duration, Utc};
use netorch_storage::nodes::NodeFilter;
use netorch_storage::{Database, deployments, nodes, telemetry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("netorch-report-{}.db", std::process::id()));
    let db = Database::connect(&format!("sqlite://{}", path.display()))?;
    let now = Utc::now();
    let start = now - Duration::minutes(10);
    let mut conn = db.get()?;
    let deployment = deployments::create(&mut conn, &NewDeployment::new("edge", 12), None, start)?;
    let fleet = nodes::list(&mut conn, deployment.id, &NodeFilter::default())?.nodes;

    // A reading every 5 s for ten minutes; node-003 answers in about 60 ms, the rest in 12.
    let mut samples = Vec::new();
    for step in 0..120 {
        let at = start + Duration::seconds(5 * step);
        for node in &fleet {
            let slow = node.name == "node-003";
            let jitter = ((node.id.get() * 7 + step) % 5) as f64 * 0.2;
            samples.push(NewSample {
                node_id: node.id,
                deployment_id: deployment.id,
                timestamp: at,
                metrics: Metrics {
                    latency_ms: if slow { 60.0 } else { 12.0 } + jitter,
                    throughput_gbps: if slow { 4.0 } else { 9.0 } - jitter / 10.0,
                    error_rate: 0.1 + jitter / 10.0,
                },
            });
        }
    }
    telemetry::insert_batch(&mut conn, &samples)?;
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
