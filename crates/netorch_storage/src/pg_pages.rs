//! Large PostgreSQL reads in pages along an index, each fetched whole.
//!
//! libpq's row-by-row mode (diesel's `PgRowByRowLoadingMode`) makes a result object per row:
//! for the 100,000 rows of a 10-minute report it cost three times what the query itself did.
//! Loading everything at once would hold a whole window in memory; pages of [`PAGE_ROWS`]
//! along a two-column key keep memory bounded and the cost per row low.

use crate::Result;
use diesel::pg::PgConnection;
use diesel::prelude::*;

/// Rows per page.
pub(crate) const PAGE_ROWS: i64 = 20_000;

/// Feeds every row to `each`, page by page: `load(conn, after)` reads the next at most
/// [`PAGE_ROWS`] rows whose `key` comes after `after` (in key order, `None` for the first
/// page; the query should compare with a row value, `(a, b) > ($1, $2)`, which PostgreSQL
/// turns into an index bound).
///
/// The pages are read in one transaction that forbids sorts and bitmap scans: a partition
/// filled since the last `ANALYZE` looks nearly empty to the planner, which then sorts the
/// whole rest of the window for every page (0.9 s a page over 1 M samples) instead of walking
/// the index, whose order is the key's.
pub(crate) fn for_each<Row>(
    conn: &mut PgConnection,
    mut load: impl FnMut(&mut PgConnection, Option<(i64, i64)>) -> QueryResult<Vec<Row>>,
    key: impl Fn(&Row) -> (i64, i64),
    mut each: impl FnMut(Row) -> Result<()>,
) -> Result<()> {
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL enable_sort = off").execute(conn)?;
        diesel::sql_query("SET LOCAL enable_bitmapscan = off").execute(conn)?;
        let mut after = None;
        loop {
            let rows = load(conn, after)?;
            let full = rows.len() as i64 == PAGE_ROWS;
            for row in rows {
                after = Some(key(&row));
                each(row)?;
            }
            if !full {
                return Ok(());
            }
        }
    })
}

/// `(first, second) > (a, b)` as SQL, for [`for_each`]'s queries.
pub(crate) fn after(
    first: &'static str,
    second: &'static str,
    (a, b): (i64, i64),
) -> diesel::expression::SqlLiteral<
    diesel::sql_types::Bool,
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::query_builder::QueryId,
> {
    diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("({first}, {second}) > ("))
        .bind::<diesel::sql_types::BigInt, _>(a)
        .sql(", ")
        .bind::<diesel::sql_types::BigInt, _>(b)
        .sql(")")
}
