//! The telemetry export: every stored sample sent to Prometheus-compatible time-series databases
//! (Prometheus, Mimir, Thanos Receive, VictoriaMetrics) by remote write 1.0, as three series
//! (`netorch_latency_ms`, `netorch_throughput_gbps`, `netorch_error_rate`) labelled
//! `deployment` (its id), `deployment_name`, `node` (its name) and `node_id`.
//!
//! Each target has a cursor in the database (`netorch_storage::export`): an [`Exporter`] pass
//! claims the target's lease, reads the samples stored past the cursor in commit order, sends
//! them, and moves the cursor once the target took them. So:
//! - what is stored is sent at least once and in order, with no gap after a restart or a
//!   `kill -9` (the cursor moves only after a send succeeded; a sample sent whose cursor move
//!   was lost is sent again, and receivers drop a sample they hold already);
//! - one worker sends to a target at a time; when it dies, its lease ([`LEASE`]) runs out and
//!   another worker's next pass takes over where the cursor is;
//! - a target that does not answer, or answers anything but 2xx, 400 or 422 (a redirect, 401
//!   while credentials rotate, 404, 429, 5xx), is tried again after a backoff (the loop's); the
//!   backlog waits in the database and is bounded by the raw retention (samples expired before
//!   they were sent are not sent);
//! - 400 and 422 are the target's verdict on the samples and would come again: they are counted
//!   `rejected`, logged, and the export goes on.
//!
//! A batch is in time order, so a series' points are in time order across its requests.
//! Batches follow the order of the transactions that stored them, which is time order for the
//! telemetry workers and for live collectors; a backfill (a collector catching up) arrives after
//! newer samples of its series, which VictoriaMetrics takes and Prometheus, Mimir and Thanos
//! take only with an out-of-order window (docs/CLUSTER.md).

use crate::WorkerError;
use crate::delivery::{Sent, post_as};
use netorch_domain::ingest::METRIC_PREFIX;
use netorch_domain::{MetricKind, TelemetrySample, Timestamp};
use netorch_remote_write::WriteRequestWriter;
use netorch_storage::Database;
use netorch_storage::export::{self, Names};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a worker holds a target after its last claim, renewal or send: another worker
/// takes over at most this long (and one pass interval) after the holder died.
pub const LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(15);

/// Stored samples read from the database at a time (on PostgreSQL, up to the end of the
/// transaction holding the last of them).
pub const READ_SAMPLES: usize = 50_000;

/// Stored samples per remote-write request: 9,000 points, about 200 KB compressed. Prometheus
/// sends 2,000 points a request by default, vmagent up to 10,000; every receiver named in the
/// docs takes this.
pub const REQUEST_SAMPLES: usize = 3_000;

/// How long a request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Node names kept between passes at most (a name never changes for an id).
const NODE_NAMES_KEPT: usize = 2_000_000;

/// Credentials for a target, read from a file at every pass (so they can be rotated without a
/// restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A file holding `username:password` (HTTP basic authentication).
    Basic(PathBuf),
    /// A file holding a bearer token.
    Bearer(PathBuf),
}

impl Credentials {
    /// The `Authorization` header's value.
    fn authorization(&self) -> Result<String, String> {
        use base64::Engine;
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_owned())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        match self {
            Credentials::Basic(path) => {
                let pair = read(path)?;
                if !pair.contains(':') {
                    return Err(format!("{} holds no `username:password`", path.display()));
                }
                Ok(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            Credentials::Bearer(path) => {
                let token = read(path)?;
                if token.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(format!("Bearer {token}"))
            }
        }
    }
}

/// A remote-write endpoint to export to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTarget {
    /// The endpoint's URL (`http://127.0.0.1:8428/api/v1/write`): the target's name in the
    /// database and in metrics.
    pub url: String,
    /// How to authenticate, if at all.
    pub credentials: Option<Credentials>,
}

