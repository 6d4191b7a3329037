//! The admin subcommands and start-up errors, through the real binary, on
//! both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output};

use chrono::SubsecRound;

use common::TestDb;
use serde_json::Value;

both_backends!(
    create_list_show,
    activate_and_deactivate,
    group_add_and_remove,
    unknown_users_and_duplicates_fail,
    perms_grant_revoke_list,
    users_set_flags,
    groups_list,
    invalid_permissions_refused,
);

const BIN: &str = env!("CARGO_BIN_EXE_alb-oidc-user-service");

fn run(db: &TestDb, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--database")
        .arg(&db.url)
        .args(args)
        .env_remove("ALB_OIDC_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = run(db, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(db: &TestDb, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(db, &all)).unwrap()
}

fn fail(db: &TestDb, args: &[&str]) -> String {
    let out = run(db, args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

async fn create_list_show(db: &TestDb) {
    let before = chrono::Utc::now().trunc_subsecs(0);
    let out = ok(
        db,
        &[
            "users",
            "create-local",
            "admin",
            "--email",
            "admin@example.com",
            "--first-name",
            "Ada",
            "--last-name",
            "Min",
            "--group",
            "ops",
            "--group",
            "admins",
        ],
    );
    let after = chrono::Utc::now();
    assert!(
        out.starts_with("created local user admin (id 1)\n"),
        "{out}"
    );
    ok(db, &["users", "create-local", "second", "--inactive"]);

    assert_eq!(
        ok(db, &["users", "list"]),
        "ID  USERNAME  ACTIVE  SOURCE  EMAIL              NAME     GROUPS                       LAST LOGIN\n\
         1   admin     yes     local   admin@example.com  Ada Min  admins (admin), ops (admin)  never\n\
         2   second    no      local   -                  -        -                            never\n"
    );

    let list = json(db, &["users", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["username"], "admin");
    assert_eq!(list[0]["created_from_oidc"], false);
    assert_eq!(list[0]["groups"], serde_json::json!(["admins", "ops"]));
    assert_eq!(list[1]["is_active"], false);
    assert_eq!(list[1]["last_login"], Value::Null);

    let shown = ok(db, &["users", "show", "admin"]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "id:         1",
            "username:   admin",
            "email:      admin@example.com",
            "name:       Ada Min",
            "active:     yes",
            "source:     local",
            "groups:     admins (admin), ops (admin)",
        ],
        "{shown}"
    );
    let created = lines[7].strip_prefix("created:    ").unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(created).unwrap();
    assert!(before <= created && created <= after, "{shown}");
    assert_eq!(
        lines[8],
        lines[7].replace("created:", "updated:"),
        "{shown}"
    );
    assert_eq!(
        lines[9..],
        [
            "last login: never",
            "staff:      no",
            "superuser:  no",
            "profile:    -"
        ],
        "{shown}"
    );
    let shown = json(db, &["users", "show", "admin"]);
    assert_eq!(shown["email"], "admin@example.com");
    assert_eq!(shown["first_name"], "Ada");
    assert_eq!(shown["id"], 1, "the first user of a new database");
}

async fn activate_and_deactivate(db: &TestDb) {
    ok(db, &["users", "create-local", "eve"]);
    let out = ok(db, &["users", "deactivate", "eve"]);
    assert_eq!(out, "user eve is now inactive\n");
    let out = ok(db, &["users", "deactivate", "eve"]);
    assert_eq!(out, "user eve was already inactive\n");
    assert_eq!(json(db, &["users", "show", "eve"])["is_active"], false);
    let v = json(db, &["users", "activate", "eve"]);
    assert_eq!(v["changed"], true);
    assert_eq!(v["user"]["is_active"], true);
    // The service sees the change.
    let store = db.store().await;
    assert!(store.find_user("eve").await.unwrap().unwrap().is_active);
}

async fn group_add_and_remove(db: &TestDb) {
    ok(db, &["users", "create-local", "gil"]);
    assert_eq!(
        ok(db, &["groups", "add", "gil", "devs"]),
        "added gil to group devs\n"
    );
    let v = json(db, &["groups", "add", "gil", "devs"]);
    assert_eq!(v["change"], "already_member");
    ok(db, &["groups", "add", "gil", "qa"]);
    assert_eq!(
        json(db, &["users", "show", "gil"])["groups"],
        serde_json::json!(["devs", "qa"])
    );
    assert_eq!(
        ok(db, &["groups", "remove", "gil", "devs"]),
        "removed gil from group devs\n"
    );
    let v = json(db, &["groups", "remove", "gil", "devs"]);
    assert_eq!(v["change"], "not_member");
    assert_eq!(v["user"]["groups"], serde_json::json!(["qa"]));
}

async fn unknown_users_and_duplicates_fail(db: &TestDb) {
    ok(db, &["users", "create-local", "ham"]);
    for args in [
        &["users", "show", "ghost"][..],
        &["users", "activate", "ghost"],
        &["users", "deactivate", "ghost"],
        &["groups", "add", "ghost", "g"],
        &["groups", "remove", "ghost", "g"],
    ] {
        let err = fail(db, args);
        assert_eq!(err, "error: no user named \"ghost\"\n", "{args:?}");
    }
    assert_eq!(
        fail(db, &["users", "create-local", "ham"]),
        "error: a user named \"ham\" already exists\n"
    );
    assert_eq!(
        fail(db, &["users", "create-local", ""]),
        "error: invalid username: must not be empty\n"
    );
    assert_eq!(
        fail(db, &["groups", "add", "ham", ""]),
        "error: invalid group name: must not be empty\n"
    );
}

#[test]
fn missing_sqlite_file_is_an_error_for_read_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let out = Command::new(BIN)
        .args(["users", "list", "--database"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let path_text = path.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: database {path_text}: SQLite database file {path_text} does not exist \
             (start the service or run `users create-local` to create it)\n"
        )
    );
    assert!(!path.exists(), "no empty database was created");
}

#[test]
fn strict_boolean_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("u.db");
    for (var, value) in [
        ("ALB_OIDC_AUTO_CREATE_USERS", "yes"),
        ("ALB_OIDC_LINK_EXISTING_USERS", "TRUE"),
        ("ALB_OIDC_REQUIRE_VERIFIED_EMAIL", "2"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(&db)
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{err}");
        assert!(err.contains("expected true, false, 1 or 0"), "{err}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--auto-create-users=maybe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--auto-create-users"));
}

#[test]
fn profile_claims_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("u.db");
    let mappings = |n: usize| {
        (0..n)
            .map(|i| format!("custom:c{i}=field_{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let too_many = mappings(33);
    for (spec, reason) in [
        (too_many.as_str(), "33 mappings; at most 32 are allowed"),
        ("custom:dept=Department", "must start with a-z"),
        ("a=dept,b=dept", "mapped twice"),
        ("custom:dept", "is not claim=field"),
    ] {
        for by_env in [false, true] {
            let mut cmd = Command::new(BIN);
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--database"])
                .arg(&db);
            if by_env {
                cmd.env("ALB_OIDC_PROFILE_CLAIMS", spec);
            } else {
                cmd.args(["--profile-claims", spec]);
            }
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{spec} (env: {by_env})");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(reason), "{err}");
            assert!(err.contains("ALB_OIDC_PROFILE_CLAIMS"), "{err}");
        }
    }
    assert!(!db.exists(), "refused before opening the database");
}

/// Each start-up failure is one JSON log line naming the reason.
#[test]
fn bad_database_urls_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/users.db");
    let missing_dir = missing_dir.to_str().unwrap();
    for (url, reason) in [
        (
            "mysql://root@127.0.0.1/x",
            "unsupported database \"mysql://root@127.0.0.1/x\": use a file path, a sqlite:// URL or a postgres:// URL",
        ),
        (
            "postgres://postgres@127.0.0.1:1/test",
            "could not open the database: error communicating with database: Connection refused (os error 111)",
        ),
        ("postgres://bad url", "invalid database URL: "),
        (
            missing_dir,
            "could not open the database: error returned from database: (code: 14) unable to open database file",
        ),
    ] {
        let out = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--db-connect-timeout",
                "3",
                "--database",
                url,
            ])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}");
        let err = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<Value> = err
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{url}: {err}");
        assert_eq!(lines[0]["level"], "ERROR", "{url}: {err}");
        assert_eq!(lines[0]["message"], "cannot open the database", "{url}");
        assert_eq!(lines[0]["database"], url);
        let error = lines[0]["error"].as_str().unwrap();
        assert!(error.starts_with(reason), "{url}: {error}");
    }
}

