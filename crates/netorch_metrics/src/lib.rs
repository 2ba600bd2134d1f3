//! netorch's Prometheus metrics (docs/MONITORING.md lists them all).
//!
//! One [`Metrics`] per process: the API and the workers record into it as they work, and
//! [`Metrics::encode`] writes the Prometheus text exposition (format 0.0.4, what `promtool check
//! metrics` reads) for `GET /metrics`. What lives in the database is read at scrape time by
//! collectors registered with [`Metrics::collect_database`] (the pool's numbers) and
//! [`Metrics::collect_fleet`] (nodes by state and deployments by status, from the counters each
//! deployment row keeps, never by counting nodes).
//!
//! Architecture Invariant: every label value comes from a closed set (route templates, enums'
//! `ALL`, status codes, the export targets the flags name), never a deployment or node id, so the number of series is bounded
//! whatever the fleet.

mod export;
mod process;
#[cfg(feature = "serve")]
pub mod serve;

use netorch_analytics::Method;
use netorch_domain::alert::ReceiverKind;
use netorch_domain::{AlertState, DeploymentStatus, NodeState, Severity};
use netorch_storage::Database;
use netorch_storage::deployments::fleet_summary;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

pub use export::{ExportMetrics, ExportOutcome};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Where stored samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleSource {
    /// The telemetry worker's collection from the hardware.
    Worker,
    /// A collector's `POST /deployments/{id}/telemetry`.
    Push,
    /// A collector's protocol (Prometheus remote write, line protocol, OTLP).
    Protocol(netorch_domain::ingest::Protocol),
}

