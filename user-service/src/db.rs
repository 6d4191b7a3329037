//! Storage: SQLite (the default) and PostgreSQL behind one API.
//!
//! Both backends run the same SQL text (numbered `$n` parameters work on
//! both); only the schema files and the connection set-up differ. The query
//! code is written once in [`queries!`] and instantiated per backend, so the
//! two backends cannot drift apart.
//!
//! SQLite runs in WAL mode with a pool of reader connections and a single
//! writer connection: writers queue in the process (no SQLite busy-wait
//! sleeps on the hot path) and readers never block on the writer.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection as _;
use sqlx::Row;

/// How long an SQLite connection waits for a lock held by another process
/// (for example an admin command) before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Arbitrary constant identifying this service's migration lock in
/// PostgreSQL (`pg_advisory_xact_lock`).
const PG_MIGRATION_LOCK: i64 = 0x616c_625f_6f69_6463; // "alb_oidc"

/// Schema migrations, in order: (version, description, SQLite, PostgreSQL).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[(
    1,
    "initial schema",
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/postgres/0001_initial.sql"),
)];

/// The current time at the precision both backends store (microseconds),
/// so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// A group membership of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub name: String,
    /// True when managed by the groups claim (added and removed at login);
    /// false when added by an administrator (never removed by a login).
    pub from_oidc: bool,
}

/// A stored user with its groups (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_from_oidc: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    pub groups: Vec<Membership>,
}

impl UserRecord {
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|m| m.name.clone()).collect()
    }
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_from_oidc: bool,
    pub last_login: Option<DateTime<Utc>>,
    /// Initial groups (deduplicated and sorted by the caller or not: the
    /// store sorts and deduplicates).
    pub groups: Vec<String>,
    /// Whether the initial memberships are managed by the groups claim.
    pub groups_from_oidc: bool,
}

/// The new state of an existing user after a login.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub updated_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    /// Groups to add as claim-managed memberships.
    pub add_groups: Vec<String>,
    /// Claim-managed memberships to remove (administrator ones are kept).
    pub remove_groups: Vec<String>,
}

/// Result of an administrator group change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupChange {
    Added,
    /// Already a member (a claim-managed membership becomes administrator-managed).
    AlreadyMember,
    Removed,
    NotMember,
}

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
    Migration(sqlx::Error),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

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

/// Which kind of database a URL designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Classifies a `--database` value.
pub fn kind_of(url: &str) -> Result<Kind, DbError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(Kind::Postgres)
    } else if lower.starts_with("sqlite:") || !url.contains("://") {
        if url.is_empty() {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        }
        Ok(Kind::Sqlite)
    } else {
        Err(DbError::UnsupportedUrl(url.to_owned()))
    }
}

/// The user store.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteBackend),
    Postgres(PgBackend),
}

#[derive(Clone, Debug)]
pub struct SqliteBackend {
    read: SqlitePool,
    write: SqlitePool,
}

#[derive(Clone, Debug)]
pub struct PgBackend {
    read: PgPool,
    write: PgPool,
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $body:expr) => {
        match $self {
            Store::Sqlite($b) => $body,
            Store::Postgres($b) => $body,
        }
    };
}

