//! Native micro-benchmarks of the filter's pure core (no proxy-wasm, no Envoy).
//!
//! `cargo bench -p alb-oidc --bench core` (or `make bench-micro`):
//! - `parse_and_checks`: Token::parse + header checks + claim checks, one
//!   fresh ALB-format token per iteration (what every uncached request pays
//!   before the signature check);
//! - `verify_rust`: the pure-Rust ES256 verification of one token, with the
//!   key's fixed-base table (src/fixed_base.rs), and `verify_p256_generic`:
//!   the same with `p256::ecdsa::VerifyingKey::verify` (the baseline it replaces);
//! - `host_verify_encode`: building the `verify_signature` protobuf argument
//!   (what the native backend pays inside the VM besides the host call);
//! - `engine_cold_rust`: the whole engine path for a never-seen token with the
//!   pure-Rust verifier (parse, checks, shared key lookup, verification,
//!   identity, cache insert);
//! - `engine_hot`: a repeated token (verified-token cache hit).
//! - `rules_none` / `rules_20`: route rules on the fast path (a path with
//!   one reading): `route`, the groups from the claims, and `check`, with no
//!   rules, and with 20 rules where the request matches the last, a
//!   `require` of groups and a claim (the budget: at most 1 µs more);
//!   `rules_20_route_only`: just `route`, with the 20 rules;
//!   `rules_20_slow_path`: the same for a path with several readings.
//! - `flow_hot_rules_none` / `flow_hot_rules_20`: the whole per-request path
//!   of the filter's core, `Flow::on_request` with a cached token, through the
//!   test kit's fake host (header listing parsed, identity headers stripped,
//!   routing, cache hit, requirement check, verdict and its headers), with no
//!   rules and with the same 20 rules: their difference is what 20 rules
//!   cost per request (issue 12's budget: at most 1 µs);
//!   `flow_hot_groups_claim_only`: `groups_claim` and no rules (the groups
//!   from the token, and the `x-auth-groups` header they add), to split
//!   that difference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::claims::{self, ClaimRules};
use alb_oidc::config;
use alb_oidc::engine::{Engine, KeyResponse, RustVerifier, TokenStep};
use alb_oidc::keys::PublicKey;
use alb_oidc::token::Token;
use alb_oidc::verify;
use alb_oidc_testkit::fixtures::{standard_key, ARN, CLIENT, ISSUER, KID};
use alb_oidc_testkit::keys::public_key_pem;
use alb_oidc_testkit::store::MemoryStore as Store;
use alb_oidc_testkit::token::{mint, now_unix, Claims, HeaderFields};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use p256::ecdsa::{Signature, SigningKey};
use std::hint::black_box;
use std::rc::Rc;

const TOKENS: usize = 2048;

fn now() -> f64 {
    now_unix() as f64
}

/// `n` distinct ALB-format tokens (Cognito-style claims), valid for an hour.
fn tokens(sk: &SigningKey, n: usize) -> Vec<String> {
    let header = HeaderFields {
        kid: KID.into(),
        signer: ARN.into(),
        issuer: ISSUER.into(),
        client: CLIENT.into(),
        exp: now_unix() + 3600,
    };
    (0..n)
        .map(|i| {
            let claims = Claims::from_json(&format!(
                r#"{{"sub":"bench-user","email_verified":"true","email":"bench.user@example.com","given_name":"Bench","family_name":"User","username":"bench-user-{i}"}}"#
            ))
            .unwrap();
            mint(&claims, &header, sk).unwrap()
        })
        .collect()
}

fn filter_config() -> Rc<config::Config> {
    let json = serde_json::json!({
        "region": "us-east-1",
        "alb_arns": [ARN],
        "issuer": ISSUER,
        "client_id": CLIENT,
        "signature_backend": "rust",
    });
    Rc::new(config::parse(json.to_string().as_bytes()).unwrap())
}

/// An engine whose key for KID is already fetched and shared.
fn ready_engine(sk: &SigningKey, store: &Store, probe: &str) -> Engine {
    let mut engine = Engine::new(filter_config());
    engine.prepare(store);
    let t = now();
    match engine.check_token(probe, t, store, &RustVerifier) {
        TokenStep::NeedKey { fetch: true, .. } => {}
        other => panic!("expected a key fetch, got {other:?}"),
    }
    let pem = public_key_pem(sk.verifying_key()).unwrap();
    let (_, key) = engine.key_fetched(
        store,
        KID,
        KeyResponse::Response {
            status: 200,
            body: pem.into_bytes(),
        },
        t,
    );
    key.unwrap();
    engine
}

