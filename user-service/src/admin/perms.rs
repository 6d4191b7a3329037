//! `perms`: grant, revoke and list permissions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use super::{check_name, to_json_text, AdminError};
use crate::cli::{PermsArgs, PermsCommand};
use crate::db::{PermChange, Store};
use crate::permission::check_permission;

fn valid_permission(name: &str) -> Result<(), AdminError> {
    check_permission(name).map_err(|why| AdminError::InvalidPermission {
        name: name.to_owned(),
        why,
    })
}

/// Runs a `perms` subcommand; returns what to print on stdout.
pub async fn run_perms(store: &Store, args: &PermsArgs) -> Result<String, AdminError> {
    match &args.command {
        PermsCommand::Grant { permission, to } => {
            valid_permission(permission)?;
            if let Some(user) = &to.user {
                let change = store
                    .change_user_permission(user, permission, true)
                    .await?
                    .ok_or_else(|| AdminError::UnknownUser(user.clone()))?;
                return Ok(user_change(args.json, user, permission, change));
            }
            let group = to.group.as_deref().unwrap_or_default();
            check_name("group name", group)?;
            let (change, created) = store.grant_group_permission(group, permission).await?;
            Ok(if args.json {
                to_json_text(&json!({
                    "group": group, "permission": permission,
                    "change": change, "group_created": created,
                }))
            } else {
                let created = if created { " (new group)" } else { "" };
                match change {
                    PermChange::AlreadyGranted => {
                        format!("group {group} already had {permission}\n")
                    }
                    _ => format!("granted {permission} to group {group}{created}\n"),
                }
            })
        }
        PermsCommand::Revoke { permission, from } => {
            valid_permission(permission)?;
            if let Some(user) = &from.user {
                let change = store
                    .change_user_permission(user, permission, false)
                    .await?
                    .ok_or_else(|| AdminError::UnknownUser(user.clone()))?;
                return Ok(user_change(args.json, user, permission, change));
            }
            let group = from.group.as_deref().unwrap_or_default();
            let change = store
                .revoke_group_permission(group, permission)
                .await?
                .ok_or_else(|| AdminError::UnknownGroup(group.to_owned()))?;
            Ok(if args.json {
                to_json_text(&json!({"group": group, "permission": permission, "change": change}))
            } else if change == PermChange::Revoked {
                format!("revoked {permission} from group {group}\n")
            } else {
                format!("group {group} did not have {permission}\n")
            })
        }
        PermsCommand::List { of } => {
            if let Some(user) = &of.user {
                return user_permissions(store, args.json, user).await;
            }
            if let Some(group) = &of.group {
                let groups = store.list_groups().await?;
                let found = groups
                    .into_iter()
                    .find(|g| &g.name == group)
                    .ok_or_else(|| AdminError::UnknownGroup(group.clone()))?;
                return Ok(if args.json {
                    to_json_text(&json!({"group": group, "permissions": found.permissions}))
                } else if found.permissions.is_empty() {
                    format!("group {group} has no permissions\n")
                } else {
                    lines(&found.permissions)
                });
            }
            all_grants(store, args.json).await
        }
    }
}

fn lines(items: &[String]) -> String {
    items.iter().map(|i| format!("{i}\n")).collect()
}

fn user_change(json: bool, user: &str, permission: &str, change: PermChange) -> String {
    if json {
        return to_json_text(&json!({"user": user, "permission": permission, "change": change}));
    }
    match change {
        PermChange::Granted => format!("granted {permission} to user {user}\n"),
        PermChange::AlreadyGranted => format!("user {user} already had {permission}\n"),
        PermChange::Revoked => format!("revoked {permission} from user {user}\n"),
        PermChange::NotGranted => format!("user {user} did not have {permission}\n"),
    }
}

/// A user's effective set, with where each granted permission comes from.
async fn user_permissions(store: &Store, json: bool, username: &str) -> Result<String, AdminError> {
    let user = store
        .find_user(username)
        .await?
        .ok_or_else(|| AdminError::UnknownUser(username.to_owned()))?;
    let access = store.access(&user).await?;
    let mut sources: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (permission, group) in store.permission_sources(user.id).await? {
        let source = group.map_or_else(|| "user".to_owned(), |g| format!("group:{g}"));
        sources.entry(permission).or_default().push(source);
    }
    if json {
        return Ok(to_json_text(&json!({
            "user": username,
            "is_active": user.is_active,
            "is_superuser": user.is_superuser,
            "all_permissions": access.all,
            "permissions": access.permissions,
            "sources": sources,
        })));
    }
    if !user.is_active {
        return Ok(format!(
            "user {username} is inactive: no permissions ({} granted, effective once activated)\n",
            sources.len()
        ));
    }
    if access.all {
        return Ok(format!("user {username} is a superuser: all permissions\n"));
    }
    if access.permissions.is_empty() {
        return Ok(format!("user {username} has no permissions\n"));
    }
    let width = access
        .permissions
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for permission in &access.permissions {
        let from = sources
            .get(permission)
            .map(|s| s.join(", "))
            .unwrap_or_default();
        let _ = writeln!(out, "{permission:<width$}  ({from})");
    }
    Ok(out)
}

async fn all_grants(store: &Store, json: bool) -> Result<String, AdminError> {
    let grants = store.list_grants().await?;
    if json {
        let rows: Vec<serde_json::Value> = grants
            .iter()
            .map(|(name, is_group, permission)| {
                let kind = if *is_group { "group" } else { "user" };
                json!({kind: name, "permission": permission})
            })
            .collect();
        return Ok(to_json_text(&serde_json::Value::Array(rows)));
    }
    if grants.is_empty() {
        return Ok("no permissions granted\n".to_owned());
    }
    let mut out = String::new();
    for (name, is_group, permission) in &grants {
        let kind = if *is_group { "group" } else { "user" };
        let _ = writeln!(out, "{kind} {name}: {permission}");
    }
    Ok(out)
}