impl SampleSource {
    fn as_str(self) -> &'static str {
        match self {
            SampleSource::Worker => "worker",
            SampleSource::Push => "push",
            SampleSource::Protocol(protocol) => protocol.as_str(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// The HTTP methods that are their own `method` label; any other is [`OTHER_METHOD`].
pub const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The `method` label of every method outside [`HTTP_METHODS`]: a client may send any token
/// as a method, and each would otherwise be a new series for as long as the process lives.
pub const OTHER_METHOD: &str = "other";

/// The `method` label of `method`: itself if standard, else [`OTHER_METHOD`].
pub fn method_label(method: &str) -> &'static str {
    HTTP_METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or(OTHER_METHOD)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    protocol: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// Request latencies: 0.5 ms to about 16 s, doubling.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Tick and report durations: 1 ms to about 65 s, doubling.
fn work_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric of a process, and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    http_in_flight: Gauge,
    transitions: Family<StateLabel, Counter>,
    timeouts: Counter,
    auto_retries: Counter,
    lifecycle_tick: Histogram,
    due_backlog: Gauge,
    samples_written: Family<SourceLabel, Counter>,
    duplicates: Family<SourceLabel, Counter>,
    ingest_rejected: Family<RejectedLabels, Counter>,
    telemetry_tick: Histogram,
    slot_lag: Gauge<f64, AtomicU64>,
    alerts_tick: Histogram,
    alerts_fired: Counter,
    alerts_resolved: Counter,
    notifications: Family<DeliveryLabels, Counter>,
    expired_rows: Counter,
    partitions_created: Counter,
    partitions_dropped: Counter,
    reports: Family<MethodLabel, Histogram, fn() -> Histogram>,
    locked_retries: Counter,
    tick_failures: Family<KindLabel, Counter>,
    export: ExportMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered and at zero, with the process metrics and the build info.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "netorch_http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: Family<RouteLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_buckets);
        registry.register(
            "netorch_http_request_duration_seconds",
            "Time from a request's arrival to its response, by route template",
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        registry.register(
            "netorch_http_requests_in_flight",
            "HTTP requests being answered now",
            http_in_flight.clone(),
        );
        let transitions = Family::<StateLabel, Counter>::default();
        registry.register(
            "netorch_lifecycle_transitions",
            "Node transitions the lifecycle worker wrote, by the state entered",
            transitions.clone(),
        );
        let timeouts = Counter::default();
        registry.register(
            "netorch_lifecycle_timeouts",
            "Nodes failed because a phase outlasted phase_timeout_seconds",
            timeouts.clone(),
        );
        let auto_retries = Counter::default();
        registry.register(
            "netorch_lifecycle_auto_retries",
            "Failed nodes sent back to PENDING by the worker (max_retries)",
            auto_retries.clone(),
        );
        let lifecycle_tick = work_buckets();
        registry.register(
            "netorch_lifecycle_tick_duration_seconds",
            "Duration of a lifecycle tick",
            lifecycle_tick.clone(),
        );
        let due_backlog = Gauge::default();
        registry.register(
            "netorch_lifecycle_due_backlog",
            "Nodes due for a transition that the last lifecycle tick left for the next one \
             (it handles at most a fixed number of nodes)",
            due_backlog.clone(),
        );
        let samples_written = Family::<SourceLabel, Counter>::default();
        registry.register(
            "netorch_telemetry_samples_written",
            "Samples stored (each also updates its minute and hour rollups in the same \
             transaction), by source",
            samples_written.clone(),
        );
        let duplicates = Family::<SourceLabel, Counter>::default();
        registry.register(
            "netorch_telemetry_duplicates_skipped",
            "Samples not stored because their node already had one at that time, by source",
            duplicates.clone(),
        );
        let ingest_rejected = Family::<RejectedLabels, Counter>::default();
        registry.register(
            "netorch_ingest_rejected",
            "Points a collector's protocol carried that were refused, by protocol and reason \
             (`incomplete`: a reading whose other metrics never arrived, counted where the \
             workers expire it)",
            ingest_rejected.clone(),
        );
        let telemetry_tick = work_buckets();
        registry.register(
            "netorch_telemetry_tick_duration_seconds",
            "Duration of a telemetry tick (collection and expiry)",
            telemetry_tick.clone(),
        );
        let slot_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "netorch_telemetry_slot_lag_seconds",
            "How long after its slot began the last collected slot was written",
            slot_lag.clone(),
        );
        let alerts_tick = work_buckets();
        registry.register(
            "netorch_alert_evaluation_duration_seconds",
            "Duration of an alerts tick (every due deployment evaluated, history expired)",
            alerts_tick.clone(),
        );
        let alerts_fired = Counter::default();
        registry.register(
            "netorch_alerts_fired",
            "Alerts this process's evaluations fired",
            alerts_fired.clone(),
        );
        let alerts_resolved = Counter::default();
        registry.register(
            "netorch_alerts_resolved",
            "Alerts this process's evaluations resolved",
            alerts_resolved.clone(),
        );
        let notifications = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "netorch_notifications",
            "Notification attempts by receiver kind (alertmanager, webhook, pagerduty) and \
             outcome (delivered, retried, failed)",
            notifications.clone(),
        );
        for receiver in ReceiverKind::ALL {
            for outcome in ["delivered", "retried", "failed"] {
                notifications
                    .get_or_create(&DeliveryLabels {
                        receiver: receiver.as_str(),
                        outcome,
                    })
                    .inc_by(0);
            }
        }
        let expired_rows = Counter::default();
        registry.register(
            "netorch_telemetry_expired_rows",
            "Samples and rollup rows deleted by retention",
            expired_rows.clone(),
        );
        let partitions_created = Counter::default();
        registry.register(
            "netorch_telemetry_partitions_created",
            "PostgreSQL telemetry partitions created ahead",
            partitions_created.clone(),
        );
        let partitions_dropped = Counter::default();
        registry.register(
            "netorch_telemetry_partitions_dropped",
            "PostgreSQL telemetry partitions dropped by retention",
            partitions_dropped.clone(),
        );
        let reports: Family<MethodLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(work_buckets);
        registry.register(
            "netorch_report_duration_seconds",
            "Duration of a bottleneck report, by method",
            reports.clone(),
        );
        let locked_retries = Counter::default();
        registry.register(
            "netorch_database_locked_retries",
            "Worker ticks run again at once after SQLite's \"database is locked\"",
            locked_retries.clone(),
        );
        let tick_failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "netorch_worker_tick_failures",
            "Worker ticks that failed (the loop backs off and tries again), by loop kind",
            tick_failures.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "netorch_build_info",
            "The running build: 1, labelled with its version",
            build,
        );
        let export = ExportMetrics::register(&mut registry);
        registry.register_collector(Box::new(process::ProcessCollector));
        // Label values known in advance start at zero, so a rate over them exists from the
        // first scrape rather than from the first event (Prometheus takes a series' first
        // sample as its baseline: a counter born at 1 shows no increase).
        for state in NodeState::ALL {
            transitions
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .inc_by(0);
        }
        for method in Method::ALL {
            let _ = reports.get_or_create(&MethodLabel {
                method: method.as_str(),
            });
        }
        let protocols = netorch_domain::ingest::Protocol::ALL.map(SampleSource::Protocol);
        for source in [SampleSource::Worker, SampleSource::Push]
            .into_iter()
            .chain(protocols)
        {
            let label = SourceLabel {
                source: source.as_str(),
            };
            samples_written.get_or_create(&label).inc_by(0);
            duplicates.get_or_create(&label).inc_by(0);
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            transitions,
            timeouts,
            auto_retries,
            lifecycle_tick,
            due_backlog,
            samples_written,
            duplicates,
            ingest_rejected,
            telemetry_tick,
            slot_lag,
            alerts_tick,
            alerts_fired,
            alerts_resolved,
            notifications,
            expired_rows,
            partitions_created,
            partitions_dropped,
            reports,
            locked_retries,
            tick_failures,
            export,
        }
    }

    /// Adds the pool's connections, waits and retries of `db`, read at each scrape.
    pub fn collect_database(&mut self, db: Database) {
        self.registry
            .register_collector(Box::new(DatabaseCollector { db }));
    }

    /// Adds nodes by state and deployments by status across the fleet, read from `db` at each
    /// scrape (one pass over the deployments table). One process of a fleet should have it:
    /// `netorch-server` does.
    pub fn collect_fleet(&mut self, db: Database) {
        self.registry
            .register_collector(Box::new(FleetCollector { db }));
    }

    /// The Prometheus text exposition of every metric. Blocking when database collectors are
    /// registered: call it off async workers.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            // Writing to a String cannot fail; a collector that does is logged, and what was
            // written before it is served.
            log::warn!("metrics: encoding failed: {e}");
        }
        text
    }

    /// An HTTP request answered: `route` is the matched route template (`unmatched` for
    /// none), never the raw path; `method` is counted by [`method_label`].
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method_label(method),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn http_in_flight(&self) -> InFlight {
        self.http_in_flight.inc();
        InFlight(self.http_in_flight.clone())
    }

    /// `count` nodes entered `state`.
    pub fn transitions(&self, state: NodeState, count: u64) {
        self.transitions
            .get_or_create(&StateLabel {
                state: state.as_str(),
            })
            .inc_by(count);
    }

    /// A lifecycle tick ended after `seconds`, with `timeouts` phase timeouts and
    /// `auto_retries` automatic retries among its transitions, leaving `backlog` due nodes.
    pub fn lifecycle_tick(&self, seconds: f64, timeouts: u64, auto_retries: u64, backlog: u64) {
        self.lifecycle_tick.observe(seconds);
        self.timeouts.inc_by(timeouts);
        self.auto_retries.inc_by(auto_retries);
        self.due_backlog
            .set(i64::try_from(backlog).unwrap_or(i64::MAX));
    }

    /// `written` samples stored from `source`, `duplicates` of them skipped.
    pub fn samples(&self, source: SampleSource, written: u64, duplicates: u64) {
        let label = SourceLabel {
            source: source.as_str(),
        };
        self.samples_written.get_or_create(&label).inc_by(written);
        self.duplicates.get_or_create(&label).inc_by(duplicates);
    }

    /// `count` points carried by `protocol` refused for `reason`.
    pub fn ingest_rejected(
        &self,
        protocol: netorch_domain::ingest::Protocol,
        reason: netorch_domain::ingest::Refusal,
        count: u64,
    ) {
        self.ingest_rejected
            .get_or_create(&RejectedLabels {
                protocol: protocol.as_str(),
                reason: reason.as_str(),
            })
            .inc_by(count);
    }

    /// A telemetry tick ended after `seconds`; its slot was written `slot_lag_seconds` after
    /// the slot began.
    pub fn telemetry_tick(&self, seconds: f64, slot_lag_seconds: f64) {
        self.telemetry_tick.observe(seconds);
        self.slot_lag.set(slot_lag_seconds);
    }

    /// An alerts tick ended after `seconds`, having fired and resolved so many alerts.
    pub fn alerts_tick(&self, seconds: f64, fired: u64, resolved: u64) {
        self.alerts_tick.observe(seconds);
        self.alerts_fired.inc_by(fired);
        self.alerts_resolved.inc_by(resolved);
    }

    /// `count` notification attempts to receivers of `receiver` kind ended with `outcome`
    /// (`delivered`, `retried`, `failed`); both come from closed sets.
    pub fn deliveries(&self, receiver: &'static str, outcome: &'static str, count: u64) {
        self.notifications
            .get_or_create(&DeliveryLabels { receiver, outcome })
            .inc_by(count);
    }

    /// Retention deleted `rows` rows and dropped `dropped` partitions; `created` were made
    /// ahead.
    pub fn expiry(&self, rows: u64, created: u64, dropped: u64) {
        self.expired_rows.inc_by(rows);
        self.partitions_created.inc_by(created);
        self.partitions_dropped.inc_by(dropped);
    }

    /// A bottleneck report by `method` took `seconds`.
    pub fn report(&self, method: Method, seconds: f64) {
        self.reports
            .get_or_create(&MethodLabel {
                method: method.as_str(),
            })
            .observe(seconds);
    }

    /// A worker tick is run again after "database is locked".
    pub fn locked_retry(&self) {
        self.locked_retries.inc();
    }

    /// The telemetry export's metrics.
    pub fn export(&self) -> &ExportMetrics {
        &self.export
    }

    /// A tick of the worker loop `kind` (`lifecycle` or `telemetry`) failed.
    pub fn tick_failure(&self, kind: &'static str) {
        self.tick_failures.get_or_create(&KindLabel { kind }).inc();
    }
}

