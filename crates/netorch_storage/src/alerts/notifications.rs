//! The durable outbox. A notification is written in the transaction of the change it tells
//! (`enqueue`), one per receiver that must hear it; workers claim the due ones under a
//! lease ([`claim_due`]), in order per receiver and alert (a notification waits while an
//! earlier one of the same receiver and alert is pending), and record how the attempt went
//! ([`finish`]).

use crate::schema::{alert_receivers, notifications};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use netorch_domain::alert::{Notification, NotificationAction, NotificationState, ReceiverKind};
use netorch_domain::{Alert, AlertId, AlertState, NotificationId, ReceiverId, Timestamp};
use std::collections::HashSet;

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications)]
struct NotificationRow {
    id: i64,
    receiver_id: i64,
    alert_id: i64,
    fingerprint: String,
    action: String,
    state: String,
    attempts: i32,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

fn corrupt(detail: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptRow {
        table: "notifications",
        detail: detail.to_string(),
    }
}

impl TryFrom<NotificationRow> for Notification {
    type Error = StorageError;

    fn try_from(row: NotificationRow) -> Result<Self> {
        Ok(Notification {
            id: NotificationId(row.id),
            receiver_id: ReceiverId(row.receiver_id),
            alert_id: AlertId(row.alert_id),
            fingerprint: row.fingerprint,
            action: row.action.parse().map_err(corrupt)?,
            state: row.state.parse().map_err(corrupt)?,
            attempts: u32::try_from(row.attempts).map_err(corrupt)?,
            next_attempt_at: from_micros("notifications", row.next_attempt_at)?,
            last_error: row.last_error,
            created_at: from_micros("notifications", row.created_at)?,
            delivered_at: row
                .delivered_at
                .map(|at| from_micros("notifications", at))
                .transpose()?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = notifications)]
#[diesel(treat_none_as_default_value = false)]
struct NewNotificationRow<'a> {
    receiver_id: i64,
    alert_id: i64,
    fingerprint: &'a str,
    action: &'static str,
    state: &'static str,
    attempts: i32,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
    lease_until: Option<i64>,
}

/// Writes the notifications telling `action` of each of `alerts` (the caller's transaction): a
/// firing to every receiver unless a silence holds the alert back or the receiver has heard of
/// its firing already; a resolve or an acknowledgement only to those that heard of its firing
/// (and an acknowledgement only to the kinds that hear them). A few statements whatever the
/// number of alerts. How many.
pub(crate) fn enqueue(
    conn: &mut DbConnection,
    alerts: &[Alert],
    action: NotificationAction,
    now: Timestamp,
) -> Result<usize> {
    let alerts: Vec<&Alert> = alerts
        .iter()
        .filter(|alert| {
            action != NotificationAction::Firing
                || (!alert.is_silenced() && alert.state == AlertState::Firing)
        })
        .collect();
    if alerts.is_empty() {
        return Ok(0);
    }
    let receivers: Vec<(i64, String)> = alert_receivers::table
        .select((alert_receivers::id, alert_receivers::kind))
        .load(conn)?;
    if receivers.is_empty() {
        return Ok(0);
    }
    // Which receivers heard of each alert's firing.
    let mut told: HashSet<(i64, i64)> = HashSet::new();
    let ids: Vec<i64> = alerts.iter().map(|alert| alert.id.get()).collect();
    for chunk in ids.chunks(10_000) {
        let heard: Vec<(i64, i64)> = notifications::table
            .filter(notifications::alert_id.eq_any(chunk))
            .filter(notifications::action.eq(NotificationAction::Firing.as_str()))
            .select((notifications::alert_id, notifications::receiver_id))
            .load(conn)?;
        told.extend(heard);
    }
    let at = to_micros(now);
    let mut rows: Vec<NewNotificationRow<'_>> = Vec::new();
    for alert in &alerts {
        for (id, kind) in &receivers {
            let heard = told.contains(&(alert.id.get(), *id));
            let wanted = match action {
                NotificationAction::Firing => !heard,
                NotificationAction::Resolved => heard,
                NotificationAction::Acknowledged => {
                    heard
                        && kind
                            .parse::<ReceiverKind>()
                            .is_ok_and(ReceiverKind::hears_acknowledgements)
                }
            };
            if wanted {
                rows.push(NewNotificationRow {
                    receiver_id: *id,
                    alert_id: alert.id.get(),
                    fingerprint: &alert.fingerprint,
                    action: action.as_str(),
                    state: NotificationState::Pending.as_str(),
                    attempts: 0,
                    next_attempt_at: at,
                    last_error: None,
                    created_at: at,
                    delivered_at: None,
                    lease_until: None,
                });
            }
        }
    }
    let mut written = 0;
    // 11 columns a row: chunks stay under SQLite's 32,766 bound parameters.
    for chunk in rows.chunks(2_000) {
        written += on_backend!(conn, |inner| {
            diesel::insert_into(notifications::table)
                .values(chunk)
                .execute(inner)?
        });
    }
    Ok(written)
}

/// Claims up to `limit` due notifications until `lease_until`: pending, due at `now`, not
/// leased by another worker, and the first pending one of their receiver and alert (so a
/// resolve never goes before its firing). Oldest first.
pub fn claim_due(
    conn: &mut DbConnection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: usize,
) -> Result<Vec<Notification>> {
    let at = to_micros(now);
    // Every pending notification's place in its receiver's and alert's queue: few are pending
    // unless receivers are down, and then the queue is what must be respected.
    let pending: Vec<NotificationRow> = notifications::table
        .filter(notifications::state.eq(NotificationState::Pending.as_str()))
        .order(notifications::id.asc())
        .select(NotificationRow::as_select())
        .load(conn)?;
    let leased: HashSet<i64> = notifications::table
        .filter(notifications::state.eq(NotificationState::Pending.as_str()))
        .filter(notifications::lease_until.gt(at))
        .select(notifications::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut heads = HashSet::new();
    let mut claimed = Vec::new();
    for row in pending {
        // Only the first pending of each receiver and alert may go.
        if !heads.insert((row.receiver_id, row.alert_id)) {
            continue;
        }
        if row.next_attempt_at > at || leased.contains(&row.id) {
            continue;
        }
        use notifications::dsl as n;
        let taken = diesel::update(
            notifications::table
                .find(row.id)
                .filter(n::state.eq(NotificationState::Pending.as_str()))
                .filter(n::lease_until.is_null().or(n::lease_until.le(at))),
        )
        .set(n::lease_until.eq(Some(to_micros(lease_until))))
        .execute(conn)?;
        if taken == 1 {
            claimed.push(Notification::try_from(row)?);
            if claimed.len() >= limit {
                break;
            }
        }
    }
    Ok(claimed)
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver took it.
    Delivered,
    /// Try again at this time; what went wrong.
    Retry(Timestamp, String),
    /// Given up: what went wrong.
    Failed(String),
}

/// Records attempt `attempts + 1` of notification `id` at `now`.
pub fn finish(
    conn: &mut DbConnection,
    id: NotificationId,
    outcome: &Attempt,
    now: Timestamp,
) -> Result<()> {
    use notifications::dsl as n;
    let target = notifications::table.find(id.get());
    let attempts = n::attempts.eq(n::attempts + 1);
    let unleased = n::lease_until.eq(None::<i64>);
    match outcome {
        Attempt::Delivered => diesel::update(target)
            .set((
                n::state.eq(NotificationState::Delivered.as_str()),
                n::delivered_at.eq(Some(to_micros(now))),
                attempts,
                unleased,
            ))
            .execute(conn)?,
        Attempt::Retry(at, error) => diesel::update(target)
            .set((
                n::next_attempt_at.eq(to_micros(*at)),
                n::last_error.eq(Some(error.as_str())),
                attempts,
                unleased,
            ))
            .execute(conn)?,
        Attempt::Failed(error) => diesel::update(target)
            .set((
                n::state.eq(NotificationState::Failed.as_str()),
                n::last_error.eq(Some(error.as_str())),
                attempts,
                unleased,
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Notifications newest first, in `state` if given, with ids below `before`, at most
/// `limit`.
pub fn list(
    conn: &mut DbConnection,
    state: Option<NotificationState>,
    before: Option<NotificationId>,
    limit: i64,
) -> Result<Vec<Notification>> {
    let mut query = notifications::table
        .select(NotificationRow::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(notifications::state.eq(state.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(notifications::id.lt(before.get()));
    }
    let rows: Vec<NotificationRow> = query
        .order(notifications::id.desc())
        .limit(limit)
        .load(conn)?;
    rows.into_iter().map(Notification::try_from).collect()
}

/// One notification, or [`StorageError::NotificationNotFound`].
pub fn get(conn: &mut DbConnection, id: NotificationId) -> Result<Notification> {
    let row: Option<NotificationRow> = notifications::table
        .find(id.get())
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()?;
    row.ok_or(StorageError::NotificationNotFound)
        .and_then(Notification::try_from)
}

/// Sends a failed notification again: pending from `now`, its attempts counted anew and its
/// maximum age measured from `now`. One that is not failed is left as it is.
pub fn retry(conn: &mut DbConnection, id: NotificationId, now: Timestamp) -> Result<Notification> {
    use notifications::dsl as n;
    let at = to_micros(now);
    get(conn, id)?;
    diesel::update(
        notifications::table
            .find(id.get())
            .filter(n::state.eq(NotificationState::Failed.as_str())),
    )
    .set((
        n::state.eq(NotificationState::Pending.as_str()),
        n::attempts.eq(0),
        n::next_attempt_at.eq(at),
        n::created_at.eq(at),
        n::lease_until.eq(None::<i64>),
    ))
    .execute(conn)?;
    get(conn, id)
}

/// How many notifications are pending, and since when the oldest waits.
pub fn backlog(conn: &mut DbConnection) -> Result<(u64, Option<Timestamp>)> {
    let (count, oldest): (i64, Option<i64>) = notifications::table
        .filter(notifications::state.eq(NotificationState::Pending.as_str()))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(notifications::created_at),
        ))
        .first(conn)?;
    Ok((
        count.unsigned_abs(),
        oldest
            .map(|at| from_micros("notifications", at))
            .transpose()?,
    ))
}

/// Deletes delivered and failed notifications made before `before`, at most `limit`.
pub fn expire(conn: &mut DbConnection, before: Timestamp, limit: i64) -> Result<usize> {
    let ids: Vec<i64> = notifications::table
        .filter(notifications::state.ne(NotificationState::Pending.as_str()))
        .filter(notifications::created_at.lt(to_micros(before)))
        .select(notifications::id)
        .limit(limit)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(notifications::table.filter(notifications::id.eq_any(ids))).execute(conn)?)
}
