//! The one mapping from the collectors' protocols (Prometheus remote write, InfluxDB line
//! protocol, OTLP) to netorch's samples: which label names the deployment and the node, which
//! metric names are netorch's three, which readings are refused and why. Each protocol's
//! decoder turns its wire format into [`Point`]s; everything after that is shared.

use crate::{MetricKind, Metrics, Timestamp};
use std::fmt;

/// The label (Prometheus), tag (line protocol) or resource or point attribute (OTLP) naming the
/// deployment: its id or its name.
pub const DEPLOYMENT_LABEL: &str = "deployment";

/// The label naming the node: its id, its name (`node-007`) or its hostname.
pub const NODE_LABEL: &str = "node";

/// The prefix of the three metrics' names in Prometheus and OTLP (`netorch_latency_ms`); line
/// protocol names them as fields of the [`LINE_MEASUREMENT`] measurement, without it.
pub const METRIC_PREFIX: &str = "netorch_";

/// The line protocol measurement whose fields are the three metrics.
pub const LINE_MEASUREMENT: &str = "netorch";

/// The protocols that carry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `POST /api/v1/write`.
    PrometheusRemoteWrite,
    /// `POST /api/v2/write` and `POST /write`.
    InfluxLineProtocol,
    /// `POST /v1/metrics`.
    Otlp,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 3] = [
        Protocol::PrometheusRemoteWrite,
        Protocol::InfluxLineProtocol,
        Protocol::Otlp,
    ];

    /// Its name in metrics' labels and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::PrometheusRemoteWrite => "prometheus_remote_write",
            Protocol::InfluxLineProtocol => "influx_line_protocol",
            Protocol::Otlp => "otlp",
        }
    }

    /// The metric a name of this protocol stands for: `netorch_latency_ms` and so on for
    /// Prometheus and OTLP, the bare field name for line protocol.
    pub fn metric(self, name: &str) -> Option<MetricKind> {
        let bare = match self {
            Protocol::InfluxLineProtocol => name,
            Protocol::PrometheusRemoteWrite | Protocol::Otlp => name.strip_prefix(METRIC_PREFIX)?,
        };
        MetricKind::ALL.into_iter().find(|m| m.as_str() == bare)
    }
}

/// Why a point is refused. Each is counted in `netorch_ingest_rejected_total{protocol,reason}`
/// and, where the protocol has a place for it, in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// No `deployment` label.
    NoDeployment,
    /// No `node` label.
    NoNode,
    /// A metric other than the three.
    UnknownMetric,
    /// Not a number, infinite, negative or past the metric's maximum.
    InvalidValue,
    /// Dated past the server's clock by more than the tolerance.
    TooNew,
    /// Dated before the oldest raw samples kept.
    TooOld,
    /// The deployment label names no deployment.
    UnknownDeployment,
    /// The deployment label is a name several deployments share.
    AmbiguousDeployment,
    /// The caller's key is limited to other deployments.
    ForbiddenDeployment,
    /// The node label names no node of the deployment.
    UnknownNode,
    /// Its reading's other metrics never arrived (deleted after the wait).
    Incomplete,
}

impl Refusal {
    /// Every reason.
    pub const ALL: [Refusal; 11] = [
        Refusal::NoDeployment,
        Refusal::NoNode,
        Refusal::UnknownMetric,
        Refusal::InvalidValue,
        Refusal::TooNew,
        Refusal::TooOld,
        Refusal::UnknownDeployment,
        Refusal::AmbiguousDeployment,
        Refusal::ForbiddenDeployment,
        Refusal::UnknownNode,
        Refusal::Incomplete,
    ];

    /// Its name in metrics' labels and responses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::NoDeployment => "no_deployment",
            Refusal::NoNode => "no_node",
            Refusal::UnknownMetric => "unknown_metric",
            Refusal::InvalidValue => "invalid_value",
            Refusal::TooNew => "too_new",
            Refusal::TooOld => "too_old",
            Refusal::UnknownDeployment => "unknown_deployment",
            Refusal::AmbiguousDeployment => "ambiguous_deployment",
            Refusal::ForbiddenDeployment => "forbidden_deployment",
            Refusal::UnknownNode => "unknown_node",
            Refusal::Incomplete => "incomplete",
        }
    }

    /// What it means, for a person reading the response or the log.
    pub const fn explanation(self) -> &'static str {
        match self {
            Refusal::NoDeployment => "no `deployment` label (a deployment's id or name)",
            Refusal::NoNode => "no `node` label (a node's id, name or hostname)",
            Refusal::UnknownMetric => {
                "not one of netorch's metrics (latency_ms, throughput_gbps, error_rate)"
            }
            Refusal::InvalidValue => {
                "not a number from 0 to the metric's maximum (a day of latency, 1 Pb/s, 100 %)"
            }
            Refusal::TooNew => "dated ahead of the server's clock by more than the tolerance",
            Refusal::TooOld => "dated before the oldest raw samples kept",
            Refusal::UnknownDeployment => "no deployment has that id or name",
            Refusal::AmbiguousDeployment => "several deployments have that name: use the id",
            Refusal::ForbiddenDeployment => "the key is limited to other deployments",
            Refusal::UnknownNode => "no node of the deployment has that id, name or hostname",
            Refusal::Incomplete => "the reading's other metrics never arrived",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// At most 100 characters of a label, a name or a header, for the messages that quote what a
/// sender sent (a label may be a megabyte long).
pub fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(100) {
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..end])),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// One metric's reading of one node, as a protocol's decoder found it: the labels still text.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The `deployment` label.
    pub deployment: String,
    /// The `node` label.
    pub node: String,
    /// Which metric.
    pub metric: MetricKind,
    /// When it was read.
    pub at: Timestamp,
    /// Its value.
    pub value: f64,
}

