//! Store errors, and how the service classifies database errors.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::migrate::MigrateError;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database {0:?}: use a file path, a sqlite:// URL or a postgres:// URL")]
    UnsupportedUrl(String),
    #[error("invalid database URL: {0}")]
    InvalidUrl(sqlx::Error),
    #[error("SQLite database file {0} does not exist (start the service or run `users create-local` to create it)")]
    MissingFile(PathBuf),
    #[error("could not connect to the database within {0:?}")]
    ConnectTimeout(Duration),
    #[error("could not open the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// SQLite result codes for "busy" and "locked" (and their extended codes).
const SQLITE_BUSY_OR_LOCKED: [&str; 6] = ["5", "6", "261", "262", "517", "773"];

/// Errors worth retrying the whole operation for: lost races (unique
/// violation), deadlocks, serialization failures, SQLite busy/locked.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
                return true;
            }
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            matches!(code, "40001" | "40P01") || SQLITE_BUSY_OR_LOCKED.contains(&code)
        }
        _ => false,
    }
}

/// Errors meaning the database cannot be reached (as opposed to a bug or a
/// constraint problem): answered with gRPC UNAVAILABLE.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // PostgreSQL: 08xxx connection exceptions, 57P0x shutdown, 53xxx
            // insufficient resources. SQLite: busy / locked after the timeout.
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || SQLITE_BUSY_OR_LOCKED.contains(&code)
        }
        _ => false,
    }
}
