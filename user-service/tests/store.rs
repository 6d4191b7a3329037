//! Authenticate behaviour on both backends: creation, every policy, sync,
//! refusal reasons, the concurrent first-login race, store administration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use alb_oidc_user_service::auth::{Authenticator, Outcome, Policy, RefusalReason};
use alb_oidc_user_service::db::{self, GroupChange, Membership, NewUser, Store, UserRecord};
use alb_oidc_user_service::proto::user_service_server::UserService;
use alb_oidc_user_service::proto::{authenticate_response, AuthenticateRequest};
use alb_oidc_user_service::server::UserServiceImpl;
use common::TestDb;
use serde_json::{json, Value};

both_backends!(
    first_login_creates_then_reuses,
    auto_create_off_refuses_unknown_users,
    local_accounts_not_linkable_by_default,
    linking_existing_accounts_when_enabled,
    email_requires_verification,
    email_stored_without_verification_when_not_required,
    names_synced_with_name_fallback,
    groups_synced_from_claim,
    groups_untouched_without_groups_claim,
    inactive_users_refused,
    invalid_claims_refused,
    concurrent_first_logins_make_one_row,
    unchanged_logins_do_not_write,
    store_admin_operations,
    database_down_is_unavailable,
);

fn auth_with(store: Store, policy: Policy) -> Authenticator {
    Authenticator::new(store, policy)
}

async fn login(auth: &Authenticator, username: &str, claims: Value) -> Outcome {
    auth.authenticate(username, &claims.to_string())
        .await
        .unwrap()
}

async fn user(auth: &Authenticator, username: &str, claims: Value) -> (UserRecord, bool) {
    match login(auth, username, claims).await {
        Outcome::User { user, created, .. } => (user, created),
        other => panic!("expected a user, got {other:?}"),
    }
}

async fn refused(auth: &Authenticator, username: &str, claims: Value) -> RefusalReason {
    match login(auth, username, claims).await {
        Outcome::Refused { reason, message } => {
            assert!(!message.is_empty());
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn local_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        email: "local@example.com".to_owned(),
        first_name: "Local".to_owned(),
        last_name: "Admin".to_owned(),
        is_active: true,
        created_from_oidc: false,
        last_login: None,
        groups: vec!["admins".to_owned()],
        groups_from_oidc: false,
        profile: vec![],
    }
}

fn names(u: &UserRecord) -> Vec<&str> {
    u.groups.iter().map(|m| m.name.as_str()).collect()
}

async fn first_login_creates_then_reuses(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    let claims = json!({
        "sub": "alice", "email": "alice@example.com", "email_verified": true,
        "given_name": "Alice", "family_name": "Liddell", "exp": 1, "iss": "x"
    });
    let before = db::now();
    let (u, created) = user(&auth, "alice", claims.clone()).await;
    let after = db::now();
    assert!(created);
    assert_eq!(u.id, 1, "the first user of a new database");
    assert_eq!(u.username, "alice");
    assert_eq!(u.email, "alice@example.com");
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Alice", "Liddell")
    );
    assert!(u.is_active);
    assert!(u.created_from_oidc);
    assert!(
        before <= u.created_at && u.created_at <= after,
        "created at the time of the call"
    );
    assert_eq!(u.updated_at, u.created_at);
    assert_eq!(u.last_login, Some(u.created_at));
    assert!(u.groups.is_empty());

    let (again, created) = user(&auth, "alice", claims).await;
    assert!(!created);
    assert_eq!(again.id, u.id);

    let stored = store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(
        stored, u,
        "an unchanged login within a minute writes nothing"
    );

    let (bob, _) = user(&auth, "bob", json!({})).await;
    assert_eq!(bob.id, 2);
    assert_eq!(store.list_users().await.unwrap().len(), 2);
}

async fn auto_create_off_refuses_unknown_users(db: &TestDb) {
    let store = db.store().await;
    let on = auth_with(store.clone(), Policy::default());
    user(&on, "known", json!({})).await;
    let off = auth_with(
        store.clone(),
        Policy {
            auto_create_users: false,
            ..Policy::default()
        },
    );
    assert_eq!(
        refused(&off, "stranger", json!({})).await,
        RefusalReason::UnknownUser
    );
    assert!(store.find_user("stranger").await.unwrap().is_none());
    let (u, created) = user(&off, "known", json!({})).await;
    assert!(!created);
    assert_eq!(u.username, "known");
}

