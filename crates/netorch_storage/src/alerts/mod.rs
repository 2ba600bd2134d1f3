//! Alerts as stored: one row per firing of a condition, its acknowledgement and the silences
//! holding it back; the evaluation's changes applied in one transaction with their events
//! ([`apply_evaluation`]); the listing ([`list`]); and acknowledging. Silences are in
//! [`silences`], the alerts loop's per-deployment progress in [`evaluations`].

pub mod evaluations;
pub mod notifications;
pub mod receivers;
pub mod silences;

use crate::deployment_rows::{DeploymentLock, lock};
use crate::schema::alerts;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError, events as event_log, write_transaction};
use diesel::prelude::*;
use netorch_domain::alert::{Acknowledgement, AlertName, Labels, NotificationAction};
use netorch_domain::{
    Alert, AlertId, AlertState, DeploymentId, NewEvent, NodeId, Severity, SilenceId, Timestamp,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = alerts)]
struct AlertRow {
    id: i64,
    fingerprint: String,
    deployment_id: i64,
    node_id: Option<i64>,
    rule: String,
    alertname: String,
    severity: String,
    state: String,
    labels: String,
    annotations: String,
    active_since: i64,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    clear_since: Option<i64>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<i64>,
    ack_comment: Option<String>,
    silenced_by: String,
    updated_at: i64,
}

fn corrupt(detail: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptRow {
        table: "alerts",
        detail: detail.to_string(),
    }
}

fn json_of<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{column}: {e}")))
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StorageError::InvalidInput(e.to_string()))
}

impl TryFrom<AlertRow> for Alert {
    type Error = StorageError;

    fn try_from(row: AlertRow) -> Result<Self> {
        let at = |micros| from_micros("alerts", micros);
        let optional = |micros: Option<i64>| micros.map(at).transpose();
        let acknowledgement = match (row.acknowledged_by, row.acknowledged_at) {
            (Some(by), Some(when)) => Some(Acknowledgement {
                by,
                at: at(when)?,
                comment: row.ack_comment.unwrap_or_default(),
            }),
            _ => None,
        };
        let silenced_by: Vec<i64> = json_of("silenced_by", &row.silenced_by)?;
        Ok(Alert {
            id: AlertId(row.id),
            fingerprint: row.fingerprint,
            deployment_id: DeploymentId(row.deployment_id),
            node_id: row.node_id.map(NodeId),
            rule: row.rule,
            name: row.alertname.parse().map_err(corrupt)?,
            severity: row.severity.parse().map_err(corrupt)?,
            state: row.state.parse().map_err(corrupt)?,
            labels: json_of("labels", &row.labels)?,
            annotations: json_of("annotations", &row.annotations)?,
            active_since: at(row.active_since)?,
            starts_at: optional(row.starts_at)?,
            ends_at: optional(row.ends_at)?,
            clear_since: optional(row.clear_since)?,
            acknowledgement,
            silenced_by: silenced_by.into_iter().map(SilenceId).collect(),
            updated_at: at(row.updated_at)?,
        })
    }
}

/// A new alert, opened by an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// From the identity labels.
    pub fingerprint: String,
    /// The deployment.
    pub deployment_id: DeploymentId,
    /// The node, for an alert about one.
    pub node_id: Option<NodeId>,
    /// The rule's name.
    pub rule: String,
    /// What it is about.
    pub name: AlertName,
    /// How urgent.
    pub severity: Severity,
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// Whether it fires at once (a rule whose `for` is 0), else it is pending.
    pub firing: bool,
    /// The active silences matching its labels.
    pub silenced_by: Vec<SilenceId>,
}

/// One change an evaluation makes to a stored alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    /// Opens a new alert.
    Open(NewAlert),
    /// A pending alert fires, with the annotations of now.
    Fire(AlertId, Labels),
    /// A pending alert is dropped, never having fired.
    Drop(AlertId),
    /// A firing alert's condition is clear from now.
    StartClearing(AlertId),
    /// A clearing alert's condition holds again.
    HoldsAgain(AlertId),
    /// A firing alert resolves.
    Resolve(AlertId),
    /// A still-open alert's silences changed.
    Silence(AlertId, Vec<SilenceId>),
}

/// What an applied evaluation told: the alerts that fired and those that resolved, as they
/// are afterwards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Alerts that fired (opened firing, or pending that fired).
    pub fired: Vec<Alert>,
    /// Alerts that resolved.
    pub resolved: Vec<Alert>,
    /// How many changes were made.
    pub changes: usize,
}

