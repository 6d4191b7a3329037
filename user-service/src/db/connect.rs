//! Opening the database: options, the per-backend pools, write transactions.
//!
//! SQLite runs in WAL mode with a pool of reader connections and a single
//! writer connection: writers queue in the process (no SQLite busy-wait
//! sleeps on the hot path) and readers never block on the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection as _, Postgres, Sqlite, Transaction};

use super::DbError;

/// How long an SQLite connection waits for a lock held by another process
/// (for example an admin command) before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A file path, `sqlite:` URL or `postgres://` / `postgresql://` URL.
    pub url: String,
    /// Bound on establishing the first connection (and on pool acquires).
    pub connect_timeout: Duration,
    /// PostgreSQL pool size; SQLite reader pool size (plus one writer).
    pub max_connections: u32,
    /// Create the SQLite file when missing (the server does; most admin
    /// commands do not, so a mistyped path is an error, not an empty database).
    pub create_if_missing: bool,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: Duration::from_secs(5),
            max_connections: 8,
            create_if_missing: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SqliteBackend {
    pub(super) read: SqlitePool,
    pub(super) write: SqlitePool,
}

#[derive(Clone, Debug)]
pub struct PgBackend {
    pub(super) read: PgPool,
    pub(super) write: PgPool,
}

impl SqliteBackend {
    /// `BEGIN IMMEDIATE` takes the database's write lock at once: a deferred
    /// transaction that reads first and then writes can fail with
    /// SQLITE_BUSY instead of waiting when another process holds the lock.
    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    pub(super) async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

impl PgBackend {
    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.write.begin().await
    }

    pub(super) async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn is_memory_sqlite(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

pub(super) async fn open_sqlite(opts: &StoreOptions) -> Result<SqliteBackend, DbError> {
    let url = opts.url.as_str();
    let base = if url.to_ascii_lowercase().starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url).map_err(DbError::InvalidUrl)?
    } else {
        SqliteConnectOptions::new().filename(url)
    };
    let memory = is_memory_sqlite(url);
    if !memory && !opts.create_if_missing && !base.get_filename().exists() {
        return Err(DbError::MissingFile(base.get_filename().to_path_buf()));
    }
    let mut conn_opts = base
        .create_if_missing(opts.create_if_missing)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    if !memory {
        conn_opts = conn_opts
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
    }
    let connect = async {
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(opts.connect_timeout.max(SQLITE_BUSY_TIMEOUT * 2))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(conn_opts.clone())
            .await?;
        let read = if memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .min_connections(1)
                .acquire_timeout(opts.connect_timeout.max(Duration::from_secs(1)))
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(conn_opts)
                .await?
        };
        Ok::<_, sqlx::Error>(SqliteBackend { read, write })
    };
    match tokio::time::timeout(opts.connect_timeout, connect).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(DbError::Connect(e)),
        Err(_) => Err(DbError::ConnectTimeout(opts.connect_timeout)),
    }
}

pub(super) async fn open_pg(opts: &StoreOptions) -> Result<PgBackend, DbError> {
    let conn_opts = PgConnectOptions::from_str(&opts.url).map_err(DbError::InvalidUrl)?;
    // One direct attempt first: the pool retries refused connections until
    // its timeout, which would hide the actual reason.
    match tokio::time::timeout(opts.connect_timeout, PgConnection::connect_with(&conn_opts)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(DbError::Connect(e)),
        Err(_) => return Err(DbError::ConnectTimeout(opts.connect_timeout)),
    }
    let connect = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .min_connections(1)
        .acquire_timeout(opts.connect_timeout)
        .connect_with(conn_opts);
    match tokio::time::timeout(opts.connect_timeout, connect).await {
        Ok(Ok(pool)) => Ok(PgBackend {
            read: pool.clone(),
            write: pool,
        }),
        Ok(Err(e)) => Err(DbError::Connect(e)),
        Err(_) => Err(DbError::ConnectTimeout(opts.connect_timeout)),
    }
}
