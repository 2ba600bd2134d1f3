//! The embedded migrations, one directory per backend with the same version names.

use crate::{DbConnection, Result, StorageError};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The SQLite migrations (`migrations/sqlite`).
#[cfg(feature = "sqlite")]
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// The PostgreSQL migrations (`migrations/postgres`).
#[cfg(feature = "postgres")]
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

fn migration_error(error: impl std::fmt::Display) -> StorageError {
    StorageError::Migration(error.to_string())
}

/// Applies every pending migration, and returns the versions applied.
///
/// Safe when several processes start at once: the whole run holds the database's write lock
/// (SQLite `BEGIN IMMEDIATE`) or a transaction-scoped advisory lock (PostgreSQL), so the second
/// process waits, then finds nothing left to do. Each backend's DDL is transactional, so a
/// failed run leaves the schema as it was.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>> {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            let applied = inner
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect());
            finish(inner, applied)
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => {
            AnsiTransactionManager::begin_transaction(inner)?;
            let applied = diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(crate::locks::MIGRATIONS)
                .execute(inner)
                .map_err(Into::into)
                .and_then(|_| inner.run_pending_migrations(POSTGRES_MIGRATIONS))
                .map(|versions| versions.iter().map(ToString::to_string).collect());
            finish(inner, applied)
        }
    }
}

/// Reverts every applied migration (for tests and for operators who want a clean slate).
pub fn revert_all(conn: &mut DbConnection) -> Result<Vec<String>> {
    let reverted = match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(inner) => inner.revert_all_migrations(SQLITE_MIGRATIONS),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(inner) => inner.revert_all_migrations(POSTGRES_MIGRATIONS),
    };
    reverted
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(migration_error)
}

fn finish<C>(conn: &mut C, outcome: diesel::migration::Result<Vec<String>>) -> Result<Vec<String>>
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
{
    match outcome {
        Ok(applied) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(applied)
        }
        Err(error) => {
            // The migration error is what the operator needs to see.
            let _ = AnsiTransactionManager::rollback_transaction(conn);
            Err(migration_error(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn versions(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let sqlite = versions("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, versions("postgres"));
    }

    #[test]
    fn every_migration_has_up_and_down() {
        for backend in ["sqlite", "postgres"] {
            for version in versions(backend) {
                for file in ["up.sql", "down.sql"] {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../migrations")
                        .join(backend)
                        .join(&version)
                        .join(file);
                    assert!(path.is_file(), "{} is missing", path.display());
                }
            }
        }
    }
}
