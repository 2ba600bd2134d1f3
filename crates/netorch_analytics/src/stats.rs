//! The statistics the scoring methods and the accumulators share: a leaf module, so that
//! `accumulate` (which calls the methods) and `robust` / `zscore` (which score what it
//! gathers) do not import each other.

use netorch_domain::{Metrics, NodeId, Timestamp};

/// What the scoring needs of one node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeSummary {
    pub node_id: NodeId,
    pub count: u64,
    pub means: Metrics,
    /// Per-metric medians; only computed for the robust method.
    pub medians: Metrics,
    pub newest: Timestamp,
}

pub(crate) fn to_array(m: &Metrics) -> [f64; 3] {
    [m.latency_ms, m.throughput_gbps, m.error_rate]
}

pub(crate) fn from_array(a: [f64; 3]) -> Metrics {
    Metrics {
        latency_ms: a[0],
        throughput_gbps: a[1],
        error_rate: a[2],
    }
}

/// The median of `values` (reordered in place); NaN when empty. One selection, plus a scan of
/// the lower half for an even count: a tenth of the cost of sorting.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        *upper
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + *upper) / 2.0
    }
}

/// Count, mean and sum of squared deviations of one metric: what Chan's parallel algorithm
/// merges exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Moments {
    pub count: f64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    pub(crate) fn merge(self, other: Moments) -> Moments {
        if self.count == 0.0 {
            return other;
        }
        if other.count == 0.0 {
            return self;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        Moments {
            count,
            mean: self.mean + delta * other.count / count,
            m2: self.m2 + other.m2 + delta * delta * self.count * other.count / count,
        }
    }
}
