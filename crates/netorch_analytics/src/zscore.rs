//! The original service's method: z-scores of node means against all samples.

use crate::stats::{Moments, NodeSummary, to_array};
use statrs::statistics::OnlineMoments;

/// Mean and sample standard deviation (n - 1) of each metric over every sample of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Baseline {
    mean: [f64; 3],
    /// NaN with fewer than two samples.
    std_dev: [f64; 3],
}

impl Baseline {
    /// From statrs' running moments over every sample.
    pub(crate) fn of_online_moments(moments: &[OnlineMoments<2>; 3]) -> Self {
        Baseline {
            mean: std::array::from_fn(|m| moments[m].mean().unwrap_or(f64::NAN)),
            std_dev: std::array::from_fn(|m| moments[m].std_dev().unwrap_or(f64::NAN)),
        }
    }

    /// From merged per-node moments.
    pub(crate) fn of_moments(moments: &[Moments; 3]) -> Self {
        Baseline {
            mean: moments.map(|m| m.mean),
            std_dev: moments.map(|m| {
                if m.count < 2.0 {
                    f64::NAN
                } else {
                    (m.m2 / (m.count - 1.0)).sqrt()
                }
            }),
        }
    }
}

/// Each node's z-scores, oriented so that positive is worse: `(node - mean) / sd` for latency
/// and error rate, `(mean - node) / sd` for throughput; 0 where the standard deviation is 0 or
/// undefined (fewer than two samples).
pub(crate) fn scores(nodes: &[NodeSummary], baseline: &Baseline) -> Vec<[f64; 3]> {
    const ORIENTATION: [f64; 3] = [1.0, -1.0, 1.0];
    nodes
        .iter()
        .map(|node| {
            let means = to_array(&node.means);
            std::array::from_fn(|metric| {
                let sd = baseline.std_dev[metric];
                if sd.is_nan() || sd == 0.0 {
                    0.0
                } else {
                    ORIENTATION[metric] * (means[metric] - baseline.mean[metric]) / sd
                }
            })
        })
        .collect()
}
