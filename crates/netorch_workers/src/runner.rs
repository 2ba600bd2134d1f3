//! The worker loops: a tick every interval on a blocking thread, a heartbeat after each, backoff
//! after failures, and a clean stop after the tick in progress.

use crate::{WorkerError, telemetry_tick};
use netorch_domain::ingest::{Protocol, Refusal};
use netorch_domain::{NodeState, Provisioner, TelemetrySource, Timestamp, WorkerKind};
use netorch_metrics::{Metrics, SampleSource};
use netorch_storage::retention::{self, Retention};
use netorch_storage::{Database, heartbeats};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The alerts loop's default interval.
pub const ALERTS_INTERVAL: Duration = Duration::from_secs(30);
/// Resolved alerts and ended silences deleted per alerts tick at most (the rest wait).
const ALERT_EXPIRY_BATCH: i64 = 10_000;

/// Longest pause after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a tick that hit SQLite's "database is locked" is retried at once.
const LOCKED_RETRIES: u32 = 3;

/// Which loops a worker runs, how often, under what name, and where it counts its work.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The name heartbeats are recorded under (one per process).
    pub name: String,
    /// Run the lifecycle loop at this interval (the original: 2 s).
    pub lifecycle_interval: Option<Duration>,
    /// Run the telemetry loop at this interval, which is also the collection slot (the
    /// original: 5 s).
    pub telemetry_interval: Option<Duration>,
    /// Run the alerts loop at this interval (30 s by default), which is also its evaluation
    /// slot: each deployment is evaluated once per slot by one worker.
    pub alerts_interval: Option<Duration>,
    /// How long resolved alerts and ended silences are kept (90 days by default).
    pub keep_alerts: chrono::TimeDelta,
    /// How the alerts loop delivers notifications; it ticks at least every
    /// `delivery_interval` (1 s by default) so that they go out promptly, evaluating only when
    /// a new slot begins.
    pub delivery: crate::delivery::DeliveryOptions,
    /// See `delivery`.
    pub delivery_interval: Duration,
    /// Forget loops (of any worker) silent this long when this worker's loops first report
    /// (`heartbeats::FORGET_AFTER` by default).
    pub forget_after: Duration,
    /// How long telemetry is kept: the telemetry loop expires older rows after each tick.
    pub retention: Retention,
    /// Where the loops record their work (ticks, transitions, samples, failures); share it
    /// with whatever serves `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Remote-write targets every stored sample is exported to, while the telemetry loop runs
    /// (`export`): none by default.
    pub export: Vec<crate::export::ExportTarget>,
    /// The external provisioner profiles this worker runs, beside the built-in `simulator`
    /// (`--provisioners`): none by default. Their runs go with the lifecycle loop.
    pub provisioners: crate::provisioners::Profiles,
}

impl WorkerOptions {
    /// Both loops at the original service's intervals (2 s and 5 s), under `name`.
    pub fn new(name: impl Into<String>) -> Self {
        WorkerOptions {
            name: name.into(),
            lifecycle_interval: Some(Duration::from_secs(2)),
            telemetry_interval: Some(Duration::from_secs(5)),
            alerts_interval: Some(ALERTS_INTERVAL),
            keep_alerts: chrono::TimeDelta::days(90),
            delivery: crate::delivery::DeliveryOptions::default(),
            delivery_interval: Duration::from_secs(1),
            forget_after: heartbeats::FORGET_AFTER
                .to_std()
                .unwrap_or(Duration::from_secs(15 * 60)),
            retention: Retention::default(),
            metrics: Arc::default(),
            export: Vec::new(),
            provisioners: crate::provisioners::Profiles::default(),
        }
    }
}

type Tick = dyn Fn(&Database, Timestamp) -> Result<String, WorkerError> + Send + Sync;

