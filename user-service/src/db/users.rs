//! User rows: lookups, creation, login updates, the active flag. Written
//! once and instantiated per backend (both run the same SQL: numbered `$n`
//! parameters work on both), so the backends cannot drift apart.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row as _, Sqlite, Transaction};

use super::connect::{PgBackend, SqliteBackend};
use super::{now, Membership, NewUser, ProfileField, UserFlags, UserRecord, UserUpdate};

const USER_COLUMNS: &str = "u.id, u.username, u.email, u.first_name, u.last_name, u.is_active, \
     u.created_from_oidc, u.created_at, u.updated_at, u.last_login, u.is_staff, u.is_superuser, \
     g.name AS group_name, ug.from_oidc AS group_from_oidc";

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
                        is_staff: row.try_get("is_staff")?,
                        is_superuser: row.try_get("is_superuser")?,
                        profile: Vec::new(),
                    });
                }
                Ok(users)
            }

            /// One user's profile, sorted by field name (in Rust: the
            /// databases' collations order text differently).
            async fn profile_of<'e, E>(
                executor: E,
                user_id: i64,
            ) -> Result<Vec<ProfileField>, sqlx::Error>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT field, value FROM user_profile WHERE user_id = $1")
                        .bind(user_id)
                        .fetch_all(executor)
                        .await?;
                Ok(sorted_profile(rows))
            }

            pub(super) async fn find_user(
                &self,
                username: &str,
            ) -> Result<Option<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(USER_BY_NAME.as_str())
                    .bind(username)
                    .fetch_all(&self.read)
                    .await?;
                let Some(mut user) = Self::users_from_rows(rows)?.into_iter().next() else {
                    return Ok(None);
                };
                user.profile = Self::profile_of(&self.read, user.id).await?;
                Ok(Some(user))
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
                let Some(mut user) = Self::users_from_rows(rows)?.into_iter().next() else {
                    return Ok(None);
                };
                user.profile = Self::profile_of(&mut **tx, user.id).await?;
                Ok(Some(user))
            }

            pub(super) async fn list_users(&self) -> Result<Vec<UserRecord>, sqlx::Error> {
                let rows = sqlx::query(ALL_USERS.as_str())
                    .fetch_all(&self.read)
                    .await?;
                let mut users = Self::users_from_rows(rows)?;
                let fields: Vec<(i64, String, String)> =
                    sqlx::query_as("SELECT user_id, field, value FROM user_profile")
                        .fetch_all(&self.read)
                        .await?;
                for user in &mut users {
                    user.profile = sorted_profile(
                        fields
                            .iter()
                            .filter(|(id, _, _)| *id == user.id)
                            .map(|(_, f, v)| (f.clone(), v.clone()))
                            .collect(),
                    );
                }
                Ok(users)
            }

            /// Writes and deletes profile fields inside a write transaction.
            async fn write_profile(
                tx: &mut Transaction<'static, $db>,
                user_id: i64,
                set: &[ProfileField],
                remove: &[String],
            ) -> Result<(), sqlx::Error> {
                for field in set {
                    sqlx::query(
                        "INSERT INTO user_profile (user_id, field, value) VALUES ($1, $2, $3) \
                         ON CONFLICT (user_id, field) DO UPDATE SET value = $3",
                    )
                    .bind(user_id)
                    .bind(&field.name)
                    .bind(&field.value)
                    .execute(&mut **tx)
                    .await?;
                }
                for name in remove {
                    sqlx::query("DELETE FROM user_profile WHERE user_id = $1 AND field = $2")
                        .bind(user_id)
                        .bind(name)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
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
                Self::write_profile(&mut tx, id, &user.profile, &[]).await?;
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
                    is_staff: false,
                    is_superuser: false,
                    profile: sorted_profile(
                        user.profile
                            .iter()
                            .map(|f| (f.name.clone(), f.value.clone()))
                            .collect(),
                    ),
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
                Self::write_profile(&mut tx, id, &update.set_profile, &update.remove_profile)
                    .await?;
                tx.commit().await
            }

            /// Sets `is_staff` and/or `is_superuser`. `Ok(None)`: no such
            /// user; otherwise the user after the change and whether
            /// anything changed.
            pub(super) async fn set_flags(
                &self,
                username: &str,
                flags: &UserFlags,
            ) -> Result<Option<(UserRecord, bool)>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let Some(mut user) = Self::find_user_for_write(&mut tx, username).await? else {
                    return Ok(None);
                };
                let staff = flags.staff.unwrap_or(user.is_staff);
                let superuser = flags.superuser.unwrap_or(user.is_superuser);
                if (staff, superuser) == (user.is_staff, user.is_superuser) {
                    return Ok(Some((user, false)));
                }
                let now = now();
                sqlx::query(
                    "UPDATE users SET is_staff = $1, is_superuser = $2, updated_at = $3 \
                     WHERE id = $4",
                )
                .bind(staff)
                .bind(superuser)
                .bind(now)
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                user.is_staff = staff;
                user.is_superuser = superuser;
                user.updated_at = now;
                Ok(Some((user, true)))
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

fn sorted_profile(mut fields: Vec<(String, String)>) -> Vec<ProfileField> {
    fields.sort();
    fields
        .into_iter()
        .map(|(name, value)| ProfileField { name, value })
        .collect()
}

user_queries!(SqliteBackend, Sqlite);
user_queries!(PgBackend, Postgres);