#[derive(Insertable)]
#[diesel(table_name = alerts)]
#[diesel(treat_none_as_default_value = false)]
struct NewAlertRow<'a> {
    fingerprint: &'a str,
    deployment_id: i64,
    node_id: Option<i64>,
    rule: &'a str,
    alertname: &'static str,
    severity: &'static str,
    state: &'static str,
    labels: String,
    annotations: String,
    active_since: i64,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    clear_since: Option<i64>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<i64>,
    ack_comment: Option<String>,
    silenced_by: String,
    updated_at: i64,
}

/// The deployment's unresolved alerts (pending and firing), by ascending id.
pub fn open_for(conn: &mut DbConnection, deployment: DeploymentId) -> Result<Vec<Alert>> {
    let rows: Vec<AlertRow> = alerts::table
        .filter(alerts::deployment_id.eq(deployment.get()))
        .filter(alerts::state.ne(AlertState::Resolved.as_str()))
        .order(alerts::id.asc())
        .select(AlertRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Alert::try_from).collect()
}

/// Every unresolved alert of the fleet, by ascending id.
pub fn all_open(conn: &mut DbConnection) -> Result<Vec<Alert>> {
    let rows: Vec<AlertRow> = alerts::table
        .filter(alerts::state.ne(AlertState::Resolved.as_str()))
        .order(alerts::id.asc())
        .select(AlertRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Alert::try_from).collect()
}

/// The deployments that have unresolved alerts, ascending.
pub fn deployments_with_open(conn: &mut DbConnection) -> Result<Vec<DeploymentId>> {
    let ids: Vec<i64> = alerts::table
        .filter(alerts::state.ne(AlertState::Resolved.as_str()))
        .select(alerts::deployment_id)
        .distinct()
        .order(alerts::deployment_id.asc())
        .load(conn)?;
    Ok(ids.into_iter().map(DeploymentId).collect())
}

/// Alerts with ids `ids`, by ascending id (those that exist).
fn by_ids(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<Alert>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(10_000) {
        let rows: Vec<AlertRow> = alerts::table
            .filter(alerts::id.eq_any(chunk))
            .order(alerts::id.asc())
            .select(AlertRow::as_select())
            .load(conn)?;
        for row in rows {
            found.push(Alert::try_from(row)?);
        }
    }
    Ok(found)
}

/// Applies an evaluation of `deployment` for the alerts loop's `slot`: records the slot as
/// evaluated ([`evaluations::finish`]), makes `changes` and writes an `ALERT_FIRING` or
/// `ALERT_RESOLVED` event for each alert that fired or resolved, in one transaction. `None`
/// (and nothing written) when the slot was evaluated already (by another worker whose lease
/// this one outlived) or the deployment is gone; a worker killed before the commit leaves the
/// slot to evaluate again.
pub fn apply_evaluation(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    slot: Timestamp,
    changes: &[AlertChange],
    now: Timestamp,
) -> Result<Option<Applied>> {
    write_transaction(conn, |conn| {
        if lock(conn, &[deployment], DeploymentLock::AddRows)?.is_empty() {
            return Ok(None);
        }
        if !evaluations::finish(conn, deployment, slot)? {
            return Ok(None);
        }
        apply_changes(conn, changes, now).map(Some)
    })
}

