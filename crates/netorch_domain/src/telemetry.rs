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
    /// The highest latency accepted: a day, in milliseconds. Far past any timeout a collector
    /// would wait, and small enough that sums of squares over billions of samples (the z-score
    /// baseline, the rollups' M2) stay finite: a value near `f64::MAX` would turn every statistic
    /// of its node into infinity or NaN.
    pub const MAX_LATENCY_MS: f64 = 86_400_000.0;
    /// The highest throughput accepted: 1 Pb/s, twenty times the largest switch ASIC made
    /// (51.2 Tb/s), bounded for the same reason as [`Metrics::MAX_LATENCY_MS`].
    pub const MAX_THROUGHPUT_GBPS: f64 = 1_000_000.0;
    /// The highest error rate: it is a percentage.
    pub const MAX_ERROR_RATE: f64 = 100.0;

    /// Refuses values no device can report: non-finite or negative numbers, and numbers over
    /// each metric's maximum (`MAX_LATENCY_MS`, `MAX_THROUGHPUT_GBPS`, `MAX_ERROR_RATE`). Checked
    /// on every sample a collector pushes in.
    pub fn validate(&self) -> Result<(), DomainError> {
        for (metric, value, max, over) in [
            (
                "latency_ms",
                self.latency_ms,
                Self::MAX_LATENCY_MS,
                "must not exceed a day (86400000 ms)",
            ),
            (
                "throughput_gbps",
                self.throughput_gbps,
                Self::MAX_THROUGHPUT_GBPS,
                "must not exceed 1000000 Gb/s",
            ),
            (
                "error_rate",
                self.error_rate,
                Self::MAX_ERROR_RATE,
                "is a percentage and must not exceed 100",
            ),
        ] {
            let reason = if !value.is_finite() {
                "must be a finite number"
            } else if value < 0.0 {
                "must not be negative"
            } else if value > max {
                over
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

/// Count, mean, sum of squared deviations (M2), minimum and maximum of one metric over a set of
/// samples: what a rollup keeps, and what two rollups of disjoint samples merge into exactly
/// (Chan, Golub and LeVeque's pairwise update), so a bucket can grow one batch at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The mean.
    pub mean: f64,
    /// The sum of squared deviations from the mean (the variance is `m2 / (count - 1)`).
    pub m2: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl MetricSummary {
    /// One value.
    pub fn of(value: f64) -> Self {
        MetricSummary {
            mean: value,
            m2: 0.0,
            min: value,
            max: value,
        }
    }

    /// `self` over `count` values merged with `other` over `other_count` disjoint values.
    pub fn merge(&self, count: u64, other: &MetricSummary, other_count: u64) -> MetricSummary {
        if count == 0 {
            return *other;
        }
        if other_count == 0 {
            return *self;
        }
        let (n_a, n_b) = (count as f64, other_count as f64);
        let n = n_a + n_b;
        let delta = other.mean - self.mean;
        MetricSummary {
            mean: self.mean + delta * n_b / n,
            m2: self.m2 + other.m2 + delta * delta * n_a * n_b / n,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }
}

/// A summary of a set of samples (of one node or many, over some span of time): how many, the
/// newest, and each metric's [`MetricSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSummary {
    /// How many samples.
    pub count: u64,
    /// The newest sample's timestamp.
    pub newest: Timestamp,
    /// Latency.
    pub latency_ms: MetricSummary,
    /// Throughput.
    pub throughput_gbps: MetricSummary,
    /// Error rate.
    pub error_rate: MetricSummary,
}

impl SampleSummary {
    /// One sample.
    pub fn of(at: Timestamp, metrics: &Metrics) -> Self {
        SampleSummary {
            count: 1,
            newest: at,
            latency_ms: MetricSummary::of(metrics.latency_ms),
            throughput_gbps: MetricSummary::of(metrics.throughput_gbps),
            error_rate: MetricSummary::of(metrics.error_rate),
        }
    }

    /// Adds the samples `other` summarises (disjoint from this one's).
    pub fn merge(&mut self, other: &SampleSummary) {
        let (a, b) = (self.count, other.count);
        self.latency_ms = self.latency_ms.merge(a, &other.latency_ms, b);
        self.throughput_gbps = self.throughput_gbps.merge(a, &other.throughput_gbps, b);
        self.error_rate = self.error_rate.merge(a, &other.error_rate, b);
        self.newest = if a == 0 {
            other.newest
        } else {
            self.newest.max(other.newest)
        };
        self.count = a + b;
    }

    /// Adds one sample.
    pub fn push(&mut self, at: Timestamp, metrics: &Metrics) {
        self.merge(&SampleSummary::of(at, metrics));
    }

    /// The three metrics' summaries, in the order of [`Metrics`]' fields.
    pub fn metrics(&self) -> [&MetricSummary; 3] {
        [&self.latency_ms, &self.throughput_gbps, &self.error_rate]
    }

    /// The three means.
    pub fn means(&self) -> Metrics {
        Metrics {
            latency_ms: self.latency_ms.mean,
            throughput_gbps: self.throughput_gbps.mean,
            error_rate: self.error_rate.mean,
        }
    }
}

/// The sizes of time bucket that telemetry is rolled up into as it is stored. Buckets are
/// aligned to the Unix epoch (UTC minutes and hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Resolution {
    /// One-minute buckets.
    #[serde(rename = "1m")]
    Minute,
    /// One-hour buckets.
    #[serde(rename = "1h")]
    Hour,
}

impl Resolution {
    /// Both, finest first.
    pub const ALL: [Resolution; 2] = [Resolution::Minute, Resolution::Hour];

    /// The bucket's length in microseconds.
    pub const fn micros(self) -> i64 {
        match self {
            Resolution::Minute => 60_000_000,
            Resolution::Hour => 3_600_000_000,
        }
    }

    /// The name used in the API (`1m`, `1h`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }

    /// The start of the bucket holding `at` (microseconds since the epoch).
    pub const fn bucket_of(self, at_micros: i64) -> i64 {
        at_micros.div_euclid(self.micros()) * self.micros()
    }
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
        assert_eq!(
            metrics(
                Metrics::MAX_LATENCY_MS,
                Metrics::MAX_THROUGHPUT_GBPS,
                Metrics::MAX_ERROR_RATE
            )
            .validate(),
            Ok(())
        );
    }

    #[test]
    fn impossible_metrics_are_refused_naming_the_metric() {
        let cases = [
            (metrics(f64::NAN, 1.0, 0.0), "latency_ms"),
            (metrics(1.0, f64::INFINITY, 0.0), "throughput_gbps"),
            (metrics(-0.5, 1.0, 0.0), "latency_ms"),
            (metrics(1.0, -1.0, 0.0), "throughput_gbps"),
            (metrics(1.0, 1.0, 100.01), "error_rate"),
            (metrics(86_400_000.5, 1.0, 0.0), "latency_ms"),
            (metrics(1.0, 1e307, 0.0), "throughput_gbps"),
            (metrics(1.0, 1.0, -0.01), "error_rate"),
        ];
        for (m, want) in cases {
            match m.validate() {
                Err(DomainError::InvalidMetric { metric, .. }) => assert_eq!(metric, want, "{m:?}"),
                other => panic!("{m:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn merged_summaries_equal_the_summary_of_all_values() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        let values: Vec<f64> = (0..50)
            .map(|i| 10.0 + ((i * 37) % 11) as f64 * 0.3)
            .collect();
        let mut whole = SampleSummary::of(at, &metrics(values[0], 1.0, 0.0));
        for v in &values[1..] {
            whole.push(at, &metrics(*v, 1.0, 0.0));
        }
        let mut left = SampleSummary::of(at, &metrics(values[0], 1.0, 0.0));
        for v in &values[1..20] {
            left.push(at, &metrics(*v, 1.0, 0.0));
        }
        let mut right = SampleSummary::of(at, &metrics(values[20], 1.0, 0.0));
        for v in &values[21..] {
            right.push(at, &metrics(*v, 1.0, 0.0));
        }
        left.merge(&right);
        let mean = values.iter().sum::<f64>() / 50.0;
        let m2: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        assert_eq!(left.count, 50);
        assert!((left.latency_ms.mean - mean).abs() < 1e-12);
        assert!((left.latency_ms.m2 - m2).abs() < 1e-9 * m2);
        assert!((whole.latency_ms.m2 - m2).abs() < 1e-9 * m2);
        assert_eq!(left.latency_ms.min, 10.0);
        assert_eq!(left.latency_ms.max, 13.0);
    }

    #[test]
    fn buckets_align_to_the_epoch_before_and_after_it() {
        assert_eq!(Resolution::Minute.bucket_of(61_000_000), 60_000_000);
        assert_eq!(Resolution::Minute.bucket_of(60_000_000), 60_000_000);
        assert_eq!(Resolution::Minute.bucket_of(-1), -60_000_000);
        assert_eq!(Resolution::Hour.bucket_of(7_199_999_999), 3_600_000_000);
    }
}
