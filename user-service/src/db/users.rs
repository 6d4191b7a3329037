//! User rows: lookups, creation, login updates, the active flag. Written
//! once and instantiated per backend (both run the same SQL: numbered `$n`
//! parameters work on both), so the backends cannot drift apart.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row as _, Sqlite, Transaction};

use super::connect::{PgBackend, SqliteBackend};
use super::{now, Membership, NewUser, UserRecord, UserUpdate};

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

macro_rules! user_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Folds the joined rows (one per membership, ordered by
            /// username) into users.
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

            pub(super) async fn find_user(
                &self,
                username: &str,
            ) -> Result<Option<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(USER_BY_NAME.as_str())
                    .bind(username)
                    .fetch_all(&self.read)
                    .await?;
                Ok(Self::users_from_rows(rows)?.into_iter().next())
            }

            /// The user as seen inside a write transaction.
            pub(super) async fn find_user_for_write(
                tx: &mut Transaction<'static, $db>,
                username: &str,
            ) -> Result<Option<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(USER_BY_NAME.as_str())
                    .bind(username)
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(Self::users_from_rows(rows)?.into_iter().next())
            }

            pub(super) async fn list_users(&self) -> Result<Vec<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(ALL_USERS.as_str())
                    .fetch_all(&self.read)
                    .await?;
                Self::users_from_rows(rows)
            }

            pub(super) async fn insert_user(
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

            pub(super) async fn update_user(
                &self,
                id: i64,
                update: &UserUpdate,
            ) -> Result<(), sqlx::Error> {
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
                    Self::remove_claim_membership(&mut tx, id, group).await?;
                }
                tx.commit().await
            }

            pub(super) async fn set_active(
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
        }
    };
}

user_queries!(SqliteBackend, Sqlite);
user_queries!(PgBackend, Postgres);
