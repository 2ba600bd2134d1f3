//! Connecting: which backend a URL names, the connection pool, the SQLite pragmas, and write
//! transactions that behave the same on both backends.

use crate::writer_queue::{self, WriterQueue};
use crate::{Result, StorageError, migrations};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, R2D2Connection};
use r2d2::Pool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg(not(feature = "sqlite"))]
compile_error!("netorch_storage needs the `sqlite` feature (`postgres` adds PostgreSQL to it)");

/// A connection to either backend. Everything outside the hot paths is written once against
/// this type; the hot paths match on the variant. A backend left out by its cargo feature has
/// no variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for scale.
    #[cfg(feature = "postgres")]
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
            #[cfg(feature = "postgres")]
            DatabaseUrl::Postgres(url) => {
                DbConnection::Postgresql(diesel::PgConnection::establish(url)?)
            }
            #[cfg(not(feature = "postgres"))]
            DatabaseUrl::Postgres(_) => {
                return Err(diesel::ConnectionError::BadConnection(
                    "this build of netorch leaves PostgreSQL out (cargo feature `postgres` of \
                     netorch_storage)"
                        .to_owned(),
                ));
            }
        })
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        match self {
            // Absolute, so a log line says which file a process opened whatever its folder.
            DatabaseUrl::SqliteFile(path) => match std::path::absolute(path) {
                Ok(absolute) => format!("sqlite://{}", absolute.display()),
                Err(_) => format!("sqlite://{path}"),
            },
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
    /// Cap a SQLite file at about this many bytes (`PRAGMA max_page_count`): past it, writes
    /// fail as on a full disk while reads go on. `None`: no cap but the disk's.
    pub sqlite_max_bytes: Option<u64>,
    /// Create a SQLite file that does not exist (and migrate it). Off, such a file is
    /// [`StorageError::NoSuchDatabase`]: for programs that join an existing database (a worker,
    /// a key manager), which would otherwise work on an empty one no server reads.
    pub create_sqlite_file: bool,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions {
            max_connections: 8,
            timeout: Duration::from_secs(10),
            run_migrations: true,
            sqlite_max_bytes: None,
            create_sqlite_file: true,
        }
    }
}

/// What a pool and the write transactions have counted, for metrics: plain numbers, read with
/// [`Database::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DatabaseStats {
    /// Connections open, busy or idle.
    pub connections: u32,
    /// Of those, idle ones.
    pub idle_connections: u32,
    /// The most the pool opens.
    pub max_connections: u32,
    /// Connections handed out since the pool was opened.
    pub checkouts: u64,
    /// Of those, the ones that had to wait for a connection (a millisecond or more).
    pub checkout_waits: u64,
    /// Seconds spent waiting for connections, in total.
    pub checkout_wait_seconds: f64,
    /// Waits that ran out of time (the request got 503).
    pub checkout_timeouts: u64,
    /// Write transactions of this process run again after a transient conflict (PostgreSQL
    /// deadlock or serialization failure), since it started.
    pub conflict_retries: u64,
    /// SQLite write transactions of this process that waited for another one of this process
    /// (`writer_queue`), since it started.
    pub writer_queue_waits: u64,
}

/// Counts checkouts for [`DatabaseStats`] (r2d2 reports each one to its event handler).
#[derive(Debug, Default)]
struct PoolCounters {
    checkouts: AtomicU64,
    checkout_waits: AtomicU64,
    checkout_wait_micros: AtomicU64,
    checkout_timeouts: AtomicU64,
}

/// The pool's handler of events, sharing its counters with the [`Database`].
#[derive(Debug)]
struct CountingEvents(Arc<PoolCounters>);