impl Store {
    /// Opens (and for SQLite, creates) the database and applies migrations.
    /// Bounded by `connect_timeout`.
    pub async fn open(opts: &StoreOptions) -> Result<Store, DbError> {
        let store = match kind_of(&opts.url)? {
            Kind::Sqlite => Store::Sqlite(open_sqlite(opts).await?),
            Kind::Postgres => Store::Postgres(open_pg(opts).await?),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn kind(&self) -> Kind {
        match self {
            Store::Sqlite(_) => Kind::Sqlite,
            Store::Postgres(_) => Kind::Postgres,
        }
    }

    /// Closes every connection (SQLite checkpoints its WAL on the last close).
    pub async fn close(&self) {
        dispatch!(self, b => { b.write.close().await; b.read.close().await; })
    }

    async fn migrate(&self) -> Result<(), DbError> {
        dispatch!(self, b => b.migrate().await).map_err(DbError::Migration)
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, sqlx::Error> {
        dispatch!(self, b => b.find_user(username).await)
    }

    /// Inserts a user; `Ok(None)` when the username already exists.
    pub async fn insert_user(
        &self,
        user: &NewUser,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRecord>, sqlx::Error> {
        dispatch!(self, b => b.insert_user(user, now).await)
    }

    pub async fn update_user(&self, id: i64, update: &UserUpdate) -> Result<(), sqlx::Error> {
        dispatch!(self, b => b.update_user(id, update).await)
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>, sqlx::Error> {
        dispatch!(self, b => b.list_users().await)
    }

    /// Sets the active flag. `Ok(None)`: no such user; otherwise the user
    /// after the change and whether anything changed.
    pub async fn set_active(
        &self,
        username: &str,
        active: bool,
    ) -> Result<Option<(UserRecord, bool)>, sqlx::Error> {
        dispatch!(self, b => b.set_active(username, active).await)
    }

    /// Adds an administrator-managed membership. `Ok(None)`: no such user.
    pub async fn add_group(
        &self,
        username: &str,
        group: &str,
    ) -> Result<Option<(UserRecord, GroupChange)>, sqlx::Error> {
        dispatch!(self, b => b.add_group(username, group).await)
    }

    /// Removes a membership (whatever manages it). `Ok(None)`: no such user.
    pub async fn remove_group(
        &self,
        username: &str,
        group: &str,
    ) -> Result<Option<(UserRecord, GroupChange)>, sqlx::Error> {
        dispatch!(self, b => b.remove_group(username, group).await)
    }
}

fn is_memory_sqlite(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

async fn open_sqlite(opts: &StoreOptions) -> Result<SqliteBackend, DbError> {
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

async fn open_pg(opts: &StoreOptions) -> Result<PgBackend, DbError> {
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

/// Errors worth retrying the whole operation for: lost races (unique
/// violation), deadlocks, serialization failures, SQLite busy/locked.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
                return true;
            }
            matches!(
                db.code().as_deref(),
                Some("40001" | "40P01" | "5" | "6" | "261" | "262" | "517" | "773")
            )
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
                || matches!(code, "5" | "6" | "261" | "262" | "517" | "773")
        }
        _ => false,
    }
}

const USER_COLUMNS: &str = "u.id, u.username, u.email, u.first_name, u.last_name, u.is_active, \
     u.created_from_oidc, u.created_at, u.updated_at, u.last_login, g.name AS group_name, \
     ug.from_oidc AS group_from_oidc";

fn user_query(filter: &str) -> String {
    format!(
        "SELECT {USER_COLUMNS} FROM users u \
         LEFT JOIN user_groups ug ON ug.user_id = u.id \
         LEFT JOIN groups g ON g.id = ug.group_id \
         {filter} ORDER BY u.username, g.name"
    )
}

static USER_BY_NAME: LazyLock<String> = LazyLock::new(|| user_query("WHERE u.username = $1"));
static ALL_USERS: LazyLock<String> = LazyLock::new(|| user_query(""));

macro_rules! queries {
    ($backend:ty, $db:ty, $begin:expr, $lock:expr) => {
        impl $backend {
            async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>, sqlx::Error> {
                self.write.begin_with($begin).await
            }

            async fn migrate(&self) -> Result<(), sqlx::Error> {
                let mut tx = self.begin_write().await?;
                if let Some(lock) = $lock {
                    sqlx::query(lock)
                        .bind(PG_MIGRATION_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (\
                     version BIGINT PRIMARY KEY, description TEXT NOT NULL)",
                )
                .execute(&mut *tx)
                .await?;
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
                    .fetch_all(&mut *tx)
                    .await?;
                for (version, description, sqlite_sql, pg_sql) in MIGRATIONS {
                    if applied.contains(version) {
                        continue;
                    }
                    let sql = if $lock.is_some() { pg_sql } else { sqlite_sql };
                    sqlx::raw_sql(sql).execute(&mut *tx).await?;
                    sqlx::query(
                        "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                    )
                    .bind(*version)
                    .bind(*description)
                    .execute(&mut *tx)
                    .await?;
                    tracing::info!(version, description, "applied database migration");
                }
                tx.commit().await
            }

            fn users_from_rows(
                rows: Vec<<$db as sqlx::Database>::Row>,
            ) -> Result<Vec<UserRecord>, sqlx::Error> {
                let mut users: Vec<UserRecord> = Vec::new();
                for row in rows {
                    let id: i64 = row.try_get("id")?;
                    let group: Option<String> = row.try_get("group_name")?;
                    let from_oidc: Option<bool> = row.try_get("group_from_oidc")?;
                    let membership = group.map(|name| Membership {
                        name,
                        from_oidc: from_oidc.unwrap_or(false),
                    });
                    if let Some(last) = users.last_mut() {
                        if last.id == id {
                            last.groups.extend(membership);
                            continue;
                        }
                    }
                    users.push(UserRecord {
                        id,
                        username: row.try_get("username")?,
                        email: row.try_get("email")?,
                        first_name: row.try_get("first_name")?,
                        last_name: row.try_get("last_name")?,
                        is_active: row.try_get("is_active")?,
                        created_from_oidc: row.try_get("created_from_oidc")?,
                        created_at: row.try_get("created_at")?,
                        updated_at: row.try_get("updated_at")?,
                        last_login: row.try_get("last_login")?,
                        groups: membership.into_iter().collect(),
                    });
                }
                Ok(users)
            }

            async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(USER_BY_NAME.as_str())
                    .bind(username)
                    .fetch_all(&self.read)
                    .await?;
                Ok(Self::users_from_rows(rows)?.into_iter().next())
            }

            async fn find_user_for_write(
                tx: &mut sqlx::Transaction<'static, $db>,
                username: &str,
            ) -> Result<Option<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(USER_BY_NAME.as_str())
                    .bind(username)
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(Self::users_from_rows(rows)?.into_iter().next())
            }

            async fn list_users(&self) -> Result<Vec<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(ALL_USERS.as_str())
                    .fetch_all(&self.read)
                    .await?;
                Self::users_from_rows(rows)
            }

            /// Ensures the group exists and returns its id.
            async fn group_id(
                tx: &mut sqlx::Transaction<'static, $db>,
                name: &str,
            ) -> Result<i64, sqlx::Error> {
                let existing: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&mut **tx)
                        .await?;
                if let Some(id) = existing {
                    return Ok(id);
                }
                sqlx::query("INSERT INTO groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut **tx)
                    .await
            }

            async fn add_membership(
                tx: &mut sqlx::Transaction<'static, $db>,
                user_id: i64,
                group: &str,
                from_oidc: bool,
            ) -> Result<(), sqlx::Error> {
                let group_id = Self::group_id(tx, group).await?;
                let sql = if from_oidc {
                    "INSERT INTO user_groups (user_id, group_id, from_oidc) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, group_id) DO NOTHING"
                } else {
                    "INSERT INTO user_groups (user_id, group_id, from_oidc) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, group_id) DO UPDATE SET from_oidc = $3"
                };
                sqlx::query(sql)
                    .bind(user_id)
                    .bind(group_id)
                    .bind(from_oidc)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn insert_user(
                &self,
                user: &NewUser,
                now: DateTime<Utc>,
            ) -> Result<Option<UserRecord>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO users (username, email, first_name, last_name, is_active, \
                     created_from_oidc, created_at, updated_at, last_login) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
                     ON CONFLICT (username) DO NOTHING RETURNING id",
                )
                .bind(&user.username)
                .bind(&user.email)
                .bind(&user.first_name)
                .bind(&user.last_name)
                .bind(user.is_active)
                .bind(user.created_from_oidc)
                .bind(now)
                .bind(user.last_login)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = id else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let mut groups = user.groups.clone();
                groups.sort();
                groups.dedup();
                for group in &groups {
                    Self::add_membership(&mut tx, id, group, user.groups_from_oidc).await?;
                }
                tx.commit().await?;
                Ok(Some(UserRecord {
                    id,
                    username: user.username.clone(),
                    email: user.email.clone(),
                    first_name: user.first_name.clone(),
                    last_name: user.last_name.clone(),
                    is_active: user.is_active,
                    created_from_oidc: user.created_from_oidc,
                    created_at: now,
                    updated_at: now,
                    last_login: user.last_login,
                    groups: groups
                        .into_iter()
                        .map(|name| Membership {
                            name,
                            from_oidc: user.groups_from_oidc,
                        })
                        .collect(),
                }))
            }

            async fn update_user(&self, id: i64, update: &UserUpdate) -> Result<(), sqlx::Error> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET email = $1, first_name = $2, last_name = $3, \
                     updated_at = $4, last_login = $5 WHERE id = $6",
                )
                .bind(&update.email)
                .bind(&update.first_name)
                .bind(&update.last_name)
                .bind(update.updated_at)
                .bind(update.last_login)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let mut add = update.add_groups.clone();
                add.sort();
                for group in &add {
                    Self::add_membership(&mut tx, id, group, true).await?;
                }
                for group in &update.remove_groups {
                    sqlx::query(
                        "DELETE FROM user_groups WHERE user_id = $1 AND from_oidc = $2 \
                         AND group_id IN (SELECT id FROM groups WHERE name = $3)",
                    )
                    .bind(id)
                    .bind(true)
                    .bind(group)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }

            async fn set_active(
                &self,
                username: &str,
                active: bool,
            ) -> Result<Option<(UserRecord, bool)>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let Some(mut user) = Self::find_user_for_write(&mut tx, username).await? else {
                    return Ok(None);
                };
                if user.is_active == active {
                    return Ok(Some((user, false)));
                }
                let now = now();
                sqlx::query("UPDATE users SET is_active = $1, updated_at = $2 WHERE id = $3")
                    .bind(active)
                    .bind(now)
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                user.is_active = active;
                user.updated_at = now;
                Ok(Some((user, true)))
            }

            async fn add_group(
                &self,
                username: &str,
                group: &str,
            ) -> Result<Option<(UserRecord, GroupChange)>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let Some(user) = Self::find_user_for_write(&mut tx, username).await? else {
                    return Ok(None);
                };
                let change = if user.groups.iter().any(|m| m.name == group) {
                    GroupChange::AlreadyMember
                } else {
                    GroupChange::Added
                };
                Self::add_membership(&mut tx, user.id, group, false).await?;
                let user = Self::find_user_for_write(&mut tx, username).await?;
                tx.commit().await?;
                Ok(user.map(|u| (u, change)))
            }

            async fn remove_group(
                &self,
                username: &str,
                group: &str,
            ) -> Result<Option<(UserRecord, GroupChange)>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let Some(mut user) = Self::find_user_for_write(&mut tx, username).await? else {
                    return Ok(None);
                };
                let before = user.groups.len();
                user.groups.retain(|m| m.name != group);
                if user.groups.len() == before {
                    return Ok(Some((user, GroupChange::NotMember)));
                }
                sqlx::query(
                    "DELETE FROM user_groups WHERE user_id = $1 \
                     AND group_id IN (SELECT id FROM groups WHERE name = $2)",
                )
                .bind(user.id)
                .bind(group)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some((user, GroupChange::Removed)))
            }
        }
    };
}

queries!(SqliteBackend, sqlx::Sqlite, "BEGIN IMMEDIATE", None::<&str>);
queries!(
    PgBackend,
    sqlx::Postgres,
    "BEGIN",
    Some("SELECT pg_advisory_xact_lock($1)")
);