impl ExportTarget {
    /// A target at `url`, which must be an `http` or `https` URL without credentials in it
    /// (they would be stored and shown as the target's name: give them in a file instead).
    pub fn new(url: &str, credentials: Option<Credentials>) -> Result<Self, String> {
        netorch_domain::alert::check_http_url(url)?;
        let authority = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority.contains('@') {
            return Err(format!(
                "{url:?} holds credentials: give them in a file \
                 (--export-remote-write-basic-auth-file or --export-remote-write-bearer-token-file)"
            ));
        }
        Ok(ExportTarget {
            url: url.to_owned(),
            credentials,
        })
    }
}

/// What one [`Exporter::pass`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportPass {
    /// Whether this worker held the target (if not, another worker exports to it).
    pub held: bool,
    /// Stored samples the target took.
    pub sent: u64,
    /// Stored samples whose send failed (they are sent again).
    pub failed: u64,
    /// Stored samples the target refused for good.
    pub rejected: u64,
    /// Why the last send failed, when one did: the pass stopped there.
    pub error: Option<String>,
    /// How long the target asked to be left alone (`Retry-After`), when it did.
    pub retry_after: Option<Duration>,
    /// True when it stopped at its time budget with more to send.
    pub more: bool,
    /// How far behind the export is after the pass.
    pub lag: chrono::TimeDelta,
    /// Time spent reading samples and names from the database.
    pub reading: Duration,
    /// Time spent building and encoding requests.
    pub encoding: Duration,
    /// Time spent sending requests (until the target answered).
    pub sending: Duration,
}

/// The export to one target, as one worker runs it: a pass at a time.
#[derive(Debug)]
pub struct Exporter {
    target: ExportTarget,
    worker: String,
    agent: ureq::Agent,
    node_names: HashMap<i64, String>,
}

