//! Per-node aggregation: the in-memory grouping behind [`crate::analyze`] and the streaming
//! accumulator behind [`StreamingAnalysis`].

use crate::stats::{Moments, NodeSummary, from_array, median, to_array};
use crate::{AnalysisConfig, AnalyticsError, BottleneckReport, Method, rank, robust, zscore};
use netorch_domain::{Metrics, NodeId, Resolution, SampleSummary, TelemetrySample, Timestamp};
use statrs::statistics::{Accumulate, OnlineMoments};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for node ids: one multiplication, where SipHash would cost more than the rest of
/// the per-sample work. Node ids are not attacker-chosen keys.
#[derive(Default)]
pub(crate) struct NodeIdHasher(u64);

impl Hasher for NodeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, value: i64) {
        self.0 = (value as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type NodeMap<V> = HashMap<NodeId, V, BuildHasherDefault<NodeIdHasher>>;

/// A node's samples per UTC minute: the robust method's per-node statistic is the median of
/// these minute means, which one-minute rollups carry (a spike moves one minute's mean, not
/// the median of them).
pub(crate) struct MinuteMeans {
    /// `(minute start in microseconds, count, per-metric sums)`, in arrival order.
    buckets: Vec<(i64, u64, [f64; 3])>,
    /// The latest minute among them (`i64::MIN` for none).
    latest: i64,
}

impl Default for MinuteMeans {
    fn default() -> Self {
        MinuteMeans {
            buckets: Vec::new(),
            latest: i64::MIN,
        }
    }
}

impl MinuteMeans {
    fn slot(&mut self, minute: i64) -> &mut (i64, u64, [f64; 3]) {
        // Samples and minutes come in time order: the bucket is almost always the last one, or
        // a new one past every other (then nothing is searched).
        let index = match self.buckets.last() {
            Some(last) if last.0 == minute => self.buckets.len() - 1,
            _ if minute > self.latest => self.open(minute),
            _ => match self.buckets.iter().rposition(|b| b.0 == minute) {
                Some(index) => index,
                None => self.open(minute),
            },
        };
        &mut self.buckets[index]
    }

    /// A new, empty bucket for `minute`; its index.
    fn open(&mut self, minute: i64) -> usize {
        self.buckets.push((minute, 0, [0.0; 3]));
        self.latest = self.latest.max(minute);
        self.buckets.len() - 1
    }

    pub(crate) fn push(&mut self, at: Timestamp, x: [f64; 3]) {
        let slot = self.slot(Resolution::Minute.bucket_of(at.timestamp_micros()));
        slot.1 += 1;
        for (sum, value) in slot.2.iter_mut().zip(x) {
            *sum += value;
        }
    }

    /// Adds `count` samples of `minute` whose means are `means`.
    pub(crate) fn add(&mut self, minute: i64, count: u64, means: [f64; 3]) {
        let slot = self.slot(minute);
        slot.1 += count;
        for (sum, mean) in slot.2.iter_mut().zip(means) {
            *sum += mean * count as f64;
        }
    }

    /// Takes away `count` samples of `minute` whose means are `means`.
    pub(crate) fn remove(&mut self, minute: i64, count: u64, means: [f64; 3]) {
        let slot = self.slot(minute);
        slot.1 = slot.1.saturating_sub(count);
        for (sum, mean) in slot.2.iter_mut().zip(means) {
            *sum -= mean * count as f64;
        }
    }

    fn absorb(&mut self, other: &MinuteMeans) {
        for (minute, count, sums) in &other.buckets {
            let slot = self.slot(*minute);
            slot.1 += count;
            for (ours, theirs) in slot.2.iter_mut().zip(sums) {
                *ours += theirs;
            }
        }
    }

    /// Per-metric medians of the minute means.
    fn medians(&self, scratch: &mut Vec<f64>) -> Metrics {
        from_array(std::array::from_fn(|metric| {
            scratch.clear();
            // A minute whose samples were all taken away again is not in the window.
            scratch.extend(
                self.buckets
                    .iter()
                    .filter(|b| b.1 > 0)
                    .map(|b| b.2[metric] / b.1 as f64),
            );
            median(scratch)
        }))
    }
}

/// Finds a node's slot in a table of per-node state, in first-seen order.
///
/// Samples come slot by slot, each slot listing the nodes in the same order, so the node after
/// the one just seen is predicted before anything is hashed: for such input the hash map is
/// only consulted during the first slot. Sealed minutes come node by node instead, each node's
/// minutes together, so the node just seen is tried next.
pub(crate) struct NodeTable<T> {
    slots: NodeMap<usize>,
    ids: Vec<NodeId>,
    values: Vec<T>,
    next: usize,
    last: usize,
}

impl<T> NodeTable<T> {
    pub(crate) fn new() -> Self {
        NodeTable {
            slots: NodeMap::default(),
            ids: Vec::new(),
            values: Vec::new(),
            next: 0,
            last: 0,
        }
    }

    /// The state of `node`, created by `init` if the node is new.
    pub(crate) fn entry(&mut self, node: NodeId, init: impl FnOnce() -> T) -> &mut T {
        let slot = if self.ids.get(self.next) == Some(&node) {
            self.next
        } else if self.ids.get(self.last) == Some(&node) {
            self.last
        } else if let Some(slot) = self.slots.get(&node) {
            *slot
        } else {
            self.slots.insert(node, self.ids.len());
            self.ids.push(node);
            self.values.push(init());
            self.ids.len() - 1
        };
        self.next = if slot + 1 == self.ids.len() {
            0
        } else {
            slot + 1
        };
        self.last = slot;
        &mut self.values[slot]
    }

    /// Every node and its state, by ascending node id.
    pub(crate) fn into_sorted(self) -> Vec<(NodeId, T)> {
        let mut all: Vec<(NodeId, T)> = self.ids.into_iter().zip(self.values).collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }
}

/// The in-memory form, in one pass: statrs' running moments of every sample for the z-score
/// baseline, plain sums per node for the node means, and per-minute sums when the method needs
/// medians of minute means.
pub(crate) fn group_by_node(
    samples: &[TelemetrySample],
    method: Method,
) -> (Vec<NodeSummary>, [OnlineMoments<2>; 3]) {
    struct Group {
        count: u64,
        sums: [f64; 3],
        minutes: MinuteMeans,
        newest: Timestamp,
    }
    let mut baseline: [OnlineMoments<2>; 3] = Default::default();
    let mut groups: NodeTable<Group> = NodeTable::new();
    for sample in samples {
        let x = to_array(&sample.metrics);
        let group = groups.entry(sample.node_id, || Group {
            count: 0,
            sums: [0.0; 3],
            minutes: MinuteMeans::default(),
            newest: sample.timestamp,
        });
        group.count += 1;
        for (sum, value) in group.sums.iter_mut().zip(x) {
            *sum += value;
        }
        if method == Method::Robust {
            group.minutes.push(sample.timestamp, x);
        }
        group.newest = group.newest.max(sample.timestamp);
        if method == Method::ZScore {
            for metric in 0..3 {
                baseline[metric] = std::mem::take(&mut baseline[metric]).push(x[metric]);
            }
        }
    }
    let mut scratch = Vec::new();
    let nodes = groups
        .into_sorted()
        .into_iter()
        .map(|(node_id, g)| NodeSummary {
            node_id,
            count: g.count,
            means: from_array(g.sums.map(|s| s / g.count as f64)),
            medians: g.minutes.medians(&mut scratch),
            newest: g.newest,
        })
        .collect();
    (nodes, baseline)
}

/// One node's running aggregates: count, and the sum and sum of squares of each metric's
/// distance from the node's first value (the shift keeps the sums small, so the variance does
/// not drown in cancellation), plus per-minute sums for the robust method's medians.
struct NodeAccumulator {
    count: u64,
    shift: [f64; 3],
    sum: [f64; 3],
    sum_sq: [f64; 3],
    minutes: MinuteMeans,
    newest: Timestamp,
}

impl NodeAccumulator {
    fn new(first: &Metrics, at: Timestamp) -> Self {
        NodeAccumulator {
            count: 0,
            shift: to_array(first),
            sum: [0.0; 3],
            sum_sq: [0.0; 3],
            minutes: MinuteMeans::default(),
            newest: at,
        }
    }

    fn moments(&self, metric: usize) -> Moments {
        let n = self.count as f64;
        let s = self.sum[metric];
        Moments {
            count: n,
            mean: self.shift[metric] + s / n,
            m2: (self.sum_sq[metric] - s * s / n).max(0.0),
        }
    }
}

/// Bottleneck analysis fed one sample at a time, for windows too large to hold as samples.
///
/// Keeps per node a count and shifted sums (and, for the robust method, a count and three sums
/// per minute of the window, which its medians of minute means need): a hundred bytes per node
/// for `zscore`, plus 32 bytes per minute for `robust`, whatever the sampling rate. Samples may
/// arrive in any order, and whole minutes may come as rollups ([`Self::push_minute`]).
///
/// ```
/// use netorch_analytics::{AnalysisConfig, Method, StreamingAnalysis};
/// use netorch_domain::{Metrics, NodeId};
///
/// let config = AnalysisConfig::new(Method::Robust, None).unwrap();
/// let mut analysis = StreamingAnalysis::new(config);
/// let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
/// for id in 1..=10 {
///     let latency_ms = if id == 7 { 90.0 } else { 10.0 + id as f64 / 10.0 };
///     analysis.push(NodeId(id), at, Metrics { latency_ms, throughput_gbps: 9.0, error_rate: 0.1 });
/// }
/// let report = analysis.finish();
/// assert_eq!(report.bottlenecks.len(), 1);
/// assert_eq!(report.bottlenecks[0].node_id, NodeId(7));
/// ```
pub struct StreamingAnalysis {
    config: AnalysisConfig,
    nodes: NodeTable<NodeAccumulator>,
    samples: u64,
}

impl StreamingAnalysis {
    /// An empty analysis.
    pub fn new(config: AnalysisConfig) -> Self {
        StreamingAnalysis {
            config,
            nodes: NodeTable::new(),
            samples: 0,
        }
    }

    /// Adds one sample of `node`, read at `at`.
    pub fn push(&mut self, node: NodeId, at: Timestamp, metrics: Metrics) {
        self.samples += 1;
        let acc = self
            .nodes
            .entry(node, || NodeAccumulator::new(&metrics, at));
        acc.count += 1;
        let x = to_array(&metrics);
        for (metric, value) in x.into_iter().enumerate() {
            let d = value - acc.shift[metric];
            acc.sum[metric] += d;
            acc.sum_sq[metric] += d * d;
        }
        if self.config.method == Method::Robust {
            acc.minutes.push(at, x);
        }
        if at > acc.newest {
            acc.newest = at;
        }
    }

    /// Adds the samples of `node` in the UTC minute starting at `minute` (microseconds since
    /// the epoch) that `summary` summarises, as if each had been pushed: the report's form for
    /// whole minutes read from rollups. The z-score moments merge exactly (Chan's formula).
    pub fn push_minute(&mut self, node: NodeId, minute: i64, summary: &SampleSummary) {
        let needs_minutes = self.config.method.needs_minute_means();
        if let Some(acc) = self.add_moments(node, summary)
            && needs_minutes
        {
            acc.minutes
                .add(minute, summary.count, to_array(&summary.means()));
        }
    }

    /// Adds the samples of `node` that `summary` summarises over any span (an hour's rollup,
    /// say), without their minute detail: only for methods that do not need minute means
    /// ([`Method::needs_minute_means`]); a robust analysis would lose the span's minutes from
    /// its medians, so it refuses the summary ([`AnalyticsError::MinuteMeansNeeded`]) and takes
    /// nothing in. Parts of the span can be taken away again with [`Self::remove_minute`].
    pub fn push_summary(
        &mut self,
        node: NodeId,
        summary: &SampleSummary,
    ) -> Result<(), AnalyticsError> {
        if self.config.method.needs_minute_means() {
            return Err(AnalyticsError::MinuteMeansNeeded(self.config.method));
        }
        self.add_moments(node, summary);
        Ok(())
    }

    /// Takes away from `node` the samples of the UTC minute starting at `minute` that `summary`
    /// summarises, which a part pushed before included (a minute's rollup or an hour's): an
    /// hour less its minutes outside a window, or a minute less its samples before it, stands
    /// for the samples inside. Counts, means and moments (and for the robust method the minute's
    /// mean) come out as if only the rest had been pushed (Chan's formula backwards); the newest
    /// sample is not changed, so the caller pushes only parts whose newest sample it wants or
    /// takes them away whole. A node or minute left with no samples does not count.
    pub fn remove_minute(&mut self, node: NodeId, minute: i64, summary: &SampleSummary) {
        if summary.count == 0 {
            return;
        }
        self.samples = self.samples.saturating_sub(summary.count);
        let needs_minutes = self.config.method.needs_minute_means();
        // A node never pushed gets an entry left empty, so not reported.
        let acc = self.nodes.entry(node, || {
            NodeAccumulator::new(&summary.means(), summary.newest)
        });
        let n = summary.count as f64;
        for (metric, s) in summary.metrics().into_iter().enumerate() {
            let d = s.mean - acc.shift[metric];
            acc.sum[metric] -= n * d;
            acc.sum_sq[metric] -= s.m2 + n * d * d;
        }
        acc.count = acc.count.saturating_sub(summary.count);
        if needs_minutes {
            acc.minutes
                .remove(minute, summary.count, to_array(&summary.means()));
        }
    }

    /// Adds `summary`'s count, moments and newest sample to `node`; the node's accumulator,
    /// unless the summary held no sample.
    fn add_moments(
        &mut self,
        node: NodeId,
        summary: &SampleSummary,
    ) -> Option<&mut NodeAccumulator> {
        if summary.count == 0 {
            return None;
        }
        self.samples += summary.count;
        let means = summary.means();
        let acc = self
            .nodes
            .entry(node, || NodeAccumulator::new(&means, summary.newest));
        let n = summary.count as f64;
        for (metric, s) in summary.metrics().into_iter().enumerate() {
            // Re-express around the shift: sum(x - a) = n (mean - a), and
            // sum((x - a)^2) = M2 + n (mean - a)^2.
            let d = s.mean - acc.shift[metric];
            acc.sum[metric] += n * d;
            acc.sum_sq[metric] += s.m2 + n * d * d;
        }
        acc.count += summary.count;
        if summary.newest > acc.newest {
            acc.newest = summary.newest;
        }
        Some(acc)
    }

    /// Adds everything `other` was fed, as if it had been pushed here: lets a window be read in
    /// parts, in parallel, and analysed as one. Both must use the same configuration (this
    /// one's is kept).
    pub fn merge(&mut self, other: StreamingAnalysis) {
        self.samples += other.samples;
        for (node, theirs) in other.nodes.into_sorted() {
            let mut new = false;
            let ours = self.nodes.entry(node, || {
                new = true;
                NodeAccumulator {
                    count: 0,
                    shift: theirs.shift,
                    sum: [0.0; 3],
                    sum_sq: [0.0; 3],
                    minutes: MinuteMeans::default(),
                    newest: theirs.newest,
                }
            });
            if new {
                // A node only the other analysis saw (parts split by node): taken as it is,
                // which is what adding it to an empty one gives, without the work.
                *ours = theirs;
                continue;
            }
            for metric in 0..3 {
                // Re-express their sums around our shift: x - a = (x - b) + (b - a).
                let d = theirs.shift[metric] - ours.shift[metric];
                let n = theirs.count as f64;
                ours.sum[metric] += theirs.sum[metric] + n * d;
                ours.sum_sq[metric] +=
                    theirs.sum_sq[metric] + 2.0 * d * theirs.sum[metric] + n * d * d;
            }
            ours.count += theirs.count;
            ours.minutes.absorb(&theirs.minutes);
            ours.newest = ours.newest.max(theirs.newest);
        }
    }

    /// How many samples were pushed.
    pub fn sample_count(&self) -> u64 {
        self.samples
    }

    /// The report.
    pub fn finish(self) -> BottleneckReport {
        // Node order fixes the order of the floating-point merges: the same samples give the
        // same report bit for bit, whatever order they arrived in.
        let accumulators = self.nodes.into_sorted();
        let mut baseline = [Moments::default(); 3];
        let mut scratch = Vec::new();
        let nodes: Vec<NodeSummary> = accumulators
            .into_iter()
            // Every sample of a node taken away again (remove_minute): not in the window.
            .filter(|(_, acc)| acc.count > 0)
            .map(|(node_id, acc)| {
                let moments = [acc.moments(0), acc.moments(1), acc.moments(2)];
                for metric in 0..3 {
                    baseline[metric] = baseline[metric].merge(moments[metric]);
                }
                NodeSummary {
                    node_id,
                    count: acc.count,
                    means: from_array(moments.map(|m| m.mean)),
                    medians: acc.minutes.medians(&mut scratch),
                    newest: acc.newest,
                }
            })
            .collect();
        let scores = match self.config.method {
            Method::ZScore => zscore::scores(&nodes, &zscore::Baseline::of_moments(&baseline)),
            Method::Robust => robust::scores(&nodes),
        };
        rank(nodes, scores, &self.config, self.samples)
    }
}
