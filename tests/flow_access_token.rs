//! The access-token stage of the request flow (issue 13), driven natively
//! through the fake host: the key-set fetch (single flight across workers,
//! refetch on an unknown kid at most once per interval, failures), the
//! cache of verified access tokens, `required` against not, and what a
//! verified token brings (groups, scopes, claim headers, rules).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::config::{self, Config};
use alb_oidc::denial::Denial;
use alb_oidc::flow::{CallKind, CallRequest, CallResponse, Counter, Verdict, MAX_JWKS_ANSWER};
use alb_oidc_testkit::fixtures::{ARN, CLIENT, ISSUER};
use alb_oidc_testkit::flow_worker::Worker;
use alb_oidc_testkit::harness::{self, alb_token, public_pem, NOW};
use alb_oidc_testkit::idp::{self, IdpKey, RsaFixture, IDP_CLIENT_ID, IDP_ISSUER};
use alb_oidc_testkit::store::MemoryStore;
use serde_json::{json, Value};
use std::rc::Rc;

const SUB: &str = "user-1";
const INTERVAL_S: f64 = 30.0;

fn config(access: &str, extra: &str) -> Config {
    let json = format!(
        r#"{{"region":"us-east-1","alb_arns":["{ARN}"],"client_id":"{CLIENT}","issuer":"{ISSUER}",
            "groups_claim":"groups",
            "access_token":{{"issuer":"{IDP_ISSUER}","jwks_cluster":"idp","jwks_authority":"idp.example.com",
              "jwks_path":"/jwks.json","client_ids":["{IDP_CLIENT_ID}"],"groups_claim":"cognito:groups",
              "claim_headers":{{"custom:tier":"x-auth-tier"}},"jwks_refetch_min_interval_s":{INTERVAL_S}{access}}}
            {extra}}}"#
    );
    config::parse(json.as_bytes()).unwrap()
}

fn rsa_a() -> IdpKey {
    IdpKey::rsa(RsaFixture::A, "rsa-a").unwrap()
}

fn rsa_b() -> IdpKey {
    IdpKey::rsa(RsaFixture::B, "rsa-b").unwrap()
}

fn jwks_answer(keys: &[&IdpKey]) -> CallResponse {
    let jwks: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
    CallResponse::Http {
        status: Some(200),
        body: idp::jwks(&jwks).into_bytes(),
    }
}

fn access_claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": IDP_ISSUER,
        "client_id": IDP_CLIENT_ID,
        "token_use": "access",
        "scope": "orders.read openid",
        "cognito:groups": ["admin"],
        "custom:tier": "gold",
        "exp": NOW + 3600.0,
    })
}

fn access_token_with(key: &IdpKey, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"});
    idp::access_token(&header, claims, key).unwrap()
}

fn access_token(key: &IdpKey) -> String {
    access_token_with(key, &access_claims(SUB))
}