/// What a request carried, decoded: its points, and what its decoder refused already.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The points, in the order sent.
    pub points: Vec<Point>,
    /// Refused points by reason.
    pub refused: Refusals,
}

/// Refused points counted by reason, with what the first of each was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    counts: std::collections::BTreeMap<Refusal, u64>,
    first: std::collections::BTreeMap<Refusal, String>,
}

impl Refusals {
    /// Counts `n` points refused for `reason`; `what` says which (the first one's is kept).
    pub fn add(&mut self, reason: Refusal, n: u64, what: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        *self.counts.entry(reason).or_default() += n;
        self.first.entry(reason).or_insert_with(what);
    }

    /// Adds every count of `other`.
    pub fn extend(&mut self, other: Refusals) {
        for (reason, n) in other.counts {
            let what = other.first.get(&reason).cloned().unwrap_or_default();
            self.add(reason, n, || what);
        }
    }

    /// How many points were refused in all.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The counts by reason, with the first refused point of each.
    pub fn iter(&self) -> impl Iterator<Item = (Refusal, u64, &str)> + '_ {
        self.counts.iter().map(|(reason, n)| {
            (
                *reason,
                *n,
                self.first.get(reason).map_or("", String::as_str),
            )
        })
    }

    /// One line for a person: `3 points refused: 2 unknown_node (no node of the deployment
    /// has that id, name or hostname; first: node "node-999" of deployment 4), 1 too_new (…)`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .map(|(reason, n, first)| {
                format!("{n} {reason} ({}; first: {first})", reason.explanation())
            })
            .collect();
        format!("{} points refused: {}", self.total(), parts.join(", "))
    }
}

/// The readings the server accepts: from `earliest` (the raw retention) to `latest` (its clock
/// plus the tolerance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The oldest time accepted.
    pub earliest: Timestamp,
    /// The newest time accepted.
    pub latest: Timestamp,
}

impl Accepted {
    /// Whether a value of `metric` read `at` is refused, and why.
    pub fn check(&self, metric: MetricKind, at: Timestamp, value: f64) -> Result<(), Refusal> {
        let max = match metric {
            MetricKind::LatencyMs => Metrics::MAX_LATENCY_MS,
            MetricKind::ThroughputGbps => Metrics::MAX_THROUGHPUT_GBPS,
            MetricKind::ErrorRate => Metrics::MAX_ERROR_RATE,
        };
        if !(value.is_finite() && (0.0..=max).contains(&value)) {
            Err(Refusal::InvalidValue)
        } else if at > self.latest {
            Err(Refusal::TooNew)
        } else if at < self.earliest {
            Err(Refusal::TooOld)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn names_map_to_the_three_metrics_per_protocol() {
        let prom = Protocol::PrometheusRemoteWrite;
        assert_eq!(
            prom.metric("netorch_latency_ms"),
            Some(MetricKind::LatencyMs)
        );
        assert_eq!(
            Protocol::Otlp.metric("netorch_throughput_gbps"),
            Some(MetricKind::ThroughputGbps)
        );
        assert_eq!(
            Protocol::InfluxLineProtocol.metric("error_rate"),
            Some(MetricKind::ErrorRate)
        );
        for name in [
            "latency_ms",
            "up",
            "netorch_",
            "netorch_latency",
            "scrape_duration_seconds",
        ] {
            assert_eq!(prom.metric(name), None, "{name}");
        }
        assert_eq!(
            Protocol::InfluxLineProtocol.metric("netorch_error_rate"),
            None
        );
    }

    #[test]
    fn values_and_times_out_of_range_are_refused_with_their_reason() {
        let at = |s| Utc.timestamp_opt(s, 0).single().expect("time");
        let accepted = Accepted {
            earliest: at(1_000),
            latest: at(2_000),
        };
        let ok = accepted.check(MetricKind::ErrorRate, at(1_500), 100.0);
        assert_eq!(ok, Ok(()));
        for value in [f64::NAN, f64::INFINITY, -0.5, 100.5] {
            assert_eq!(
                accepted.check(MetricKind::ErrorRate, at(1_500), value),
                Err(Refusal::InvalidValue)
            );
        }
        assert_eq!(
            accepted.check(MetricKind::LatencyMs, at(2_001), 1.0),
            Err(Refusal::TooNew)
        );
        assert_eq!(
            accepted.check(MetricKind::LatencyMs, at(999), 1.0),
            Err(Refusal::TooOld)
        );
    }

    #[test]
    fn every_reason_has_a_distinct_name() {
        let mut names: Vec<&str> = Refusal::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Refusal::ALL.len());
    }
}
