//! The audit log.

use crate::connection::write_transaction;
use crate::schema::events;
use crate::sqlite_bulk::{self, SqliteRows, bind_values};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use netorch_domain::{DeploymentId, Event, EventId, EventType, NewEvent, NodeId};

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    id: i64,
    deployment_id: Option<i64>,
    node_id: Option<i64>,
    event_type: String,
    message: String,
    metadata: String,
    created_at: i64,
}

impl TryFrom<EventRow> for Event {
    type Error = StorageError;

    fn try_from(row: EventRow) -> Result<Self> {
        let metadata = match serde_json::from_str(&row.metadata) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(StorageError::CorruptRow {
                    table: "events",
                    detail: format!("metadata of event {} is not a JSON object", row.id),
                });
            }
        };
        Ok(Event {
            id: EventId(row.id),
            deployment_id: row.deployment_id.map(DeploymentId),
            node_id: row.node_id.map(NodeId),
            event_type: row.event_type.parse()?,
            message: row.message,
            metadata,
            created_at: from_micros("events", row.created_at)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = events)]
#[diesel(treat_none_as_default_value = false)]
struct NewEventRow<'a> {
    deployment_id: Option<i64>,
    node_id: Option<i64>,
    event_type: &'static str,
    message: &'a str,
    metadata: String,
    created_at: i64,
    actor: Option<&'a str>,
}

impl<'a> From<&'a NewEvent> for NewEventRow<'a> {
    fn from(event: &'a NewEvent) -> Self {
        NewEventRow {
            deployment_id: event.deployment_id.map(DeploymentId::get),
            node_id: event.node_id.map(NodeId::get),
            event_type: event.event_type.as_str(),
            message: &event.message,
            // A map of JSON values always serializes.
            metadata: serde_json::to_string(&event.metadata).unwrap_or_else(|_| "{}".to_owned()),
            created_at: to_micros(event.created_at),
            actor: event.actor(),
        }
    }
}

/// The SQLite statement that appends events.
struct SqliteEventInsert;

impl SqliteRows for NewEventRow<'_> {
    const HEAD: &'static str = "INSERT INTO events \
        (deployment_id, node_id, event_type, message, metadata, created_at, actor) VALUES ";
    const TAIL: &'static str = "";
    const CHUNK: usize = 2_000;
    type CacheKey = SqliteEventInsert;
    type Returning = BigInt;

    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        bind_values!(out;
            Nullable<BigInt> => &self.deployment_id,
            Nullable<BigInt> => &self.node_id,
            Text => &self.event_type,
            Text => &self.message,
            Text => &self.metadata,
            BigInt => &self.created_at,
            Nullable<Text> => &self.actor,
        )
    }
}

/// Makes event ids commit in the order they are drawn, so that a reader paging the log with
/// `after` never steps past an event that commits later with a smaller id.
///
/// SQLite commits one writer at a time, so there it holds already. On PostgreSQL, concurrent
/// transactions draw ids in one order and may commit in another; there the appending
/// transaction takes a transaction-scoped advisory lock before it draws ids, held until it
/// commits. Every write path appends its events last, so the lock covers only the append and
/// the commit.
fn lock_event_order(conn: &mut DbConnection) -> Result<()> {
    #[cfg(feature = "postgres")]
    if let DbConnection::Postgresql(inner) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(crate::locks::EVENTS)
            .execute(inner)?;
    }
    // Without the postgres feature there is nothing to lock.
    let _ = conn;
    Ok(())
}

/// Appends one event. Call it last in the transaction that made the change it records (see
/// `lock_event_order`); outside a transaction it makes its own.
pub fn insert(conn: &mut DbConnection, event: &NewEvent) -> Result<()> {
    insert_many(conn, std::slice::from_ref(event))
}

/// Appends many events, last in the transaction that made the changes they record: a cached
/// multi-row statement per chunk on SQLite, one binary COPY on PostgreSQL.
pub fn insert_many(conn: &mut DbConnection, batch: &[NewEvent]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewEventRow<'_>> = batch.iter().map(NewEventRow::from).collect();
    write_transaction(conn, |conn| {
        lock_event_order(conn)?;
        match conn {
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(inner) => {
                sqlite_bulk::execute(inner, &rows)?;
            }
            #[cfg(feature = "postgres")]
            DbConnection::Postgresql(inner) => {
                diesel::copy_from(events::table)
                    .from_insertable(&rows)
                    .execute(inner)?;
            }
        }
        Ok(())
    })
}

