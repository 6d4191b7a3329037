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
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
