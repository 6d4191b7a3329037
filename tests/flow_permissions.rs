//! Rules on the user service's answer (issue 14) through the request flow:
//! permissions, staff and superuser as Django's `ModelBackend` has them,
//! the headers that carry them and profile fields, and failing closed when
//! the service cannot answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::config::{self, Config};
use alb_oidc::denial::Denial;
use alb_oidc::flow::{CallRequest, CallResponse, Counter};
use alb_oidc::users::{pb, MAX_PERMISSIONS_HEADER};
use alb_oidc_testkit::fixtures::{ARN, CLIENT, ISSUER};
use alb_oidc_testkit::flow_worker::Worker;
use alb_oidc_testkit::harness::{self, alb_token, public_pem, NOW};

const RULES: &str = r#","rules":[
    {"name":"orders","paths":["/orders/*"],"require":{"permissions_all":["shop.view_order","shop.change_order"]}},
    {"name":"any","paths":["/any/*"],"require":{"permissions_any":["shop.delete_order","shop.view_order"]}},
    {"name":"staff","paths":["/staff/*"],"require":{"staff":true}},
    {"name":"root","paths":["/root/*"],"require":{"superuser":true}}]"#;

fn config(failure_mode: &str) -> Config {
    let json = format!(
        r#"{{"region":"us-east-1","alb_arns":["{ARN}"],"client_id":"{CLIENT}","issuer":"{ISSUER}",
            "user_service":{{"cluster":"users","failure_mode":"{failure_mode}",
              "user_headers":{{"department":"x-auth-department"}}}}{RULES}}}"#
    );
    config::parse(json.as_bytes()).unwrap()
}

