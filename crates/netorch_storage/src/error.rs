use netorch_domain::DomainError;

/// Everything the storage layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL names no backend netorch supports.
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH, sqlite::memory:, postgres://... or postgresql://..."
    )]
    UnsupportedUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot connect to the database: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// The database at a URL could not be opened when the pool was set up.
    #[error("cannot open the database {url}: {reason}")]
    Unreachable {
        /// The URL, password hidden.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// A SQLite file that does not exist, opened with [`crate::DatabaseOptions::create_sqlite_file`]
    /// off.
    #[error("there is no database at {url}")]
    NoSuchDatabase {
        /// The URL, its path absolute.
        url: String,
    },
    /// No pooled connection became free in time, or the pool could not open one.
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// Applying or reverting migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A value the database cannot hold.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The deployment does not exist.
    #[error("Deployment not found")]
    DeploymentNotFound,
    /// The node does not exist (in that deployment).
    #[error("Node not found")]
    NodeNotFound,
    /// No alert has that id or fingerprint.
    #[error("Alert not found")]
    AlertNotFound,
    /// An acknowledgement of an alert that is not firing (pending or resolved).
    #[error("the alert is {0}: only a firing alert can be acknowledged")]
    AlertNotFiring(netorch_domain::AlertState),
    /// No silence has that id.
    #[error("Silence not found")]
    SilenceNotFound,
    /// No receiver has that id.
    #[error("Receiver not found")]
    ReceiverNotFound,
    /// A receiver of that name exists already.
    #[error("a receiver named {0:?} exists already")]
    ReceiverExists(String),
    /// No notification has that id.
    #[error("Notification not found")]
    NotificationNotFound,
    /// An API key of that name exists already (revoked or not).
    #[error("an API key named {0:?} exists already")]
    KeyExists(String),
    /// No API key has that name.
    #[error("no API key is named {0:?}")]
    KeyNotFound(String),
    /// The domain model refused the operation (for example an illegal transition).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A row holds a value the domain model cannot represent.
    #[error("corrupt row in {table}: {detail}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl StorageError {
    /// Every [`StorageError::kind`], for metrics that label errors by it.
    pub const KINDS: [&'static str; 6] = [
        "unavailable",
        "locked",
        "conflict",
        "out_of_space",
        "corrupt",
        "query",
    ];

    /// Counts this error in the process's [`error_counts`] if it is a failure of the database
    /// (see [`StorageError::kind`]): the API and the workers call it for every storage error
    /// they meet, once.
    pub fn count(&self) {
        if let Some(i) = self
            .kind()
            .and_then(|kind| Self::KINDS.iter().position(|k| *k == kind))
        {
            ERRORS_BY_KIND[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// What sort of database failure this is, in a word of [`StorageError::KINDS`] (a bounded
    /// label for `netorch_database_errors_total{kind}`); `None` for the outcomes a request
    /// causes (an unknown deployment, node or key, a name taken, an illegal transition), which
    /// are answers, not failures.
    pub fn kind(&self) -> Option<&'static str> {
        if self.is_database_locked() {
            return Some("locked");
        }
        if self.is_transient_conflict() {
            return Some("conflict");
        }
        if self.is_out_of_space() {
            return Some("out_of_space");
        }
        match self {
            StorageError::UnsupportedUrl(_)
            | StorageError::Connection(_)
            | StorageError::Unreachable { .. }
            | StorageError::NoSuchDatabase { .. }
            | StorageError::Pool(_)
            | StorageError::Migration(_) => Some("unavailable"),
            StorageError::DeploymentNotFound
            | StorageError::NodeNotFound
            | StorageError::KeyNotFound(_)
            | StorageError::AlertNotFound
            | StorageError::AlertNotFiring(_)
            | StorageError::SilenceNotFound
            | StorageError::ReceiverNotFound
            | StorageError::ReceiverExists(_)
            | StorageError::NotificationNotFound
            | StorageError::InvalidInput(_)
            | StorageError::KeyExists(_)
            | StorageError::Domain(_) => None,
            StorageError::CorruptRow { .. } => Some("corrupt"),
            StorageError::Query(_) => Some("query"),
        }
    }

    /// True when PostgreSQL aborted the transaction to break a deadlock or a serialization
    /// conflict, or because a row it had routed to a default partition belongs to a partition
    /// attached meanwhile (see [`crate::partitions`]): the whole transaction can be run again
    /// as it is, and the second run routes the row to its partition.
    pub fn is_transient_conflict(&self) -> bool {
        match self {
            StorageError::Query(diesel::result::Error::DatabaseError(kind, info)) => {
                let message = info.message();
                // A check violation of a default partition is the routing race (PostgreSQL
                // names the table; the message is the fallback where a server's messages are
                // in English but the field is missing).
                let default_partition =
                    matches!(kind, diesel::result::DatabaseErrorKind::CheckViolation)
                        && info
                            .table_name()
                            .is_some_and(|table| table.ends_with("_default"));
                matches!(
                    kind,
                    diesel::result::DatabaseErrorKind::SerializationFailure
                ) || message.contains("deadlock detected")
                    || default_partition
                    || (message.contains("violates partition constraint")
                        && message.contains("_default\""))
            }
            _ => false,
        }
    }

    /// True when the database has no room left: SQLite's "database or disk is full" (also
    /// its size cap, `max_page_count`), PostgreSQL's `disk_full` (SQLSTATE 53100, "could not
    /// extend file", "No space left on device").
    pub fn is_out_of_space(&self) -> bool {
        let StorageError::Query(diesel::result::Error::DatabaseError(_, info)) = self else {
            return false;
        };
        let message = info.message();
        message.contains("database or disk is full")
            || message.contains("No space left on device")
            || message.contains("could not extend file")
            || message.contains("could not write")
    }

    /// True when the failure is SQLite's "database is locked" (or busy) after the busy timeout:
    /// the operation can be retried as it is.
    pub fn is_database_locked(&self) -> bool {
        match self {
            StorageError::Query(diesel::result::Error::DatabaseError(_, info)) => {
                let message = info.message();
                message.contains("database is locked") || message.contains("database is busy")
            }
            _ => false,
        }
    }
}

/// Storage errors met by this process, by kind (see [`StorageError::count`]).
static ERRORS_BY_KIND: [std::sync::atomic::AtomicU64; StorageError::KINDS.len()] =
    [const { std::sync::atomic::AtomicU64::new(0) }; StorageError::KINDS.len()];

/// How many storage errors of each kind of [`StorageError::KINDS`] this process has counted.
pub fn error_counts() -> [(&'static str, u64); StorageError::KINDS.len()] {
    std::array::from_fn(|i| {
        (
            StorageError::KINDS[i],
            ERRORS_BY_KIND[i].load(std::sync::atomic::Ordering::Relaxed),
        )
    })
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    /// An error's message, and the table it names if any.
    struct Info(&'static str, Option<&'static str>);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            self.1
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn error(kind: DatabaseErrorKind, message: &'static str) -> StorageError {
        StorageError::Query(Error::DatabaseError(kind, Box::new(Info(message, None))))
    }

    #[test]
    fn both_backends_full_disks_are_out_of_space() {
        for message in [
            "database or disk is full",
            "could not extend file \"base/16384/16397\": No space left on device",
            "could not write to file \"pg_wal/xlogtemp.123\": No space left on device",
        ] {
            assert!(
                error(DatabaseErrorKind::Unknown, message).is_out_of_space(),
                "{message}"
            );
        }
        assert!(!error(DatabaseErrorKind::UniqueViolation, "duplicate key").is_out_of_space());
        assert!(!StorageError::DeploymentNotFound.is_out_of_space());
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_transient() {
        assert!(error(DatabaseErrorKind::Unknown, "deadlock detected").is_transient_conflict());
        assert!(
            error(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access due to concurrent update"
            )
            .is_transient_conflict()
        );
        // An insert routed to a default partition that a partition of its range was attached to
        // while it waited for the lock (issue 25): run again, it goes to the new partition.
        assert!(
            error(
                DatabaseErrorKind::CheckViolation,
                "new row for relation \"telemetry_samples_default\" violates partition constraint"
            )
            .is_transient_conflict()
        );
        assert!(
            !error(
                DatabaseErrorKind::CheckViolation,
                "new row for relation \"nodes\" violates check constraint \"nodes_state\""
            )
            .is_transient_conflict()
        );
        let of_table = |table| {
            StorageError::Query(Error::DatabaseError(
                DatabaseErrorKind::CheckViolation,
                // In whatever language the server speaks: the table is what counts.
                Box::new(Info(
                    "neue Zeile verletzt Partitions-Constraint",
                    Some(table),
                )),
            ))
        };
        assert!(of_table("telemetry_minutes_default").is_transient_conflict());
        assert!(!of_table("nodes").is_transient_conflict());
        assert!(!error(DatabaseErrorKind::Unknown, "syntax error").is_transient_conflict());
        assert!(!error(DatabaseErrorKind::Unknown, "database is locked").is_transient_conflict());
    }
}