impl Exporter {
    /// The export to `target` by the worker named `worker`.
    pub fn new(target: ExportTarget, worker: impl Into<String>) -> Self {
        Exporter {
            target,
            worker: worker.into(),
            // No redirects: a redirected POST loses its body or its credentials; the 3xx is a
            // failure that names the new address in the log instead.
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(TIMEOUT))
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .into(),
            node_names: HashMap::new(),
        }
    }

    /// The target.
    pub fn target(&self) -> &ExportTarget {
        &self.target
    }

    /// One pass from `now`: claims the target (or finds another worker holds it), then sends
    /// what is stored past its cursor, a batch at a time, until nothing is left, a send fails,
    /// or `budget` is spent. The cursor moves after each batch the target took; the lease is
    /// renewed after every request, at `now` plus the time the pass has taken (so a long pass
    /// keeps its target while it makes progress).
    pub fn pass(
        &mut self,
        db: &Database,
        now: Timestamp,
        budget: Duration,
    ) -> Result<ExportPass, WorkerError> {
        let began = Instant::now();
        let at = || now + chrono::TimeDelta::from_std(began.elapsed()).unwrap_or_default();
        let url = self.target.url.clone();
        let mut conn = db.get()?;
        let cursor = export::claim(&mut conn, &url, &self.worker, now, LEASE)?;
        let mut pass = ExportPass {
            held: cursor.held_by(&self.worker, now),
            lag: cursor.lag(now),
            ..ExportPass::default()
        };
        if !pass.held {
            return Ok(pass);
        }
        let mut position = cursor.position;
        loop {
            let read_at = at();
            let read_began = Instant::now();
            let batch = export::read_after(&mut conn, position, READ_SAMPLES)?;
            // Caught up only when nothing is left, not even behind a running transaction:
            // everything committed before the read was sent once this batch is.
            let caught_up_at = (!batch.more && !batch.held_back).then_some(read_at);
            let mut sent = 0;
            let mut rejected = 0;
            if !batch.samples.is_empty() {
                let authorization = match self
                    .target
                    .credentials
                    .as_ref()
                    .map(|c| c.authorization())
                {
                    Some(Err(e)) => {
                        return self.failed(&mut conn, pass, batch.samples.len(), e, None, at());
                    }
                    Some(Ok(value)) => Some(value),
                    None => None,
                };
                let names = self.names(&mut conn, &batch.samples)?;
                pass.reading += read_began.elapsed();
                for chunk in batch.samples.chunks(REQUEST_SAMPLES) {
                    let encode_began = Instant::now();
                    let body = request_body(chunk, &names);
                    pass.encoding += encode_began.elapsed();
                    let send_began = Instant::now();
                    match self.post(&body, authorization.as_deref()) {
                        Sent::Ok => sent += chunk.len() as u64,
                        Sent::Refused(e) => {
                            log::warn!(
                                "export to {url}: {} samples refused for good, skipped: {e}",
                                chunk.len()
                            );
                            rejected += chunk.len() as u64;
                        }
                        Sent::Again(e, retry_after) => {
                            pass.sent += sent;
                            pass.rejected += rejected;
                            let unsent = batch.samples.len() - (sent + rejected) as usize;
                            return self.failed(&mut conn, pass, unsent, e, retry_after, at());
                        }
                    }
                    pass.sending += send_began.elapsed();
                    // Still ours? (Another worker may have taken over a stalled holder.)
                    if !export::renew(&mut conn, &url, &self.worker, at(), LEASE)? {
                        pass.sent += sent;
                        pass.rejected += rejected;
                        pass.held = false;
                        return Ok(pass);
                    }
                }
            }
            pass.sent += sent;
            pass.rejected += rejected;
            let moved = export::advance(
                &mut conn,
                &url,
                &self.worker,
                export::Sent {
                    position: batch.position,
                    samples: i64::try_from(sent).unwrap_or(i64::MAX),
                    caught_up_at,
                },
                at(),
                LEASE,
            )?;
            if !moved {
                pass.held = false;
                return Ok(pass);
            }
            position = batch.position;
            if !batch.more {
                pass.lag = export::cursor(&mut conn, &url)?.map_or(pass.lag, |c| c.lag(at()));
                return Ok(pass);
            }
            if began.elapsed() >= budget {
                pass.more = true;
                pass.lag = export::cursor(&mut conn, &url)?.map_or(pass.lag, |c| c.lag(at()));
                return Ok(pass);
            }
        }
    }

    /// Records a failed send (`samples` of the batch not sent) and ends the pass with it.
    fn failed(
        &self,
        conn: &mut netorch_storage::DbConnection,
        mut pass: ExportPass,
        samples: usize,
        error: String,
        retry_after: Option<chrono::TimeDelta>,
        now: Timestamp,
    ) -> Result<ExportPass, WorkerError> {
        pass.held =
            export::record_failure(conn, &self.target.url, &self.worker, &error, now, LEASE)?;
        pass.failed += samples as u64;
        pass.error = Some(error);
        pass.retry_after = retry_after.and_then(|d| d.to_std().ok());
        pass.lag = export::cursor(conn, &self.target.url)?.map_or(pass.lag, |c| c.lag(now));
        Ok(pass)
    }

    fn post(&self, body: &[u8], authorization: Option<&str>) -> Sent {
        let mut headers = vec![
            ("Content-Encoding", "snappy".to_owned()),
            ("X-Prometheus-Remote-Write-Version", "0.1.0".to_owned()),
            (
                "User-Agent",
                format!("netorch/{}", env!("CARGO_PKG_VERSION")),
            ),
        ];
        if let Some(value) = authorization {
            headers.push(("Authorization", value.to_owned()));
        }
        // 400 and 422 are the receiver's verdict on the samples themselves (malformed for it,
        // out of order for Prometheus without an out-of-order window): the same request would
        // get the same answer. Any other answer (a redirect, 401 or 403 while credentials are
        // rotated, 404 for a mistyped path, 413, 429, 5xx) is the setup's, not the samples':
        // tried again until it is fixed, the backlog waiting in the database.
        post_as(
            &self.agent,
            &self.target.url,
            "application/x-protobuf",
            body,
            &headers,
            |status| matches!(status, 400 | 422),
        )
    }

    /// The names of the deployments and nodes of `samples`: nodes' from the cache, read from
    /// the database the first time an id is seen; deployments' read every batch (a rename
    /// shows at once).
    fn names(
        &mut self,
        conn: &mut netorch_storage::DbConnection,
        samples: &[TelemetrySample],
    ) -> Result<Names, WorkerError> {
        let mut deployments: Vec<i64> = samples.iter().map(|s| s.deployment_id.get()).collect();
        deployments.sort_unstable();
        deployments.dedup();
        let mut unknown: Vec<i64> = samples
            .iter()
            .map(|s| s.node_id.get())
            .filter(|id| !self.node_names.contains_key(id))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let mut names = export::names(conn, &deployments, &unknown)?;
        if self.node_names.len() + names.nodes.len() > NODE_NAMES_KEPT {
            self.node_names.clear();
        }
        self.node_names.extend(names.nodes.drain());
        // A node removed since (scale-down) has no name any more: its id stands for it.
        for id in unknown {
            self.node_names.entry(id).or_insert_with(|| id.to_string());
        }
        names.nodes = samples
            .iter()
            .filter_map(|s| {
                let id = s.node_id.get();
                self.node_names.get(&id).map(|name| (id, name.clone()))
            })
            .collect();
        Ok(names)
    }

    /// Gives the target up (a clean stop): another worker takes over at once.
    pub fn release(&self, db: &Database) -> Result<(), WorkerError> {
        export::release(&mut *db.get()?, &self.target.url, &self.worker)?;
        Ok(())
    }
}