async fn perms_grant_revoke_list(db: &TestDb) {
    ok(db, &["users", "create-local", "ann", "--group", "ops"]);
    assert_eq!(
        ok(db, &["perms", "grant", "ops.restart", "--group", "ops"]),
        "granted ops.restart to group ops\n"
    );
    assert_eq!(
        ok(db, &["perms", "grant", "ops.restart", "--group", "ops"]),
        "group ops already had ops.restart\n"
    );
    assert_eq!(
        ok(db, &["perms", "grant", "docs.view", "--group", "readers"]),
        "granted docs.view to group readers (new group)\n"
    );
    assert_eq!(
        ok(db, &["perms", "grant", "ops.restart", "--user", "ann"]),
        "granted ops.restart to user ann\n"
    );
    let v = json(db, &["perms", "grant", "docs.edit", "--user", "ann"]);
    assert_eq!(
        v,
        serde_json::json!({"user": "ann", "permission": "docs.edit", "change": "granted"})
    );

    // The effective set: own grants and the groups' (readers is not ann's).
    assert_eq!(
        ok(db, &["perms", "list", "--user", "ann"]),
        "docs.edit    (user)\nops.restart  (user, group:ops)\n"
    );
    let v = json(db, &["perms", "list", "--user", "ann"]);
    assert_eq!(
        v["permissions"],
        serde_json::json!(["docs.edit", "ops.restart"])
    );
    assert_eq!(v["all_permissions"], false);
    assert_eq!(
        v["sources"]["ops.restart"],
        serde_json::json!(["user", "group:ops"])
    );
    assert_eq!(
        ok(db, &["perms", "list", "--group", "readers"]),
        "docs.view\n"
    );
    assert_eq!(
        ok(db, &["perms", "list"]),
        "user ann: docs.edit\nuser ann: ops.restart\ngroup ops: ops.restart\ngroup readers: docs.view\n"
    );
    assert_eq!(json(db, &["perms", "list"]).as_array().unwrap().len(), 4);

    assert_eq!(
        ok(db, &["perms", "revoke", "ops.restart", "--user", "ann"]),
        "revoked ops.restart from user ann\n"
    );
    assert_eq!(
        ok(db, &["perms", "revoke", "ops.restart", "--user", "ann"]),
        "user ann did not have ops.restart\n"
    );
    assert_eq!(
        json(db, &["perms", "list", "--user", "ann"])["permissions"],
        serde_json::json!(["docs.edit", "ops.restart"]),
        "still granted through ops"
    );
    let v = json(db, &["perms", "revoke", "ops.restart", "--group", "ops"]);
    assert_eq!(v["change"], "revoked");
    assert_eq!(
        ok(db, &["perms", "list", "--user", "ann"]),
        "docs.edit  (user)\n"
    );
    assert_eq!(
        fail(db, &["perms", "revoke", "a.b", "--group", "ghosts"]),
        "error: no group named \"ghosts\"\n"
    );
    assert_eq!(
        fail(db, &["perms", "grant", "a.b", "--user", "ghost"]),
        "error: no user named \"ghost\"\n"
    );
    assert_eq!(
        fail(db, &["perms", "list", "--group", "ghosts"]),
        "error: no group named \"ghosts\"\n"
    );

    ok(db, &["users", "deactivate", "ann"]);
    assert_eq!(
        ok(db, &["perms", "list", "--user", "ann"]),
        "user ann is inactive: no permissions (1 granted, effective once activated)\n"
    );
    assert_eq!(
        json(db, &["perms", "list", "--user", "ann"])["permissions"],
        serde_json::json!([])
    );
}