fn data_token(sub: &str) -> String {
    let payload =
        format!(r#"{{"sub":"{sub}","exp":4000000000,"iss":"{ISSUER}","groups":["staff"]}}"#);
    alb_token(&harness::alb_header(), &payload)
}

fn key_answer() -> CallResponse {
    CallResponse::Http {
        status: Some(200),
        body: public_pem().into_bytes(),
    }
}

fn http_calls(w: &Worker) -> Vec<(u32, String)> {
    w.host
        .calls
        .iter()
        .filter_map(|(t, c)| match c {
            CallRequest::Http { cluster, .. } => Some((*t, cluster.clone())),
            _ => None,
        })
        .collect()
}

fn jwks_calls(w: &Worker) -> Vec<u32> {
    http_calls(w)
        .into_iter()
        .filter(|(_, cluster)| cluster == "idp")
        .map(|(t, _)| t)
        .collect()
}

/// Sends a request with both tokens (`access` omitted when `None`) to `path`.
fn send(w: &mut Worker, ctx: u32, path: &str, access: Option<&str>, now: f64) {
    let data = data_token(SUB);
    let mut pairs = vec![(":path", path), ("x-amzn-oidc-data", data.as_str())];
    if let Some(access) = access {
        pairs.push(("x-amzn-oidc-accesstoken", access));
    }
    w.send(ctx, &pairs, now);
}

/// A worker whose ALB key is already fetched, so that only the access
/// token's key set is outstanding.
fn worker(config: Config, store: &Rc<MemoryStore>) -> Worker {
    let mut w = Worker::new(config, store);
    send(&mut w, 1000, "/warm", None, NOW);
    w.tick(NOW);
    let key_call = http_calls(&w)
        .into_iter()
        .find(|(_, c)| c != "idp")
        .map(|(t, _)| t);
    if let Some(token) = key_call {
        w.answer(token, key_answer(), NOW);
    }
    // Count from here.
    w.host.counters.borrow_mut().clear();
    w.host.denials.borrow_mut().clear();
    w
}

fn counters_of(w: &Worker) -> [u64; 5] {
    [
        w.host.count_of(Counter::AccessTokenVerified),
        w.host.count_of(Counter::AccessTokenAbsent),
        w.host.count_of(Counter::AccessTokenInvalid),
        w.host.count_of(Counter::JwksFetchOk),
        w.host.count_of(Counter::JwksFetchFailed),
    ]
}

#[test]
fn a_valid_access_token_brings_groups_scopes_and_claim_headers() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", ""), &store);
    let raw = access_token(&rsa_a());
    send(&mut w, 1, "/x", Some(&raw), NOW);
    assert!(matches!(w.verdicts[&1][0], Verdict::Wait));
    w.tick(NOW);
    let calls = jwks_calls(&w);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        w.flow.answer_limit(CallKind::Http, calls[0]),
        Some(MAX_JWKS_ANSWER)
    );
    match &w.host.calls.iter().find(|(t, _)| *t == calls[0]).unwrap().1 {
        CallRequest::Http {
            path, authority, ..
        } => {
            assert_eq!(path, "/jwks.json");
            assert_eq!(authority, "idp.example.com");
        }
        other => panic!("{other:?}"),
    }
    w.answer(calls[0], jwks_answer(&[&rsa_a()]), NOW + 0.01);
    assert_eq!(w.status(1), 200);
    assert_eq!(w.header(1, "x-auth-groups").as_deref(), Some("admin,staff"));
    assert_eq!(
        w.header(1, "x-auth-scopes").as_deref(),
        Some("openid orders.read")
    );
    assert_eq!(w.header(1, "x-auth-tier").as_deref(), Some("gold"));
    assert_eq!(
        w.header(1, "x-amzn-oidc-accesstoken").as_deref(),
        Some(raw.as_str())
    );
    // The next request with the same token: a cache hit, no fetch.
    send(&mut w, 2, "/x", Some(&raw), NOW + 1.0);
    assert_eq!(w.status(2), 200);
    assert_eq!(jwks_calls(&w).len(), 1);
    assert_eq!(counters_of(&w), [2, 0, 0, 1, 0]);
    assert_eq!(w.host.count_of(Counter::AccessTokenCacheHit), 1);
    assert_eq!(w.host.count_of(Counter::AccessTokenCacheMiss), 1);
}

#[test]
fn the_access_token_header_is_held_back_until_verified() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", ""), &store);
    let raw = access_token(&rsa_a());
    let data = data_token(SUB);
    let headers = w.send(
        1,
        &[
            (":path", "/x"),
            ("x-amzn-oidc-data", &data),
            ("X-Amzn-Oidc-AccessToken", &raw),
        ],
        NOW,
    );
    assert!(headers
        .removed
        .iter()
        .any(|n| n.as_slice() == b"X-Amzn-Oidc-AccessToken"));
}

#[test]
fn missing_and_invalid_tokens_refused_when_required() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config(r#","required":true"#, ""), &store);
    send(&mut w, 1, "/x", None, NOW);
    assert_eq!(w.denial(1), Some(Denial::AccessTokenMissing));
    assert_eq!(w.status(1), 401);
    let wrong_sub = access_token_with(&rsa_a(), &access_claims("someone-else"));
    send(&mut w, 2, "/x", Some(&wrong_sub), NOW);
    assert_eq!(w.denial(2), Some(Denial::AccessTokenInvalid));
    send(&mut w, 3, "/x", Some("an-opaque-google-token"), NOW);
    assert_eq!(w.denial(3), Some(Denial::AccessTokenInvalid));
    // None of them cost a key-set fetch.
    w.tick(NOW);
    assert_eq!(jwks_calls(&w).len(), 0);
    assert_eq!(counters_of(&w), [0, 1, 2, 0, 0]);
}

#[test]
fn an_unusable_token_counts_as_absent_when_not_required() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", ""), &store);
    let wrong_sub = access_token_with(&rsa_a(), &access_claims("someone-else"));
    send(&mut w, 1, "/x", Some(&wrong_sub), NOW);
    assert_eq!(w.status(1), 200);
    assert_eq!(w.header(1, "x-auth-scopes"), None);
    assert_eq!(w.header(1, "x-amzn-oidc-accesstoken"), None);
    assert_eq!(w.header(1, "x-auth-groups").as_deref(), Some("staff"));
    send(&mut w, 2, "/x", None, NOW);
    assert_eq!(w.status(2), 200);
    assert_eq!(counters_of(&w), [0, 1, 1, 0, 0]);

    // Forwarded as received only when the operator asks.
    let mut fwd = worker(
        config("", r#","forward_unverified_alb_headers":true"#),
        &Rc::new(MemoryStore::default()),
    );
    send(&mut fwd, 1, "/x", Some(&wrong_sub), NOW);
    assert_eq!(
        fwd.header(1, "x-amzn-oidc-accesstoken").as_deref(),
        Some(wrong_sub.as_str())
    );
}