/// A request in flight; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Encodes one unlabelled sample.
fn one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let sample = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(sample)
}

#[derive(Debug)]
struct DatabaseCollector {
    db: Database,
}

impl Collector for DatabaseCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.db.stats();
        let in_use = stats.connections.saturating_sub(stats.idle_connections);
        one(
            &mut encoder,
            "netorch_database_connections_in_use",
            "Pooled database connections checked out now",
            &ConstGauge::new(i64::from(in_use)),
        )?;
        one(
            &mut encoder,
            "netorch_database_connections_idle",
            "Pooled database connections open and idle",
            &ConstGauge::new(i64::from(stats.idle_connections)),
        )?;
        one(
            &mut encoder,
            "netorch_database_connections_max",
            "The most connections the pool opens",
            &ConstGauge::new(i64::from(stats.max_connections)),
        )?;
        one(
            &mut encoder,
            "netorch_database_connection_waits",
            "Checkouts that waited a millisecond or more for a free connection",
            &ConstCounter::new(stats.checkout_waits),
        )?;
        one(
            &mut encoder,
            "netorch_database_connection_wait_seconds",
            "Time spent waiting for free connections, in total",
            &ConstCounter::new(stats.checkout_wait_seconds),
        )?;
        one(
            &mut encoder,
            "netorch_database_connection_timeouts",
            "Waits for a connection that ran out of time (503)",
            &ConstCounter::new(stats.checkout_timeouts),
        )?;
        one(
            &mut encoder,
            "netorch_database_conflict_retries",
            "Write transactions run again after a PostgreSQL deadlock or serialization failure",
            &ConstCounter::new(stats.conflict_retries),
        )?;
        one(
            &mut encoder,
            "netorch_database_writer_queue_waits",
            "SQLite write transactions that waited for one of this process to end (first come, \
             first served)",
            &ConstCounter::new(stats.writer_queue_waits),
        )?;
        let mut errors = encoder.encode_descriptor(
            "netorch_database_errors",
            "Database failures this process met, by kind (unavailable, locked, conflict, \
             out_of_space, corrupt, query)",
            None,
            MetricType::Counter,
        )?;
        for (kind, count) in netorch_storage::error_counts() {
            ConstCounter::new(count).encode(errors.encode_family(&KindLabel { kind })?)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FleetCollector {
    db: Database,
}

impl Collector for FleetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A database that does not answer leaves these out of the scrape (Prometheus marks
        // them stale) rather than failing it: the rest still tells what is wrong.
        let fleet = self.db.get().and_then(|mut conn| fleet_summary(&mut conn));
        let fleet = match fleet {
            Ok(fleet) => fleet,
            Err(e) => {
                log::warn!("metrics: fleet summary unavailable: {e}");
                return Ok(());
            }
        };
        let mut nodes = encoder.encode_descriptor(
            "netorch_nodes",
            "Nodes in each state across the fleet, from the deployments' counters",
            None,
            MetricType::Gauge,
        )?;
        for state in NodeState::ALL {
            let count = i64::try_from(fleet.nodes.get(state)).unwrap_or(i64::MAX);
            ConstGauge::new(count).encode(nodes.encode_family(&StateLabel {
                state: state.as_str(),
            })?)?;
        }
        let mut deployments = encoder.encode_descriptor(
            "netorch_deployments",
            "Deployments with each status",
            None,
            MetricType::Gauge,
        )?;
        for status in DeploymentStatus::ALL {
            let count = i64::try_from(fleet.deployments_with(status)).unwrap_or(i64::MAX);
            ConstGauge::new(count).encode(deployments.encode_family(&StatusLabel {
                status: status.as_str(),
            })?)?;
        }
        let open = self
            .db
            .get()
            .and_then(|mut conn| netorch_storage::alerts::open_counts(&mut conn));
        let open = match open {
            Ok(open) => open,
            Err(e) => {
                log::warn!("metrics: alert counts unavailable: {e}");
                return Ok(());
            }
        };
        match self
            .db
            .get()
            .and_then(|mut conn| netorch_storage::alerts::notifications::backlog(&mut conn))
        {
            Ok((pending, oldest)) => {
                let depth = encoder.encode_descriptor(
                    "netorch_notifications_pending",
                    "Notifications of the outbox not delivered yet (every receiver)",
                    None,
                    MetricType::Gauge,
                )?;
                ConstGauge::new(i64::try_from(pending).unwrap_or(i64::MAX)).encode(depth)?;
                let age = encoder.encode_descriptor(
                    "netorch_notifications_oldest_pending_seconds",
                    "How long the oldest undelivered notification has waited (0 when none)",
                    None,
                    MetricType::Gauge,
                )?;
                let waited = oldest.map_or(0.0, |at| {
                    (netorch_domain::chrono::Utc::now() - at)
                        .num_milliseconds()
                        .max(0) as f64
                        / 1e3
                });
                ConstGauge::new(waited).encode(age)?;
            }
            Err(e) => log::warn!("metrics: the outbox's depth unavailable: {e}"),
        }
        let mut alerts = encoder.encode_descriptor(
            "netorch_alerts",
            "Unresolved alerts by state (pending, firing) and severity, across the fleet",
            None,
            MetricType::Gauge,
        )?;
        // Every pair, zeros included, so that a graph does not lose a line when none fires.
        for state in [AlertState::Pending, AlertState::Firing] {
            for severity in Severity::ALL {
                let count = open
                    .iter()
                    .find(|(s, v, _)| *s == state && *v == severity)
                    .map_or(0, |(_, _, n)| i64::try_from(*n).unwrap_or(i64::MAX));
                ConstGauge::new(count).encode(alerts.encode_family(&AlertLabels {
                    state: state.as_str(),
                    severity: severity.as_str(),
                })?)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    receiver: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    state: &'static str,
    severity: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        for method in HTTP_METHODS {
            assert_eq!(method_label(method), method);
        }
        let metrics = Metrics::new();
        for i in 0..200 {
            let junk = format!("X{i}{}", "A".repeat(30_000));
            metrics.http_request("unmatched", &junk, 405, 0.001);
        }
        metrics.http_request("unmatched", "get", 404, 0.001);
        let text = metrics.encode();
        assert!(text.len() < 20_000, "{} bytes", text.len());
        assert!(
            text.contains(
                "netorch_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"} 200"
            ),
            "{text}"
        );
        assert!(!text.contains("AAAA"));
    }
}
