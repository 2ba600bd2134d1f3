//! The telemetry export's metrics: how far behind each remote-write target is, and what became
//! of the samples sent to it.
//!
//! The `target` label is a target's URL as configured (`--export-remote-write-url`, never with
//! credentials): a set the operator fixes at start, so it stays within the crate's invariant of
//! bounded label values.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// What became of samples sent to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportOutcome {
    /// The target took them (2xx).
    Sent,
    /// The send failed (no answer, 5xx, 429): they are sent again after a backoff.
    Failed,
    /// The target refused them (a 4xx other than 429: malformed for it, out of order for
    /// Prometheus without an out-of-order window): sending again would be refused again, so
    /// they are dropped and the export goes on.
    Rejected,
}

impl ExportOutcome {
    /// Every outcome.
    pub const ALL: [ExportOutcome; 3] = [
        ExportOutcome::Sent,
        ExportOutcome::Failed,
        ExportOutcome::Rejected,
    ];

    /// Its `outcome` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExportOutcome::Sent => "sent",
            ExportOutcome::Failed => "failed",
            ExportOutcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    target: String,
    outcome: &'static str,
}

/// The export's families.
#[derive(Debug, Clone, Default)]
pub struct ExportMetrics {
    lag: Family<TargetLabel, Gauge<f64, AtomicU64>>,
    samples: Family<OutcomeLabels, Counter>,
}

impl ExportMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = ExportMetrics::default();
        registry.register(
            "netorch_export_lag_seconds",
            "How far the telemetry export to a remote-write target is behind: every sample \
             stored longer ago than this was sent (from the target's cursor in the database)",
            metrics.lag.clone(),
        );
        registry.register(
            "netorch_export_samples",
            "Stored samples sent to a remote-write target (each as three series' points), by \
             outcome: sent, failed (sent again after a backoff), rejected (refused with a 4xx, \
             dropped)",
            metrics.samples.clone(),
        );
        metrics
    }

    /// Starts `target`'s series at zero, so that rates over them exist from the first scrape.
    pub fn target(&self, target: &str) {
        for outcome in ExportOutcome::ALL {
            self.samples(target, outcome, 0);
        }
    }

    /// `count` samples sent to `target` ended with `outcome`.
    pub fn samples(&self, target: &str, outcome: ExportOutcome, count: u64) {
        self.samples
            .get_or_create(&OutcomeLabels {
                target: target.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc_by(count);
    }

    /// The export to `target` is `seconds` behind.
    pub fn lag(&self, target: &str, seconds: f64) {
        self.lag
            .get_or_create(&TargetLabel {
                target: target.to_owned(),
            })
            .set(seconds);
    }
}