const SCOPED_RULES: &str = r#","rules":[{"name":"orders","paths":["/orders/*"],"require":{"scopes_all":["orders.read"]}},
    {"name":"tier","paths":["/tier/*"],"require":{"access_claims":{"custom:tier":["platinum"]}}}]"#;

#[test]
fn rules_on_scopes_and_access_claims() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", SCOPED_RULES), &store);
    let raw = access_token(&rsa_a());
    send(&mut w, 1, "/orders/1", Some(&raw), NOW);
    w.tick(NOW);
    w.answer(jwks_calls(&w)[0], jwks_answer(&[&rsa_a()]), NOW);
    assert_eq!(w.status(1), 200);
    send(&mut w, 2, "/tier/1", Some(&raw), NOW);
    assert_eq!(w.denial(2), Some(Denial::Forbidden));
    assert_eq!(w.rule(2), "tier");
    // Without an access token the scope is missing: 403, not 401.
    send(&mut w, 3, "/orders/1", None, NOW);
    assert_eq!(w.denial(3), Some(Denial::Forbidden));
}

#[test]
fn an_unreachable_key_set_is_503_when_required() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config(r#","required":true"#, ""), &store);
    send(&mut w, 1, "/x", Some(&access_token(&rsa_a())), NOW);
    w.tick(NOW);
    let failed = CallResponse::Http {
        status: Some(500),
        body: vec![],
    };
    w.answer(jwks_calls(&w)[0], failed, NOW);
    assert_eq!(w.denial(1), Some(Denial::JwksUnavailable));
    assert_eq!(w.status(1), 503);
    // Remembered for key_failure_ttl_s: no second fetch at once.
    send(&mut w, 2, "/x", Some(&access_token(&rsa_a())), NOW + 1.0);
    assert_eq!(w.denial(2), Some(Denial::JwksUnavailable));
    w.tick(NOW + 1.0);
    assert_eq!(jwks_calls(&w).len(), 1);
    assert_eq!(w.host.count_of(Counter::JwksFetchFailed), 1);
}

#[test]
fn an_unreachable_key_set_when_not_required_fails_only_the_rules_that_need_it() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", SCOPED_RULES), &store);
    let raw = access_token(&rsa_a());
    send(&mut w, 1, "/plain", Some(&raw), NOW);
    send(&mut w, 2, "/orders/1", Some(&raw), NOW);
    w.tick(NOW);
    let garbage = CallResponse::Http {
        status: Some(200),
        body: b"<html>not a key set</html>".to_vec(),
    };
    w.answer(jwks_calls(&w)[0], garbage, NOW);
    assert_eq!(w.status(1), 200);
    assert_eq!(w.header(1, "x-amzn-oidc-accesstoken"), None);
    assert_eq!(w.denial(2), Some(Denial::JwksUnavailable));
    assert_eq!(w.host.count_of(Counter::JwksFetchInvalid), 1);
}

#[test]
fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", ""), &store);
    send(&mut w, 1, "/x", Some(&access_token(&rsa_a())), NOW);
    w.tick(NOW);
    w.answer(jwks_calls(&w)[0], jwks_answer(&[&rsa_a()]), NOW);
    assert_eq!(w.status(1), 200);

    // The IdP rotated to B. Within the interval B's kid is unknown: no fetch.
    let rotated = access_token(&rsa_b());
    send(&mut w, 2, "/x", Some(&rotated), NOW + 1.0);
    w.tick(NOW + 1.0);
    assert_eq!(w.status(2), 200);
    assert_eq!(w.header(2, "x-auth-scopes"), None);
    assert_eq!(jwks_calls(&w).len(), 1);

    // After it, one refetch for however many requests, and B verifies.
    let later = NOW + INTERVAL_S + 1.0;
    send(&mut w, 3, "/x", Some(&rotated), later);
    send(&mut w, 4, "/x", Some(&rotated), later);
    w.tick(later);
    assert_eq!(jwks_calls(&w).len(), 2);
    w.answer(jwks_calls(&w)[1], jwks_answer(&[&rsa_a(), &rsa_b()]), later);
    assert_eq!(
        w.header(3, "x-auth-scopes").as_deref(),
        Some("openid orders.read")
    );
    assert_eq!(w.status(4), 200);

    // A flood of random kids right after: invalid, no fetch.
    for ctx in 10..60 {
        let mut key = rsa_b();
        key.kid = format!("random-{ctx}");
        send(&mut w, ctx, "/x", Some(&access_token(&key)), later + 1.0);
    }
    w.tick(later + 1.0);
    assert_eq!(jwks_calls(&w).len(), 2);
    assert_eq!(w.host.count_of(Counter::AccessTokenInvalid), 51);
}