async fn local_accounts_not_linkable_by_default(db: &TestDb) {
    let store = db.store().await;
    store
        .insert_user(&local_user("root"), db::now())
        .await
        .unwrap()
        .unwrap();
    let auth = auth_with(store.clone(), Policy::default());
    let claims =
        json!({"email": "evil@example.com", "email_verified": true, "given_name": "Mallory"});
    assert_eq!(
        refused(&auth, "root", claims).await,
        RefusalReason::NotLinkable
    );
    // Nothing was changed by the refused login.
    let stored = store.find_user("root").await.unwrap().unwrap();
    assert_eq!(stored.email, "local@example.com");
    assert_eq!(stored.first_name, "Local");
    assert!(stored.last_login.is_none());

    // A deactivated local account is still reported as not linkable.
    store.set_active("root", false).await.unwrap();
    assert_eq!(
        refused(&auth, "root", json!({})).await,
        RefusalReason::NotLinkable
    );
}

async fn linking_existing_accounts_when_enabled(db: &TestDb) {
    let store = db.store().await;
    let local = store
        .insert_user(&local_user("root"), db::now())
        .await
        .unwrap()
        .unwrap();
    let auth = auth_with(
        store.clone(),
        Policy {
            link_existing_users: true,
            groups_claim: Some("groups".into()),
            ..Policy::default()
        },
    );
    let (u, created) = user(
        &auth,
        "root",
        json!({"email": "root@idp.example", "email_verified": "true", "name": "Root User", "groups": ["ops"]}),
    )
    .await;
    assert!(!created);
    assert_eq!(u.id, local.id);
    assert!(
        !u.created_from_oidc,
        "a linked account stays a local account"
    );
    assert_eq!(u.email, "root@idp.example");
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Root", "User")
    );
    // The administrator's group stays; the claim's group is added.
    assert_eq!(names(&u), vec!["admins", "ops"]);
    assert_eq!(store.find_user("root").await.unwrap().unwrap(), u);
}

async fn email_requires_verification(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    let (u, _) = user(&auth, "carol", json!({"email": "c1@example.com"})).await;
    assert_eq!(u.email, "", "unverified email is not stored at creation");
    let (u, _) = user(
        &auth,
        "carol",
        json!({"email": "c2@example.com", "email_verified": "true"}),
    )
    .await;
    assert_eq!(u.email, "c2@example.com", "Cognito-style string \"true\"");
    for unverified in [
        json!({"email": "c3@example.com", "email_verified": false}),
        json!({"email": "c3@example.com", "email_verified": "false"}),
        json!({"email": "c3@example.com", "email_verified": "yes"}),
        json!({"email": "c3@example.com"}),
    ] {
        let (u, _) = user(&auth, "carol", unverified).await;
        assert_eq!(u.email, "c2@example.com", "stored email left as it was");
    }
    let (u, _) = user(
        &auth,
        "carol",
        json!({"email": "c4@example.com", "email_verified": true}),
    )
    .await;
    assert_eq!(u.email, "c4@example.com");
    // No email claim at all: the stored one stays.
    let (u, _) = user(&auth, "carol", json!({"email_verified": true})).await;
    assert_eq!(u.email, "c4@example.com");
    assert_eq!(
        store.find_user("carol").await.unwrap().unwrap().email,
        "c4@example.com"
    );
}

async fn email_stored_without_verification_when_not_required(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(
        store.clone(),
        Policy {
            require_verified_email: false,
            ..Policy::default()
        },
    );
    let (u, _) = user(&auth, "dave", json!({"email": "d@example.com"})).await;
    assert_eq!(u.email, "d@example.com");
    let (u, _) = user(
        &auth,
        "dave",
        json!({"email": "d2@example.com", "email_verified": false}),
    )
    .await;
    assert_eq!(u.email, "d2@example.com");
}