impl r2d2::HandleEvent for CountingEvents {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        self.0.checkouts.fetch_add(1, Ordering::Relaxed);
        let waited = event.duration();
        if waited >= Duration::from_millis(1) {
            self.0.checkout_waits.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            self.0
                .checkout_wait_micros
                .fetch_add(micros, Ordering::Relaxed);
        }
    }

    fn handle_timeout(&self, event: r2d2::event::TimeoutEvent) {
        self.0.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(event.timeout().as_micros()).unwrap_or(u64::MAX);
        self.0
            .checkout_wait_micros
            .fetch_add(micros, Ordering::Relaxed);
    }
}

/// Transactions run again after a conflict, by this process.
static CONFLICT_RETRIES_RUN: AtomicU64 = AtomicU64::new(0);

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager>,
    counters: Arc<PoolCounters>,
    url: DatabaseUrl,
    /// The SQLite size cap it was opened with, for [`Database::sibling`].
    sqlite_max_bytes: Option<u64>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.url.redacted())
            .finish()
    }
}

/// Sets SQLite's pragmas on every new pooled connection.
#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u128,
    wal: bool,
    /// `max_page_count`, from [`DatabaseOptions::sqlite_max_bytes`] (pages of 4 KiB).
    max_pages: Option<u64>,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        // busy_timeout first: switching to WAL needs a lock another process may hold.
        // WAL lets readers run beside the one writer; NORMAL sync is durable across process
        // crashes in WAL mode (only an OS crash can lose the last transactions). A 32 MiB page
        // cache per connection, and reads through a memory map of up to 1 GiB of the file
        // (address space, not memory): a bottleneck report scans a million samples, and
        // mapped pages spare it a copy per page (25 % of the scan, docs/PERFORMANCE.md).
        let journal = if self.wal {
            "PRAGMA journal_mode = WAL;"
        } else {
            ""
        };
        let sql = format!(
            "PRAGMA busy_timeout = {}; {journal} PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768; \
             PRAGMA mmap_size = 1073741824;",
            self.busy_timeout_ms
        );
        let cap = self
            .max_pages
            .map(|pages| format!(" PRAGMA max_page_count = {pages};"))
            .unwrap_or_default();
        conn.batch_execute(&(sql + &cap))
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
        Self::connect_parsed(DatabaseUrl::parse(url)?, options)
    }

    fn connect_parsed(parsed: DatabaseUrl, options: &DatabaseOptions) -> Result<Self> {
        let pragmas = |wal| SqlitePragmas {
            busy_timeout_ms: options.timeout.as_millis(),
            wal,
            max_pages: options.sqlite_max_bytes.map(|b| b.div_ceil(4096)),
        };
        // One connection first, so that a wrong path or an unreachable server is one clear
        // error at once, rather than the pool retrying (and logging) until its timeout. On it,
        // alone, a new SQLite file is switched to WAL and the migrations run, before the pool
        // opens its connections in parallel: otherwise they race to switch the journal mode
        // (which SQLite may refuse at once, without waiting, as "database is locked") and the
        // migrations race them.
        if let DatabaseUrl::SqliteFile(path) = &parsed
            && !options.create_sqlite_file
            && !std::path::Path::new(path).exists()
        {
            return Err(StorageError::NoSuchDatabase {
                url: parsed.redacted(),
            });
        }
        if parsed != DatabaseUrl::SqliteMemory {
            let unreachable = |reason: String| StorageError::Unreachable {
                url: parsed.redacted(),
                reason: reason.trim().to_owned(),
            };
            let mut first = parsed
                .establish_connection()
                .map_err(|e| unreachable(e.to_string()))?;
            if matches!(parsed, DatabaseUrl::SqliteFile(_)) {
                pragmas(true)
                    .on_acquire(&mut first)
                    .map_err(|e| unreachable(e.to_string()))?;
            }
            if options.run_migrations {
                migrations::run_pending(&mut first)?;
            }
        }
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
                    .connection_customizer(Box::new(pragmas(false)));
            }
            DatabaseUrl::SqliteFile(_) => {
                builder = builder.connection_customizer(Box::new(pragmas(true)));
            }
            DatabaseUrl::Postgres(_) => {}
        }
        let counters = Arc::new(PoolCounters::default());
        let pool = builder
            .event_handler(Box::new(CountingEvents(Arc::clone(&counters))))
            .build(ConnectionManager {
                url: parsed.clone(),
            })?;
        let database = Database {
            pool,
            counters,
            url: parsed,
            sqlite_max_bytes: options.sqlite_max_bytes,
        };
        if options.run_migrations && database.url == DatabaseUrl::SqliteMemory {
            let mut conn = database.get()?;
            migrations::run_pending(&mut conn)?;
        }
        Ok(database)
    }

    /// A second, separate pool on the same database, with `options` (migrations are never run
    /// again): for work that must not queue behind the main pool's, such as health checks.
    /// An in-memory SQLite database has one connection only, so there this is the same pool.
    pub fn sibling(&self, options: &DatabaseOptions) -> Result<Database> {
        if self.url == DatabaseUrl::SqliteMemory {
            return Ok(self.clone());
        }
        let options = DatabaseOptions {
            run_migrations: false,
            sqlite_max_bytes: self.sqlite_max_bytes,
            ..options.clone()
        };
        Database::connect_parsed(self.url.clone(), &options)
    }

    /// Checks out a connection.
    pub fn get(&self) -> Result<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// Checks out a connection if one is free (or can be opened) at once; `None` rather than
    /// waiting for the pool's timeout.
    pub fn try_get(&self) -> Option<PooledConnection> {
        self.pool.try_get()
    }

    /// The most connections the pool opens at once.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    /// The pool's connections and what it has counted.
    pub fn stats(&self) -> DatabaseStats {
        let state = self.pool.state();
        let counters = &self.counters;
        DatabaseStats {
            connections: state.connections,
            idle_connections: state.idle_connections,
            max_connections: self.pool.max_size(),
            checkouts: counters.checkouts.load(Ordering::Relaxed),
            checkout_waits: counters.checkout_waits.load(Ordering::Relaxed),
            checkout_wait_seconds: counters.checkout_wait_micros.load(Ordering::Relaxed) as f64
                / 1e6,
            checkout_timeouts: counters.checkout_timeouts.load(Ordering::Relaxed),
            conflict_retries: CONFLICT_RETRIES_RUN.load(Ordering::Relaxed),
            writer_queue_waits: SQLITE_WRITERS.waits(),
        }
    }

    /// The backend behind the pool.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The URL connected to, password hidden.
    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    /// Answers whether the database takes a write the size of the largest push: one
    /// transaction stores [`WRITE_PROBE_BYTES`] of random bytes (which no compression shrinks)
    /// in a scratch table and commits, a second removes them. Committed, so that the bytes
    /// reach the disk (SQLite's log, PostgreSQL's files and log) rather than a page cache that
    /// a rollback would drop. Fails as a real write would on a full disk (or past a SQLite size
    /// cap); succeeds only once a push of any size fits again, so that readiness does not flap
    /// while small writes fit between large ones (docs/RELIABILITY.md, "A full disk").
    pub fn probe_write(&self) -> Result<()> {
        let mut conn = self.get()?;
        let filler = incompressible(WRITE_PROBE_BYTES);
        write_transaction(&mut conn, |conn| {
            let insert = match conn {
                #[cfg(feature = "sqlite")]
                DbConnection::Sqlite(_) => "INSERT INTO write_probe (filler) VALUES (?)",
                #[cfg(feature = "postgres")]
                DbConnection::Postgresql(_) => "INSERT INTO write_probe (filler) VALUES ($1)",
            };
            on_backend!(conn, |c| diesel::sql_query(insert)
                .bind::<diesel::sql_types::Binary, _>(&filler)
                .execute(c))?;
            Ok(())
        })?;
        write_transaction(&mut conn, |conn| {
            conn.batch_execute("DELETE FROM write_probe")?;
            Ok(())
        })
    }

    /// Answers whether the database responds to a trivial query.
    pub fn ping(&self) -> Result<()> {
        let mut conn = self.get()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

/// How many bytes [`Database::probe_write`] writes: about what the largest push (10,000
/// samples, with their rollups and indexes) adds to either backend.
pub const WRITE_PROBE_BYTES: usize = 1 << 20;

/// `len` bytes no compressor shrinks (xorshift64*, seeded by the clock): PostgreSQL compresses
/// large values, and a probe of zeros would take a few pages instead of a push's worth.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
        | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// The queue SQLite write transactions of this process take turns in.
static SQLITE_WRITERS: WriterQueue = WriterQueue::new();

/// How many times a transaction PostgreSQL aborted for a deadlock or a serialization conflict
/// is run again before the error is returned.
const CONFLICT_RETRIES: u32 = 5;

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (it takes the write lock at once,
/// so a read-then-write transaction waits for its turn instead of failing with "database is
/// locked" at its first write), a plain transaction on PostgreSQL. A nested call runs in the
/// caller's transaction. Rolls back when `f` fails. On SQLite, the write transactions of one
/// process take turns first come, first served before they ask SQLite for the lock, so none
/// starves behind later ones (see the `writer_queue` module).
///
/// A transaction PostgreSQL aborts to break a deadlock or a serialization conflict is run again
/// from the start, up to five times, after a short randomized pause: such a conflict is a race
/// between writers, never the caller's fault. (Every write path takes its locks in one order,
/// deployments by ascending id first, see [`crate::deployment_rows::lock`], so deadlocks are rare;
/// the retry covers the rest.) `f` must therefore be safe to run again: it runs inside a
/// transaction that was rolled back.
pub fn write_transaction<T, F>(conn: &mut DbConnection, mut f: F) -> Result<T>
where
    F: FnMut(&mut DbConnection) -> Result<T>,
{
    if in_transaction(conn)? {
        // Part of the caller's transaction, which commits, rolls back and retries as a whole.
        // No savepoint: a failure aborts the whole anyway, and SQLite rolls a transaction back
        // by itself on some errors (a full disk), after which a savepoint's rollback would fail
        // and hide the real error.
        return f(conn);
    }
    // SQLite writers of this process take turns in arrival order (see `writer_queue`).
    let _turn = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => Some(SQLITE_WRITERS.wait_turn(writer_queue::PATIENCE)),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(_) => None,
    };
    let mut attempt = 0;
    loop {
        match run_once(conn, &mut f) {
            Err(error) if error.is_transient_conflict() && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                CONFLICT_RETRIES_RUN.fetch_add(1, Ordering::Relaxed);
                log::debug!("transaction conflict ({error}); running it again (attempt {attempt})");
                std::thread::sleep(conflict_pause(attempt));
            }
            other => return other,
        }
    }
}

