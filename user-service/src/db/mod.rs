//! Storage: SQLite (the default) and PostgreSQL behind one API, [`Store`].
//!
//! Both backends run the same SQL text (numbered `$n` parameters work on
//! both); only the schema files and the connection set-up differ. The query
//! code is written once per concern (`users`, `groups`) as a macro
//! instantiated for each backend, so the two backends cannot drift apart.

mod backend;
mod connect;
mod errors;
mod groups;
mod migrations;
mod permissions;
mod records;
mod users;

use chrono::{DateTime, Utc};

pub use backend::Backend;
pub use connect::{PgBackend, SqliteBackend, StoreOptions};
pub use errors::{is_retryable, is_unavailable, DbError};
pub use records::{
    now, Access, GroupChange, GroupSummary, Membership, NewUser, PermChange, ProfileField,
    UserFlags, UserRecord, UserUpdate,
};

/// The user store.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteBackend),
    Postgres(PgBackend),
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
        let store = match Backend::of_url(&opts.url)? {
            Backend::Sqlite => Store::Sqlite(connect::open_sqlite(opts).await?),
            Backend::Postgres => Store::Postgres(connect::open_pg(opts).await?),
        };
        dispatch!(&store, b => b.migrate().await)?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection (SQLite checkpoints its WAL on the last close).
    pub async fn close(&self) {
        dispatch!(self, b => b.close().await)
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

    /// Sets `is_staff` / `is_superuser`. `Ok(None)`: no such user;
    /// otherwise the user after the change and whether anything changed.
    pub async fn set_flags(
        &self,
        username: &str,
        flags: &UserFlags,
    ) -> Result<Option<(UserRecord, bool)>, sqlx::Error> {
        dispatch!(self, b => b.set_flags(username, flags).await)
    }

    /// What the user may do, as Django's `ModelBackend.has_perm` decides:
    /// an inactive user nothing, a superuser everything (not enumerated),
    /// anyone else their own permissions and their groups'.
    pub async fn access(&self, user: &UserRecord) -> Result<Access, sqlx::Error> {
        if !user.is_active {
            return Ok(Access::default());
        }
        if user.is_superuser {
            return Ok(Access {
                all: true,
                permissions: Vec::new(),
            });
        }
        let permissions = dispatch!(self, b => b.effective_permissions(user.id).await)?;
        Ok(Access {
            all: false,
            permissions,
        })
    }

    /// The user's permissions (whatever the flags) with where each comes
    /// from: `None` for a direct grant, `Some(group)` through a group.
    /// Sorted by permission.
    pub async fn permission_sources(
        &self,
        user_id: i64,
    ) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
        dispatch!(self, b => b.permission_sources(user_id).await)
    }

    /// Grants (`grant`) or revokes a user's own permission. `Ok(None)`: no
    /// such user.
    pub async fn change_user_permission(
        &self,
        username: &str,
        permission: &str,
        grant: bool,
    ) -> Result<Option<PermChange>, sqlx::Error> {
        dispatch!(self, b => b.change_user_permission(username, permission, grant).await)
    }

    /// Grants a permission to a group, creating the group if needed; the
    /// bool says whether it was created.
    pub async fn grant_group_permission(
        &self,
        group: &str,
        permission: &str,
    ) -> Result<(PermChange, bool), sqlx::Error> {
        dispatch!(self, b => b.grant_group_permission(group, permission).await)
    }

    /// `Ok(None)`: no such group.
    pub async fn revoke_group_permission(
        &self,
        group: &str,
        permission: &str,
    ) -> Result<Option<PermChange>, sqlx::Error> {
        dispatch!(self, b => b.revoke_group_permission(group, permission).await)
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, sqlx::Error> {
        dispatch!(self, b => b.list_groups().await)
    }

    /// Every grant as (user or group name, is a group, permission), users
    /// first, then by name and permission.
    pub async fn list_grants(&self) -> Result<Vec<(String, bool, String)>, sqlx::Error> {
        dispatch!(self, b => b.list_grants().await)
    }
}
