//! Permissions and profile fields through Authenticate, on both backends:
//! effective permissions through groups, superuser, inactive, revoke,
//! profile claims (values that are not strings, the size limit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use alb_oidc_user_service::auth::{Authenticator, Outcome, Policy, RefusalReason};
use alb_oidc_user_service::db::{Access, PermChange, ProfileField, Store, UserFlags, UserRecord};
use alb_oidc_user_service::profile::parse_profile_claims;
use common::TestDb;
use serde_json::{json, Value};

both_backends!(
    effective_permissions_through_groups,
    claim_groups_from_both_tokens_are_replaced_on_each_sync,
    superuser_has_every_permission_and_is_not_staff,
    inactive_users_have_no_permissions,
    revoked_permissions_are_gone_at_the_next_call,
    profile_fields_from_claims,
    profile_value_size_limit,
);

fn perms(list: &[&str]) -> Access {
    Access {
        all: false,
        permissions: list.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn groups_policy() -> Policy {
    Policy {
        groups_claim: Some("groups".into()),
        ..Policy::default()
    }
}

async fn login_with(
    auth: &Authenticator,
    username: &str,
    claims: Value,
    access_token_groups: &[&str],
) -> (UserRecord, Access) {
    let groups: Vec<String> = access_token_groups
        .iter()
        .map(|g| (*g).to_owned())
        .collect();
    match auth
        .authenticate_with(username, &claims.to_string(), &groups)
        .await
        .unwrap()
    {
        Outcome::User { user, access, .. } => (user, access),
        other => panic!("expected a user, got {other:?}"),
    }
}

async fn login(auth: &Authenticator, username: &str, claims: Value) -> (UserRecord, Access) {
    login_with(auth, username, claims, &[]).await
}

fn names(u: &UserRecord) -> Vec<&str> {
    u.groups.iter().map(|m| m.name.as_str()).collect()
}

async fn grant_group(store: &Store, group: &str, perm: &str) {
    store.grant_group_permission(group, perm).await.unwrap();
}

async fn effective_permissions_through_groups(db: &TestDb) {
    let store = db.store().await;
    let auth = Authenticator::new(store.clone(), groups_policy());
    // Granted before anyone is in these groups (creates them).
    grant_group(&store, "readers", "docs.view").await;
    grant_group(&store, "readers", "docs.comment").await;
    grant_group(&store, "editors", "docs.edit").await;
    grant_group(&store, "editors", "docs.view").await;
    grant_group(&store, "ops", "ops.restart").await;
    grant_group(&store, "cognito-admins", "admin.view_log").await;
    grant_group(&store, "unrelated", "hr.view_salary").await;

    let (u, access) = login(&auth, "ana", json!({"groups": ["readers"]})).await;
    assert_eq!(names(&u), vec!["readers"]);
    assert_eq!(access, perms(&["docs.comment", "docs.view"]));

    // An administrator's group, a direct grant, a second claim group with
    // an overlapping permission and an access-token group.
    store.add_group("ana", "ops").await.unwrap();
    assert_eq!(
        store
            .change_user_permission("ana", "docs.view", true)
            .await
            .unwrap(),
        Some(PermChange::Granted)
    );
    store
        .change_user_permission("ana", "wiki.publish", true)
        .await
        .unwrap();
    let (u, access) = login_with(
        &auth,
        "ana",
        json!({"groups": ["readers", "editors"]}),
        &["cognito-admins"],
    )
    .await;
    assert_eq!(
        names(&u),
        vec!["cognito-admins", "editors", "ops", "readers"]
    );
    assert_eq!(
        access,
        perms(&[
            "admin.view_log",
            "docs.comment",
            "docs.edit",
            "docs.view",
            "ops.restart",
            "wiki.publish",
        ]),
        "own and every group's, each once, sorted"
    );
    assert_eq!(store.access(&u).await.unwrap(), access);

    // Another user in none of these groups has none of it.
    let (_, access) = login(&auth, "ben", json!({"groups": ["unrelated"]})).await;
    assert_eq!(access, perms(&["hr.view_salary"]));

    // Staff alone grants nothing.
    store
        .set_flags(
            "ben",
            &UserFlags {
                staff: Some(true),
                superuser: None,
            },
        )
        .await
        .unwrap();
    let (ben, access) = login(&auth, "ben", json!({})).await;
    assert!(ben.is_staff && !ben.is_superuser);
    assert_eq!(access, perms(&[]));
}

async fn claim_groups_from_both_tokens_are_replaced_on_each_sync(db: &TestDb) {
    let store = db.store().await;
    grant_group(&store, "cognito-ops", "ops.deploy").await;
    grant_group(&store, "admins", "admin.all").await;
    for policy in [groups_policy(), Policy::default()] {
        let with_claim = policy.groups_claim.is_some();
        let auth = Authenticator::new(store.clone(), policy);
        let user = if with_claim { "cid" } else { "dee" };
        let data_groups = if with_claim { vec!["readers"] } else { vec![] };
        let (_, _) = login(&auth, user, json!({})).await;
        store.add_group(user, "admins").await.unwrap();
        let (u, access) = login_with(
            &auth,
            user,
            json!({"groups": ["readers"]}),
            &["cognito-ops"],
        )
        .await;
        let mut expected = vec!["admins", "cognito-ops"];
        expected.extend(&data_groups);
        assert_eq!(
            names(&u),
            expected,
            "policy with groups claim: {with_claim}"
        );
        assert_eq!(access, perms(&["admin.all", "ops.deploy"]));
        let claim_groups: Vec<&str> = u
            .groups
            .iter()
            .filter(|m| m.from_oidc)
            .map(|m| m.name.as_str())
            .collect();
        let mut expected_claim = vec!["cognito-ops"];
        expected_claim.extend(&data_groups);
        assert_eq!(claim_groups, expected_claim);

        // The access token's groups change: the old one goes, the
        // administrator's group stays.
        let (u, access) = login_with(
            &auth,
            user,
            json!({"groups": ["readers"]}),
            &["cognito-dev"],
        )
        .await;
        let mut expected = vec!["admins", "cognito-dev"];
        expected.extend(&data_groups);
        assert_eq!(names(&u), expected);
        assert_eq!(access, perms(&["admin.all"]));
        assert_eq!(store.find_user(user).await.unwrap().unwrap(), u);
    }
}

async fn superuser_has_every_permission_and_is_not_staff(db: &TestDb) {
    let store = db.store().await;
    let auth = Authenticator::new(store.clone(), groups_policy());
    grant_group(&store, "readers", "docs.view").await;
    login(&auth, "eve", json!({"groups": ["readers"]})).await;
    let (eve, changed) = store
        .set_flags(
            "eve",
            &UserFlags {
                staff: None,
                superuser: Some(true),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(changed);
    assert!(eve.is_superuser);
    assert!(!eve.is_staff, "a superuser is not implicitly staff");
    let (eve, access) = login(&auth, "eve", json!({"groups": ["readers"]})).await;
    assert_eq!(
        access,
        Access {
            all: true,
            permissions: vec![],
        },
        "all, not enumerated"
    );
    assert!(eve.is_superuser && !eve.is_staff);

    let (_, changed) = store
        .set_flags(
            "eve",
            &UserFlags {
                staff: Some(true),
                superuser: Some(false),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(changed);
    let (eve, access) = login(&auth, "eve", json!({"groups": ["readers"]})).await;
    assert_eq!(access, perms(&["docs.view"]));
    assert!(eve.is_staff && !eve.is_superuser);
    let (_, changed) = store
        .set_flags(
            "eve",
            &UserFlags {
                staff: Some(true),
                superuser: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!changed);
    assert!(store
        .set_flags("nobody", &UserFlags::default())
        .await
        .unwrap()
        .is_none());
}

async fn inactive_users_have_no_permissions(db: &TestDb) {
    let store = db.store().await;
    let auth = Authenticator::new(store.clone(), groups_policy());
    grant_group(&store, "readers", "docs.view").await;
    login(&auth, "fay", json!({"groups": ["readers"]})).await;
    store
        .change_user_permission("fay", "docs.edit", true)
        .await
        .unwrap();
    store
        .set_flags(
            "fay",
            &UserFlags {
                staff: Some(true),
                superuser: Some(true),
            },
        )
        .await
        .unwrap();
    store.set_active("fay", false).await.unwrap();
    let fay = store.find_user("fay").await.unwrap().unwrap();
    assert_eq!(
        store.access(&fay).await.unwrap(),
        Access::default(),
        "not even a superuser's"
    );
    match auth.authenticate("fay", "{}").await.unwrap() {
        Outcome::Refused { reason, .. } => assert_eq!(reason, RefusalReason::Inactive),
        other => panic!("{other:?}"),
    }
    store.set_active("fay", true).await.unwrap();
    let (_, access) = login(&auth, "fay", json!({"groups": ["readers"]})).await;
    assert!(access.all);
}

async fn revoked_permissions_are_gone_at_the_next_call(db: &TestDb) {
    let store = db.store().await;
    let auth = Authenticator::new(store.clone(), groups_policy());
    grant_group(&store, "readers", "docs.view").await;
    store
        .grant_group_permission("readers", "docs.view")
        .await
        .unwrap();
    login(&auth, "gus", json!({"groups": ["readers"]})).await;
    store
        .change_user_permission("gus", "docs.edit", true)
        .await
        .unwrap();
    let (_, access) = login(&auth, "gus", json!({"groups": ["readers"]})).await;
    assert_eq!(access, perms(&["docs.edit", "docs.view"]));

    assert_eq!(
        store
            .change_user_permission("gus", "docs.edit", false)
            .await
            .unwrap(),
        Some(PermChange::Revoked)
    );
    assert_eq!(
        store
            .change_user_permission("gus", "docs.edit", false)
            .await
            .unwrap(),
        Some(PermChange::NotGranted)
    );
    let (_, access) = login(&auth, "gus", json!({"groups": ["readers"]})).await;
    assert_eq!(access, perms(&["docs.view"]));

    assert_eq!(
        store
            .revoke_group_permission("readers", "docs.view")
            .await
            .unwrap(),
        Some(PermChange::Revoked)
    );
    let (_, access) = login(&auth, "gus", json!({"groups": ["readers"]})).await;
    assert_eq!(access, perms(&[]));
    assert_eq!(
        store
            .revoke_group_permission("nobody-group", "docs.view")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .change_user_permission("nobody", "docs.view", true)
            .await
            .unwrap(),
        None
    );
    // Granting twice is one grant.
    assert_eq!(
        store
            .grant_group_permission("readers", "a.b")
            .await
            .unwrap(),
        (PermChange::Granted, false)
    );
    assert_eq!(
        store
            .grant_group_permission("readers", "a.b")
            .await
            .unwrap(),
        (PermChange::AlreadyGranted, false)
    );
}

fn field(name: &str, value: &str) -> ProfileField {
    ProfileField {
        name: name.into(),
        value: value.into(),
    }
}

fn profile_policy() -> Policy {
    Policy {
        profile_claims: parse_profile_claims(
            "custom:department=department,custom:employee_id=employee_id,\
             custom:level=level,custom:tags=tags,custom:meta=meta,custom:remote=remote",
        )
        .unwrap(),
        ..Policy::default()
    }
}

async fn profile_fields_from_claims(db: &TestDb) {
    let store = db.store().await;
    let auth = Authenticator::new(store.clone(), profile_policy());
    let (u, _) = login(
        &auth,
        "hal",
        json!({
            "custom:department": "Sales",
            "custom:employee_id": "E-17",
            "custom:level": 3,
            "custom:tags": ["a", "b"],
            "custom:meta": {"site": "Oslo"},
            "custom:remote": true,
            "custom:unmapped": "x",
        }),
    )
    .await;
    let expected = vec![
        field("department", "Sales"),
        field("employee_id", "E-17"),
        field("level", "3"),
        field("meta", r#"{"site":"Oslo"}"#),
        field("remote", "true"),
        field("tags", r#"["a","b"]"#),
    ];
    assert_eq!(u.profile, expected);
    assert_eq!(
        store.find_user("hal").await.unwrap().unwrap().profile,
        expected
    );

    // A changed value is written; absent and null claims remove the field.
    let (u, _) = login(
        &auth,
        "hal",
        json!({"custom:department": "Support", "custom:level": null, "custom:remote": false}),
    )
    .await;
    let expected = vec![field("department", "Support"), field("remote", "false")];
    assert_eq!(u.profile, expected);
    assert_eq!(
        store.find_user("hal").await.unwrap().unwrap().profile,
        expected
    );
    assert!(u.updated_at > u.created_at, "a profile change is a change");

    // Unchanged claims write nothing.
    let before = store.find_user("hal").await.unwrap().unwrap();
    let (u, _) = login(
        &auth,
        "hal",
        json!({"custom:department": "Support", "custom:remote": false}),
    )
    .await;
    assert_eq!(u, before);

    // Without profile claims configured, logins remove stored fields.
    let plain = Authenticator::new(store.clone(), Policy::default());
    let (u, _) = login(&plain, "hal", json!({"custom:department": "Support"})).await;
    assert!(u.profile.is_empty());
    assert!(store
        .find_user("hal")
        .await
        .unwrap()
        .unwrap()
        .profile
        .is_empty());
    let listed = store.list_users().await.unwrap();
    assert!(listed[0].profile.is_empty());
}

async fn profile_value_size_limit(db: &TestDb) {
    let store = db.store().await;
    let auth = Authenticator::new(store.clone(), profile_policy());
    let exactly = "d".repeat(1024);
    let over = "d".repeat(1025);
    let (u, _) = login(
        &auth,
        "ida",
        json!({"custom:department": exactly, "custom:employee_id": over}),
    )
    .await;
    assert_eq!(u.profile, vec![field("department", &exactly)]);

    // An oversized value never fails the login and leaves the stored value.
    let (u, _) = login(
        &auth,
        "ida",
        json!({"custom:department": over, "custom:employee_id": "E-1"}),
    )
    .await;
    let expected = vec![field("department", &exactly), field("employee_id", "E-1")];
    assert_eq!(u.profile, expected);
    assert_eq!(
        store.find_user("ida").await.unwrap().unwrap().profile,
        expected
    );

    // The limit counts the JSON text of a value that is not a string.
    let big_array: Vec<u32> = (0..300).collect();
    let (u, _) = login(
        &auth,
        "ida",
        json!({"custom:department": "x", "custom:employee_id": "E-1", "custom:tags": big_array}),
    )
    .await;
    assert_eq!(
        u.profile,
        vec![field("department", "x"), field("employee_id", "E-1")]
    );

    // A new user with only an oversized value gets no field.
    let (u, _) = login(&auth, "jon", json!({"custom:department": over})).await;
    assert!(u.profile.is_empty());
    assert!(store
        .find_user("jon")
        .await
        .unwrap()
        .unwrap()
        .profile
        .is_empty());
}