async fn names_synced_with_name_fallback(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    let (u, _) = user(&auth, "erin", json!({"name": "Erin  Mary Smith"})).await;
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Erin", "Mary Smith")
    );
    let (u, _) = user(
        &auth,
        "erin",
        json!({"given_name": "Erin", "family_name": "Jones", "name": "ignored name"}),
    )
    .await;
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Erin", "Jones")
    );
    // Claims absent: stored names stay.
    let (u, _) = user(&auth, "erin", json!({})).await;
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Erin", "Jones")
    );
    let stored = store.find_user("erin").await.unwrap().unwrap();
    assert_eq!(
        (stored.first_name.as_str(), stored.last_name.as_str()),
        ("Erin", "Jones")
    );

    // Custom claim names.
    let custom = auth_with(
        store.clone(),
        Policy {
            first_name_claim: "custom:first".into(),
            last_name_claim: "custom:last".into(),
            ..Policy::default()
        },
    );
    let (u, _) = user(
        &custom,
        "erin",
        json!({"custom:first": "E.", "custom:last": "J.", "given_name": "no"}),
    )
    .await;
    assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("E.", "J."));
}

async fn groups_synced_from_claim(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(
        store.clone(),
        Policy {
            groups_claim: Some("cognito:groups".into()),
            ..Policy::default()
        },
    );
    let (u, _) = user(
        &auth,
        "fay",
        json!({"cognito:groups": ["dev", "ops", "dev"]}),
    )
    .await;
    assert_eq!(names(&u), vec!["dev", "ops"]);
    assert!(u.groups.iter().all(|m| m.from_oidc));

    // An administrator pins a group; another comes from an admin too.
    assert_eq!(
        store.add_group("fay", "ops").await.unwrap().unwrap().1,
        GroupChange::AlreadyMember
    );
    store.add_group("fay", "auditors").await.unwrap();

    // The claim changes: dev goes, qa comes, ops and auditors (admin) stay.
    let (u, _) = user(&auth, "fay", json!({"cognito:groups": "qa, x y"})).await;
    assert_eq!(names(&u), vec!["auditors", "ops", "qa", "x", "y"]);
    assert_eq!(store.find_user("fay").await.unwrap().unwrap(), u);

    // Claim absent: every claim-managed group goes.
    let (u, _) = user(&auth, "fay", json!({})).await;
    assert_eq!(
        u.groups,
        vec![
            Membership {
                name: "auditors".into(),
                from_oidc: false
            },
            Membership {
                name: "ops".into(),
                from_oidc: false
            }
        ]
    );
    assert_eq!(store.find_user("fay").await.unwrap().unwrap(), u);

    // Groups are shared between users.
    let (g, _) = user(&auth, "gus", json!({"cognito:groups": ["qa", "ops"]})).await;
    assert_eq!(names(&g), vec!["ops", "qa"]);
}

async fn groups_untouched_without_groups_claim(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    user(&auth, "hal", json!({})).await;
    store.add_group("hal", "admins").await.unwrap();
    let (u, _) = user(&auth, "hal", json!({"groups": ["other"]})).await;
    assert_eq!(names(&u), vec!["admins"]);
}

async fn inactive_users_refused(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    let (u, _) = user(&auth, "ivy", json!({"given_name": "Ivy"})).await;
    let (_, changed) = store.set_active("ivy", false).await.unwrap().unwrap();
    assert!(changed);
    assert_eq!(
        refused(&auth, "ivy", json!({"given_name": "Changed"})).await,
        RefusalReason::Inactive
    );
    let stored = store.find_user("ivy").await.unwrap().unwrap();
    assert_eq!(stored.first_name, "Ivy", "refused logins do not sync");
    store.set_active("ivy", true).await.unwrap();
    let (again, _) = user(&auth, "ivy", json!({"given_name": "Changed"})).await;
    assert_eq!(again.id, u.id);
    assert_eq!(again.first_name, "Changed");
}

async fn invalid_claims_refused(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    for (username, claims) in [
        ("", "{}"),
        ("jay", "[]"),
        ("jay", "null"),
        ("jay", "42"),
        ("jay", "{not json"),
        ("jay", ""),
        ("j\u{0}ay", "{}"),
    ] {
        match auth.authenticate(username, claims).await.unwrap() {
            Outcome::Refused { reason, .. } => {
                assert_eq!(
                    reason,
                    RefusalReason::InvalidClaims,
                    "{username:?} {claims:?}"
                )
            }
            other => panic!("{username:?} {claims:?}: {other:?}"),
        }
    }
    assert!(store.list_users().await.unwrap().is_empty());
}

