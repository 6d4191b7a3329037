//! The request flow's invariants, driven natively and deterministically: a
//! fake host (in-memory shared data, counted metrics, recorded calls) and a
//! scripted clock. Two flows over one store stand for two Envoy workers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::config::{self, Config};
use alb_oidc::denial::Denial;
use alb_oidc::flow::{max_wait, CallKind, CallRequest, CallResponse, Counter, Flow, Verdict};
use alb_oidc::users::pb;
use alb_oidc_testkit::fake_host::FakeHeaders;
use alb_oidc_testkit::fixtures::{ARN, CLIENT, ISSUER, KID};
use alb_oidc_testkit::flow_worker::Worker;
use alb_oidc_testkit::harness::{self, alb_token, public_pem, NOW};
use alb_oidc_testkit::store::MemoryStore;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

// ------------------------------------------------------------- fixtures --

fn config(extra: &str) -> Config {
    config::parse(
        format!(r#"{{"region":"us-east-1","alb_arns":["{ARN}"],"client_id":"{CLIENT}","issuer":"{ISSUER}"{extra}}}"#)
            .as_bytes(),
    )
    .unwrap()
}

const USERS: &str = r#","user_service":{"cluster":"users","timeout_ms":1000,"revalidate_s":60}"#;
const USERS_ALLOW: &str =
    r#","user_service":{"cluster":"users","timeout_ms":1000,"failure_mode":"allow"}"#;

fn token_for(sub: &str) -> String {
    let header = harness::alb_header();
    let payload = format!(r#"{{"sub":"{sub}","exp":4000000000,"iss":"{ISSUER}"}}"#);
    alb_token(&header, &payload)
}

fn key_answer() -> CallResponse {
    CallResponse::Http {
        status: Some(200),
        body: public_pem().into_bytes(),
    }
}

fn user_answer(username: &str, id: i64) -> CallResponse {
    let body = prost::Message::encode_to_vec(&pb::AuthenticateResponse {
        result: Some(pb::authenticate_response::Result::User(pb::User {
            id,
            username: username.to_owned(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            groups: vec![],
            is_active: true,
            created_from_oidc: true,
        })),
    });
    CallResponse::Grpc {
        status: 0,
        size: body.len(),
        body: Some(body),
    }
}

// ---------------------------------------------------------------- tests --

#[test]
fn one_key_fetch_per_kid_however_many_requests_wait() {
    let mut w = Worker::alone(config(""));
    for ctx in 1..=50 {
        assert!(matches!(
            w.request(ctx, &token_for(&format!("u{ctx}")), NOW),
            Verdict::Wait
        ));
    }
    assert_eq!(w.flow.tick_period(), Duration::from_millis(1));
    w.tick(NOW + 0.001);
    assert_eq!(w.host.key_calls().len(), 1);
    match &w.host.calls[0].1 {
        CallRequest::Http { path, .. } => assert_eq!(path, &format!("/{KID}")),
        other => panic!("{other:?}"),
    }
    w.answer(w.host.key_calls()[0], key_answer(), NOW + 0.01);
    for ctx in 1..=50 {
        assert_eq!(w.status(ctx), 200);
        assert_eq!(w.header(ctx, "x-auth-user"), Some(format!("u{ctx}")));
    }
    assert_eq!(w.host.count_of(Counter::KeyFetchOk), 1);
    assert_eq!(w.host.count_of(Counter::Allowed), 50);
    // Later requests for the same kid: no more fetches.
    w.request(51, &token_for("late"), NOW + 1.0);
    assert_eq!(w.status(51), 200);
    assert_eq!(w.host.key_calls().len(), 1);
}

#[test]
fn a_client_leaving_while_paused_gets_nothing_and_the_others_are_answered() {
    let mut w = Worker::alone(config(""));
    w.request(1, &token_for("a"), NOW);
    w.request(2, &token_for("b"), NOW);
    w.tick(NOW);
    w.gone(1);
    w.answer(w.host.key_calls()[0], key_answer(), NOW + 0.1);
    assert!(w.verdicts[&1].iter().all(|v| matches!(v, Verdict::Wait)));
    assert_eq!(w.status(2), 200);
    assert_eq!(w.host.count_of(Counter::Allowed), 1);
    assert_eq!(w.flow.tick_period(), Duration::from_millis(1000));
}

#[test]
fn a_call_that_cannot_be_dispatched_answers_every_waiter_503() {
    let mut w = Worker::alone(config(""));
    w.host.refuse_dispatch = true;
    for ctx in 1..=3 {
        w.request(ctx, &token_for("a"), NOW);
    }
    w.tick(NOW);
    for ctx in 1..=3 {
        assert_eq!(w.status(ctx), 503);
    }
    assert_eq!(w.host.denied_of(Denial::KeyUnavailable), 3);
    assert_eq!(w.host.count_of(Counter::KeyFetchFailed), 1);
    // Nothing was cached: once the cluster exists, the next request fetches.
    w.host.refuse_dispatch = false;
    w.request(4, &token_for("a"), NOW + 0.1);
    w.tick(NOW + 0.1);
    assert_eq!(w.host.key_calls().len(), 1);
}

#[test]
fn a_failed_dispatch_releases_the_claim_for_other_workers() {
    let store = Rc::new(MemoryStore::default());
    let mut a = Worker::new(config(""), &store);
    let mut b = Worker::new(config(""), &store);
    a.host.refuse_dispatch = true;
    a.request(1, &token_for("a"), NOW);
    a.tick(NOW);
    assert_eq!(a.status(1), 503);
    b.request(1, &token_for("b"), NOW + 0.01);
    b.tick(NOW + 0.01);
    assert_eq!(b.host.key_calls().len(), 1, "b fetches at once");
}

#[test]
fn key_answers_map_to_statuses() {
    for (answer, status, counter) in [
        (key_answer(), 200, Counter::KeyFetchOk),
        (
            CallResponse::Http {
                status: Some(404),
                body: vec![],
            },
            401,
            Counter::KeyFetchNotFound,
        ),
        (
            CallResponse::Http {
                status: Some(500),
                body: vec![],
            },
            503,
            Counter::KeyFetchFailed,
        ),
        (
            CallResponse::Http {
                status: None,
                body: vec![],
            },
            503,
            Counter::KeyFetchFailed,
        ),
        (
            CallResponse::Http {
                status: Some(200),
                body: b"not pem".to_vec(),
            },
            503,
            Counter::KeyFetchInvalid,
        ),
    ] {
        let mut w = Worker::alone(config(""));
        w.request(1, &token_for("a"), NOW);
        w.tick(NOW);
        w.answer(w.host.key_calls()[0], answer.clone(), NOW);
        assert_eq!(w.status(1), status, "{answer:?}");
        assert_eq!(w.host.count_of(counter), 1, "{answer:?}");
    }
}

#[test]
fn two_workers_make_one_fetch_for_a_new_kid() {
    let store = Rc::new(MemoryStore::default());
    let mut a = Worker::new(config(""), &store);
    let mut b = Worker::new(config(""), &store);
    a.request(1, &token_for("a"), NOW);
    b.request(1, &token_for("b"), NOW);
    a.tick(NOW);
    b.tick(NOW);
    assert_eq!(a.host.key_calls().len() + b.host.key_calls().len(), 1);
    assert_eq!(a.host.key_calls().len(), 1, "the first to claim fetches");
    // b polls from its tick while a's fetch is under way.
    assert_eq!(b.flow.tick_period(), Duration::from_millis(5));
    b.tick(NOW + 0.005);
    assert!(b.waiting.contains(&1));
    a.answer(a.host.key_calls()[0], key_answer(), NOW + 0.01);
    b.tick(NOW + 0.015);
    assert_eq!(a.status(1), 200);
    assert_eq!(b.status(1), 200);
    assert_eq!(b.host.calls.len(), 0);
}

#[test]
fn a_lapsed_claim_of_another_worker_is_taken_over() {
    let store = Rc::new(MemoryStore::default());
    let mut a = Worker::new(config(""), &store);
    let mut b = Worker::new(config(""), &store);
    a.request(1, &token_for("a"), NOW);
    a.tick(NOW);
    b.request(1, &token_for("b"), NOW);
    // a's fetch never answers (its worker is stuck). Its claim stands for
    // the fetch timeout (5 s) plus one second.
    b.tick(NOW + 5.9);
    assert_eq!(b.host.key_calls().len(), 0);
    b.tick(NOW + 6.1);
    assert_eq!(b.host.key_calls().len(), 1, "b takes the fetch over");
    b.answer(b.host.key_calls()[0], key_answer(), NOW + 6.2);
    assert_eq!(b.status(1), 200);
    // a's answer arriving late still decides a's request.
    a.answer(a.host.key_calls()[0], key_answer(), NOW + 6.3);
    assert_eq!(a.status(1), 200);
}

#[test]
fn the_sweep_answers_past_the_deadline_and_never_earlier() {
    // Defaults: key fetch 5 s, user service 1 s. Each stage may take its
    // timeout twice plus a claim's second; plus one second of margin.
    for (extra, deadline_s) in [("", 12.0), (USERS, 15.0)] {
        let config = config(extra);
        assert_eq!(max_wait(&config), Duration::from_secs_f64(deadline_s));
        let mut w = Worker::alone(config);
        w.request(1, &token_for("a"), NOW);
        w.tick(NOW);
        w.tick(NOW + deadline_s - 0.001);
        assert!(w.waiting.contains(&1), "swept early ({extra})");
        w.tick(NOW + deadline_s + 0.001);
        assert_eq!(w.status(1), 503);
        assert_eq!(w.host.denied_of(Denial::KeyUnavailable), 1);
        // The fetch's answer arriving after the sweep decides nothing more.
        w.answer(w.host.key_calls()[0], key_answer(), NOW + deadline_s + 1.0);
        assert_eq!(w.verdicts[&1].len(), 2);
    }
}

#[test]
fn the_deadline_covers_every_stage_a_request_passes_through() {
    let mut w = Worker::alone(config(USERS));
    w.request(1, &token_for("a"), NOW);
    w.tick(NOW);
    // The key arrives late, the user call then hangs: the deadline counts
    // from the request's arrival, across both stages.
    w.answer(w.host.key_calls()[0], key_answer(), NOW + 9.0);
    assert_eq!(
        w.host.user_calls().len(),
        1,
        "the user call is made at once"
    );
    w.tick(NOW + 14.999);
    assert!(w.waiting.contains(&1));
    w.tick(NOW + 15.001);
    assert_eq!(w.status(1), 503);
    assert_eq!(w.host.denied_of(Denial::UserServiceUnavailable), 1);
}

#[test]
fn the_user_service_answer_is_injected() {
    let mut w = Worker::alone(config(USERS));
    w.request(1, &token_for("ada"), NOW);
    w.tick(NOW);
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    let user_call = w.host.user_calls()[0];
    match &w.host.calls.last().unwrap().1 {
        CallRequest::Grpc { upstream, .. } => {
            assert_eq!(upstream.as_bytes(), b"\x0a\x07\x0a\x05users")
        }
        other => panic!("{other:?}"),
    }
    w.answer(user_call, user_answer("ada", 42), NOW);
    assert_eq!(w.header(1, "x-auth-user-id"), Some("42".to_owned()));
    // Cached: the next request of ada makes no call.
    w.request(2, &token_for("ada"), NOW + 1.0);
    assert_eq!(w.header(2, "x-auth-user-id"), Some("42".to_owned()));
    assert_eq!(w.host.count_of(Counter::UserCalls), 1);
    assert_eq!(w.host.count_of(Counter::UserCacheHit), 1);
}

#[test]
fn an_answer_about_another_user_is_ignored() {
    let mut w = Worker::alone(config(USERS));
    w.request(1, &token_for("ada"), NOW);
    w.tick(NOW);
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    w.answer(w.host.user_calls()[0], user_answer("eve", 7), NOW);
    assert_eq!(w.status(1), 503);
    assert_eq!(w.host.count_of(Counter::UserFailed), 1);
    assert_eq!(w.host.denied_of(Denial::UserServiceUnavailable), 1);
}

#[test]
fn an_oversized_user_answer_is_a_failure() {
    let mut w = Worker::alone(config(USERS));
    w.request(1, &token_for("ada"), NOW);
    w.tick(NOW);
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    assert_eq!(
        w.flow.answer_limit(CallKind::Grpc, w.host.user_calls()[0]),
        Some(65_536)
    );
    let CallResponse::Grpc { body, .. } = user_answer("ada", 1) else {
        unreachable!()
    };
    let oversized = CallResponse::Grpc {
        status: 0,
        size: 65_537,
        body,
    };
    w.answer(w.host.user_calls()[0], oversized, NOW);
    assert_eq!(w.status(1), 503);
}

#[test]
fn failure_mode_allow_forwards_claims_only_identity() {
    let mut w = Worker::alone(config(USERS_ALLOW));
    w.request(1, &token_for("ada"), NOW);
    w.tick(NOW);
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    let failed = CallResponse::Grpc {
        status: 14,
        size: 0,
        body: None,
    };
    w.answer(w.host.user_calls()[0], failed, NOW);
    assert_eq!(w.status(1), 200);
    assert_eq!(w.header(1, "x-auth-user"), Some("ada".to_owned()));
    assert_eq!(w.header(1, "x-auth-user-id"), None);
    assert_eq!(w.host.count_of(Counter::UserFailOpen), 1);
    assert_eq!(w.host.count_of(Counter::Allowed), 1);
}

#[test]
fn counters_equal_outcomes() {
    let mut w = Worker::alone(config(
        r#","exempt_paths":["/healthz"],"user_service":{"cluster":"users"}"#,
    ));
    let mut exempt = FakeHeaders::new(&[(":path", "/healthz"), ("x-auth-user", "forged")]);
    let verdict = w.flow.on_request(100, &mut exempt, NOW, &w.host);
    w.record(100, verdict);
    assert_eq!(exempt.removed, vec![b"x-auth-user".to_vec()]);
    let mut missing = FakeHeaders::new(&[(":path", "/x")]);
    let verdict = w.flow.on_request(101, &mut missing, NOW, &w.host);
    w.record(101, verdict);
    w.request(102, "garbage", NOW);
    for ctx in 1..=4 {
        w.request(ctx, &token_for(&format!("u{ctx}")), NOW);
    }
    w.tick(NOW);
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    let user_calls = w.host.user_calls();
    assert_eq!(user_calls.len(), 4);
    w.answer(user_calls[0], user_answer("u1", 1), NOW);
    w.answer(user_calls[1], user_answer("u2", 2), NOW);
    let refused = prost::Message::encode_to_vec(&pb::AuthenticateResponse {
        result: Some(pb::authenticate_response::Result::Refusal(pb::Refusal {
            reason: pb::refusal::Reason::Inactive as i32,
            message: String::new(),
        })),
    });
    w.answer(
        user_calls[2],
        CallResponse::Grpc {
            status: 0,
            size: refused.len(),
            body: Some(refused),
        },
        NOW,
    );
    w.answer(
        user_calls[3],
        CallResponse::Grpc {
            status: 4,
            size: 0,
            body: None,
        },
        NOW,
    );
    let mut by_status = HashMap::new();
    for ctx in [100, 101, 102, 1, 2, 3, 4] {
        *by_status.entry(w.status(ctx)).or_insert(0u64) += 1;
    }
    assert_eq!(by_status[&200], 3);
    assert_eq!(by_status[&401], 2);
    assert_eq!(by_status[&403], 1);
    assert_eq!(by_status[&503], 1);
    assert_eq!(w.host.count_of(Counter::Exempt), 1);
    assert_eq!(w.host.count_of(Counter::Allowed), 2);
    assert_eq!(w.host.denied_of(Denial::MissingToken), 1);
    assert_eq!(w.host.denied_of(Denial::Malformed), 1);
    assert_eq!(w.host.denied_of(Denial::UserRefused), 1);
    assert_eq!(w.host.denied_of(Denial::UserServiceUnavailable), 1);
    let denied: u64 = w.host.denials.borrow().values().sum();
    assert_eq!(
        w.host.count_of(Counter::Exempt) + w.host.count_of(Counter::Allowed) + denied,
        7
    );
}

#[test]
fn a_repeated_token_header_is_refused() {
    let mut w = Worker::alone(config(""));
    let token = token_for("a");
    let mut headers =
        FakeHeaders::new(&[("x-amzn-oidc-data", &token), ("x-amzn-oidc-data", &token)]);
    let verdict = w.flow.on_request(1, &mut headers, NOW, &w.host);
    w.record(1, verdict);
    assert_eq!(w.status(1), 401);
    assert_eq!(w.host.denied_of(Denial::Malformed), 1);
}

#[test]
fn a_reconfiguration_keeps_paused_requests_answered() {
    let mut w = Worker::alone(config(""));
    w.request(1, &token_for("a"), NOW);
    w.tick(NOW);
    w.flow
        .reconfigure(Flow::new(config(r#","clock_skew_s":5"#)));
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    assert_eq!(w.status(1), 200);
}

// ------------------------------------------------------- route rules --

const RULES: &str = r#","groups_claim":"custom:groups","rules":[
    {"name":"health","paths":["/healthz"],"allow":"anyone"},
    {"name":"catalog","paths":["/catalog/*"],"allow":"optional"},
    {"name":"admin","paths":["/admin/*"],"require":{"groups_any":["admin"]}},
    {"name":"legacy","paths":["/old/*"],"allow":"deny"}]"#;

fn token_with(sub: &str, extra: &str) -> String {
    let header = harness::alb_header();
    let payload = format!(r#"{{"sub":"{sub}","exp":4000000000,"iss":"{ISSUER}"{extra}}}"#);
    alb_token(&header, &payload)
}

fn rule_id(w: &Worker, name: &str) -> alb_oidc::rules::RuleId {
    let i = w.flow.rule_names().position(|n| n == name).unwrap();
    alb_oidc::rules::RuleId(i)
}

/// A worker whose key for KID is already fetched (one verified request).
fn warm(extra: &str) -> Worker {
    let mut w = Worker::alone(config(extra));
    w.send(
        1000,
        &[
            (":path", "/healthz-warm"),
            ("x-amzn-oidc-data", &token_for("warm")),
        ],
        NOW,
    );
    w.tick(NOW);
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    w
}

#[test]
fn a_failed_requirement_is_403_and_a_met_one_passes_with_the_groups() {
    let mut w = warm(RULES);
    let admin = token_with("ann", r#","custom:groups":"staff, admin""#);
    let plain = token_with("bob", r#","custom:groups":"staff""#);
    w.send(
        1,
        &[(":path", "/admin/x"), ("x-amzn-oidc-data", &admin)],
        NOW,
    );
    w.send(
        2,
        &[(":path", "/admin/x"), ("x-amzn-oidc-data", &plain)],
        NOW,
    );
    assert_eq!(w.status(1), 200);
    assert_eq!(w.header(1, "x-auth-groups").as_deref(), Some("admin,staff"));
    assert_eq!(w.rule(1), "admin");
    assert_eq!(w.denial(2), Some(Denial::Forbidden));
    assert_eq!(w.status(2), 403);
    assert_eq!(w.outcome(2).username(), Some("bob"));
    let admin_rule = rule_id(&w, "admin");
    assert_eq!(w.host.ruled_of(admin_rule, true), 1);
    assert_eq!(w.host.ruled_of(admin_rule, false), 1);
    assert_eq!(w.host.denied_of(Denial::Forbidden), 1);
}

#[test]
fn deny_rules_refuse_before_any_token_is_read() {
    let mut w = Worker::alone(config(RULES));
    w.send(
        1,
        &[(":path", "/old/x"), ("x-amzn-oidc-data", &token_for("a"))],
        NOW,
    );
    w.send(2, &[(":path", "/old/y")], NOW);
    assert_eq!(w.denial(1), Some(Denial::DeniedByRule));
    assert_eq!(w.denial(2), Some(Denial::DeniedByRule));
    assert_eq!(w.status(1), 403);
    w.tick(NOW);
    assert!(
        w.host.key_calls().is_empty(),
        "no key fetched for a deny rule"
    );
    assert_eq!(w.host.ruled_of(rule_id(&w, "legacy"), false), 2);
}

#[test]
fn anyone_and_optional_without_a_token_remove_every_alb_header() {
    let mut w = Worker::alone(config(RULES));
    let alb = [
        ("X-Amzn-Oidc-Data", "forged"),
        ("x_amzn_oidc_identity", "admin"),
        ("x-amzn-oidc-accesstoken", "at"),
    ];
    let mut pairs = vec![(":path", "/healthz")];
    pairs.extend(alb);
    let h = w.send(1, &pairs, NOW);
    assert_eq!(w.status(1), 200);
    assert_eq!(w.rule(1), "health");
    let removed: Vec<&[u8]> = h.removed.iter().map(Vec::as_slice).collect();
    assert_eq!(
        removed,
        [
            b"X-Amzn-Oidc-Data".as_slice(),
            b"x_amzn_oidc_identity",
            b"x-amzn-oidc-accesstoken"
        ]
    );
    assert_eq!(w.host.count_of(Counter::Exempt), 1);
}

#[test]
fn optional_with_a_token_verifies_it_and_without_one_goes_on_anonymously() {
    let mut w = warm(RULES);
    let h = w.send(
        1,
        &[(":path", "/catalog/a"), ("x-amzn-oidc-identity", "someone")],
        NOW,
    );
    assert!(matches!(w.outcome(1), Verdict::Pass { .. }));
    assert_eq!(h.removed, vec![b"x-amzn-oidc-identity".to_vec()]);
    w.send(
        2,
        &[
            (":path", "/catalog/a"),
            ("x-amzn-oidc-data", &token_for("ann")),
        ],
        NOW,
    );
    assert_eq!(w.header(2, "x-auth-user").as_deref(), Some("ann"));
    w.send(
        3,
        &[(":path", "/catalog/a"), ("x-amzn-oidc-data", "garbage")],
        NOW,
    );
    assert_eq!(w.status(3), 401);
    assert_eq!(w.host.count_of(Counter::Anonymous), 1);
}

#[test]
fn forward_unverified_alb_headers_keeps_them() {
    let extra = format!(r#"{RULES},"forward_unverified_alb_headers":true"#);
    let mut w = Worker::alone(config(&extra));
    let h = w.send(
        1,
        &[(":path", "/healthz"), ("x-amzn-oidc-identity", "someone")],
        NOW,
    );
    assert_eq!(w.status(1), 200);
    assert!(h.removed.is_empty());
}

#[test]
fn the_alb_identity_header_is_rewritten_to_the_verified_sub() {
    let mut w = warm("");
    let token = token_for("ann");
    let h = w.send(
        1,
        &[
            (":path", "/x"),
            ("x-amzn-oidc-data", &token),
            ("X-Amzn-Oidc-Identity", "root"),
            ("x_amzn_oidc_identity", "root2"),
        ],
        NOW,
    );
    assert_eq!(
        h.removed,
        vec![
            b"X-Amzn-Oidc-Identity".to_vec(),
            b"x_amzn_oidc_identity".to_vec()
        ]
    );
    let identity: Vec<_> = w
        .outcome(1)
        .headers()
        .filter(|(n, _)| n == "x-amzn-oidc-identity")
        .collect();
    assert_eq!(
        identity,
        [&("x-amzn-oidc-identity".to_owned(), "ann".to_owned())]
    );
    assert_eq!(w.host.count_of(Counter::AlbIdentityMismatch), 1);
    // The ALB's own value: no mismatch.
    w.send(
        2,
        &[
            (":path", "/x"),
            ("x-amzn-oidc-data", &token),
            ("x-amzn-oidc-identity", "ann"),
        ],
        NOW,
    );
    assert_eq!(w.status(2), 200);
    assert_eq!(w.host.count_of(Counter::AlbIdentityMismatch), 1);
}

#[test]
fn unreadable_paths_are_400_with_rules_and_never_exempt_without() {
    let mut w = Worker::alone(config(RULES));
    w.send(1, &[(":path", "/a%zz")], NOW);
    assert_eq!(w.denial(1), Some(Denial::UnreadablePath));
    assert_eq!(w.status(1), 400);
    assert_eq!(w.outcome(1).rule(), None);
    let mut w = Worker::alone(config(r#","exempt_paths":["/a*"]"#));
    w.send(1, &[(":path", "/a%zz")], NOW);
    assert_eq!(w.denial(1), Some(Denial::MissingToken));
}

#[test]
fn groups_are_the_union_of_the_token_and_the_user_service() {
    let extra = format!("{RULES}{USERS}");
    let mut w = warm(&extra);
    let token = token_with("ann", r#","custom:groups":["zeta","staff"]"#);
    w.send(
        1,
        &[(":path", "/admin/x"), ("x-amzn-oidc-data", &token)],
        NOW,
    );
    w.tick(NOW);
    let call = *w.host.user_calls().last().unwrap();
    let body = prost::Message::encode_to_vec(&pb::AuthenticateResponse {
        result: Some(pb::authenticate_response::Result::User(pb::User {
            id: 1,
            username: "ann".to_owned(),
            groups: vec!["admin".to_owned(), "staff".to_owned()],
            is_active: true,
            ..Default::default()
        })),
    });
    let answer = CallResponse::Grpc {
        status: 0,
        size: body.len(),
        body: Some(body),
    };
    w.answer(call, answer, NOW);
    assert_eq!(w.status(1), 200);
    assert_eq!(
        w.header(1, "x-auth-groups").as_deref(),
        Some("admin,staff,zeta")
    );
}

#[test]
fn a_request_waiting_through_a_reconfiguration_gets_the_new_rules() {
    // Paused on the key under rules where /admin needs `admin`; the new
    // configuration denies /admin outright.
    let mut w = Worker::alone(config(RULES));
    let token = token_with("ann", r#","custom:groups":"admin""#);
    w.send(
        1,
        &[(":path", "/admin/x"), ("x-amzn-oidc-data", &token)],
        NOW,
    );
    w.tick(NOW);
    let denying = r#","rules":[{"name":"closed","paths":["/admin/*"],"allow":"deny"}]"#;
    w.flow.reconfigure(Flow::new(config(denying)));
    w.answer(w.host.key_calls()[0], key_answer(), NOW);
    assert_eq!(w.denial(1), Some(Denial::DeniedByRule));
    assert_eq!(w.rule(1), "closed");
    assert_eq!(w.host.ruled_of(rule_id(&w, "closed"), false), 1);
}

#[test]
fn a_request_swept_while_waiting_is_counted_against_its_rule() {
    let mut w = Worker::alone(config(RULES));
    w.send(
        1,
        &[(":path", "/admin/x"), ("x-amzn-oidc-data", &token_for("a"))],
        NOW,
    );
    w.tick(NOW);
    let late = NOW + max_wait(&config(RULES)).as_secs_f64() + 1.0;
    w.tick(late);
    assert_eq!(w.denial(1), Some(Denial::KeyUnavailable));
    assert_eq!(w.host.ruled_of(rule_id(&w, "admin"), false), 1);
}