/// The body of the remote-write request of `samples`: three series per node, each series'
/// samples in time order (one a millisecond), labels sorted by name as the specification
/// requires; snappy-compressed.
pub fn request_body(samples: &[TelemetrySample], names: &Names) -> Vec<u8> {
    let metrics = MetricKind::ALL.map(|kind| format!("{METRIC_PREFIX}{}", kind.as_str()));
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_unstable_by_key(|&i| (samples[i].node_id, samples[i].timestamp));
    let mut writer = WriteRequestWriter::new();
    let mut kept = Vec::new();
    for group in order.chunk_by(|&a, &b| samples[a].node_id == samples[b].node_id) {
        // Remote write carries milliseconds, netorch microseconds: of a node's samples less
        // than a millisecond apart the first is sent (a second point at the same millisecond
        // would be refused by Prometheus, and dropped by VictoriaMetrics' deduplication).
        kept.clear();
        let mut last = None;
        for &i in group {
            let millis = samples[i].timestamp.timestamp_millis();
            if last != Some(millis) {
                kept.push(i);
                last = Some(millis);
            }
        }
        let group = kept.as_slice();
        let first = &samples[group[0]];
        let (node, deployment) = (first.node_id.get(), first.deployment_id.get());
        let (node_id, deployment_id) = (node.to_string(), deployment.to_string());
        // A node removed since has no name: its id stands for it.
        let node_name = names
            .nodes
            .get(&node)
            .map_or(node_id.as_str(), String::as_str);
        for (kind, metric) in MetricKind::ALL.into_iter().zip(&metrics) {
            let mut labels = [("", ""); 5];
            labels[0] = ("__name__", metric.as_str());
            labels[1] = ("deployment", deployment_id.as_str());
            let mut n = 2;
            // A deployment deleted since has no name: the label is left out, never empty.
            if let Some(name) = names.deployments.get(&deployment) {
                labels[n] = ("deployment_name", name.as_str());
                n += 1;
            }
            labels[n] = ("node", node_name);
            labels[n + 1] = ("node_id", node_id.as_str());
            let points = group.iter().map(|&i| {
                let sample = &samples[i];
                (
                    kind.of(&sample.metrics),
                    sample.timestamp.timestamp_millis(),
                )
            });
            writer.series(&labels[..n + 2], points);
        }
    }
    writer.body()
}

