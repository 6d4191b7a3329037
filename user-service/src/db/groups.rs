//! Groups and memberships. Written once and instantiated per backend, like
//! the user queries.

use sqlx::{Postgres, Sqlite, Transaction};

use super::connect::{PgBackend, SqliteBackend};
use super::{GroupChange, UserRecord};

macro_rules! group_queries {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Ensures the group exists and returns its id.
            pub(super) async fn group_id(
                tx: &mut Transaction<'static, $db>,
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

            /// Adds a membership. A claim-managed addition leaves an
            /// existing membership as it is; an administrator's addition
            /// makes it administrator-managed.
            pub(super) async fn add_membership(
                tx: &mut Transaction<'static, $db>,
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

            /// Removes a claim-managed membership (administrator ones stay).
            pub(super) async fn remove_claim_membership(
                tx: &mut Transaction<'static, $db>,
                user_id: i64,
                group: &str,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "DELETE FROM user_groups WHERE user_id = $1 AND from_oidc = $2 \
                     AND group_id IN (SELECT id FROM groups WHERE name = $3)",
                )
                .bind(user_id)
                .bind(true)
                .bind(group)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            pub(super) async fn add_group(
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

            pub(super) async fn remove_group(
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

group_queries!(SqliteBackend, Sqlite);
group_queries!(PgBackend, Postgres);
