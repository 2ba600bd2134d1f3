//! Alerts: the evaluation the alerts loop runs ([`evaluate`]), and the operations on alerts
//! and silences the API offers.
//!
//! An evaluation goes deployment by deployment. For each it claims the slot (a lease in
//! `alert_evaluations`), reads what the rules see ([`observe`]) and the open alerts, decides
//! the changes ([`decide`]) and applies them with their events in one transaction that also
//! records the slot as done: with any number of workers each deployment's slot is applied
//! once, and a worker killed mid-evaluation leaves it to the next one once its lease ends.

pub mod decide;
pub mod observe;

use crate::ServiceError;
use chrono::TimeDelta;
use decide::RuleTimings;
use netorch_domain::alert::{BOTTLENECK_RULE_NAME, NewSilence, SilenceState};
use netorch_domain::alert::{NewReceiver, Notification, NotificationState, Receiver};
use netorch_domain::{Alert, AlertId, DeploymentId, Silence, SilenceId, Timestamp};
use netorch_domain::{NotificationId, ReceiverId};
use netorch_storage::alerts::{self as store, evaluations, notifications, receivers, silences};
/// Which alerts a listing shows, and what an applied evaluation told (storage's types).
pub use netorch_storage::alerts::{AlertFilter, Applied};
use netorch_storage::{Database, DbConnection, StorageError, deployments};

/// What one pass of the alerts loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationTick {
    /// The slot evaluated.
    pub slot: Option<Timestamp>,
    /// Deployments this worker evaluated (others may have done the rest).
    pub evaluated: usize,
    /// Alerts that fired.
    pub fired: usize,
    /// Alerts that resolved.
    pub resolved: usize,
    /// Changes made in all.
    pub changes: usize,
    /// Silences that ended.
    pub silences_ended: usize,
    /// Nodes self-healing re-provisioned.
    pub remediated: usize,
    /// Deployments whose self-healing is stopped (too many unhealthy nodes).
    pub remediation_stopped: usize,
}

/// The start of the alerts loop's slot `now` falls in (slots `interval` long, aligned to the
/// epoch, so every worker computes the same).
pub fn slot_of(now: Timestamp, interval: TimeDelta) -> Timestamp {
    let length = interval.num_microseconds().unwrap_or(i64::MAX).max(1);
    let micros = now.timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros - micros.rem_euclid(length)).unwrap_or(now)
}

/// One pass of the alerts loop at `now` as worker `owner`: records the silences that ended,
/// then evaluates every deployment due for the slot of `interval` that no other worker holds,
/// each under a lease of `interval` (a worker that dies mid-evaluation delays a deployment by
/// at most that).
pub fn evaluate(
    db: &Database,
    owner: &str,
    interval: TimeDelta,
    now: Timestamp,
) -> Result<EvaluationTick, ServiceError> {
    let slot = slot_of(now, interval);
    let mut tick = EvaluationTick {
        slot: Some(slot),
        silences_ended: silences::record_ended(&mut *db.get()?, now)?,
        ..EvaluationTick::default()
    };
    let due = evaluations::due(&mut *db.get()?, slot)?;
    for deployment in due {
        let claimed = evaluations::claim(
            &mut *db.get()?,
            deployment,
            slot,
            owner,
            now + interval,
            now,
        )?;
        if !claimed {
            continue;
        }
        // Self-healing first, so that the evaluation sees a stop it records (and fires its
        // alert) at once; it acts on the alerts as the last evaluation left them.
        if let Some(outcome) = netorch_storage::remediation::pass(&mut *db.get()?, deployment, now)?
        {
            tick.remediated += outcome.remediated.len();
            tick.remediation_stopped += usize::from(outcome.stopped.is_some());
        }
        let Some(applied) = evaluate_deployment(db, deployment, slot, now)? else {
            continue;
        };
        tick.evaluated += 1;
        tick.fired += applied.fired.len();
        tick.resolved += applied.resolved.len();
        tick.changes += applied.changes;
    }
    Ok(tick)
}

