//! Bottleneck analysis of 10,000 nodes x 120 samples (a 10-minute window at 5 s) in memory,
//! both methods, both forms. `cargo bench -p netorch_analytics --bench analysis`.

use netorch_analytics::{AnalysisConfig, Method, StreamingAnalysis, analyze};
use netorch_domain::{DeploymentId, NodeId, SampleId, TelemetrySample};
use netorch_simulator::metrics_at;
use std::time::{Duration, Instant};

const NODES: i64 = 10_000;
const SLOTS: i64 = 120;
const RUNS: usize = 15;

fn median_of(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid time");
    let mut samples = Vec::with_capacity((NODES * SLOTS) as usize);
    for slot in 0..SLOTS {
        let timestamp = start + chrono::Duration::seconds(5 * slot);
        for id in 1..=NODES {
            samples.push(TelemetrySample {
                id: SampleId(slot * NODES + id),
                node_id: NodeId(id),
                deployment_id: DeploymentId(1),
                timestamp,
                metrics: metrics_at(NodeId(id), timestamp),
            });
        }
    }
    println!(
        "{NODES} nodes x {SLOTS} samples ({} samples), median of {RUNS} runs:",
        samples.len()
    );
    for method in Method::ALL {
        let config = AnalysisConfig::new(method, None).expect("default threshold");
        let in_memory = median_of(
            (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    let report = analyze(&samples, &config);
                    let elapsed = started.elapsed();
                    assert!(!report.bottlenecks.is_empty());
                    elapsed
                })
                .collect(),
        );
        let streaming = median_of(
            (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    let mut analysis = StreamingAnalysis::new(config);
                    for s in &samples {
                        analysis.push(s.node_id, s.timestamp, s.metrics);
                    }
                    let report = analysis.finish();
                    let elapsed = started.elapsed();
                    assert!(!report.bottlenecks.is_empty());
                    elapsed
                })
                .collect(),
        );
        println!(
            "  {:<7} in memory: {:>7.1} ms   streaming: {:>7.1} ms",
            method.as_str(),
            in_memory.as_secs_f64() * 1e3,
            streaming.as_secs_f64() * 1e3
        );
    }
}
