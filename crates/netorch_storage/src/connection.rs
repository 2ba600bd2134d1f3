//! Connecting: which backend a URL names, the connection pool, the SQLite pragmas, and write
//! transactions that behave the same on both backends.

use crate::{Result, StorageError, migrations};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, R2D2Connection};
use r2d2::Pool;
use std::time::Duration;

/// A connection to either backend. Everything outside the hot paths is written once against
/// this type; the hot paths match on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for scale.
    Postgresql(diesel::PgConnection),
    /// SQLite, the default.
    Sqlite(diesel::SqliteConnection),
}

/// A connection checked out of the pool.
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Opens pooled connections of the backend the URL names. (The derive's own `establish` tries
/// each backend in turn, so a PostgreSQL URL that cannot connect would fall through to SQLite and
/// be opened as a file name.)
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.url
            .establish_connection()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: a file, created if absent.
    SqliteFile(String),
    /// `sqlite::memory:`: a private in-memory database (one connection).
    SqliteMemory,
    /// `postgres://...` or `postgresql://...`, handed to libpq as it is.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a URL. The scheme must be one of `sqlite://`, `sqlite::memory:`, `postgres://` or
    /// `postgresql://`; anything else is an error, never a silently created file.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(DatabaseUrl::SqliteMemory);
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StorageError::UnsupportedUrl(url.to_owned()));
            }
            return Ok(DatabaseUrl::SqliteFile(path.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(StorageError::UnsupportedUrl(url.to_owned()))
    }

    /// The backend the URL names.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::SqliteFile(_) | DatabaseUrl::SqliteMemory => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens one connection, without pool or migrations.
    pub fn establish(&self) -> Result<DbConnection> {
        Ok(self.establish_connection()?)
    }

    fn establish_connection(&self) -> diesel::ConnectionResult<DbConnection> {
        Ok(match self {
            DatabaseUrl::SqliteFile(path) => {
                DbConnection::Sqlite(diesel::SqliteConnection::establish(path)?)
            }
            DatabaseUrl::SqliteMemory => {
                DbConnection::Sqlite(diesel::SqliteConnection::establish(":memory:")?)
            }
            DatabaseUrl::Postgres(url) => {
                DbConnection::Postgresql(diesel::PgConnection::establish(url)?)
            }
        })
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::SqliteFile(path) => format!("sqlite://{path}"),
            DatabaseUrl::SqliteMemory => "sqlite::memory:".to_owned(),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    // postgres://user:password@host/... : hide what is between the first ':' after the scheme
    // and the '@'.
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How to size the pool.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Most connections open at once (SQLite in memory always uses one).
    pub max_connections: u32,
    /// How long to wait for a free connection, and SQLite's busy timeout.
    pub timeout: Duration,
    /// Apply pending migrations on connect.
    pub run_migrations: bool,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions {
            max_connections: 8,
            timeout: Duration::from_secs(10),
            run_migrations: true,
        }
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager>,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.url.redacted()).finish()
    }
}

/// Sets SQLite's pragmas on every new pooled connection.
#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u128,
    wal: bool,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        // busy_timeout first: switching to WAL needs a lock another process may hold.
        // WAL lets readers run beside the one writer; NORMAL sync is durable across process
        // crashes in WAL mode (only an OS crash can lose the last transactions).
        let journal = if self.wal { "PRAGMA journal_mode = WAL;" } else { "" };
        let sql = format!(
            "PRAGMA busy_timeout = {}; {journal} PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON;",
            self.busy_timeout_ms
        );
        conn.batch_execute(&sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Database {
    /// Connects with the default options and applies pending migrations.
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &DatabaseOptions::default())
    }

    /// Connects with `options`.
    pub fn connect_with(url: &str, options: &DatabaseOptions) -> Result<Self> {
        let parsed = DatabaseUrl::parse(url)?;
        let mut builder = Pool::builder()
            .max_size(options.max_connections.max(1))
            .connection_timeout(options.timeout);
        match parsed {
            DatabaseUrl::SqliteMemory => {
                // Each in-memory connection would be its own empty database: keep exactly one,
                // and never let the pool close it.
                builder = builder
                    .max_size(1)
                    .min_idle(Some(1))
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connection_customizer(Box::new(SqlitePragmas {
                        busy_timeout_ms: options.timeout.as_millis(),
                        wal: false,
                    }));
            }
            DatabaseUrl::SqliteFile(_) => {
                builder = builder.connection_customizer(Box::new(SqlitePragmas {
                    busy_timeout_ms: options.timeout.as_millis(),
                    wal: true,
                }));
            }
            DatabaseUrl::Postgres(_) => {}
        }
        let pool = builder.build(ConnectionManager { url: parsed.clone() })?;
        let database = Database { pool, url: parsed };
        if options.run_migrations {
            let mut conn = database.get()?;
            migrations::run_pending(&mut conn)?;
        }
        Ok(database)
    }

    /// Checks out a connection.
    pub fn get(&self) -> Result<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// The backend behind the pool.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The URL connected to, password hidden.
    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    /// Answers whether the database responds to a trivial query.
    pub fn ping(&self) -> Result<()> {
        let mut conn = self.get()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (it takes the write lock at once,
/// so a read-then-write transaction waits for its turn instead of failing with "database is
/// locked" at its first write), a plain transaction on PostgreSQL. Nested calls become
/// savepoints. Rolls back when `f` fails.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let already_in_transaction = <DbConnection as TransactionManager<DbConnection>>::
        transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(diesel::result::Error::from)?
        .is_some();
    if already_in_transaction {
        return conn.transaction(f);
    }
    match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(_) => {
            <DbConnection as TransactionManager<DbConnection>>::begin_transaction(conn)?
        }
    }
    match f(conn) {
        Ok(value) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The original error matters more than a failed rollback; a connection whose
            // rollback failed is marked broken and the pool discards it.
            let _ = <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn);
            Err(error)
        }
    }
}