/// Evaluates one claimed deployment for `slot` and applies the outcome; `None` when it is gone
/// or another worker applied the slot first.
pub fn evaluate_deployment(
    db: &Database,
    id: DeploymentId,
    slot: Timestamp,
    now: Timestamp,
) -> Result<Option<Applied>, ServiceError> {
    let deployment = match deployments::get(&mut *db.get()?, id) {
        Ok(deployment) => deployment,
        Err(StorageError::DeploymentNotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let observed = observe::observe(db, &deployment, now)?;
    let mut conn = db.get()?;
    let open = store::open_for(&mut conn, id)?;
    let active = silences::active(&mut conn, now)?;
    let rules = &deployment.alert_rules;
    let mut timings = RuleTimings::new();
    if rules.bottleneck.enabled {
        timings.insert(BOTTLENECK_RULE_NAME.to_owned(), rules.bottleneck.timing);
    }
    for rule in &rules.thresholds {
        timings.insert(rule.name.clone(), rule.timing);
    }
    let changes = decide::decide(
        id,
        observed,
        &open,
        &timings,
        &|labels| active.silencing(labels),
        now,
    );
    Ok(store::apply_evaluation(&mut conn, id, slot, &changes, now)?)
}

/// Deletes resolved alerts and ended silences older than `keep` before `now`, at most `limit`
/// of each; how many in all.
pub fn expire(
    conn: &mut DbConnection,
    keep: TimeDelta,
    now: Timestamp,
    limit: i64,
) -> Result<usize, ServiceError> {
    let before = now - keep;
    Ok(store::expire_resolved(conn, before, limit)?
        + silences::expire_ended(conn, before, limit)?
        + notifications::expire(conn, before, limit)?)
}

/// An alert named by its id or its fingerprint (16 hex digits): the latest with that
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertRef {
    /// By id.
    Id(AlertId),
    /// By fingerprint.
    Fingerprint(String),
}

impl AlertRef {
    /// `text` as an id (digits) or a fingerprint (16 hex digits); `None` for anything else.
    pub fn parse(text: &str) -> Option<AlertRef> {
        if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(AlertRef::Fingerprint(text.to_ascii_lowercase()));
        }
        text.parse::<i64>()
            .ok()
            .filter(|id| *id >= 1)
            .map(|id| AlertRef::Id(AlertId(id)))
    }
}

/// The alert `alert` names, or `Storage(AlertNotFound)`.
pub fn get(conn: &mut DbConnection, alert: &AlertRef) -> Result<Alert, ServiceError> {
    Ok(match alert {
        AlertRef::Id(id) => store::get(conn, *id)?,
        AlertRef::Fingerprint(fingerprint) => store::latest_with_fingerprint(conn, fingerprint)?,
    })
}

/// A page of alerts, newest first, after the cursor `before` (of any deployment the filter
/// names, deleted ones' history included).
pub fn list(
    conn: &mut DbConnection,
    filter: &AlertFilter,
    before: Option<AlertId>,
    limit: i64,
) -> Result<Vec<Alert>, ServiceError> {
    Ok(store::list(conn, filter, before, limit)?)
}

/// A page of `deployment`'s alerts, which must exist (`Storage(DeploymentNotFound)`).
pub fn list_of(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    filter: &AlertFilter,
    before: Option<AlertId>,
    limit: i64,
) -> Result<Vec<Alert>, ServiceError> {
    deployments::ensure_exists(conn, deployment)?;
    let filter = AlertFilter {
        deployment: Some(deployment),
        ..filter.clone()
    };
    Ok(store::list(conn, &filter, before, limit)?)
}

/// Acknowledges (`true`) or un-acknowledges the alert as `by` with `comment`.
pub fn acknowledge(
    conn: &mut DbConnection,
    alert: &AlertRef,
    acknowledged: bool,
    by: &str,
    comment: &str,
    now: Timestamp,
) -> Result<Alert, ServiceError> {
    let id = get(conn, alert)?.id;
    Ok(if acknowledged {
        store::acknowledge(conn, id, by, comment, now)?
    } else {
        store::unacknowledge(conn, id, by, comment, now)?
    })
}

/// Makes a silence.
pub fn create_silence(
    conn: &mut DbConnection,
    new: &NewSilence,
    now: Timestamp,
) -> Result<Silence, ServiceError> {
    Ok(silences::create(conn, new, now)?)
}

/// Expires a silence now.
pub fn expire_silence(
    conn: &mut DbConnection,
    id: SilenceId,
    by: &str,
    now: Timestamp,
) -> Result<Silence, ServiceError> {
    Ok(silences::expire(conn, id, by, now)?)
}

/// A page of silences, newest first.
pub fn list_silences(
    conn: &mut DbConnection,
    state: Option<SilenceState>,
    before: Option<SilenceId>,
    limit: i64,
    now: Timestamp,
) -> Result<Vec<Silence>, ServiceError> {
    Ok(silences::list(conn, state, before, limit, now)?)
}

/// One silence.
pub fn get_silence(conn: &mut DbConnection, id: SilenceId) -> Result<Silence, ServiceError> {
    Ok(silences::get(conn, id)?)
}

/// Makes a receiver (checked: [`NewReceiver::check`]).
pub fn create_receiver(
    conn: &mut DbConnection,
    new: &NewReceiver,
    now: Timestamp,
) -> Result<Receiver, ServiceError> {
    new.check().map_err(StorageError::from)?;
    Ok(receivers::create(conn, new, now)?)
}

/// Every receiver.
pub fn list_receivers(conn: &mut DbConnection) -> Result<Vec<Receiver>, ServiceError> {
    Ok(receivers::list(conn)?)
}

/// One receiver.
pub fn get_receiver(conn: &mut DbConnection, id: ReceiverId) -> Result<Receiver, ServiceError> {
    Ok(receivers::get(conn, id)?)
}

/// Deletes a receiver with its notifications.
pub fn delete_receiver(conn: &mut DbConnection, id: ReceiverId) -> Result<(), ServiceError> {
    Ok(receivers::delete(conn, id)?)
}

/// A page of notifications, newest first.
pub fn list_notifications(
    conn: &mut DbConnection,
    state: Option<NotificationState>,
    before: Option<NotificationId>,
    limit: i64,
) -> Result<Vec<Notification>, ServiceError> {
    Ok(notifications::list(conn, state, before, limit)?)
}

/// Sends a failed notification again.
pub fn retry_notification(
    conn: &mut DbConnection,
    id: NotificationId,
    now: Timestamp,
) -> Result<Notification, ServiceError> {
    Ok(notifications::retry(conn, id, now)?)
}
