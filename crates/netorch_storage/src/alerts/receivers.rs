//! Receivers as stored: where alerts are told. Deleting one deletes its notifications.

use crate::schema::alert_receivers;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use netorch_domain::alert::{NewReceiver, Receiver};
use netorch_domain::{ReceiverId, Timestamp};

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_receivers)]
struct ReceiverRow {
    id: i64,
    name: String,
    kind: String,
    url: String,
    secret: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ReceiverRow> for Receiver {
    type Error = StorageError;

    fn try_from(row: ReceiverRow) -> Result<Self> {
        Ok(Receiver {
            id: ReceiverId(row.id),
            name: row.name,
            kind: row.kind.parse().map_err(|e: netorch_domain::DomainError| {
                StorageError::CorruptRow {
                    table: "alert_receivers",
                    detail: e.to_string(),
                }
            })?,
            url: row.url,
            secret: row.secret,
            created_at: from_micros("alert_receivers", row.created_at)?,
            updated_at: from_micros("alert_receivers", row.updated_at)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = alert_receivers)]
#[diesel(treat_none_as_default_value = false)]
struct NewReceiverRow<'a> {
    name: &'a str,
    kind: &'static str,
    url: &'a str,
    secret: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
    resent_at: Option<i64>,
}

/// Makes a receiver; [`StorageError::ReceiverExists`] when the name is taken.
pub fn create(conn: &mut DbConnection, new: &NewReceiver, now: Timestamp) -> Result<Receiver> {
    let row = NewReceiverRow {
        name: &new.name,
        kind: new.kind.as_str(),
        url: &new.url,
        secret: new.secret.as_deref(),
        created_at: to_micros(now),
        updated_at: to_micros(now),
        resent_at: None,
    };
    let inserted: std::result::Result<ReceiverRow, diesel::result::Error> =
        on_backend!(conn, |inner| {
            diesel::insert_into(alert_receivers::table)
                .values(&row)
                .returning(ReceiverRow::as_returning())
                .get_result(inner)
        });
    match inserted {
        Ok(row) => Receiver::try_from(row),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(StorageError::ReceiverExists(new.name.clone())),
        Err(e) => Err(e.into()),
    }
}

/// Every receiver, by id.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Receiver>> {
    let rows: Vec<ReceiverRow> = alert_receivers::table
        .order(alert_receivers::id.asc())
        .select(ReceiverRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Receiver::try_from).collect()
}

/// One receiver, or [`StorageError::ReceiverNotFound`].
pub fn get(conn: &mut DbConnection, id: ReceiverId) -> Result<Receiver> {
    let row: Option<ReceiverRow> = alert_receivers::table
        .find(id.get())
        .select(ReceiverRow::as_select())
        .first(conn)
        .optional()?;
    row.ok_or(StorageError::ReceiverNotFound)
        .and_then(Receiver::try_from)
}

/// Deletes a receiver and its notifications; [`StorageError::ReceiverNotFound`] when absent.
pub fn delete(conn: &mut DbConnection, id: ReceiverId) -> Result<()> {
    crate::write_transaction(conn, |conn| {
        diesel::delete(
            crate::schema::notifications::table
                .filter(crate::schema::notifications::receiver_id.eq(id.get())),
        )
        .execute(conn)?;
        match diesel::delete(alert_receivers::table.find(id.get())).execute(conn)? {
            0 => Err(StorageError::ReceiverNotFound),
            _ => Ok(()),
        }
    })
}

/// Claims the Alertmanager receiver's re-send of the firing alerts at `now`: true when its
/// last one is `every` old or more (and then it is this caller's), false when another worker
/// did it since.
pub fn claim_resend(
    conn: &mut DbConnection,
    id: ReceiverId,
    every: chrono::TimeDelta,
    now: Timestamp,
) -> Result<bool> {
    use alert_receivers::dsl as r;
    let due = to_micros(now - every);
    let claimed = diesel::update(
        alert_receivers::table
            .find(id.get())
            .filter(r::resent_at.is_null().or(r::resent_at.le(due))),
    )
    .set(r::resent_at.eq(Some(to_micros(now))))
    .execute(conn)?;
    Ok(claimed == 1)
}
