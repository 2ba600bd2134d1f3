//! Delivery: the outbox's notifications sent to their receivers, the one place netorch makes
//! outbound HTTP requests. Run by the alerts loop after each evaluation (`run`), or called
//! directly ([`deliver`]).
//!
//! Each pass first sends Alertmanager receivers their firing alerts again when a minute has
//! passed (Alertmanager resolves an alert it stops hearing about), then claims the due
//! notifications under a lease and sends them: Alertmanager's batched (every due notification
//! of the receiver in one `POST /api/v2/alerts`), a webhook's and PagerDuty's one a request. A
//! 2xx delivers; a timeout, a refused connection, 429 or 5xx is tried again after
//! [`retry_delay`] (at least the `Retry-After` asked for) until the notification is
//! `max_age` old, then it fails; any other status fails it at once (a retry would be refused
//! the same). A worker killed mid-pass leaves its claimed notifications to the next once the
//! lease ends: delivery is at least once, and a repeat carries the same fingerprint (PagerDuty's
//! `dedup_key`).

use crate::WorkerError;
use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use netorch_domain::alert::{
    ALERTMANAGER_RESEND, Notification, NotificationAction, Receiver, ReceiverKind,
    alertmanager_alert, pagerduty_event, retry_delay, webhook_payload,
};
use netorch_domain::{Alert, AlertState, ReceiverId, Timestamp};
use netorch_storage::Database;
use netorch_storage::alerts::notifications::{self, Attempt};
use netorch_storage::alerts::{self as store, receivers};
use std::collections::HashMap;
use std::time::Duration;

/// The header carrying a webhook request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "X-Netorch-Timestamp";
/// The header carrying its signature: `v1=` and the lower-case hex HMAC-SHA256, keyed with the
/// receiver's secret, of the timestamp, a `.`, and the body.
pub const SIGNATURE_HEADER: &str = "X-Netorch-Signature";

/// How delivery behaves.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Where people reach the dashboard, for the alerts' links.
    pub external_url: String,
    /// How long one request may take.
    pub timeout: Duration,
    /// How old a notification may grow while it is retried before it fails.
    pub max_age: TimeDelta,
    /// The most notifications one pass sends.
    pub batch: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            external_url: "http://127.0.0.1:8000".into(),
            timeout: Duration::from_secs(10),
            max_age: TimeDelta::hours(6),
            batch: 500,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryTick {
    /// Notifications the receivers took.
    pub delivered: usize,
    /// Notifications to try again.
    pub retried: usize,
    /// Notifications given up on.
    pub failed: usize,
    /// Firing alerts sent again to Alertmanager receivers.
    pub resent: usize,
    /// The attempts by receiver kind and outcome (`delivered`, `retried`, `failed`).
    pub by_kind: std::collections::BTreeMap<(&'static str, &'static str), usize>,
}

/// The signature of a webhook request: `v1=` and hex HMAC-SHA256 of `timestamp.body`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let stamp = timestamp.to_string();
    format!("v1={}", hmac_hex(secret, &[stamp.as_bytes(), b".", body]))
}

/// Lower-case hex HMAC-SHA256 of the concatenated `parts`, keyed with `secret`.
fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How one request went.
pub(crate) enum Sent {
    Ok,
    /// Worth trying again, after at least this long if the receiver said.
    Again(String, Option<TimeDelta>),
    /// Refused for good.
    Refused(String),
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8], headers: &[(&str, String)]) -> Sent {
    // No answer, 408 (the receiver timed the request out), 429 and 5xx are worth another try;
    // any other answer would be the same again.
    let refused = |status| !matches!(status, 408 | 429 | 500..=599);
    post_as(agent, url, "application/json", body, headers, refused)
}

/// POSTs `body` of `content_type` with `headers`, and sorts the answer: 2xx went through; a
/// status `refused` says is refused for good; no answer or any other status is worth another
/// try. Shared by the alert receivers and the telemetry export, which draw the line apart.
pub(crate) fn post_as(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, String)],
    refused: fn(u16) -> bool,
) -> Sent {
    let mut request = agent.post(url).header("Content-Type", content_type);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    match request.send(body) {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map(TimeDelta::seconds);
            match status {
                200..=299 => Sent::Ok,
                _ if !refused(status) => Sent::Again(format!("HTTP {status}"), retry_after),
                _ => {
                    let mut response = response;
                    let text: String = response
                        .body_mut()
                        .read_to_string()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect();
                    Sent::Refused(format!("HTTP {status}: {text}"))
                }
            }
        }
        // Timeouts, refused connections, resets, TLS failures: the receiver may come back.
        Err(e) => Sent::Again(e.to_string(), None),
    }
}

pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The endpoint of a receiver's requests.
fn endpoint(receiver: &Receiver) -> String {
    match receiver.kind {
        ReceiverKind::Alertmanager => {
            format!("{}/api/v2/alerts", receiver.url.trim_end_matches('/'))
        }
        _ => receiver.url.clone(),
    }
}

/// One pass of delivery at `now`, as worker `owner`.
pub fn deliver(
    db: &Database,
    options: &DeliveryOptions,
    now: Timestamp,
) -> Result<DeliveryTick, WorkerError> {
    let mut tick = DeliveryTick::default();
    let all = receivers::list(&mut *db.get()?)?;
    if all.is_empty() {
        return Ok(tick);
    }
    let agent = agent(options.timeout);
    // Alertmanager hears the firing alerts again every minute.
    for receiver in all.iter().filter(|r| r.kind == ReceiverKind::Alertmanager) {
        if !receivers::claim_resend(&mut *db.get()?, receiver.id, ALERTMANAGER_RESEND, now)? {
            continue;
        }
        let firing: Vec<Alert> = store::all_open(&mut *db.get()?)?
            .into_iter()
            .filter(|a| a.state == AlertState::Firing && !a.is_silenced())
            .collect();
        for chunk in firing.chunks(options.batch.max(1)) {
            let body: Vec<serde_json::Value> = chunk
                .iter()
                .map(|a| {
                    alertmanager_alert(a, NotificationAction::Firing, now, &options.external_url)
                })
                .collect();
            let body = serde_json::to_vec(&body).map_err(|e| WorkerError::Task(e.to_string()))?;
            match post(&agent, &endpoint(receiver), &body, &[]) {
                Sent::Ok => tick.resent += chunk.len(),
                Sent::Again(e, _) | Sent::Refused(e) => {
                    log::warn!("receiver {}: re-sending firing alerts: {e}", receiver.name);
                }
            }
        }
    }
    let lease = chrono::TimeDelta::from_std(options.timeout * 3).unwrap_or(TimeDelta::minutes(1));
    let due = notifications::claim_due(&mut *db.get()?, now, now + lease, options.batch)?;
    if due.is_empty() {
        return Ok(tick);
    }
    let by_id: HashMap<ReceiverId, &Receiver> = all.iter().map(|r| (r.id, r)).collect();
    let mut conn = db.get()?;
    let mut alerts: HashMap<i64, Alert> = HashMap::new();
    for n in &due {
        if let std::collections::hash_map::Entry::Vacant(slot) = alerts.entry(n.alert_id.get()) {
            match store::get(&mut conn, n.alert_id) {
                Ok(alert) => {
                    slot.insert(alert);
                }
                // Its history expired: nothing left to tell.
                Err(netorch_storage::StorageError::AlertNotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    // Each outcome is recorded as soon as its request is answered, so a worker killed mid-pass
    // has sent again, at worst, the one request it was in.
    let mut record = |n: &Notification, sent: Sent| -> Result<(), WorkerError> {
        let attempt = outcome(n, sent, options, now, &mut tick);
        let kind = by_id
            .get(&n.receiver_id)
            .map_or("gone", |r| r.kind.as_str());
        let result = match attempt {
            Attempt::Delivered => "delivered",
            Attempt::Retry(..) => "retried",
            Attempt::Failed(_) => "failed",
        };
        *tick.by_kind.entry((kind, result)).or_default() += 1;
        notifications::finish(&mut conn, n.id, &attempt, now)?;
        Ok(())
    };
    // Alertmanager: every due notification of a receiver in one request.
    let mut batches: HashMap<ReceiverId, Vec<&Notification>> = HashMap::new();
    for n in &due {
        let (Some(receiver), Some(alert)) =
            (by_id.get(&n.receiver_id), alerts.get(&n.alert_id.get()))
        else {
            record(n, Sent::Refused("the receiver or the alert is gone".into()))?;
            continue;
        };
        match receiver.kind {
            ReceiverKind::Alertmanager => batches.entry(receiver.id).or_default().push(n),
            ReceiverKind::Webhook => {
                let body = serde_json::to_vec(&webhook_payload(
                    &receiver.name,
                    alert,
                    n.action,
                    &options.external_url,
                ))
                .map_err(|e| WorkerError::Task(e.to_string()))?;
                let stamp = now.timestamp();
                let signature = sign(receiver.secret.as_deref().unwrap_or_default(), stamp, &body);
                let headers = [
                    (TIMESTAMP_HEADER, stamp.to_string()),
                    (SIGNATURE_HEADER, signature),
                ];
                record(n, post(&agent, &endpoint(receiver), &body, &headers))?;
            }
            ReceiverKind::PagerDuty => {
                let event = pagerduty_event(
                    receiver.secret.as_deref().unwrap_or_default(),
                    alert,
                    n.action,
                    &options.external_url,
                );
                let body =
                    serde_json::to_vec(&event).map_err(|e| WorkerError::Task(e.to_string()))?;
                record(n, post(&agent, &endpoint(receiver), &body, &[]))?;
            }
        }
    }
    for (receiver, batch) in batches {
        let receiver = by_id[&receiver];
        let body: Vec<serde_json::Value> = batch
            .iter()
            .filter(|n| n.action != NotificationAction::Acknowledged)
            .filter_map(|n| {
                alerts
                    .get(&n.alert_id.get())
                    .map(|a| alertmanager_alert(a, n.action, now, &options.external_url))
            })
            .collect();
        let body = serde_json::to_vec(&body).map_err(|e| WorkerError::Task(e.to_string()))?;
        let sent = post(&agent, &endpoint(receiver), &body, &[]);
        for n in batch {
            let copy = match &sent {
                Sent::Ok => Sent::Ok,
                Sent::Again(e, after) => Sent::Again(e.clone(), *after),
                Sent::Refused(e) => Sent::Refused(e.clone()),
            };
            record(n, copy)?;
        }
    }
    Ok(tick)
}

/// What the attempt of `n` that met `sent` leaves it as, counted in `tick`.
fn outcome(
    n: &Notification,
    sent: Sent,
    options: &DeliveryOptions,
    now: Timestamp,
    tick: &mut DeliveryTick,
) -> Attempt {
    let attempt = match sent {
        Sent::Ok => {
            tick.delivered += 1;
            Attempt::Delivered
        }
        Sent::Again(error, _) if now - n.created_at >= options.max_age => {
            tick.failed += 1;
            Attempt::Failed(format!(
                "{error} (still failing after {} s)",
                options.max_age.num_seconds()
            ))
        }
        Sent::Again(error, retry_after) => {
            tick.retried += 1;
            let jitter = f64::from(now.timestamp_subsec_micros() % 1_000) / 1_000.0;
            Attempt::Retry(now + retry_delay(n.attempts, jitter, retry_after), error)
        }
        Sent::Refused(error) => {
            tick.failed += 1;
            Attempt::Failed(error)
        }
    };
    match &attempt {
        Attempt::Failed(error) => log::warn!(
            "notification {} ({} of alert {}) failed: {error}",
            n.id,
            n.action.as_str(),
            n.alert_id
        ),
        Attempt::Retry(_, error) => {
            log::debug!("notification {} will be tried again: {error}", n.id)
        }
        Attempt::Delivered => {}
    }
    attempt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_timestamp_and_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex("Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let signature = sign("Jefe", 1_800_000_000, b"{\"a\":1}");
        assert_eq!(
            signature,
            format!("v1={}", hmac_hex("Jefe", &[b"1800000000.{\"a\":1}"]))
        );
        assert!(signature.starts_with("v1="));
        assert_eq!(signature.len(), 3 + 64);
        assert_eq!(signature, sign("Jefe", 1_800_000_000, b"{\"a\":1}"));
        assert_ne!(signature, sign("Jefe", 1_800_000_001, b"{\"a\":1}"));
        assert_ne!(signature, sign("jefe", 1_800_000_000, b"{\"a\":1}"));
    }
}