fn benches(c: &mut Criterion) {
    let sk = standard_key().unwrap();
    let toks = tokens(&sk, TOKENS);
    let pk = PublicKey::from_pem(public_key_pem(sk.verifying_key()).unwrap().as_bytes()).unwrap();
    let rules = ClaimRules {
        issuer: Some(ISSUER.into()),
        audience: None,
        clock_skew_s: 0,
        username_claim: "sub".into(),
    };
    let arns = vec![ARN.to_owned()];
    let parsed: Vec<Token> = toks.iter().map(|t| Token::parse(t).unwrap()).collect();
    let t_now = now();

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));

    let mut i = 0usize;
    g.bench_function("parse_and_checks", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            let tok = Token::parse(black_box(&toks[i])).unwrap();
            let kid = tok.check_header(&arns, Some(CLIENT)).unwrap().len();
            let cl = claims::check(&tok.payload, &rules, t_now).unwrap();
            black_box((kid, cl))
        })
    });

    let mut i = 0usize;
    g.bench_function("verify_rust", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            let t = &parsed[i];
            assert!(verify::verify_rust(
                &pk,
                black_box(t.signing_input()),
                &t.signature
            ));
        })
    });

    let mut i = 0usize;
    g.bench_function("verify_p256_generic", |b| {
        use p256::ecdsa::signature::Verifier;
        b.iter(|| {
            i = (i + 1) % TOKENS;
            let t = &parsed[i];
            let sig = Signature::from_slice(&t.signature).unwrap();
            assert!(pk
                .verifying_key
                .verify(black_box(t.signing_input()), &sig)
                .is_ok());
        })
    });

    let mut i = 0usize;
    g.bench_function("host_verify_encode", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            let t = &parsed[i];
            black_box(verify::host_verify_request(&pk, t.signing_input(), &t.signature).unwrap())
        })
    });

    let store = Store::default();
    let mut engine = ready_engine(&sk, &store, &toks[0]);
    // Fresh tokens every iteration: mint more than the verified-token cache
    // (1024) holds, so recycled ones have long been evicted (FIFO).
    let mut i = 0usize;
    g.bench_function("engine_cold_rust", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            match engine.check_token(black_box(&toks[i]), t_now, &store, &RustVerifier) {
                TokenStep::Verified {
                    cache_hit: false,
                    identity,
                } => black_box(identity),
                other => panic!("unexpected {other:?}"),
            };
        })
    });

    let hot = toks[1].clone();
    let _ = engine.check_token(&hot, t_now, &store, &RustVerifier);
    g.bench_function("engine_hot", |b| {
        b.iter(
            || match engine.check_token(black_box(&hot), t_now, &store, &RustVerifier) {
                TokenStep::Verified {
                    cache_hit: true,
                    identity,
                } => black_box(identity),
                other => panic!("unexpected {other:?}"),
            },
        )
    });

    bench_rules(&mut g);
    bench_flow(&mut g);
    g.finish();
}

/// 19 rules a request to `/api/...` on app.example.com passes by (other
/// paths, hosts, methods), then the one it matches.
fn twenty_rules() -> config::Config {
    let json = serde_json::json!({
        "region": "us-east-1",
        "alb_arns": [ARN],
        "exempt_paths": ["/healthz"],
        "groups_claim": "custom:groups",
        "rules": alb_oidc_testkit::hot_flow::twenty_rules_json(),
    });
    config::parse(json.to_string().as_bytes()).unwrap()
}

/// `Flow::on_request` for a token already in the verified-token cache, as
/// every request after a user's first pays, through the fake host of the
/// flow's tests. Both flows get the same request (a typical ALB request to
/// `/api/orders/42`) and the same configuration, but for the 20 rules.
fn bench_flow(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use alb_oidc::flow::Verdict;
    use alb_oidc_testkit::hot_flow::{HotFlow, Variant};

    for variant in Variant::ALL {
        let mut hot = HotFlow::new(variant);
        let request = hot.headers();
        g.bench_function(format!("flow_hot_{}", variant.name()), |b| {
            b.iter_batched_ref(
                || request.clone(),
                |headers| {
                    let verdict = hot.request(headers);
                    let Verdict::Allow { rule: id, .. } = &verdict else {
                        panic!("{verdict:?}")
                    };
                    assert_eq!(hot.flow.rule_name(*id), variant.deciding_rule());
                    black_box(verdict.headers().count());
                    verdict
                },
                BatchSize::SmallInput,
            )
        });
    }
}

fn bench_rules(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use alb_oidc::rules::{Access, Subject};
    let claims = match serde_json::json!({
        "sub": "bench-user", "custom:groups": "dev, staff", "custom:tenant": "acme"
    }) {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    let none = filter_config();
    let twenty = twenty_rules();
    for (name, config, path, access) in [
        (
            "rules_none",
            &*none,
            "/api/orders/42?expand=items",
            Access::Authenticated,
        ),
        (
            "rules_20",
            &twenty,
            "/api/orders/42?expand=items",
            Access::Require,
        ),
        (
            "rules_20_slow_path",
            &twenty,
            "/api/orders%2f42/./x?expand=items",
            Access::Require,
        ),
    ] {
        if name == "rules_20" {
            g.bench_function("rules_20_route_only", |b| {
                b.iter(|| {
                    let decision = config
                        .access
                        .route(
                            black_box("GET"),
                            black_box("app.example.com:443"),
                            Some(black_box(path)),
                        )
                        .unwrap();
                    black_box(decision.access())
                })
            });
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let decision = config
                    .access
                    .route(
                        black_box("GET"),
                        black_box("app.example.com:443"),
                        Some(black_box(path)),
                    )
                    .unwrap();
                assert_eq!(decision.access(), access);
                if decision.access() == Access::Require {
                    let groups = config.access.groups(&claims, []);
                    decision
                        .check(&config.access, &Subject::new(&groups, &claims))
                        .unwrap();
                }
                black_box(decision.rule_name(&config.access))
            })
        });
    }
}

criterion_group!(core, benches);
criterion_main!(core);
