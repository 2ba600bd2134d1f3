//! Scratch databases for tests, one per test, on SQLite (always) and PostgreSQL (when
//! `NETORCH_TEST_POSTGRES_URL` is set), and [`backend_tests!`], which runs each named test body
//! once per backend.
//!
//! Test-only: no library crate depends on this one outside `[dev-dependencies]`. It is the one
//! place besides `netorch_storage` that issues SQL, to create and drop scratch schemas and to
//! search them ([`TestDatabase::contains_text`]).

use diesel::Connection;
use diesel::connection::SimpleConnection;
use netorch_storage::{Database, DatabaseOptions};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every node of `deployment`, ascending id.
pub fn nodes_of(
    conn: &mut netorch_storage::DbConnection,
    deployment: netorch_domain::DeploymentId,
) -> Vec<netorch_domain::Node> {
    netorch_storage::nodes::list(conn, deployment, &Default::default())
        .expect("nodes")
        .nodes
}

/// The first 1,000 events of `kind` of `deployment`, oldest first.
pub fn events_of(
    conn: &mut netorch_storage::DbConnection,
    deployment: netorch_domain::DeploymentId,
    kind: netorch_domain::EventType,
) -> Vec<netorch_domain::Event> {
    netorch_storage::events::list(
        conn,
        &netorch_storage::events::EventQuery {
            deployment: Some(deployment),
            after: None,
            event_type: Some(kind),
            node: None,
            actor: None,
            limit: 1000,
        },
    )
    .expect("events")
}

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "NETORCH_TEST_POSTGRES_URL";
/// When set (CI sets it), a PostgreSQL test without a server URL fails instead of skipping.
pub const REQUIRE_POSTGRES_VAR: &str = "NETORCH_REQUIRE_POSTGRES";

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    /// The migrated database.
    pub db: Database,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The temporary directory holding the SQLite file; removed on drop.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// The server URL and the schema to drop.
    Postgres { server_url: String, schema: String },
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl TestDatabase {
    /// A fresh SQLite file in a temporary directory, migrated.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("netorch.db").display());
        let db = Database::connect(&url).expect("open the SQLite test database");
        TestDatabase {
            db,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh schema on the PostgreSQL server named by `NETORCH_TEST_POSTGRES_URL`, migrated;
    /// `None` when the variable is unset. Panics when it is set but the server does not answer:
    /// a configured PostgreSQL test must run, never silently pass.
    pub fn postgres() -> Option<Self> {
        Self::postgres_with(&DatabaseOptions::default())
    }

    /// [`TestDatabase::postgres`] with pool options.
    pub fn postgres_with(options: &DatabaseOptions) -> Option<Self> {
        let server_url = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())?;
        let schema = format!("netorch_test_{}", unique_suffix());
        let mut admin = diesel::PgConnection::establish(&server_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unreachable: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create the test schema");
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{separator}options=-csearch_path%3D{schema}");
        let db = Database::connect_with(&url, options).expect("open the PostgreSQL test database");
        Some(TestDatabase {
            db,
            url,
            cleanup: Cleanup::Postgres { server_url, schema },
        })
    }

    /// The URL of this database, for a second pool or process.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether `needle` is anywhere in the database: in any byte of the SQLite file and its
    /// write-ahead log, or in any row of any table of the PostgreSQL schema, read as text. For
    /// tests that a secret is never stored.
    pub fn contains_text(&self, needle: &str) -> bool {
        match &self.cleanup {
            Cleanup::Sqlite(_) => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut bytes = std::fs::read(path).expect("read the SQLite file");
                bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
                bytes
                    .windows(needle.len().max(1))
                    .any(|window| window == needle.as_bytes())
            }
            Cleanup::Postgres { schema, .. } => {
                use diesel::RunQueryDsl;
                use diesel::sql_types::{BigInt, Text};
                #[derive(diesel::QueryableByName)]
                struct Table {
                    #[diesel(sql_type = Text)]
                    tablename: String,
                }
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = BigInt)]
                    n: i64,
                }
                let mut conn =
                    diesel::PgConnection::establish(&self.url).expect("connect to the test schema");
                let tables: Vec<Table> =
                    diesel::sql_query("SELECT tablename FROM pg_tables WHERE schemaname = $1")
                        .bind::<Text, _>(schema)
                        .load(&mut conn)
                        .expect("list the tables");
                assert!(!tables.is_empty(), "the schema {schema} has no tables");
                tables.iter().any(|table| {
                    let query = format!(
                        "SELECT count(*) AS n FROM {schema}.\"{}\" AS t WHERE strpos(t::text, $1) > 0",
                        table.tablename
                    );
                    let found: Count = diesel::sql_query(query)
                        .bind::<Text, _>(needle)
                        .get_result(&mut conn)
                        .expect("search a table");
                    found.n > 0
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { server_url, schema } = &self.cleanup {
            // Best effort: a leftover schema only costs disk space on a scratch server.
            if let Ok(mut admin) = diesel::PgConnection::establish(server_url) {
                let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Runs each named test function (taking `&TestDatabase`) once on SQLite and once on
/// PostgreSQL, as tests `sqlite::NAME` and `postgres::NAME`.
///
/// Whether the PostgreSQL variants run is decided when this crate is built: without
/// `NETORCH_TEST_POSTGRES_URL` (or `NETORCH_REQUIRE_POSTGRES`) in the build's environment they
/// are marked `ignored`, so that `cargo test` never reports a test it did not run as `ok`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::TestDatabase::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                $crate::postgres_test! {
                    fn $name() {
                        let db = $crate::TestDatabase::postgres().unwrap_or_else(|| {
                            panic!("{} is not set", $crate::POSTGRES_URL_VAR)
                        });
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}

/// One PostgreSQL test, run: this build had a server URL.
#[cfg(netorch_postgres)]
#[doc(hidden)]
#[macro_export]
macro_rules! postgres_test {
    ($item:item) => {
        #[test]
        $item
    };
}

/// One PostgreSQL test, ignored: this build had no server URL.
#[cfg(not(netorch_postgres))]
#[doc(hidden)]
#[macro_export]
macro_rules! postgres_test {
    ($item:item) => {
        #[test]
        #[ignore = "set NETORCH_TEST_POSTGRES_URL to run the PostgreSQL tests"]
        $item
    };
}

/// Runs `promtool` (Debian's `prometheus` package) with `args` and `input` on its standard
/// input, and panics with what it printed if it fails. Without promtool installed it returns
/// `false` and checks nothing, unless `NETORCH_REQUIRE_PROMTOOL` is set (CI sets it): then that
/// is a failure too.
pub fn promtool(args: &[&str], input: &str) -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var_os("NETORCH_REQUIRE_PROMTOOL").is_none(),
                "promtool is required and could not run: {e}"
            );
            eprintln!("promtool not found: {args:?} not checked");
            return false;
        }
    };
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(input.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    assert!(
        output.status.success(),
        "promtool {args:?}: {}{}\n{input}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

/// The value of the sample `series` (its name and labels exactly as written, such as
/// `netorch_nodes{state="RUNNING"}`) in a Prometheus text exposition.
pub fn exposed_sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}