async fn concurrent_first_logins_make_one_row(db: &TestDb) {
    let store = db.store().await;
    let auth = Arc::new(auth_with(
        store.clone(),
        Policy {
            groups_claim: Some("groups".into()),
            ..Policy::default()
        },
    ));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let auth = Arc::clone(&auth);
        tasks.push(tokio::spawn(async move {
            // Two different new users racing at once, with shared new groups.
            let name = if i % 5 == 0 { "racer2" } else { "racer" };
            auth.authenticate(
                name,
                &json!({"given_name": "R", "groups": ["g1", "g2", format!("g{}", i % 3)]})
                    .to_string(),
            )
            .await
        }));
    }
    let mut ids = std::collections::HashMap::new();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Outcome::User {
                user, created: c, ..
            } => {
                if c {
                    created += 1;
                }
                ids.entry(user.username.clone())
                    .or_insert_with(Vec::new)
                    .push(user.id);
            }
            other => panic!("refused: {other:?}"),
        }
    }
    assert_eq!(created, 2, "exactly one creation per user");
    assert_eq!(ids.len(), 2);
    for list in ids.values() {
        assert!(list.iter().all(|id| *id == list[0]));
    }
    assert_eq!(ids["racer"].len(), 40);
    let users = store.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
}

async fn unchanged_logins_do_not_write(db: &TestDb) {
    let store = db.store().await;
    let auth = auth_with(store.clone(), Policy::default());
    let claims = json!({"given_name": "Kim"});
    let (first, _) = user(&auth, "kim", claims.clone()).await;
    let (second, _) = user(&auth, "kim", claims).await;
    let stored = store.find_user("kim").await.unwrap().unwrap();
    assert_eq!(stored.last_login, first.last_login);
    assert_eq!(stored.updated_at, first.updated_at);
    assert_eq!(second, stored);
    // A change is written, with updated_at and last_login set to the time
    // of that call.
    let before = db::now();
    let (third, _) = user(&auth, "kim", json!({"given_name": "Kimberly"})).await;
    let after = db::now();
    let stored = store.find_user("kim").await.unwrap().unwrap();
    assert_eq!(stored.first_name, "Kimberly");
    assert_eq!(stored, third);
    assert!(
        before <= stored.updated_at && stored.updated_at <= after,
        "{before} <= {} <= {after}",
        stored.updated_at
    );
    assert_eq!(stored.last_login, Some(stored.updated_at));
    assert_eq!(stored.created_at, first.created_at);
}

async fn store_admin_operations(db: &TestDb) {
    let store = db.store().await;
    assert!(store.set_active("nobody", false).await.unwrap().is_none());
    assert!(store.add_group("nobody", "g").await.unwrap().is_none());
    assert!(store.remove_group("nobody", "g").await.unwrap().is_none());
    let u = store
        .insert_user(&local_user("mo"), db::now())
        .await
        .unwrap()
        .unwrap();
    assert!(!u.created_from_oidc);
    assert!(store
        .insert_user(&local_user("mo"), db::now())
        .await
        .unwrap()
        .is_none());
    let (_, changed) = store.set_active("mo", true).await.unwrap().unwrap();
    assert!(!changed);
    let (u, change) = store.add_group("mo", "new").await.unwrap().unwrap();
    assert_eq!(change, GroupChange::Added);
    assert_eq!(names(&u), vec!["admins", "new"]);
    let (u, change) = store.remove_group("mo", "admins").await.unwrap().unwrap();
    assert_eq!(change, GroupChange::Removed);
    assert_eq!(names(&u), vec!["new"]);
    let (_, change) = store.remove_group("mo", "admins").await.unwrap().unwrap();
    assert_eq!(change, GroupChange::NotMember);
    assert_eq!(store.find_user("mo").await.unwrap().unwrap(), u);
}

async fn database_down_is_unavailable(db: &TestDb) {
    let store = db.store().await;
    let svc = UserServiceImpl::new(auth_with(store.clone(), Policy::default()));
    let ok = svc
        .authenticate(tonic::Request::new(AuthenticateRequest {
            username: "nina".into(),
            claims_json: "{}".into(),
            access_token_groups: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        ok.result,
        Some(authenticate_response::Result::User(_))
    ));
    // Refusals are answers, not errors, even through the gRPC layer.
    let refusal = svc
        .authenticate(tonic::Request::new(AuthenticateRequest {
            username: "nina".into(),
            claims_json: "[]".into(),
            access_token_groups: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        refusal.result,
        Some(authenticate_response::Result::Refusal(_))
    ));
    store.close().await;
    let err = svc
        .authenticate(tonic::Request::new(AuthenticateRequest {
            username: "nina".into(),
            claims_json: "{}".into(),
            access_token_groups: vec![],
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
}