/// Makes `changes` and writes the events of what fired and resolved (the caller's
/// transaction).
pub(crate) fn apply_changes(
    conn: &mut DbConnection,
    changes: &[AlertChange],
    now: Timestamp,
) -> Result<Applied> {
    let at = to_micros(now);
    let mut fired_ids = Vec::new();
    let mut resolved_ids = Vec::new();
    let mut made = 0;
    let (mut drop, mut clearing, mut holding) = (Vec::new(), Vec::new(), Vec::new());
    let mut unsilenced = Vec::new();
    for change in changes {
        match change {
            AlertChange::Open(new) => {
                let row = NewAlertRow {
                    fingerprint: &new.fingerprint,
                    deployment_id: new.deployment_id.get(),
                    node_id: new.node_id.map(NodeId::get),
                    rule: &new.rule,
                    alertname: new.name.as_str(),
                    severity: new.severity.as_str(),
                    state: if new.firing {
                        AlertState::Firing.as_str()
                    } else {
                        AlertState::Pending.as_str()
                    },
                    labels: json_text(&new.labels)?,
                    annotations: json_text(&new.annotations)?,
                    active_since: at,
                    starts_at: new.firing.then_some(at),
                    ends_at: None,
                    clear_since: None,
                    acknowledged_by: None,
                    acknowledged_at: None,
                    ack_comment: None,
                    silenced_by: json_text(&new.silenced_by)?,
                    updated_at: at,
                };
                let id: i64 = on_backend!(conn, |inner| {
                    diesel::insert_into(alerts::table)
                        .values(&row)
                        .returning(alerts::id)
                        .get_result(inner)?
                });
                made += 1;
                if new.firing {
                    fired_ids.push(id);
                }
            }
            AlertChange::Fire(id, annotations) => {
                let updated = diesel::update(
                    alerts::table
                        .find(id.get())
                        .filter(alerts::state.eq(AlertState::Pending.as_str())),
                )
                .set((
                    alerts::state.eq(AlertState::Firing.as_str()),
                    alerts::starts_at.eq(at),
                    alerts::annotations.eq(json_text(annotations)?),
                    alerts::updated_at.eq(at),
                ))
                .execute(conn)?;
                made += updated;
                if updated == 1 {
                    fired_ids.push(id.get());
                }
            }
            AlertChange::Drop(id) => drop.push(id.get()),
            AlertChange::StartClearing(id) => clearing.push(id.get()),
            AlertChange::HoldsAgain(id) => holding.push(id.get()),
            AlertChange::Resolve(id) => resolved_ids.push(id.get()),
            AlertChange::Silence(id, silences) => {
                made += diesel::update(alerts::table.find(id.get()))
                    .set(alerts::silenced_by.eq(json_text(silences)?))
                    .execute(conn)?;
                if silences.is_empty() {
                    unsilenced.push(id.get());
                }
            }
        }
    }
    let open = AlertState::Firing.as_str();
    for chunk in drop.chunks(10_000) {
        made += diesel::delete(
            alerts::table
                .filter(alerts::id.eq_any(chunk))
                .filter(alerts::state.eq(AlertState::Pending.as_str())),
        )
        .execute(conn)?;
    }
    for chunk in clearing.chunks(10_000) {
        made += diesel::update(
            alerts::table
                .filter(alerts::id.eq_any(chunk))
                .filter(alerts::state.eq(open)),
        )
        .set((alerts::clear_since.eq(Some(at)), alerts::updated_at.eq(at)))
        .execute(conn)?;
    }
    for chunk in holding.chunks(10_000) {
        made += diesel::update(
            alerts::table
                .filter(alerts::id.eq_any(chunk))
                .filter(alerts::state.eq(open)),
        )
        .set((
            alerts::clear_since.eq(None::<i64>),
            alerts::updated_at.eq(at),
        ))
        .execute(conn)?;
    }
    // Only those this transaction resolved: one resolved before is not told again.
    let mut newly_resolved = Vec::with_capacity(resolved_ids.len());
    for chunk in resolved_ids.chunks(10_000) {
        let (count, ids) = resolve(conn, chunk, at)?;
        made += count;
        newly_resolved.extend(ids);
    }
    let fired = by_ids(conn, &fired_ids)?;
    let resolved = by_ids(conn, &newly_resolved)?;
    // Told to the receivers in this same transaction: the outbox.
    notifications::enqueue(conn, &fired, NotificationAction::Firing, now)?;
    notifications::enqueue(conn, &resolved, NotificationAction::Resolved, now)?;
    // A firing alert no silence holds back any more is told now, if it was not before.
    if !unsilenced.is_empty() {
        let freed = by_ids(conn, &unsilenced)?;
        notifications::enqueue(conn, &freed, NotificationAction::Firing, now)?;
    }
    let events: Vec<NewEvent> = fired
        .iter()
        .map(|alert| NewEvent::alert_firing(alert, now))
        .chain(
            resolved
                .iter()
                .map(|alert| NewEvent::alert_resolved(alert, now)),
        )
        .collect();
    event_log::insert_many(conn, &events)?;
    Ok(Applied {
        fired,
        resolved,
        changes: made,
    })
}