fn token_for(sub: &str) -> String {
    let payload = format!(r#"{{"sub":"{sub}","exp":4000000000,"iss":"{ISSUER}"}}"#);
    alb_token(&harness::alb_header(), &payload)
}

fn answer(user: pb::User) -> CallResponse {
    let body = prost::Message::encode_to_vec(&pb::AuthenticateResponse {
        result: Some(pb::authenticate_response::Result::User(user)),
    });
    CallResponse::Grpc {
        status: 0,
        size: body.len(),
        body: Some(body),
    }
}

fn user(username: &str) -> pb::User {
    pb::User {
        id: 7,
        username: username.to_owned(),
        is_active: true,
        ..Default::default()
    }
}

/// Sends `path` for `sub` and answers the key and user calls it needs.
fn request(w: &mut Worker, ctx: u32, sub: &str, path: &str, user: Option<pb::User>) {
    let token = token_for(sub);
    w.send(ctx, &[(":path", path), ("x-amzn-oidc-data", &token)], NOW);
    w.tick(NOW);
    let keys: Vec<u32> = w.host.key_calls();
    for token in keys {
        if w.flow
            .answer_limit(alb_oidc::flow::CallKind::Http, token)
            .is_some()
        {
            let key = CallResponse::Http {
                status: Some(200),
                body: public_pem().into_bytes(),
            };
            w.answer(token, key, NOW);
        }
    }
    let calls = w.host.user_calls();
    let last = *calls.last().unwrap();
    if w.flow
        .answer_limit(alb_oidc::flow::CallKind::Grpc, last)
        .is_some()
    {
        let response = match user {
            Some(user) => answer(user),
            None => CallResponse::Grpc {
                status: 14,
                size: 0,
                body: None,
            },
        };
        w.answer(last, response, NOW);
    }
}

#[test]
fn permissions_as_djangos_model_backend() {
    let mut w = Worker::alone(config("deny"));
    let clerk = pb::User {
        permissions: vec!["shop.view_order".into()],
        ..user("clerk")
    };
    request(&mut w, 1, "clerk", "/orders/1", Some(clerk));
    assert_eq!(w.denial(1), Some(Denial::Forbidden));
    assert_eq!(w.rule(1), "orders");
    // Cached answer: permissions_any holds with the one permission.
    w.send(
        2,
        &[
            (":path", "/any/1"),
            ("x-amzn-oidc-data", &token_for("clerk")),
        ],
        NOW,
    );
    assert_eq!(w.status(2), 200);
    assert_eq!(
        w.header(2, "x-auth-permissions").as_deref(),
        Some("shop.view_order")
    );
    assert_eq!(w.header(2, "x-auth-staff"), None);

    let manager = pb::User {
        permissions: vec!["shop.view_order".into(), "shop.change_order".into()],
        is_staff: true,
        profile: vec![pb::ProfileField {
            name: "department".into(),
            value: "Sales".into(),
        }],
        ..user("manager")
    };
    request(&mut w, 3, "manager", "/orders/1", Some(manager));
    assert_eq!(w.status(3), 200);
    assert_eq!(
        w.header(3, "x-auth-permissions").as_deref(),
        Some("shop.change_order,shop.view_order")
    );
    assert_eq!(w.header(3, "x-auth-staff").as_deref(), Some("true"));
    assert_eq!(w.header(3, "x-auth-department").as_deref(), Some("Sales"));
    w.send(
        4,
        &[
            (":path", "/root/1"),
            ("x-amzn-oidc-data", &token_for("manager")),
        ],
        NOW,
    );
    assert_eq!(w.denial(4), Some(Denial::Forbidden));

    // A superuser has every permission (sent as "all"), but is not staff.
    let root = pb::User {
        all_permissions: true,
        is_superuser: true,
        ..user("root")
    };
    request(&mut w, 5, "root", "/orders/1", Some(root));
    assert_eq!(w.status(5), 200);
    assert_eq!(w.header(5, "x-auth-permissions").as_deref(), Some("*"));
    assert_eq!(w.header(5, "x-auth-superuser").as_deref(), Some("true"));
    w.send(
        6,
        &[
            (":path", "/staff/1"),
            ("x-amzn-oidc-data", &token_for("root")),
        ],
        NOW,
    );
    assert_eq!(w.denial(6), Some(Denial::Forbidden));
}

#[test]
fn a_permission_rule_fails_closed_when_the_service_cannot_answer() {
    let mut w = Worker::alone(config("allow"));
    request(&mut w, 1, "ada", "/orders/1", None);
    assert_eq!(w.denial(1), Some(Denial::UserServiceUnavailable));
    assert_eq!(w.status(1), 503);
    // failure_mode: allow still lets a plain authenticated request through.
    w.send(
        2,
        &[(":path", "/plain"), ("x-amzn-oidc-data", &token_for("ada"))],
        NOW,
    );
    assert_eq!(w.status(2), 200);
    assert_eq!(w.host.count_of(Counter::UserFailOpen), 2);
}

#[test]
fn too_many_permissions_for_a_header_are_still_seen_by_rules() {
    let mut w = Worker::alone(config("deny"));
    let mut permissions: Vec<String> = (0..1000)
        .map(|i| format!("app{}.permission_number_{i}", i % 50))
        .collect();
    permissions.push("shop.view_order".into());
    permissions.push("shop.change_order".into());
    assert!(permissions.join(",").len() > MAX_PERMISSIONS_HEADER);
    let busy = pb::User {
        permissions,
        ..user("busy")
    };
    request(&mut w, 1, "busy", "/orders/1", Some(busy));
    assert_eq!(w.status(1), 200);
    assert_eq!(w.header(1, "x-auth-permissions"), None);
    assert_eq!(w.host.count_of(Counter::PermissionsHeaderOmitted), 1);
}

#[test]
fn the_access_tokens_groups_go_to_the_user_service() {
    // Without an access_token block nothing is sent; the field is empty.
    let mut w = Worker::alone(config("deny"));
    request(&mut w, 1, "ada", "/plain", Some(user("ada")));
    let grpc = w
        .host
        .calls
        .iter()
        .find_map(|(_, c)| match c {
            CallRequest::Grpc { message, .. } => Some(message.clone()),
            _ => None,
        })
        .unwrap();
    let sent: pb::AuthenticateRequest = prost::Message::decode(grpc.as_slice()).unwrap();
    assert_eq!(sent.username, "ada");
    assert!(sent.access_token_groups.is_empty());
}
