//! How a bottleneck is told from a healthy node, and the metrics it is judged on: named by the
//! bottleneck report and by the alert rules that watch for bottlenecks.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How to tell a bottleneck from a healthy node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Median and MAD across per-node medians (the default).
    #[default]
    Robust,
    /// The original service's mean and standard deviation over all samples.
    #[serde(rename = "zscore")]
    ZScore,
}

impl Method {
    /// Both methods.
    pub const ALL: [Method; 2] = [Method::Robust, Method::ZScore];

    /// The method's name in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Robust => "robust",
            Method::ZScore => "zscore",
        }
    }

    /// Whether the method's per-node statistic needs the node's mean of each minute (the robust
    /// method's median of minute means), so that its input cannot be summarised by the hour.
    pub const fn needs_minute_means(self) -> bool {
        matches!(self, Method::Robust)
    }

    /// The threshold used when none is given: 3.5 (Iglewicz and Hoaglin) or 2.0 (the original).
    pub const fn default_threshold(self) -> f64 {
        match self {
            Method::Robust => 3.5,
            Method::ZScore => 2.0,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| DomainError::UnknownMethod(s.to_owned()))
    }
}

/// The three metrics, for naming which ones made a node a bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricKind {
    /// Latency: high is bad.
    #[serde(rename = "latency_ms")]
    LatencyMs,
    /// Throughput: low is bad.
    #[serde(rename = "throughput_gbps")]
    ThroughputGbps,
    /// Error rate: high is bad.
    #[serde(rename = "error_rate")]
    ErrorRate,
}

impl MetricKind {
    /// The three, in the order of [`Metrics`](crate::Metrics)' fields.
    pub const ALL: [MetricKind; 3] = [
        MetricKind::LatencyMs,
        MetricKind::ThroughputGbps,
        MetricKind::ErrorRate,
    ];

    /// The metric's field name in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::LatencyMs => "latency_ms",
            MetricKind::ThroughputGbps => "throughput_gbps",
            MetricKind::ErrorRate => "error_rate",
        }
    }

    /// How much the metric weighs in the deviation score (0.4, 0.4, 0.2 as in the original).
    pub const fn weight(self) -> f64 {
        match self {
            MetricKind::LatencyMs | MetricKind::ThroughputGbps => 0.4,
            MetricKind::ErrorRate => 0.2,
        }
    }
}

impl MetricKind {
    /// The metric's value in `metrics`.
    pub const fn of(self, metrics: &crate::Metrics) -> f64 {
        match self {
            MetricKind::LatencyMs => metrics.latency_ms,
            MetricKind::ThroughputGbps => metrics.throughput_gbps,
            MetricKind::ErrorRate => metrics.error_rate,
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricKind::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| DomainError::UnknownMetric(s.to_owned()))
    }
}