/// Which events to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this deployment's events.
    pub deployment: Option<DeploymentId>,
    /// Only events after this one (a cursor: the last id of the previous page).
    pub after: Option<EventId>,
    /// Only events of this type.
    pub event_type: Option<EventType>,
    /// Only this node's events.
    pub node: Option<NodeId>,
    /// Only events caused by this actor (an API key's name, or `anonymous`).
    pub actor: Option<String>,
    /// At most this many.
    pub limit: i64,
}

impl EventQuery {
    /// The default page size, as the API's.
    pub const DEFAULT_LIMIT: i64 = 100;

    /// Every event of `deployment` from its first, [`Self::DEFAULT_LIMIT`] a page; narrow it
    /// with the fields.
    pub fn of_deployment(deployment: DeploymentId) -> Self {
        EventQuery {
            deployment: Some(deployment),
            ..EventQuery::default()
        }
    }

    /// The query for the page after `page`: `None` when `page` was the last (shorter than the
    /// limit).
    pub fn next(&self, page: &[Event]) -> Option<EventQuery> {
        let last = page.last()?;
        (i64::try_from(page.len()).unwrap_or(i64::MAX) >= self.limit).then(|| EventQuery {
            after: Some(last.id),
            ..self.clone()
        })
    }
}

impl Default for EventQuery {
    /// Every event of every deployment from the first, [`Self::DEFAULT_LIMIT`] a page.
    fn default() -> Self {
        EventQuery {
            deployment: None,
            after: None,
            event_type: None,
            node: None,
            actor: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// The events `query` selects, page after page, in order of occurrence: each item one
/// [`list`] of at most `query.limit` events. Stops after the first short page (or an error).
/// The cursor moves with each page, so events recorded meanwhile are read too.
pub fn pages<'c>(
    conn: &'c mut DbConnection,
    query: EventQuery,
) -> impl Iterator<Item = Result<Vec<Event>>> + 'c {
    let mut next = Some(query);
    std::iter::from_fn(move || {
        let query = next.take()?;
        let page = list(conn, &query);
        if let Ok(events) = &page {
            next = query.next(events);
        }
        Some(page)
    })
}

/// Events in order of occurrence (ascending id). Event ids commit in order (every append takes
/// the event-order lock on PostgreSQL until its transaction commits), so a page never gains an
/// earlier event after it was read.
pub fn list(conn: &mut DbConnection, query: &EventQuery) -> Result<Vec<Event>> {
    let rows: Vec<EventRow> = on_backend!(conn, |inner| {
        let mut select = events::table.into_boxed();
        if let Some(deployment) = query.deployment {
            select = select.filter(events::deployment_id.eq(deployment.get()));
        }
        if let Some(after) = query.after {
            select = select.filter(events::id.gt(after.get()));
        }
        if let Some(event_type) = query.event_type {
            select = select.filter(events::event_type.eq(event_type.as_str()));
        }
        if let Some(node) = query.node {
            select = select.filter(events::node_id.eq(node.get()));
        }
        if let Some(actor) = &query.actor {
            select = select.filter(events::actor.eq(actor.clone()));
        }
        select
            .order(events::id.asc())
            .limit(query.limit)
            .select(EventRow::as_select())
            .load(inner)?
    });
    rows.into_iter().map(Event::try_from).collect()
}

/// The cursor that starts a reader at the last `count` events of `deployment`: the id of the
/// event just before them, or `None` when the deployment has at most `count` events (then the
/// reader starts at its first). What a live view opens with, so that it does not page through a
/// large rollout's whole history first.
pub fn cursor_before_last(
    conn: &mut DbConnection,
    deployment: DeploymentId,
    count: i64,
) -> Result<Option<EventId>> {
    let id: Option<i64> = on_backend!(conn, |inner| {
        events::table
            .filter(events::deployment_id.eq(deployment.get()))
            .order(events::id.desc())
            .offset(count)
            .limit(1)
            .select(events::id)
            .first(inner)
            .optional()?
    });
    Ok(id.map(EventId))
}