/// Resolves the firing alerts `ids` at `at`; pending ones among them are dropped. How many
/// changed, and the ids of those that resolved.
fn resolve(conn: &mut DbConnection, ids: &[i64], at: i64) -> Result<(usize, Vec<i64>)> {
    let firing: Vec<i64> = alerts::table
        .filter(alerts::id.eq_any(ids))
        .filter(alerts::state.eq(AlertState::Firing.as_str()))
        .select(alerts::id)
        .load(conn)?;
    let dropped = diesel::delete(
        alerts::table
            .filter(alerts::id.eq_any(ids))
            .filter(alerts::state.eq(AlertState::Pending.as_str())),
    )
    .execute(conn)?;
    let resolved = diesel::update(alerts::table.filter(alerts::id.eq_any(&firing)))
        .set((
            alerts::state.eq(AlertState::Resolved.as_str()),
            alerts::ends_at.eq(Some(at)),
            alerts::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok((dropped + resolved, firing))
}

/// Resolves every unresolved alert of a deployment being deleted (the caller's delete
/// transaction), with their `ALERT_RESOLVED` events, so the history says how they ended.
pub(crate) fn resolve_for_deleted(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    now: Timestamp,
) -> Result<()> {
    let ids: Vec<AlertChange> = open_for(conn, deployment)?
        .into_iter()
        .map(|alert| match alert.state {
            AlertState::Pending => AlertChange::Drop(alert.id),
            _ => AlertChange::Resolve(alert.id),
        })
        .collect();
    apply_changes(conn, &ids, now).map(|_| ())
}

/// Which alerts a listing shows; every filter that is `Some` must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Of this deployment.
    pub deployment: Option<DeploymentId>,
    /// Of these deployments only (an API key limited to them).
    pub within: Option<Vec<DeploymentId>>,
    /// In this state.
    pub state: Option<AlertState>,
    /// Of this severity.
    pub severity: Option<Severity>,
    /// Acknowledged or not.
    pub acknowledged: Option<bool>,
    /// Silenced or not.
    pub silenced: Option<bool>,
    /// With this fingerprint (every firing of one condition).
    pub fingerprint: Option<String>,
}

/// Alerts newest first (descending id) that `filter` lets through, with ids below `before`,
/// at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    filter: &AlertFilter,
    before: Option<AlertId>,
    limit: i64,
) -> Result<Vec<Alert>> {
    let mut query = alerts::table.select(AlertRow::as_select()).into_boxed();
    if let Some(deployment) = filter.deployment {
        query = query.filter(alerts::deployment_id.eq(deployment.get()));
    }
    if let Some(within) = &filter.within {
        let ids: Vec<i64> = within.iter().map(|d| d.get()).collect();
        query = query.filter(alerts::deployment_id.eq_any(ids));
    }
    if let Some(state) = filter.state {
        query = query.filter(alerts::state.eq(state.as_str()));
    }
    if let Some(severity) = filter.severity {
        query = query.filter(alerts::severity.eq(severity.as_str()));
    }
    match filter.acknowledged {
        Some(true) => query = query.filter(alerts::acknowledged_by.is_not_null()),
        Some(false) => query = query.filter(alerts::acknowledged_by.is_null()),
        None => {}
    }
    match filter.silenced {
        Some(true) => query = query.filter(alerts::silenced_by.ne("[]")),
        Some(false) => query = query.filter(alerts::silenced_by.eq("[]")),
        None => {}
    }
    if let Some(fingerprint) = &filter.fingerprint {
        query = query.filter(alerts::fingerprint.eq(fingerprint.clone()));
    }
    if let Some(before) = before {
        query = query.filter(alerts::id.lt(before.get()));
    }
    let rows: Vec<AlertRow> = query.order(alerts::id.desc()).limit(limit).load(conn)?;
    rows.into_iter().map(Alert::try_from).collect()
}

/// One alert by id, or [`StorageError::AlertNotFound`].
pub fn get(conn: &mut DbConnection, id: AlertId) -> Result<Alert> {
    by_ids(conn, &[id.get()])?
        .pop()
        .ok_or(StorageError::AlertNotFound)
}

/// The latest alert with `fingerprint` (the open one if any), or
/// [`StorageError::AlertNotFound`].
pub fn latest_with_fingerprint(conn: &mut DbConnection, fingerprint: &str) -> Result<Alert> {
    let row: Option<AlertRow> = alerts::table
        .filter(alerts::fingerprint.eq(fingerprint))
        .order(alerts::id.desc())
        .select(AlertRow::as_select())
        .first(conn)
        .optional()?;
    row.ok_or(StorageError::AlertNotFound)
        .and_then(Alert::try_from)
}