#[test]
fn a_failed_refetch_keeps_the_key_set_in_hand() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", ""), &store);
    send(&mut w, 1, "/x", Some(&access_token(&rsa_a())), NOW);
    w.tick(NOW);
    w.answer(jwks_calls(&w)[0], jwks_answer(&[&rsa_a()]), NOW);
    let later = NOW + INTERVAL_S + 1.0;
    send(&mut w, 2, "/x", Some(&access_token(&rsa_b())), later);
    w.tick(later);
    let down = CallResponse::Http {
        status: None,
        body: vec![],
    };
    w.answer(jwks_calls(&w)[1], down, later);
    // B's token waited for a key set that could not be had.
    assert_eq!(w.status(2), 200);
    assert_eq!(w.header(2, "x-auth-scopes"), None);
    // A new token signed with A still verifies, in this worker and another.
    let fresh = access_token_with(&rsa_a(), &{
        let mut c = access_claims(SUB);
        c["jti"] = json!("fresh");
        c
    });
    send(&mut w, 3, "/x", Some(&fresh), later + 1.0);
    assert_eq!(
        w.header(3, "x-auth-scopes").as_deref(),
        Some("openid orders.read")
    );
    let mut other = worker(config("", ""), &store);
    send(&mut other, 4, "/x", Some(&fresh), later + 1.0);
    assert_eq!(
        other.header(4, "x-auth-scopes").as_deref(),
        Some("openid orders.read")
    );
    assert_eq!(jwks_calls(&other).len(), 0);
}

#[test]
fn one_key_set_fetch_for_two_workers_and_fifty_first_requests() {
    let store = Rc::new(MemoryStore::default());
    let mut a = worker(config("", ""), &store);
    let mut b = worker(config("", ""), &store);
    let raw = access_token(&rsa_a());
    for ctx in 1..=25 {
        send(&mut a, ctx, "/x", Some(&raw), NOW);
        send(&mut b, ctx, "/x", Some(&raw), NOW);
    }
    a.tick(NOW);
    b.tick(NOW);
    assert_eq!(jwks_calls(&a).len() + jwks_calls(&b).len(), 1);
    let owner_is_a = !jwks_calls(&a).is_empty();
    let (owner, waiter) = if owner_is_a {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let call = jwks_calls(owner)[0];
    owner.answer(call, jwks_answer(&[&rsa_a()]), NOW + 0.1);
    waiter.tick(NOW + 0.2);
    for ctx in 1..=25 {
        assert_eq!(a.status(ctx), 200, "a {ctx}");
        assert_eq!(b.status(ctx), 200, "b {ctx}");
        assert_eq!(
            a.header(ctx, "x-auth-scopes").as_deref(),
            Some("openid orders.read")
        );
        assert_eq!(
            b.header(ctx, "x-auth-scopes").as_deref(),
            Some("openid orders.read")
        );
    }
    assert_eq!(
        a.host.count_of(Counter::JwksFetchOk) + b.host.count_of(Counter::JwksFetchOk),
        1
    );
}

#[test]
fn a_request_never_hangs_on_the_key_set() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config(r#","required":true"#, ""), &store);
    send(&mut w, 1, "/x", Some(&access_token(&rsa_a())), NOW);
    w.tick(NOW);
    assert_eq!(jwks_calls(&w).len(), 1);
    // The answer never comes: the sweep answers 503.
    let deadline = alb_oidc::flow::max_wait(&config(r#","required":true"#, "")).as_secs_f64();
    w.tick(NOW + deadline + 0.5);
    assert_eq!(w.denial(1), Some(Denial::JwksUnavailable));
    assert!(w.waiting.is_empty());
}

#[test]
fn a_key_set_dispatch_that_fails_answers_at_once() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config(r#","required":true"#, ""), &store);
    w.host.refuse_dispatch = true;
    send(&mut w, 1, "/x", Some(&access_token(&rsa_a())), NOW);
    w.tick(NOW);
    assert_eq!(w.denial(1), Some(Denial::JwksUnavailable));
    assert_eq!(w.host.count_of(Counter::JwksFetchFailed), 1);
}

#[test]
fn strip_alb_headers_keeps_a_verified_access_token_from_the_upstream() {
    let store = Rc::new(MemoryStore::default());
    let mut w = worker(config("", r#","strip_alb_headers":true"#), &store);
    send(&mut w, 1, "/x", Some(&access_token(&rsa_a())), NOW);
    w.tick(NOW);
    w.answer(jwks_calls(&w)[0], jwks_answer(&[&rsa_a()]), NOW);
    assert_eq!(w.header(1, "x-auth-scopes").as_deref(), Some("openid orders.read"));
    assert_eq!(w.header(1, "x-amzn-oidc-accesstoken"), None);
}