/// How often a caught-up exporter looks for new samples (and a worker not holding a target
/// tries to claim it).
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A pass's time budget: it ends after the batch that passes it, so that the loop sees a stop
/// promptly and the lease is renewed well within [`LEASE`].
pub const PASS_BUDGET: Duration = Duration::from_secs(5);

/// The longest wait after repeated failures: shorter than [`LEASE`], so that a holder keeps its
/// target while the target is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Exports to `exporter`'s target until `stopped` turns true: a pass every `interval` when
/// caught up, at once while a backlog remains, after a doubling backoff (0.5 s to
/// [`MAX_BACKOFF`]) while sends fail. Gives the target up when it stops.
#[cfg(feature = "loops")]
pub(crate) async fn run_loop(
    db: Database,
    exporter: Exporter,
    metrics: std::sync::Arc<netorch_metrics::Metrics>,
    interval: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    use netorch_metrics::ExportOutcome;
    use std::sync::{Arc, Mutex};
    let url = exporter.target().url.clone();
    metrics.export().target(&url);
    let exporter = Arc::new(Mutex::new(exporter));
    let mut failures: u32 = 0;
    let mut wait = Duration::ZERO;
    log::info!("exporting telemetry to {url} by remote write");
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        if *stopped.borrow() {
            break;
        }
        let (db_for_pass, exporter_for_pass) = (db.clone(), Arc::clone(&exporter));
        let outcome = tokio::task::spawn_blocking(move || {
            // A pass that panicked left nothing half-done that matters (the cursor is in the
            // database): carry on with the exporter.
            let mut exporter = exporter_for_pass
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            exporter.pass(&db_for_pass, chrono::Utc::now(), PASS_BUDGET)
        })
        .await
        .unwrap_or_else(|e| Err(WorkerError::Task(e.to_string())));
        let mut asked = None;
        let error = match outcome {
            Ok(pass) => {
                asked = pass.retry_after;
                let export = metrics.export();
                export.lag(&url, pass.lag.as_seconds_f64());
                export.samples(&url, ExportOutcome::Sent, pass.sent);
                export.samples(&url, ExportOutcome::Failed, pass.failed);
                export.samples(&url, ExportOutcome::Rejected, pass.rejected);
                wait = if pass.more { Duration::ZERO } else { interval };
                pass.error
            }
            Err(e) => Some(e.to_string()),
        };
        match error {
            Some(error) => {
                failures = failures.saturating_add(1);
                // The target's Retry-After, if longer, within the cap that keeps the lease.
                wait = Duration::from_millis(500)
                    .saturating_mul(1 << (failures - 1).min(5))
                    .max(asked.unwrap_or_default())
                    .min(MAX_BACKOFF);
                // The first failure and then every tenth: a target down for an hour is not
                // thousands of lines.
                if failures == 1 || failures.is_multiple_of(10) {
                    log::warn!(
                        "export to {url} failed ({failures} in a row), next try in {wait:?}: {error}"
                    );
                }
            }
            None if failures > 0 => {
                log::info!("export to {url} works again after {failures} failures");
                failures = 0;
            }
            None => {}
        }
    }
    let released = tokio::task::spawn_blocking(move || {
        exporter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .release(&db)
    })
    .await;
    if let Ok(Err(e)) = released {
        log::warn!("export to {url}: could not give the target up: {e}");
    }
    log::info!("export to {url} stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use netorch_domain::{DeploymentId, Metrics, NodeId, SampleId};
    use netorch_remote_write::Sample;

    fn sample(node: i64, second: i64, latency: f64) -> TelemetrySample {
        TelemetrySample {
            id: SampleId(node * 100 + second),
            node_id: NodeId(node),
            deployment_id: DeploymentId(7),
            timestamp: chrono::DateTime::from_timestamp(1_800_000_000 + second, 0).expect("time"),
            metrics: Metrics {
                latency_ms: latency,
                throughput_gbps: 9.5,
                error_rate: 0.25,
            },
        }
    }

    #[test]
    fn a_request_holds_three_series_a_node_in_time_order_with_sorted_labels() {
        let names = Names {
            deployments: HashMap::from([(7, "edge-north".to_owned())]),
            nodes: HashMap::from([(1, "node-001".to_owned())]),
        };
        // Node 1's samples out of time order (a backfill), node 2 gone (no name).
        let samples = [sample(1, 10, 12.0), sample(2, 5, 30.0), sample(1, 5, 11.0)];
        let request = netorch_remote_write::decode_v1(&request_body(&samples, &names))
            .expect("a remote write 1.0 body");
        assert_eq!(request.timeseries.len(), 6);
        for series in &request.timeseries {
            let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "labels sorted by name");
            assert!(series.labels.iter().all(|l| !l.value.is_empty()));
            assert!(
                series
                    .samples
                    .windows(2)
                    .all(|w| w[0].timestamp < w[1].timestamp)
            );
        }
        let first = &request.timeseries[0];
        let labels: Vec<(&str, &str)> = first
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("__name__", "netorch_latency_ms"),
                ("deployment", "7"),
                ("deployment_name", "edge-north"),
                ("node", "node-001"),
                ("node_id", "1"),
            ]
        );
        assert_eq!(
            first.samples,
            [
                Sample {
                    value: 11.0,
                    timestamp: 1_800_000_005_000
                },
                Sample {
                    value: 12.0,
                    timestamp: 1_800_000_010_000
                },
            ]
        );
        let gone: Vec<&str> = request.timeseries[3..]
            .iter()
            .map(|s| s.labels[3].value.as_str())
            .collect();
        assert_eq!(gone, ["2", "2", "2"], "a removed node is named by its id");
        let metrics: Vec<&str> = request.timeseries[..3]
            .iter()
            .map(|s| s.labels[0].value.as_str())
            .collect();
        assert_eq!(
            metrics,
            [
                "netorch_latency_ms",
                "netorch_throughput_gbps",
                "netorch_error_rate"
            ]
        );
        assert_eq!(request.timeseries[1].samples[0].value, 9.5);

        // Two samples of a node within one millisecond: the first is sent.
        let mut close = sample(1, 20, 13.0);
        close.timestamp += chrono::TimeDelta::microseconds(400);
        let samples = [sample(1, 20, 14.0), close];
        let request = netorch_remote_write::decode_v1(&request_body(&samples, &names))
            .expect("a remote write 1.0 body");
        assert_eq!(request.timeseries[0].samples.len(), 1);
    }

    #[test]
    fn targets_are_http_urls_without_credentials() {
        assert!(ExportTarget::new("http://127.0.0.1:8428/api/v1/write", None).is_ok());
        assert!(ExportTarget::new("https://mimir.example.com/api/v1/push", None).is_ok());
        for bad in [
            "ftp://example.com/write",
            "127.0.0.1:8428/api/v1/write",
            "http://user:secret@example.com/api/v1/write",
        ] {
            assert!(ExportTarget::new(bad, None).is_err(), "{bad}");
        }
        // An @ past the authority is not a credential.
        assert!(ExportTarget::new("http://example.com/write?from=a@b", None).is_ok());
    }

    #[test]
    fn credentials_are_read_from_their_files() {
        let dir = tempfile::tempdir().expect("dir");
        let basic = dir.path().join("basic");
        std::fs::write(&basic, "netorch:s3cret\n").expect("write");
        assert_eq!(
            Credentials::Basic(basic.clone()).authorization(),
            Ok("Basic bmV0b3JjaDpzM2NyZXQ=".to_owned())
        );
        let token = dir.path().join("token");
        std::fs::write(&token, "abc.def\n").expect("write");
        assert_eq!(
            Credentials::Bearer(token).authorization(),
            Ok("Bearer abc.def".to_owned())
        );
        std::fs::write(&basic, "no-colon").expect("write");
        assert!(Credentials::Basic(basic).authorization().is_err());
        assert!(
            Credentials::Bearer(dir.path().join("missing"))
                .authorization()
                .is_err()
        );
    }
}