/// Acknowledges the firing alert `id` as `by` with `comment`, with an `ALERT_ACKNOWLEDGED`
/// event; an alert acknowledged already keeps its first acknowledgement and nothing is
/// written. [`StorageError::AlertNotFiring`] for a pending or resolved one.
pub fn acknowledge(
    conn: &mut DbConnection,
    id: AlertId,
    by: &str,
    comment: &str,
    now: Timestamp,
) -> Result<Alert> {
    write_transaction(conn, |conn| {
        let alert = get(conn, id)?;
        if alert.state != AlertState::Firing {
            return Err(StorageError::AlertNotFiring(alert.state));
        }
        if alert.acknowledgement.is_some() {
            return Ok(alert);
        }
        let at = to_micros(now);
        diesel::update(alerts::table.find(id.get()))
            .set((
                alerts::acknowledged_by.eq(Some(by)),
                alerts::acknowledged_at.eq(Some(at)),
                alerts::ack_comment.eq(Some(comment)),
                alerts::updated_at.eq(at),
            ))
            .execute(conn)?;
        let alert = get(conn, id)?;
        notifications::enqueue(
            conn,
            std::slice::from_ref(&alert),
            NotificationAction::Acknowledged,
            now,
        )?;
        event_log::insert(
            conn,
            &NewEvent::alert_acknowledged(&alert, comment, now).by(Some(by)),
        )?;
        Ok(alert)
    })
}

/// Takes the acknowledgement of alert `id` back, with an `ALERT_UNACKNOWLEDGED` event (none
/// when it was not acknowledged). [`StorageError::AlertNotFiring`] for a resolved one: its
/// history stays as it ended.
pub fn unacknowledge(
    conn: &mut DbConnection,
    id: AlertId,
    by: &str,
    comment: &str,
    now: Timestamp,
) -> Result<Alert> {
    write_transaction(conn, |conn| {
        let alert = get(conn, id)?;
        if alert.state == AlertState::Resolved {
            return Err(StorageError::AlertNotFiring(alert.state));
        }
        if alert.acknowledgement.is_none() {
            return Ok(alert);
        }
        diesel::update(alerts::table.find(id.get()))
            .set((
                alerts::acknowledged_by.eq(None::<String>),
                alerts::acknowledged_at.eq(None::<i64>),
                alerts::ack_comment.eq(None::<String>),
                alerts::updated_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        let alert = get(conn, id)?;
        event_log::insert(
            conn,
            &NewEvent::alert_unacknowledged(&alert, comment, now).by(Some(by)),
        )?;
        Ok(alert)
    })
}

/// Deletes resolved alerts that ended before `before`, at most `limit`; how many.
pub fn expire_resolved(conn: &mut DbConnection, before: Timestamp, limit: i64) -> Result<usize> {
    let ids: Vec<i64> = alerts::table
        .filter(alerts::state.eq(AlertState::Resolved.as_str()))
        .filter(alerts::ends_at.lt(to_micros(before)))
        .select(alerts::id)
        .limit(limit)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(alerts::table.filter(alerts::id.eq_any(ids))).execute(conn)?)
}

/// The unresolved alerts of each of `deployments`, counted by state and severity (for the
/// deployment listing): one grouped read over the open alerts' index, whatever their history.
pub fn open_counts_of(
    conn: &mut DbConnection,
    deployments: &[DeploymentId],
) -> Result<Vec<(DeploymentId, AlertState, Severity, u64)>> {
    if deployments.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = deployments.iter().map(|id| id.get()).collect();
    let rows: Vec<(i64, String, String, i64)> = alerts::table
        .filter(alerts::deployment_id.eq_any(ids))
        .filter(alerts::state.ne(AlertState::Resolved.as_str()))
        .group_by((alerts::deployment_id, alerts::state, alerts::severity))
        .select((
            alerts::deployment_id,
            alerts::state,
            alerts::severity,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(deployment, state, severity, count)| {
            Ok((
                DeploymentId(deployment),
                state.parse().map_err(corrupt)?,
                severity.parse().map_err(corrupt)?,
                count.unsigned_abs(),
            ))
        })
        .collect()
}

/// Unresolved alerts counted by state and severity (for the metrics).
pub fn open_counts(conn: &mut DbConnection) -> Result<Vec<(AlertState, Severity, u64)>> {
    let rows: Vec<(String, String, i64)> = alerts::table
        .filter(alerts::state.ne(AlertState::Resolved.as_str()))
        .group_by((alerts::state, alerts::severity))
        .select((alerts::state, alerts::severity, diesel::dsl::count_star()))
        .load(conn)?;
    rows.into_iter()
        .map(|(state, severity, count)| {
            Ok((
                state.parse().map_err(corrupt)?,
                severity.parse().map_err(corrupt)?,
                count.unsigned_abs(),
            ))
        })
        .collect()
}
