//! Silences as stored. Making or expiring one marks the unresolved alerts it matches (or
//! matched) in the same transaction, so a listing shows them silenced at once, and the alerts
//! loop keeps the marks true as silences start and end.

use super::{AlertChange, apply_changes};
use crate::schema::silences;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError, events as event_log, write_transaction};
use diesel::prelude::*;
use netorch_domain::alert::{ActiveSilences, NewSilence, SilenceState};
use netorch_domain::{NewEvent, Silence, SilenceId, Timestamp};

#[derive(Queryable, Selectable)]
#[diesel(table_name = silences)]
struct SilenceRow {
    id: i64,
    matchers: String,
    starts_at: i64,
    ends_at: i64,
    created_by: String,
    comment: String,
    created_at: i64,
    expired_by: Option<String>,
}

impl TryFrom<SilenceRow> for Silence {
    type Error = StorageError;

    fn try_from(row: SilenceRow) -> Result<Self> {
        Ok(Silence {
            id: SilenceId(row.id),
            matchers: serde_json::from_str(&row.matchers).map_err(|e| {
                StorageError::CorruptRow {
                    table: "silences",
                    detail: format!("matchers: {e}"),
                }
            })?,
            starts_at: from_micros("silences", row.starts_at)?,
            ends_at: from_micros("silences", row.ends_at)?,
            created_by: row.created_by,
            comment: row.comment,
            created_at: from_micros("silences", row.created_at)?,
            expired_by: row.expired_by,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = silences)]
#[diesel(treat_none_as_default_value = false)]
struct NewSilenceRow<'a> {
    matchers: String,
    starts_at: i64,
    ends_at: i64,
    created_by: &'a str,
    comment: &'a str,
    created_at: i64,
    expired_by: Option<&'a str>,
    expiry_recorded: bool,
}

/// Makes a silence, with its `SILENCE_CREATED` event, and marks the unresolved alerts it
/// holds back (if it is active now). Refused ([`StorageError::Domain`]) unless
/// [`NewSilence::check`] passes.
pub fn create(conn: &mut DbConnection, new: &NewSilence, now: Timestamp) -> Result<Silence> {
    new.check(now)?;
    let row = NewSilenceRow {
        matchers: serde_json::to_string(&new.matchers)
            .map_err(|e| StorageError::InvalidInput(e.to_string()))?,
        starts_at: to_micros(new.starts_at),
        ends_at: to_micros(new.ends_at),
        created_by: &new.created_by,
        comment: &new.comment,
        created_at: to_micros(now),
        expired_by: None,
        expiry_recorded: false,
    };
    write_transaction(conn, |conn| {
        let stored: SilenceRow = on_backend!(conn, |inner| {
            diesel::insert_into(silences::table)
                .values(&row)
                .returning(SilenceRow::as_returning())
                .get_result(inner)?
        });
        let silence = Silence::try_from(stored)?;
        mark_silenced(conn, now)?;
        event_log::insert(
            conn,
            &NewEvent::silence_created(&silence, now).by(Some(&new.created_by)),
        )?;
        Ok(silence)
    })
}

/// Ends a silence now (`DELETE /silences/{id}`), with its `SILENCE_EXPIRED` event, and
/// unmarks the alerts it held back. One that has ended already is left as it is.
pub fn expire(conn: &mut DbConnection, id: SilenceId, by: &str, now: Timestamp) -> Result<Silence> {
    write_transaction(conn, |conn| {
        let silence = get(conn, id)?;
        if silence.state(now) == SilenceState::Expired {
            return Ok(silence);
        }
        let at = to_micros(now);
        // A silence that has not started yet ends where it would have started, so it never
        // held anything back.
        let end = at.max(to_micros(silence.starts_at));
        use silences::dsl as s;
        diesel::update(silences::table.find(id.get()))
            .set((
                s::ends_at.eq(end),
                s::expired_by.eq(Some(by)),
                s::expiry_recorded.eq(true),
            ))
            .execute(conn)?;
        let silence = get(conn, id)?;
        mark_silenced(conn, now)?;
        event_log::insert(conn, &NewEvent::silence_expired(&silence, now).by(Some(by)))?;
        Ok(silence)
    })
}

/// Records the `SILENCE_EXPIRED` event of each silence that has reached its end by `now`
/// without one, and re-marks the alerts: the alerts loop's, once per tick. How many ended.
pub fn record_ended(conn: &mut DbConnection, now: Timestamp) -> Result<usize> {
    write_transaction(conn, |conn| {
        use silences::dsl as s;
        let rows: Vec<SilenceRow> = silences::table
            .filter(s::expiry_recorded.eq(false))
            .filter(s::ends_at.le(to_micros(now)))
            .select(SilenceRow::as_select())
            .load(conn)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ended: Vec<Silence> = rows
            .into_iter()
            .map(Silence::try_from)
            .collect::<Result<_>>()?;
        let ids: Vec<i64> = ended.iter().map(|s| s.id.get()).collect();
        diesel::update(silences::table.filter(s::id.eq_any(ids)))
            .set(s::expiry_recorded.eq(true))
            .execute(conn)?;
        mark_silenced(conn, now)?;
        let events: Vec<NewEvent> = ended
            .iter()
            .map(|silence| NewEvent::silence_expired(silence, now))
            .collect();
        event_log::insert_many(conn, &events)?;
        Ok(ended.len())
    })
}

/// Sets each unresolved alert's `silenced_by` to the silences active at `now` that match it
/// (the caller's transaction), writing only those that change.
pub(crate) fn mark_silenced(conn: &mut DbConnection, now: Timestamp) -> Result<()> {
    let active = active(conn, now)?;
    let changes: Vec<AlertChange> = super::all_open(conn)?
        .into_iter()
        .filter_map(|alert| {
            let silencing = active.silencing(&alert.labels);
            (silencing != alert.silenced_by).then_some(AlertChange::Silence(alert.id, silencing))
        })
        .collect();
    apply_changes(conn, &changes, now)?;
    Ok(())
}

/// The silences active at `now`, compiled.
pub fn active(conn: &mut DbConnection, now: Timestamp) -> Result<ActiveSilences> {
    let at = to_micros(now);
    let rows: Vec<SilenceRow> = silences::table
        .filter(silences::starts_at.le(at))
        .filter(silences::ends_at.gt(at))
        .select(SilenceRow::as_select())
        .load(conn)?;
    let silences: Vec<Silence> = rows
        .into_iter()
        .map(Silence::try_from)
        .collect::<Result<_>>()?;
    Ok(ActiveSilences::new(&silences, now))
}

/// One silence, or [`StorageError::SilenceNotFound`].
pub fn get(conn: &mut DbConnection, id: SilenceId) -> Result<Silence> {
    let row: Option<SilenceRow> = silences::table
        .find(id.get())
        .select(SilenceRow::as_select())
        .first(conn)
        .optional()?;
    row.ok_or(StorageError::SilenceNotFound)
        .and_then(Silence::try_from)
}

/// Silences newest first (descending id), in `state` at `now` if given, with ids below
/// `before`, at most `limit`. Expired ones stay listed until they are older than the alert
/// history.
pub fn list(
    conn: &mut DbConnection,
    state: Option<SilenceState>,
    before: Option<SilenceId>,
    limit: i64,
    now: Timestamp,
) -> Result<Vec<Silence>> {
    let at = to_micros(now);
    let mut query = silences::table.select(SilenceRow::as_select()).into_boxed();
    query = match state {
        Some(SilenceState::Pending) => query
            .filter(silences::starts_at.gt(at))
            .filter(silences::ends_at.gt(silences::starts_at)),
        Some(SilenceState::Active) => query
            .filter(silences::starts_at.le(at))
            .filter(silences::ends_at.gt(at)),
        Some(SilenceState::Expired) => query.filter(
            silences::ends_at
                .le(at)
                .or(silences::ends_at.le(silences::starts_at)),
        ),
        None => query,
    };
    if let Some(before) = before {
        query = query.filter(silences::id.lt(before.get()));
    }
    let rows: Vec<SilenceRow> = query.order(silences::id.desc()).limit(limit).load(conn)?;
    rows.into_iter().map(Silence::try_from).collect()
}

/// Deletes silences that ended before `before` (their events stay), at most `limit`.
pub fn expire_ended(conn: &mut DbConnection, before: Timestamp, limit: i64) -> Result<usize> {
    let ids: Vec<i64> = silences::table
        .filter(silences::ends_at.lt(to_micros(before)))
        .filter(silences::expiry_recorded.eq(true))
        .select(silences::id)
        .limit(limit)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(silences::table.filter(silences::id.eq_any(ids))).execute(conn)?)
}
