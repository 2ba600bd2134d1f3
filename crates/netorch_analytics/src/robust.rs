//! The robust method: modified z-scores of per-node medians (Iglewicz and Hoaglin).

use crate::stats::{NodeSummary, median, to_array};

/// Fewer nodes than this give no verdict: a median and MAD of two values say nothing.
pub(crate) const MIN_NODES: usize = 3;
/// Scales the MAD to the standard deviation of a normal distribution (1 / 1.4826).
const MAD_SCALE: f64 = 0.6745;
/// Scales the mean absolute deviation likewise (sqrt(2 / pi)), used where the MAD is 0.
const MEAN_AD_SCALE: f64 = 0.7979;

/// Each node's modified z-score per metric, positive when worse than the fleet (throughput's
/// sign flipped); all zero with fewer than [`MIN_NODES`] nodes.
///
/// Where more than half the nodes share one value the MAD is 0; the mean absolute deviation
/// around the median takes its place. Where that is 0 too, every node has the same value and
/// none is flagged on that metric.
pub(crate) fn scores(nodes: &[NodeSummary]) -> Vec<[f64; 3]> {
    if nodes.len() < MIN_NODES {
        return vec![[0.0; 3]; nodes.len()];
    }
    const ORIENTATION: [f64; 3] = [1.0, -1.0, 1.0];
    let per_metric: [Vec<f64>; 3] = std::array::from_fn(|metric| {
        let values: Vec<f64> = nodes.iter().map(|n| to_array(&n.medians)[metric]).collect();
        let center = median(&mut values.clone());
        let mut deviations: Vec<f64> = values.iter().map(|x| (x - center).abs()).collect();
        let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64;
        let mad = median(&mut deviations);
        let scale = if mad > 0.0 {
            MAD_SCALE / mad
        } else if mean_ad > 0.0 {
            MEAN_AD_SCALE / mean_ad
        } else {
            0.0
        };
        values
            .iter()
            .map(|x| ORIENTATION[metric] * scale * (x - center))
            .collect()
    });
    (0..nodes.len())
        .map(|i| std::array::from_fn(|metric| per_metric[metric][i]))
        .collect()
}