async fn users_set_flags(db: &TestDb) {
    ok(db, &["users", "create-local", "bo"]);
    assert_eq!(
        ok(db, &["users", "set", "bo", "--superuser"]),
        "user bo is now staff: no, superuser: yes\n"
    );
    assert_eq!(
        ok(db, &["users", "set", "bo", "--superuser"]),
        "user bo was already staff: no, superuser: yes\n"
    );
    assert_eq!(
        ok(db, &["perms", "list", "--user", "bo"]),
        "user bo is a superuser: all permissions\n"
    );
    let v = json(db, &["users", "set", "bo", "--staff", "--no-superuser"]);
    assert_eq!(v["changed"], true);
    assert_eq!(v["user"]["is_staff"], true);
    assert_eq!(v["user"]["is_superuser"], false);
    let v = json(db, &["users", "show", "bo"]);
    assert_eq!(
        (v["is_staff"].clone(), v["is_superuser"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );
    ok(db, &["users", "set", "bo", "--no-staff"]);
    assert_eq!(json(db, &["users", "show", "bo"])["is_staff"], false);
    assert_eq!(
        fail(db, &["users", "set", "ghost", "--staff"]),
        "error: no user named \"ghost\"\n"
    );
    // Usage errors: no flag, or both of a pair.
    for args in [
        &["users", "set", "bo"][..],
        &["users", "set", "bo", "--staff", "--no-staff"],
        &["users", "set", "bo", "--superuser", "--no-superuser"],
    ] {
        assert_eq!(run(db, args).status.code(), Some(2), "{args:?}");
    }
}

async fn groups_list(db: &TestDb) {
    ok(db, &["users", "create-local", "cy", "--group", "ops"]);
    assert_eq!(
        ok(db, &["groups", "list"]),
        "ops: 1 members (0 from claims, 1 admin); permissions: -\n"
    );
    ok(db, &["perms", "grant", "ops.restart", "--group", "ops"]);
    ok(db, &["perms", "grant", "ops.deploy", "--group", "ops"]);
    ok(db, &["perms", "grant", "docs.view", "--group", "readers"]);
    assert_eq!(
        ok(db, &["groups", "list"]),
        "ops: 1 members (0 from claims, 1 admin); permissions: ops.deploy, ops.restart\n\
         readers: 0 members (0 from claims, 0 admin); permissions: docs.view\n"
    );
    assert_eq!(
        json(db, &["groups", "list"]),
        serde_json::json!([
            {"name": "ops", "claim_members": 0, "admin_members": 1,
             "permissions": ["ops.deploy", "ops.restart"]},
            {"name": "readers", "claim_members": 0, "admin_members": 0,
             "permissions": ["docs.view"]},
        ])
    );
}

async fn invalid_permissions_refused(db: &TestDb) {
    ok(db, &["users", "create-local", "di"]);
    for perm in ["*", "app.*", "App.view", "app", "app.a.b", "a,b.c", ""] {
        for args in [
            ["perms", "grant", perm, "--user", "di"],
            ["perms", "revoke", perm, "--group", "ops"],
        ] {
            let err = fail(db, &args);
            assert!(
                err.starts_with(&format!("error: invalid permission {perm:?}: ")),
                "{args:?}: {err}"
            );
        }
    }
    // Neither or both of --user and --group: usage errors.
    assert_eq!(run(db, &["perms", "grant", "a.b"]).status.code(), Some(2));
    assert_eq!(
        run(
            db,
            &["perms", "grant", "a.b", "--user", "di", "--group", "g"]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(json(db, &["perms", "list"]), serde_json::json!([]));
}
