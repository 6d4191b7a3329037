//! Administration subcommands: talk to the database directly.

pub mod perms;

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::cli::{GroupsArgs, GroupsCommand, UsersArgs, UsersCommand};
use crate::db::{GroupChange, GroupSummary, NewUser, Store, UserFlags, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user named {0:?}")]
    UnknownUser(String),
    #[error("no group named {0:?}")]
    UnknownGroup(String),
    #[error("invalid permission {name:?}: {why} (expected app_label.codename, e.g. widgets.change_widget)")]
    InvalidPermission { name: String, why: &'static str },
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("invalid {what}: {why}")]
    Invalid {
        what: &'static str,
        why: &'static str,
    },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Does the command write (so it may create a fresh SQLite file)?
pub fn users_command_creates(cmd: &UsersCommand) -> bool {
    matches!(cmd, UsersCommand::CreateLocal { .. })
}

fn check_name(what: &'static str, value: &str) -> Result<(), AdminError> {
    if value.is_empty() {
        return Err(AdminError::Invalid {
            what,
            why: "must not be empty",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(AdminError::Invalid {
            what,
            why: "must not contain control characters",
        });
    }
    Ok(())
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn full_name(u: &UserRecord) -> String {
    format!("{} {}", u.first_name, u.last_name)
        .trim()
        .to_owned()
}

fn or_dash(s: String) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

fn source(u: &UserRecord) -> &'static str {
    if u.created_from_oidc {
        "oidc"
    } else {
        "local"
    }
}

fn groups_text(u: &UserRecord) -> String {
    if u.groups.is_empty() {
        return "-".to_owned();
    }
    u.groups
        .iter()
        .map(|m| {
            if m.from_oidc {
                m.name.clone()
            } else {
                format!("{} (admin)", m.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn profile_text(u: &UserRecord) -> String {
    if u.profile.is_empty() {
        return "-".to_owned();
    }
    u.profile
        .iter()
        .map(|f| format!("{}={}", f.name, f.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Human-readable detail of one user.
pub fn render_user(u: &UserRecord) -> String {
    let mut out = String::new();
    let rows: [(&str, String); 13] = [
        ("id", u.id.to_string()),
        ("username", u.username.clone()),
        ("email", or_dash(u.email.clone())),
        ("name", or_dash(full_name(u))),
        ("active", if u.is_active { "yes" } else { "no" }.to_owned()),
        ("source", source(u).to_owned()),
        ("groups", groups_text(u)),
        ("created", ts(&u.created_at)),
        ("updated", ts(&u.updated_at)),
        (
            "last login",
            u.last_login.as_ref().map_or_else(|| "never".to_owned(), ts),
        ),
        ("staff", yes_no(u.is_staff)),
        ("superuser", yes_no(u.is_superuser)),
        ("profile", profile_text(u)),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "{:<12}{}", format!("{k}:"), v);
    }
    out
}

/// Human-readable table of users.
pub fn render_table(users: &[UserRecord]) -> String {
    if users.is_empty() {
        return "no users\n".to_owned();
    }
    let header = [
        "ID",
        "USERNAME",
        "ACTIVE",
        "SOURCE",
        "EMAIL",
        "NAME",
        "GROUPS",
        "LAST LOGIN",
    ];
    let rows: Vec<[String; 8]> = users
        .iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.username.clone(),
                if u.is_active { "yes" } else { "no" }.to_owned(),
                source(u).to_owned(),
                or_dash(u.email.clone()),
                or_dash(full_name(u)),
                groups_text(u),
                u.last_login.as_ref().map_or_else(|| "never".to_owned(), ts),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                l.push_str(cell);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn user_json(u: &UserRecord) -> serde_json::Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "is_active": u.is_active,
        "created_from_oidc": u.created_from_oidc,
        "groups": u.group_names(),
        "admin_groups": u.groups.iter().filter(|m| !m.from_oidc).map(|m| m.name.clone()).collect::<Vec<_>>(),
        "created_at": ts(&u.created_at),
        "updated_at": ts(&u.updated_at),
        "last_login": u.last_login.as_ref().map(ts),
        "is_staff": u.is_staff,
        "is_superuser": u.is_superuser,
        "profile": u.profile.iter()
            .map(|f| (f.name.clone(), serde_json::Value::String(f.value.clone())))
            .collect::<serde_json::Map<_, _>>(),
    })
}

fn to_json_text(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Runs a `users` subcommand; returns what to print on stdout.
pub async fn run_users(store: &Store, args: &UsersArgs) -> Result<String, AdminError> {
    let json = args.json;
    match &args.command {
        UsersCommand::List => {
            let users = store.list_users().await?;
            Ok(if json {
                to_json_text(&serde_json::Value::Array(
                    users.iter().map(user_json).collect(),
                ))
            } else {
                render_table(&users)
            })
        }
        UsersCommand::Show { username } => {
            let user = store
                .find_user(username)
                .await?
                .ok_or_else(|| AdminError::UnknownUser(username.clone()))?;
            Ok(if json {
                to_json_text(&user_json(&user))
            } else {
                render_user(&user)
            })
        }
        UsersCommand::Activate { username } | UsersCommand::Deactivate { username } => {
            let active = matches!(args.command, UsersCommand::Activate { .. });
            let (user, changed) = store
                .set_active(username, active)
                .await?
                .ok_or_else(|| AdminError::UnknownUser(username.clone()))?;
            let state = if active { "active" } else { "inactive" };
            Ok(if json {
                to_json_text(&json!({"user": user_json(&user), "changed": changed}))
            } else if changed {
                format!("user {username} is now {state}\n")
            } else {
                format!("user {username} was already {state}\n")
            })
        }
        UsersCommand::CreateLocal {
            username,
            email,
            first_name,
            last_name,
            groups,
            inactive,
        } => {
            check_name("username", username)?;
            for g in groups {
                check_name("group name", g)?;
            }
            let new = NewUser {
                username: username.clone(),
                email: email.clone(),
                first_name: first_name.clone(),
                last_name: last_name.clone(),
                is_active: !inactive,
                created_from_oidc: false,
                last_login: None,
                groups: groups.clone(),
                groups_from_oidc: false,
                profile: Vec::new(),
            };
            let user = store
                .insert_user(&new, crate::db::now())
                .await?
                .ok_or_else(|| AdminError::UserExists(username.clone()))?;
            Ok(if json {
                to_json_text(&user_json(&user))
            } else {
                format!(
                    "created local user {} (id {})\n{}",
                    user.username,
                    user.id,
                    render_user(&user)
                )
            })
        }
        UsersCommand::Set {
            username,
            staff,
            no_staff,
            superuser,
            no_superuser,
        } => {
            let choose = |on: bool, off: bool| match (on, off) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let flags = UserFlags {
                staff: choose(*staff, *no_staff),
                superuser: choose(*superuser, *no_superuser),
            };
            let (user, changed) = store
                .set_flags(username, &flags)
                .await?
                .ok_or_else(|| AdminError::UnknownUser(username.clone()))?;
            Ok(if json {
                to_json_text(&json!({"user": user_json(&user), "changed": changed}))
            } else {
                let state = format!(
                    "staff: {}, superuser: {}",
                    yes_no(user.is_staff),
                    yes_no(user.is_superuser)
                );
                if changed {
                    format!("user {username} is now {state}\n")
                } else {
                    format!("user {username} was already {state}\n")
                }
            })
        }
    }
}

/// Runs a `groups` subcommand; returns what to print on stdout.
pub async fn run_groups(store: &Store, args: &GroupsArgs) -> Result<String, AdminError> {
    let (username, group, outcome) = match &args.command {
        GroupsCommand::List => {
            let groups = store.list_groups().await?;
            return Ok(if args.json {
                to_json_text(&serde_json::to_value(&groups).unwrap_or_default())
            } else {
                render_groups(&groups)
            });
        }
        GroupsCommand::Add { username, group } => {
            check_name("group name", group)?;
            (username, group, store.add_group(username, group).await?)
        }
        GroupsCommand::Remove { username, group } => {
            (username, group, store.remove_group(username, group).await?)
        }
    };
    let (user, change) = outcome.ok_or_else(|| AdminError::UnknownUser(username.clone()))?;
    Ok(if args.json {
        to_json_text(&json!({"user": user_json(&user), "change": change}))
    } else {
        match change {
            GroupChange::Added => format!("added {username} to group {group}\n"),
            GroupChange::AlreadyMember => format!(
                "{username} was already in group {group} (now kept regardless of the groups claim)\n"
            ),
            GroupChange::Removed => format!("removed {username} from group {group}\n"),
            GroupChange::NotMember => format!("{username} was not in group {group}\n"),
        }
    })
}

/// Human-readable list of groups.
fn render_groups(groups: &[GroupSummary]) -> String {
    if groups.is_empty() {
        return "no groups\n".to_owned();
    }
    let mut out = String::new();
    for g in groups {
        let perms = if g.permissions.is_empty() {
            "-".to_owned()
        } else {
            g.permissions.join(", ")
        };
        let _ = writeln!(
            out,
            "{}: {} members ({} from claims, {} admin); permissions: {}",
            g.name,
            g.claim_members + g.admin_members,
            g.claim_members,
            g.admin_members,
            perms
        );
    }
    out
}
