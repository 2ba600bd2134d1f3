//! Analysing your own telemetry with `netorch_analytics`: no database, no server.
//!
//! Reads readings as CSV (`node,unix_seconds,latency_ms,throughput_gbps,error_rate`) from the
//! file named on the command line, or from a small built-in fleet when none is given, and prints
//! the bottleneck nodes by both methods.
//!
//! ```sh
//! cargo run -p netorch_analytics --example own_telemetry [readings.csv]
//! ```

use chrono::DateTime;
use netorch_analytics::{AnalysisConfig, Method, StreamingAnalysis};
use netorch_domain::{Metrics, NodeId};

/// Twelve switches, one of them slow and lossy, sampled every 5 s for a minute.
fn built_in_fleet() -> String {
    let mut csv = String::new();
    for slot in 0..12 {
        for node in 1..=12 {
            let wobble = f64::from((node * 7 + slot) % 5) * 0.1;
            let (latency, throughput, errors) = if node == 7 {
                (48.0 + wobble, 6.1 - wobble, 1.4 + wobble)
            } else {
                (11.0 + wobble, 9.4 - wobble / 2.0, 0.12 + wobble / 10.0)
            };
            let at = 1_800_000_000 + 5 * i64::from(slot);
            csv.push_str(&format!("{node},{at},{latency},{throughput},{errors}\n"));
        }
    }
    csv
}

/// One CSV line as a reading.
fn parse(line: &str) -> Result<(NodeId, chrono::DateTime<chrono::Utc>, Metrics), String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [node, at, latency, throughput, errors] = fields[..] else {
        return Err(format!("expected 5 fields: {line}"));
    };
    let number = |text: &str| text.parse::<f64>().map_err(|e| format!("{text}: {e}"));
    let seconds: i64 = at.parse().map_err(|e| format!("{at}: {e}"))?;
    let metrics = Metrics {
        latency_ms: number(latency)?,
        throughput_gbps: number(throughput)?,
        error_rate: number(errors)?,
    };
    // The analysis takes only sane readings: finite, non-negative, error rate at most 100.
    metrics.validate().map_err(|e| e.to_string())?;
    Ok((
        NodeId(node.parse().map_err(|e| format!("{node}: {e}"))?),
        DateTime::from_timestamp(seconds, 0).ok_or(format!("{at}: not a time"))?,
        metrics,
    ))
}

fn main() -> Result<(), String> {
    let (csv, built_in) = match std::env::args().nth(1) {
        Some(path) => (
            std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?,
            false,
        ),
        None => (built_in_fleet(), true),
    };
    for method in [Method::Robust, Method::ZScore] {
        // The method's default threshold (3.5 robust, 2.0 zscore); pass Some(x) to change it.
        let config = AnalysisConfig::new(method, None).map_err(|e| e.to_string())?;
        // Streaming: per-node aggregates only, so a cursor over millions of readings fits in
        // memory. `analyze(&samples, &config)` is the same over a slice of stored samples.
        let mut analysis = StreamingAnalysis::new(config);
        for line in csv.lines().filter(|l| !l.trim().is_empty()) {
            let (node, at, metrics) = parse(line)?;
            analysis.push(node, at, metrics);
        }
        let report = analysis.finish();
        println!(
            "{}: {} nodes, {} samples, {} bottleneck(s)",
            method.as_str(),
            report.nodes_analyzed,
            report.samples_analyzed,
            report.bottlenecks.len()
        );
        for b in &report.bottlenecks {
            let reasons: Vec<&str> = b.reasons.iter().map(|r| r.as_str()).collect();
            println!(
                "  node {}: score {:.2}, mean latency {:.1} ms, because of {}",
                b.node_id,
                b.deviation_score,
                b.means.latency_ms,
                reasons.join(", ")
            );
        }
        // The built-in fleet has one bad switch: CI runs this example and holds it to that.
        if built_in && report.bottlenecks.iter().map(|b| b.node_id).ne([NodeId(7)]) {
            return Err(format!("{}: expected exactly node 7", method.as_str()));
        }
    }
    Ok(())
}
