//! Bottleneck detection over a deployment's telemetry.
//!
//! Two methods (API contract, "Bottleneck detection"):
//! - [`Method::ZScore`], the original service's: each node's window means against the mean and
//!   sample standard deviation of all samples, flagged at 2 standard deviations. It misses the
//!   degraded nodes when they are a large share of the fleet, because they inflate the standard
//!   deviation they are measured with.
//! - [`Method::Robust`], the default: each node's window medians against the median and median
//!   absolute deviation (MAD) of those medians across nodes (Iglewicz and Hoaglin's modified
//!   z-score, flagged at 3.5), which half the fleet can be degraded without moving.
//!
//! Two forms give the same report: [`analyze`] over samples in memory, and
//! [`StreamingAnalysis`], fed one sample at a time (from a database cursor), which keeps
//! per-node aggregates instead of samples.
//!
//! Pure: no I/O, no clock.

mod accumulate;
mod robust;
mod stats;
mod zscore;

use crate::stats::{NodeSummary, from_array};
use netorch_domain::{Metrics, NodeId, TelemetrySample, Timestamp};
use serde::{Deserialize, Serialize};

pub use accumulate::StreamingAnalysis;
/// The method and the metrics are the domain's (alert rules name them too).
pub use netorch_domain::{Method, MetricKind};

/// What the analytics can refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyticsError {
    /// A threshold must be a positive finite number.
    #[error("threshold must be a positive finite number, got {0}")]
    InvalidThreshold(f64),
    /// A summary over a span longer than a minute given to a method that needs each minute's
    /// mean ([`Method::needs_minute_means`]): its statistic would silently leave the span out.
    #[error(
        "the {0} method needs each minute's mean: give it minutes (push_minute), not longer spans"
    )]
    MinuteMeansNeeded(Method),
}

/// A method and the score at which a node counts as a bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnalysisConfig {
    /// The method.
    pub method: Method,
    /// A node whose score on any metric reaches this is a bottleneck.
    pub threshold: f64,
}

impl AnalysisConfig {
    /// `method` with `threshold`, or the method's default threshold.
    pub fn new(method: Method, threshold: Option<f64>) -> Result<Self, AnalyticsError> {
        let threshold = threshold.unwrap_or(method.default_threshold());
        if !threshold.is_finite() || threshold <= 0.0 {
            return Err(AnalyticsError::InvalidThreshold(threshold));
        }
        Ok(AnalysisConfig { method, threshold })
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            method: Method::Robust,
            threshold: Method::Robust.default_threshold(),
        }
    }
}

/// One flagged node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// The node.
    pub node_id: NodeId,
    /// The node's mean of each metric over the window.
    pub means: Metrics,
    /// The node's score on each metric, oriented so that positive is worse (for throughput,
    /// lower than the fleet).
    pub scores: Metrics,
    /// The metrics whose score reached the threshold.
    pub reasons: Vec<MetricKind>,
    /// `0.4 max(0, latency) + 0.4 max(0, throughput) + 0.2 max(0, error rate)` over the scores.
    pub deviation_score: f64,
    /// How many samples of the node the window held.
    pub sample_count: u64,
    /// The node's newest sample in the window.
    pub newest_sample: Timestamp,
}

/// The outcome of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BottleneckReport {
    /// The method and threshold used.
    pub config: AnalysisConfig,
    /// The flagged nodes, highest deviation score first (ties by ascending node id).
    pub bottlenecks: Vec<Bottleneck>,
    /// How many nodes had samples in the window.
    pub nodes_analyzed: usize,
    /// How many samples the window held.
    pub samples_analyzed: u64,
}

/// Analyses samples held in memory (any order, any mix of nodes).
///
/// This is the reference form: it computes the z-score baseline with statrs' running moments
/// over every sample, as the original computed it over every sample. [`StreamingAnalysis`]
/// gives the same report (to rounding) without holding samples.
pub fn analyze(samples: &[TelemetrySample], config: &AnalysisConfig) -> BottleneckReport {
    let (nodes, baseline) = accumulate::group_by_node(samples, config.method);
    let scores = match config.method {
        Method::ZScore => zscore::scores(&nodes, &zscore::Baseline::of_online_moments(&baseline)),
        Method::Robust => robust::scores(&nodes),
    };
    rank(nodes, scores, config, samples.len() as u64)
}

/// Turns per-node scores into the ranked report.
pub(crate) fn rank(
    nodes: Vec<NodeSummary>,
    scores: Vec<[f64; 3]>,
    config: &AnalysisConfig,
    samples_analyzed: u64,
) -> BottleneckReport {
    let nodes_analyzed = nodes.len();
    let mut bottlenecks: Vec<Bottleneck> = nodes
        .into_iter()
        .zip(scores)
        .filter_map(|(node, score)| {
            let reasons: Vec<MetricKind> = MetricKind::ALL
                .into_iter()
                .zip(score)
                .filter(|(_, s)| *s >= config.threshold)
                .map(|(kind, _)| kind)
                .collect();
            if reasons.is_empty() {
                return None;
            }
            let deviation_score = MetricKind::ALL
                .into_iter()
                .zip(score)
                .map(|(kind, s)| kind.weight() * s.max(0.0))
                .sum();
            Some(Bottleneck {
                node_id: node.node_id,
                means: node.means,
                scores: from_array(score),
                reasons,
                deviation_score,
                sample_count: node.count,
                newest_sample: node.newest,
            })
        })
        .collect();
    bottlenecks.sort_by(|a, b| {
        b.deviation_score
            .total_cmp(&a.deviation_score)
            .then(a.node_id.cmp(&b.node_id))
    });
    BottleneckReport {
        config: *config,
        bottlenecks,
        nodes_analyzed,
        samples_analyzed,
    }
}

#[cfg(test)]
mod tests;