/// Runs the configured loops until `shutdown` resolves, then lets each finish the tick it is
/// in and returns.
pub async fn run(
    db: Database,
    provisioner: Arc<dyn Provisioner>,
    source: Arc<dyn TelemetrySource>,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    // The external provisioners' runs go with the lifecycle loop: results recorded before the
    // tick (which applies them), runs started after it (for the nodes it moved into a phase).
    let driver = options
        .lifecycle_interval
        .filter(|_| !options.provisioners.is_empty())
        .map(|interval| {
            Arc::new(
                crate::provisioners::RunDriver::new(
                    options.provisioners.clone(),
                    options.name.clone(),
                )
                .with_interval(interval),
            )
        });
    let lifecycle = options.lifecycle_interval.map(|interval| {
        let metrics = Arc::clone(&options.metrics);
        let driver = driver.clone();
        let external: Vec<String> = options
            .provisioners
            .iter()
            .map(|profile| profile.name.clone())
            .collect();
        let tick: Arc<Tick> = Arc::new(move |db, now| {
            let began = std::time::Instant::now();
            let mut conn = db.get()?;
            let settled = match &driver {
                Some(driver) => driver.settle(&mut conn, now)?,
                None => Default::default(),
            };
            let provisioners = crate::Provisioners {
                builtin: provisioner.as_ref(),
                external: &external,
            };
            let t = crate::lifecycle_tick_using(
                &mut conn,
                provisioners,
                now,
                crate::TickLimits::default(),
            )?;
            let started = match &driver {
                Some(driver) => driver.start(&mut conn, now)?,
                None => Default::default(),
            };
            for state in NodeState::ALL {
                metrics.transitions(state, t.entered.get(state));
            }
            // Counted only when the tick stopped at its limit: otherwise it reached every
            // due node, and the count would cost a query for nothing.
            let backlog = if t.cut_short {
                netorch_storage::nodes::count_due(&mut conn, now)?
            } else {
                0
            };
            metrics.lifecycle_tick(
                began.elapsed().as_secs_f64(),
                t.timed_out as u64,
                t.auto_retried as u64,
                backlog,
            );
            let runs = if driver.is_some() {
                format!(
                    "; runs: {} started ({} taken over), {} succeeded, {} failed, {} timed out, \
                     {} cancelled, {} going",
                    started.started,
                    started.taken_over,
                    settled.succeeded + started.succeeded,
                    settled.failed + started.failed,
                    settled.timed_out,
                    settled.cancelled,
                    started.running
                )
            } else {
                String::new()
            };
            Ok(format!(
                "examined {} nodes, moved {} of {}{runs}",
                t.examined, t.applied, t.planned
            ))
        });
        (WorkerKind::Lifecycle, interval, tick)
    });
    // The export runs beside the telemetry loop, one loop per target, each pass on a blocking
    // thread of its own so that a slow target never delays a tick.
    let exports: Vec<_> = match options.telemetry_interval {
        Some(telemetry) => options
            .export
            .iter()
            .map(|target| {
                let exporter = crate::export::Exporter::new(target.clone(), options.name.clone());
                tokio::spawn(crate::export::run_loop(
                    db.clone(),
                    exporter,
                    Arc::clone(&options.metrics),
                    telemetry.min(crate::export::EXPORT_INTERVAL),
                    stopped.clone(),
                ))
            })
            .collect(),
        None => Vec::new(),
    };
    let telemetry = options.telemetry_interval.map(|interval| {
        let retention = options.retention;
        let metrics = Arc::clone(&options.metrics);
        // The loop waits `interval` of the machine's time; its slots are as long in netorch's.
        let slot = chrono::TimeDelta::from_std(interval).unwrap_or(chrono::TimeDelta::MAX);
        let tick: Arc<Tick> = Arc::new(move |db, now| {
            let began = std::time::Instant::now();
            let t = telemetry_tick(db, source.as_ref(), slot, now)?;
            let lag = (chrono::Utc::now() - t.slot)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e6;
            metrics.samples(
                SampleSource::Worker,
                t.written as u64,
                t.nodes.saturating_sub(t.written) as u64,
            );
            // Expiry after the samples, in short transactions, for at most a fifth of the
            // interval (and a second): what is left waits for the next tick.
            let deadline = std::time::Instant::now() + (interval / 5).min(Duration::from_secs(1));
            let expired = retention::expire(&mut *db.get()?, &retention, now, || {
                std::time::Instant::now() < deadline
            })?;
            // Then the minutes now past are sealed (rollups::sealed), in the time left.
            let sealed = netorch_storage::rollups::sealed::seal_all(&mut *db.get()?, now, || {
                std::time::Instant::now() < deadline
            })?;
            // Readings a collector sent part of and never completed: refused now, counted.
            let waited = now - netorch_service::ingest::WAIT_FOR_METRICS;
            for (name, count) in netorch_storage::ingest::expire(&mut *db.get()?, waited)? {
                let protocol = Protocol::ALL.into_iter().find(|p| p.as_str() == name);
                log::debug!(
                    "{count} readings sent by {name} expired without all their metrics \
                     (refused: incomplete)"
                );
                if let Some(protocol) = protocol {
                    metrics.ingest_rejected(protocol, Refusal::Incomplete, count);
                }
            }
            let partitions = expired.partitions;
            metrics.expiry(
                expired.rows as u64,
                partitions.created as u64,
                partitions.dropped as u64,
            );
            metrics.telemetry_tick(began.elapsed().as_secs_f64(), lag.max(0.0));
            if partitions.deferred {
                log::debug!("partition maintenance deferred: a table lock was busy");
            }
            Ok(format!(
                "slot {}: {} running nodes, {} new samples, {} expired rows, \
                 partitions {} created {} dropped, {} expired events, {} sealed rows",
                t.slot,
                t.nodes,
                t.written,
                expired.rows,
                partitions.created,
                partitions.dropped,
                expired.events,
                sealed.rows
            ))
        });
        (WorkerKind::Telemetry, interval, tick)
    });
    let alerts = options.alerts_interval.map(|interval| {
        let metrics = Arc::clone(&options.metrics);
        let name = options.name.clone();
        let keep = options.keep_alerts;
        let delivery = options.delivery.clone();
        let slot = chrono::TimeDelta::from_std(interval).unwrap_or(chrono::TimeDelta::MAX);
        let tick: Arc<Tick> = Arc::new(move |db, now| {
            let began = std::time::Instant::now();
            // Cheap when the slot is evaluated already: one query finds nothing due.
            let t = netorch_service::alerts::evaluate(db, &name, slot, now)?;
            let expired =
                netorch_service::alerts::expire(&mut *db.get()?, keep, now, ALERT_EXPIRY_BATCH)?;
            metrics.alerts_tick(
                began.elapsed().as_secs_f64(),
                t.fired as u64,
                t.resolved as u64,
            );
            let sent = crate::delivery::deliver(db, &delivery, now)?;
            for ((kind, outcome), count) in &sent.by_kind {
                metrics.deliveries(kind, outcome, *count as u64);
            }
            Ok(format!(
                "evaluated {} deployments: {} fired, {} resolved, {} changes, {} silences \
                 ended, {expired} expired; {} nodes remediated, self-healing stopped in {} \
                 deployments; delivered {}, retrying {}, failed {}, re-sent {}",
                t.evaluated,
                t.fired,
                t.resolved,
                t.changes,
                t.silences_ended,
                t.remediated,
                t.remediation_stopped,
                sent.delivered,
                sent.retried,
                sent.failed,
                sent.resent
            ))
        });
        (
            WorkerKind::Alerts,
            interval.min(options.delivery_interval),
            tick,
        )
    });
    let loops: Vec<_> = [lifecycle, telemetry, alerts]
        .into_iter()
        .flatten()
        .map(|(kind, interval, tick)| {
            let spec = LoopSpec {
                metrics: Arc::clone(&options.metrics),
                name: options.name.clone(),
                kind,
                interval,
                forget_after: chrono::Duration::from_std(options.forget_after)
                    .unwrap_or(heartbeats::FORGET_AFTER),
            };
            tokio::spawn(run_loop(db.clone(), spec, tick, stopped.clone()))
        })
        .chain(exports)
        .collect();
    shutdown.await;
    log::info!("worker {}: stopping after the current tick", options.name);
    // The receivers may all be gone already if every loop ended; nothing to tell then.
    let _ = stop.send(true);
    for handle in loops {
        if let Err(e) = handle.await {
            log::error!("worker {}: a loop ended abnormally: {e}", options.name);
        }
    }
    if let Some(driver) = driver {
        // Runs going are killed and their leases given up, so that another worker starts
        // them again at once rather than after the lease.
        let stopped = tokio::task::spawn_blocking(move || -> Result<(), WorkerError> {
            let mut conn = db.get()?;
            driver.stop(&mut conn, chrono::Utc::now())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = stopped.map_err(|e| WorkerError::Task(e.to_string())) {
            log::warn!(
                "worker {}: stopping its provisioner runs: {e}",
                options.name
            );
        }
    }
}

struct LoopSpec {
    metrics: Arc<Metrics>,
    name: String,
    kind: WorkerKind,
    interval: Duration,
    forget_after: chrono::Duration,
}

async fn run_loop(
    db: Database,
    spec: LoopSpec,
    tick: Arc<Tick>,
    mut stopped: watch::Receiver<bool>,
) {
    let spec = Arc::new(spec);
    let started_at = chrono::Utc::now();
    let mut ticker = tokio::time::interval(spec.interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures: u32 = 0;
    log::info!(
        "worker {}: {} loop every {:?}",
        spec.name,
        spec.kind.as_str(),
        spec.interval
    );
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = ticker.tick() => {}
        }
        if *stopped.borrow() {
            break;
        }
        let (db, spec_for_tick, tick) = (db.clone(), spec.clone(), tick.clone());
        let began = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            one_tick(&db, &spec_for_tick, tick.as_ref(), started_at)
        })
        .await
        .unwrap_or_else(|e| Err(WorkerError::Task(e.to_string())));
        match outcome {
            Ok(summary) => {
                failures = 0;
                log::debug!(
                    worker = spec.name.as_str(), worker_loop = spec.kind.as_str();
                    "worker {}: {} tick: {summary} in {} ms",
                    spec.name,
                    spec.kind.as_str(),
                    began.elapsed().as_millis()
                );
            }
            Err(error) => {
                spec.metrics.tick_failure(spec.kind.as_str());
                if let WorkerError::Storage(e)
                | WorkerError::Service(netorch_service::ServiceError::Storage(e)) = &error
                {
                    e.count();
                }
                failures = failures.saturating_add(1);
                let backoff = spec
                    .interval
                    .saturating_mul(1 << failures.min(6))
                    .min(MAX_BACKOFF);
                log::warn!(
                    worker = spec.name.as_str(), worker_loop = spec.kind.as_str();
                    "worker {}: {} tick failed ({failures} in a row), next try in {backoff:?}: {error}",
                    spec.name,
                    spec.kind.as_str()
                );
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    // Said in the database too, so /health stops calling this loop alive at once.
    let (db_for_stop, spec_for_stop) = (db.clone(), spec.clone());
    let recorded = tokio::task::spawn_blocking(move || {
        heartbeats::record_stop(
            &mut *db_for_stop.get()?,
            &spec_for_stop.name,
            spec_for_stop.kind,
            chrono::Utc::now(),
        )
    })
    .await;
    if let Ok(Err(e)) = recorded {
        log::warn!(
            "worker {}: could not record that the {} loop stopped: {e}",
            spec.name,
            spec.kind.as_str()
        );
    }
    log::info!("worker {}: {} loop stopped", spec.name, spec.kind.as_str());
}

/// One tick and its heartbeat, on a blocking thread.
fn one_tick(
    db: &Database,
    spec: &LoopSpec,
    tick: &Tick,
    started_at: Timestamp,
) -> Result<String, WorkerError> {
    let now = chrono::Utc::now();
    let mut retries = 0;
    let summary = loop {
        match tick(db, now) {
            Err(e) if e.is_database_locked() && retries < LOCKED_RETRIES => {
                spec.metrics.locked_retry();
                retries += 1;
            }
            other => break other?,
        }
    };
    heartbeats::record_with(
        &mut *db.get()?,
        &spec.name,
        spec.kind,
        spec.interval,
        started_at,
        chrono::Utc::now(),
        spec.forget_after,
    )?;
    Ok(summary)
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM: the shutdown future the binaries pass to [`run`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            log::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                log::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => log::info!("Ctrl-C received"),
        _ = terminate => log::info!("SIGTERM received"),
    }
}