/// A pause of 1 to 4 ms times the attempt, spread by the clock's nanoseconds so that two
/// writers that collided do not collide again in step.
fn conflict_pause(attempt: u32) -> Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 3_000);
    Duration::from_micros(u64::from(attempt) * (1_000 + u64::from(jitter)))
}

fn run_once<T, F>(conn: &mut DbConnection, f: &mut F) -> Result<T>
where
    F: FnMut(&mut DbConnection) -> Result<T>,
{
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(_) => {
            <DbConnection as TransactionManager<DbConnection>>::begin_transaction(conn)?
        }
    }
    let outcome = f(conn);
    finish(conn, outcome)
}

/// Whether `conn` is inside a transaction already.
fn in_transaction(conn: &mut DbConnection) -> Result<bool> {
    Ok(
        <DbConnection as TransactionManager<DbConnection>>::transaction_manager_status_mut(conn)
            .transaction_depth()?
            .is_some(),
    )
}

/// Ends the transaction `outcome` came from: commits it if `outcome` is a value, rolls it back
/// if an error.
fn finish<T>(conn: &mut DbConnection, outcome: Result<T>) -> Result<T> {
    match outcome {
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

/// Runs `read` in one snapshot: a deferred transaction on SQLite, a repeatable-read, read-only
/// one on PostgreSQL (inside a caller's transaction, in that), so that reads of several tables
/// agree with each other.
pub(crate) fn read_snapshot<T>(
    conn: &mut DbConnection,
    read: impl FnOnce(&mut DbConnection) -> Result<T>,
) -> Result<T> {
    if in_transaction(conn)? {
        return read(conn);
    }
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")?
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => AnsiTransactionManager::begin_transaction_sql(
            inner,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
    }
    let outcome = read(conn);
    finish(conn, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://netorch.db").ok(),
            Some(DatabaseUrl::SqliteFile("netorch.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/netorch/db.sqlite").ok(),
            Some(DatabaseUrl::SqliteFile("/var/lib/netorch/db.sqlite".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").ok(),
            Some(DatabaseUrl::SqliteMemory)
        );
        for url in [
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db?sslmode=disable",
        ] {
            assert_eq!(
                DatabaseUrl::parse(url).ok(),
                Some(DatabaseUrl::Postgres(url.into()))
            );
            assert_eq!(
                DatabaseUrl::parse(url).map(|u| u.backend()).ok(),
                Some(Backend::Postgres)
            );
        }
    }

    #[test]
    fn unknown_or_missing_schemes_are_refused_and_create_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netorch.db");
        let bare = path.display().to_string();
        for url in [
            bare.as_str(),
            "mysql://localhost/db",
            "sqlite:",
            "sqlite://",
            "",
            "file:x.db",
        ] {
            match Database::connect(url) {
                Err(StorageError::UnsupportedUrl(_)) => {}
                other => panic!("{url:?}: {other:?}"),
            }
        }
        assert!(!path.exists(), "no file was created");
    }

    #[test]
    fn an_unopenable_database_fails_at_once_with_one_clear_error() {
        for url in [
            "sqlite:///nonexistent/folder/netorch.db",
            "postgres://netorch:s3cret@127.0.0.1:1/netorch",
        ] {
            let started = std::time::Instant::now();
            let error = Database::connect(url).expect_err(url);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(3),
                "{url}"
            );
            let text = error.to_string();
            assert!(
                matches!(error, StorageError::Unreachable { .. }),
                "{url}: {text}"
            );
            assert!(text.starts_with("cannot open the database "), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn sqlite_paths_are_logged_absolute() {
        let url = DatabaseUrl::parse("sqlite://netorch.db").expect("parse");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            url.redacted(),
            format!("sqlite://{}", cwd.join("netorch.db").display())
        );
    }

    #[test]
    fn passwords_are_hidden_in_logs() {
        let url = DatabaseUrl::parse("postgres://netorch:s3cret@db:5432/netorch").expect("parse");
        assert_eq!(url.redacted(), "postgres://netorch:***@db:5432/netorch");
    }

    #[test]
    fn sqlite_files_get_wal_foreign_keys_and_a_busy_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let db = Database::connect(&url).expect("connect");
        let mut conn = db.get().expect("connection");
        #[derive(QueryableByName)]
        struct Pragma {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let mut pragma = |name: &str, column: &str| -> String {
            diesel::sql_query(format!(
                "SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"
            ))
            .get_result::<Pragma>(&mut *conn)
            .map(|p| p.value)
            .expect("pragma")
        };
        assert_eq!(pragma("journal_mode", "journal_mode"), "wal");
        assert_eq!(pragma("foreign_keys", "foreign_keys"), "1");
        assert_eq!(pragma("synchronous", "synchronous"), "1", "NORMAL");
        assert_eq!(pragma("busy_timeout", "timeout"), "10000");
    }

    #[test]
    fn the_in_memory_database_is_one_shared_connection() {
        let db = Database::connect("sqlite::memory:").expect("connect");
        // Migrations ran on the one connection every later checkout gets.
        let mut conn = db.get().expect("connection");
        crate::deployments::count(&mut conn).expect("tables exist");
    }
}
