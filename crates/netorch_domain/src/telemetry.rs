//! Telemetry samples: one reading of a node's latency, throughput and error rate.

use crate::{DeploymentId, DomainError, NodeId, SampleId, Timestamp};
use serde::{Deserialize, Serialize};

/// The three metrics of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Round-trip latency in milliseconds.
    pub latency_ms: f64,
    /// Throughput in gigabits per second.
    pub throughput_gbps: f64,
    /// Share of traffic in error, in percent (0 to 100).
    pub error_rate: f64,
}

impl Metrics {
    /// Refuses values no device can report: non-finite or negative numbers, an error rate over
    /// 100 %. Checked on every sample a collector pushes in.
    pub fn validate(&self) -> Result<(), DomainError> {
        for (metric, value) in [
            ("latency_ms", self.latency_ms),
            ("throughput_gbps", self.throughput_gbps),
            ("error_rate", self.error_rate),
        ] {
            let reason = if !value.is_finite() {
                "must be a finite number"
            } else if value < 0.0 {
                "must not be negative"
            } else if metric == "error_rate" && value > 100.0 {
                "is a percentage and must not exceed 100"
            } else {
                continue;
            };
            return Err(DomainError::InvalidMetric {
                metric,
                value,
                reason,
            });
        }
        Ok(())
    }
}

/// A stored sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySample {
    /// Database id.
    pub id: SampleId,
    /// The node it was read from.
    pub node_id: NodeId,
    /// The node's deployment.
    pub deployment_id: DeploymentId,
    /// When it was read. A node has at most one sample per timestamp.
    pub timestamp: Timestamp,
    /// The readings.
    pub metrics: Metrics,
}

/// A sample about to be stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NewSample {
    /// The node it was read from.
    pub node_id: NodeId,
    /// The node's deployment.
    pub deployment_id: DeploymentId,
    /// When it was read.
    pub timestamp: Timestamp,
    /// The readings.
    pub metrics: Metrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(latency_ms: f64, throughput_gbps: f64, error_rate: f64) -> Metrics {
        Metrics {
            latency_ms,
            throughput_gbps,
            error_rate,
        }
    }

    #[test]
    fn plausible_metrics_pass() {
        assert_eq!(metrics(12.5, 9.1, 0.2).validate(), Ok(()));
        assert_eq!(metrics(0.0, 0.0, 0.0).validate(), Ok(()));
        assert_eq!(metrics(1e6, 400.0, 100.0).validate(), Ok(()));
    }

    #[test]
    fn impossible_metrics_are_refused_naming_the_metric() {
        let cases = [
            (metrics(f64::NAN, 1.0, 0.0), "latency_ms"),
            (metrics(1.0, f64::INFINITY, 0.0), "throughput_gbps"),
            (metrics(-0.5, 1.0, 0.0), "latency_ms"),
            (metrics(1.0, -1.0, 0.0), "throughput_gbps"),
            (metrics(1.0, 1.0, 100.01), "error_rate"),
            (metrics(1.0, 1.0, -0.01), "error_rate"),
        ];
        for (m, want) in cases {
            match m.validate() {
                Err(DomainError::InvalidMetric { metric, .. }) => assert_eq!(metric, want, "{m:?}"),
                other => panic!("{m:?}: {other:?}"),
            }
        }
    }
}
