//! Multi-row statements on SQLite, prepared once and reused.
//!
//! diesel's own batch insert builds and prepares its SQL anew on every call, which costs more
//! than SQLite's work for the rows. A [`SqliteBulk`] statement's SQL depends only on its row
//! count, and its cache key is a type, so a full chunk's statement is prepared once per
//! connection and then only rebound (a shorter last chunk is prepared, run and dropped, so the
//! cache holds one statement per kind whatever the batch sizes).

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{QueryResult, RunQueryDsl};

/// Rows that one statement binds as `(?, ?, ...)` groups between a fixed head and tail.
pub(crate) trait SqliteRows {
    /// The SQL before the first group, ending where the groups start.
    const HEAD: &'static str;
    /// The SQL after the last group.
    const TAIL: &'static str;
    /// Rows per statement: bounded by SQLite's 32,766 bound parameters.
    const CHUNK: usize;
    /// The statement cache key (any private type unique to the statement).
    type CacheKey: 'static;
    /// The SQL type of a `RETURNING` column, for statements that return one.
    type Returning: diesel::sql_types::SqlType + diesel::sql_types::SingleValue;

    /// Binds this row's values, each separated by a comma (each bind writes its own `?`).
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

/// One statement over at most [`SqliteRows::CHUNK`] rows.
pub(crate) struct SqliteBulk<'a, R>(&'a [R]);

impl<R: SqliteRows> QueryId for SqliteBulk<'_, R> {
    type QueryId = R::CacheKey;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<R: SqliteRows> QueryFragment<Sqlite> for SqliteBulk<'_, R> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        if self.0.len() != R::CHUNK {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(R::HEAD);
        for (index, row) in self.0.iter().enumerate() {
            out.push_sql(if index == 0 { "(" } else { ",(" });
            row.bind(&mut out)?;
            out.push_sql(")");
        }
        out.push_sql(R::TAIL);
        Ok(())
    }
}

impl<R: SqliteRows> Query for SqliteBulk<'_, R> {
    type SqlType = R::Returning;
}

impl<R> RunQueryDsl<SqliteConnection> for SqliteBulk<'_, R> {}

/// Runs the statement over `rows`, a chunk at a time; returns the rows affected.
pub(crate) fn execute<R: SqliteRows>(
    conn: &mut SqliteConnection,
    rows: &[R],
) -> QueryResult<usize> {
    let mut affected = 0;
    for chunk in rows.chunks(R::CHUNK) {
        affected += SqliteBulk(chunk).execute(conn)?;
    }
    Ok(affected)
}

/// Runs a statement with a `RETURNING` column over `rows`, a chunk at a time.
pub(crate) fn load<R, T>(conn: &mut SqliteConnection, rows: &[R]) -> QueryResult<Vec<T>>
where
    R: SqliteRows,
    Sqlite: diesel::sql_types::HasSqlType<R::Returning>,
    T: diesel::deserialize::FromSql<R::Returning, Sqlite> + 'static,
    T: diesel::deserialize::Queryable<R::Returning, Sqlite>,
{
    let mut returned = Vec::new();
    for chunk in rows.chunks(R::CHUNK) {
        returned.extend(SqliteBulk(chunk).load::<T>(conn)?);
    }
    Ok(returned)
}

/// Binds `values` of the given SQL types separated by commas: `bind_values!(out; BigInt =>
/// &row.id, Text => &row.name)`.
macro_rules! bind_values {
    ($out:expr; $first_ty:ty => $first:expr $(, $ty:ty => $value:expr)* $(,)?) => {{
        $out.push_bind_param::<$first_ty, _>($first)?;
        $(
            $out.push_sql(",");
            $out.push_bind_param::<$ty, _>($value)?;
        )*
        Ok(())
    }};
}
pub(crate) use bind_values;
