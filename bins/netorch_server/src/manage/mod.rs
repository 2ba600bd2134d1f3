//! The subcommands that manage what the server's database holds (API keys, alert receivers),
//! with the server running or not: each opens the database itself, and every server and worker
//! on it sees the change (they read both from the database, never from a copy).

pub(crate) mod keys;
pub(crate) mod receivers;

use netorch_storage::{Database, DatabaseOptions};
use netorch_workers::cli::DatabaseArgs;

/// The server's database, joined with one connection: a missing SQLite file is refused, not
/// created (keys and receivers belong in the database a server uses), unless
/// --create-database says otherwise.
fn open(database: &DatabaseArgs) -> anyhow::Result<Database> {
    let options = DatabaseOptions {
        max_connections: 1,
        ..DatabaseOptions::default()
    };
    database.join(options).map_err(anyhow::Error::msg)
}

/// A time as the listings show it: `2026-12-07T01:02:03Z`, or `-` for none.
fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or("-".to_owned(), |at| {
        at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}
