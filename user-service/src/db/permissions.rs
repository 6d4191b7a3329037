//! Permissions: grants to users and groups, the effective set, group
//! summaries. Written once and instantiated per backend, like the user
//! queries.

use super::connect::{PgBackend, SqliteBackend};
use super::{GroupSummary, PermChange};

/// The effective set in one query: the user's own permissions and those of
/// every group they belong to (claim-managed or administrator-managed), as
/// one comma-joined row (NULL: none). One row rather than one per
/// permission: sqlx's SQLite driver hands rows over one at a time between
/// threads, which for a thousand permissions cost more than the query
/// itself. Permission names cannot contain commas (the admin commands check
/// every name). Duplicates are removed, and the list sorted, by the caller.
/// `string_agg` exists on both backends (SQLite since 3.44; sqlx bundles a
/// newer one).
const EFFECTIVE: &str = "SELECT string_agg(permission, ',') FROM ( \
     SELECT permission FROM user_permissions WHERE user_id = $1 \
     UNION ALL \
     SELECT gp.permission FROM user_groups ug \
     JOIN group_permissions gp ON gp.group_id = ug.group_id WHERE ug.user_id = $1 \
     ) AS granted";

/// The same with where each permission comes from (NULL: granted to the
/// user), for the admin commands.
const EFFECTIVE_SOURCES: &str =
    "SELECT permission, CAST(NULL AS TEXT) AS group_name FROM user_permissions WHERE user_id = $1 \
     UNION ALL \
     SELECT gp.permission, g.name FROM user_groups ug \
     JOIN group_permissions gp ON gp.group_id = ug.group_id \
     JOIN groups g ON g.id = ug.group_id WHERE ug.user_id = $1";

fn change(granting: bool, rows: u64) -> PermChange {
    match (granting, rows > 0) {
        (true, true) => PermChange::Granted,
        (true, false) => PermChange::AlreadyGranted,
        (false, true) => PermChange::Revoked,
        (false, false) => PermChange::NotGranted,
    }
}

macro_rules! permission_queries {
    ($store:ty) => {
        impl $store {
            pub(super) async fn effective_permissions(
                &self,
                user_id: i64,
            ) -> Result<Vec<String>, sqlx::Error> {
                let joined: Option<String> = sqlx::query_scalar(EFFECTIVE)
                    .bind(user_id)
                    .fetch_one(&self.read)
                    .await?;
                let mut perms: Vec<String> = joined
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                perms.sort_unstable();
                perms.dedup();
                Ok(perms)
            }

            pub(super) async fn permission_sources(
                &self,
                user_id: i64,
            ) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
                let mut rows: Vec<(String, Option<String>)> = sqlx::query_as(EFFECTIVE_SOURCES)
                    .bind(user_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.sort();
                Ok(rows)
            }

            /// Grants or revokes a user's own permission. `Ok(None)`: no
            /// such user.
            pub(super) async fn change_user_permission(
                &self,
                username: &str,
                permission: &str,
                grant: bool,
            ) -> Result<Option<PermChange>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
                        .bind(username)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(id) = id else {
                    return Ok(None);
                };
                let sql = if grant {
                    "INSERT INTO user_permissions (user_id, permission) VALUES ($1, $2) \
                     ON CONFLICT (user_id, permission) DO NOTHING"
                } else {
                    "DELETE FROM user_permissions WHERE user_id = $1 AND permission = $2"
                };
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(permission)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(Some(change(grant, rows)))
            }

            /// Grants a permission to a group, creating the group when it
            /// does not exist yet (so a claim group can be given permissions
            /// before its first member logs in). The bool: group created.
            pub(super) async fn grant_group_permission(
                &self,
                group: &str,
                permission: &str,
            ) -> Result<(PermChange, bool), sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let existed: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                        .bind(group)
                        .fetch_optional(&mut *tx)
                        .await?;
                let group_id = Self::group_id(&mut tx, group).await?;
                let rows = sqlx::query(
                    "INSERT INTO group_permissions (group_id, permission) VALUES ($1, $2) \
                     ON CONFLICT (group_id, permission) DO NOTHING",
                )
                .bind(group_id)
                .bind(permission)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok((change(true, rows), existed.is_none()))
            }

            /// `Ok(None)`: no such group.
            pub(super) async fn revoke_group_permission(
                &self,
                group: &str,
                permission: &str,
            ) -> Result<Option<PermChange>, sqlx::Error> {
                let mut tx = self.begin_write().await?;
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                    .bind(group)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(id) = id else {
                    return Ok(None);
                };
                let rows = sqlx::query(
                    "DELETE FROM group_permissions WHERE group_id = $1 AND permission = $2",
                )
                .bind(id)
                .bind(permission)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(Some(change(false, rows)))
            }

            /// Every group with its members and permissions, by name.
            pub(super) async fn list_groups(&self) -> Result<Vec<GroupSummary>, sqlx::Error> {
                let counts: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT g.name, \
                     COUNT(CASE WHEN ug.from_oidc THEN 1 END), \
                     COUNT(CASE WHEN NOT ug.from_oidc THEN 1 END) \
                     FROM groups g LEFT JOIN user_groups ug ON ug.group_id = g.id \
                     GROUP BY g.id, g.name",
                )
                .fetch_all(&self.read)
                .await?;
                let grants: Vec<(String, String)> = sqlx::query_as(
                    "SELECT g.name, gp.permission FROM group_permissions gp \
                     JOIN groups g ON g.id = gp.group_id",
                )
                .fetch_all(&self.read)
                .await?;
                let mut groups: Vec<GroupSummary> = counts
                    .into_iter()
                    .map(|(name, claim_members, admin_members)| {
                        let mut permissions: Vec<String> = grants
                            .iter()
                            .filter(|(g, _)| *g == name)
                            .map(|(_, p)| p.clone())
                            .collect();
                        permissions.sort();
                        GroupSummary {
                            name,
                            claim_members,
                            admin_members,
                            permissions,
                        }
                    })
                    .collect();
                groups.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(groups)
            }

            /// Every grant: (username or group name, is a group, permission).
            pub(super) async fn list_grants(
                &self,
            ) -> Result<Vec<(String, bool, String)>, sqlx::Error> {
                let mut rows: Vec<(String, bool, String)> = sqlx::query_as(
                    "SELECT u.username, FALSE, up.permission FROM user_permissions up \
                     JOIN users u ON u.id = up.user_id \
                     UNION ALL \
                     SELECT g.name, TRUE, gp.permission FROM group_permissions gp \
                     JOIN groups g ON g.id = gp.group_id",
                )
                .fetch_all(&self.read)
                .await?;
                rows.sort_by(|a, b| (a.1, &a.0, &a.2).cmp(&(b.1, &b.0, &b.2)));
                Ok(rows)
            }
        }
    };
}

permission_queries!(SqliteBackend);
permission_queries!(PgBackend);
