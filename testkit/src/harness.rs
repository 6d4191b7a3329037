//! The code paths the fuzz targets drive, and the invariants they check.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`), by the
//! filter's `tests/fuzz_regressions.rs`, which replays every saved crash
//! input through exactly these functions under `cargo test`, and by
//! `tests/properties.rs`.
//!
//! Every function takes the raw fuzzer bytes, never panics on its own for
//! any input, and asserts an invariant whose violation is a bug.

// Test code throughout: panicking on a broken invariant is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::fixtures::{standard_key, ARN, CLIENT, ISSUER, KID};
use crate::store::MemoryStore;
use crate::token::{self as mint, Padding, Signing};
use alb_oidc::b64;
use alb_oidc::claims::{self, ClaimRules};
use alb_oidc::config::{self, Config, HeaderNames, HeaderRole, ALB_IDENTITY_HEADER};
use alb_oidc::engine::{Engine, KeyResponse, RustVerifier, TokenStep, UserStep};
use alb_oidc::identity::is_safe_header_value;
use alb_oidc::keys::PublicKey;
use alb_oidc::paths::ExemptPaths;
use alb_oidc::token::{self, Token};
use alb_oidc::users::{self, pb, UserAnswer};
use std::rc::Rc;

mod access_token;
pub use access_token::{
    access_config, access_keys, access_token_target, access_token_verify, jwks_target, ACCESS_NOW,
    ACCESS_SUB,
};

/// The fuzzing clock: every seed token is valid at this instant.
pub const NOW: f64 = 1_750_000_000.0;

/// The public PEM of the standard key.
pub fn public_pem() -> String {
    crate::keys::public_key_pem(standard_key().expect("standard key").verifying_key())
        .expect("PEM of a valid key")
}

/// Signs `header_b64.payload_b64` (used as given) with the standard key
/// (RFC 6979, so seeds reproduce) and appends the padded base64url
/// `r || s`, as the ALB does.
pub fn sign_segments(header_b64: &str, payload_b64: &str) -> String {
    mint::sign_segments(
        header_b64,
        payload_b64,
        &standard_key().expect("standard key"),
        Signing::Deterministic,
        Padding::Padded,
    )
    .expect("signing with the standard key")
}

/// An ALB-style token (padded segments) of exactly these JSON texts.
pub fn alb_token(header_json: &str, payload_json: &str) -> String {
    sign_segments(
        &Padding::Padded.encode(header_json.as_bytes()),
        &Padding::Padded.encode(payload_json.as_bytes()),
    )
}

/// The standard header, in the ALB's field order, valid until 2096.
pub fn alb_header() -> String {
    mint::HeaderFields {
        kid: KID.into(),
        signer: ARN.into(),
        issuer: ISSUER.into(),
        client: CLIENT.into(),
        exp: 4_000_000_000,
    }
    .to_json()
    .expect("header JSON")
}

pub fn alb_payload() -> String {
    format!(
        r#"{{"sub":"9f3c2a","email":"ada@example.com","groups":["admin","staff"],"exp":4000000000,"iss":"{ISSUER}"}}"#
    )
}

struct Fixtures {
    strict: Config,
    bypass: Config,
    with_users: Config,
    key: PublicKey,
    pem: String,
    /// A store in which a worker has already fetched and shared `KID`.
    seeded_store: MemoryStore,
}

fn parse_config(json: &str) -> Config {
    config::parse(json.as_bytes()).expect("fixture configuration is valid")
}

fn build_fixtures() -> Fixtures {
    let strict = parse_config(&format!(
        r#"{{"region":"us-east-1","alb_arns":["{ARN}"],"client_id":"{CLIENT}","issuer":"{ISSUER}",
            "claim_headers":{{"email":"x-email","groups":"x-groups","exp":"x-exp"}}}}"#
    ));
    let bypass = parse_config(
        r#"{"region":"us-east-1","bypass_validation":true,"username_claim":"email","clock_skew_s":30}"#,
    );
    let with_users = parse_config(&format!(
        r#"{{"region":"us-east-1","alb_arns":"{ARN}","user_service":{{"cluster":"users","cache_max":64}}}}"#
    ));
    let pem = public_pem();
    let key = PublicKey::from_pem(pem.as_bytes()).expect("fixture key parses");
    let seeded_store = MemoryStore::default();
    let mut engine = Engine::new(Rc::new(strict.clone()));
    engine.prepare(&seeded_store);
    let (_, fetched) = engine.key_fetched(
        &seeded_store,
        KID,
        KeyResponse::Response {
            status: 200,
            body: pem.clone().into_bytes(),
        },
        NOW - 10.0,
    );
    assert!(fetched.is_ok(), "seeding the key failed");
    Fixtures {
        strict,
        bypass,
        with_users,
        key,
        pem,
        seeded_store,
    }
}

thread_local! {
    static FIXTURES: Fixtures = build_fixtures();
}

fn with_fixtures<R>(f: impl FnOnce(&Fixtures) -> R) -> R {
    FIXTURES.with(f)
}

/// The text of fuzzer bytes. Header values reach the filter as text; the
/// lossy conversion keeps every input useful.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

// ---------------------------------------------------------------- b64 ----

/// `decode_segment` accepts exactly one spelling per padding style: whatever
/// it accepts is the canonical padded or unpadded encoding of its output.
pub fn b64_target(data: &[u8]) {
    let s = text(data);
    if let Some(bytes) = b64::decode_segment(&s) {
        assert!(!bytes.is_empty(), "{s:?} decoded to nothing");
        assert!(
            b64::encode_padded(&bytes) == s || b64::encode_unpadded(&bytes) == s,
            "{s:?} is accepted but not canonical"
        );
    }
    if !data.is_empty() {
        assert_eq!(
            b64::decode_segment(&b64::encode_padded(data)).as_deref(),
            Some(data)
        );
        assert_eq!(
            b64::decode_segment(&b64::encode_unpadded(data)).as_deref(),
            Some(data)
        );
    }
}

// -------------------------------------------------------------- token ----

fn rules_of(config: &Config) -> ClaimRules {
    ClaimRules {
        issuer: config.issuer.clone(),
        audience: config.audience.clone(),
        clock_skew_s: config.clock_skew_s,
        username_claim: config.username_claim.clone(),
    }
}

/// Checks a token's claims at `NOW` and at the edges of the validity window
/// they report: valid on `[valid_from, valid_until)`, invalid just outside.
fn check_claims(payload: &serde_json::Map<String, serde_json::Value>, rules: &ClaimRules) {
    let Ok(c) = claims::check(payload, rules, NOW) else {
        return;
    };
    assert!(c.is_current(NOW));
    let last = c.valid_until.next_down();
    assert!(
        claims::check(payload, rules, last).is_ok(),
        "valid at {NOW} but not at {last} (< exp)"
    );
    assert!(claims::check(payload, rules, c.valid_until).is_err());
    if c.valid_from.is_finite() {
        assert!(claims::check(payload, rules, c.valid_from).is_ok());
        assert!(claims::check(payload, rules, c.valid_from.next_down()).is_err());
    }
}

fn assert_canonical_segments(raw: &str) {
    for segment in raw.split('.') {
        let bytes = b64::decode_segment(segment).expect("parsed token has decodable segments");
        assert!(
            b64::encode_padded(&bytes) == segment || b64::encode_unpadded(&bytes) == segment,
            "parsed token has a non-canonical segment {segment:?}"
        );
    }
}

/// Every header name the filter injects (the six identity headers, the
/// claim headers, and the ALB's identity header made true unless
/// `strip_alb_headers`).
pub fn managed_headers(c: &Config) -> Vec<String> {
    let mut names: Vec<String> = c.headers.iter().map(|(_, name)| name.to_owned()).collect();
    names.extend(c.claim_headers.iter().map(|(_, header)| header.clone()));
    if !c.strip_alb_headers {
        names.push(ALB_IDENTITY_HEADER.to_owned());
    }
    names
}

/// What every identity handed to the upstream must look like.
fn assert_identity_safe(step: &TokenStep, config: &Config, raw: &str) {
    let TokenStep::Verified { identity, .. } = step else {
        return;
    };
    assert!(!identity.username.is_empty());
    assert!(is_safe_header_value(&identity.username));
    assert!(identity.claims.is_current(NOW));
    let managed = managed_headers(config);
    for (name, value) in &identity.headers {
        assert!(managed.contains(name), "unmanaged header {name:?} injected");
        if name == ALB_IDENTITY_HEADER {
            assert_eq!(Some(value), identity.sub.as_ref(), "{name} is not the sub");
        }
        assert!(
            is_safe_header_value(value),
            "unsafe value {value:?} for {name:?}"
        );
    }
    let t = Token::parse(raw).expect("a verified token parses");
    assert_eq!(
        identity.claims_json,
        String::from_utf8_lossy(&t.payload_json)
    );
}

/// A fresh engine (an empty token cache) on a store where the key for
/// `KID` is already shared by another worker.
fn check_with_engine(config: &Config, store: &MemoryStore, raw: &str) -> TokenStep {
    let mut engine = Engine::new(Rc::new(config.clone()));
    let step = engine.check_token(raw, NOW, store, &RustVerifier);
    assert_identity_safe(&step, config, raw);
    match &step {
        TokenStep::Verified { identity, .. } => {
            // Same token again: a cache hit with the same identity.
            match engine.check_token(raw, NOW + 0.5, store, &RustVerifier) {
                TokenStep::Verified {
                    identity: again,
                    cache_hit,
                } => {
                    if identity.claims.is_current(NOW + 0.5) {
                        assert!(cache_hit || config.verified_token_cache_max == 0);
                    }
                    assert_eq!(again.username, identity.username);
                }
                other => {
                    assert!(
                        !identity.claims.is_current(NOW + 0.5),
                        "verified at NOW, then {other:?}"
                    );
                }
            }
        }
        TokenStep::NeedKey { pending, fetch } => {
            assert!(token::is_valid_kid(&pending.kid));
            assert_ne!(pending.kid, KID, "the seeded key was not used");
            assert!(*fetch, "nobody else is fetching {:?}", pending.kid);
        }
        TokenStep::Denied(_) => {}
    }
    step
}

/// Finishes a `NeedKey` step as the host would: the fetch answers with the
/// real key, then the pending token is verified.
fn finish_fetch(config: &Config, store: &MemoryStore, raw: &str) {
    let mut engine = Engine::new(Rc::new(config.clone()));
    let TokenStep::NeedKey { pending, .. } = engine.check_token(raw, NOW, store, &RustVerifier)
    else {
        return;
    };
    let pem = with_fixtures(|f| f.pem.clone());
    let kid = pending.kid.clone();
    let (_, key) = engine.key_fetched(
        store,
        &kid,
        KeyResponse::Response {
            status: 200,
            body: pem.into_bytes(),
        },
        NOW,
    );
    let key = key.expect("the real key parses");
    if let Ok(identity) = engine.finish_token(pending, &key, &RustVerifier) {
        assert!(identity.claims.is_current(NOW));
    }
}

/// `Engine::check_token` at `NOW` with the strict configuration (real
/// verification, `ARN`, `CLIENT`, `ISSUER`), a fresh engine and a store
/// where another worker already shared the key for `KID`.
pub fn strict_check(raw: &str) -> TokenStep {
    with_fixtures(|f| check_with_engine(&f.strict, &f.seeded_store.clone(), raw))
}

/// Token parsing, header and claim checks, and a full `Engine::check_token`
/// (the raw input, the input re-signed with the real key, and with
/// validation bypassed).
pub fn token_target(data: &[u8]) {
    let raw = text(data);
    let raw = raw.as_ref();
    with_fixtures(|f| {
        if let Ok(t) = Token::parse(raw) {
            assert!(raw.len() <= token::MAX_TOKEN_LEN);
            assert_eq!(raw.matches('.').count(), 2);
            assert_canonical_segments(raw);
            let dot = raw.rfind('.').unwrap_or(0);
            assert_eq!(t.signing_input(), &raw.as_bytes()[..dot]);
            let arns = [ARN.to_owned()];
            if let Ok(kid) = t.check_header(&arns, Some(CLIENT)) {
                assert!(token::is_valid_kid(kid));
                assert_eq!(t.header.get("alg").and_then(|v| v.as_str()), Some("ES256"));
                assert_eq!(t.header.get("signer").and_then(|v| v.as_str()), Some(ARN));
                assert_eq!(t.signature.len(), 64);
            }
            check_claims(&t.payload, &rules_of(&f.strict));
            check_claims(&t.payload, &rules_of(&f.bypass));
        }

        // As received: without the key's private half, nothing verifies
        // unless the fuzzer kept a seed's real signature.
        let store = f.seeded_store.clone();
        if let TokenStep::Verified { .. } = check_with_engine(&f.strict, &store, raw) {
            let t = Token::parse(raw).expect("verified token parses");
            assert!(alb_oidc::verify::verify_rust(
                &f.key,
                t.signing_input(),
                &t.signature
            ));
        }
        finish_fetch(&f.strict, &f.seeded_store.clone(), raw);
        check_with_engine(&f.bypass, &f.seeded_store.clone(), raw);

        // Re-signed with the real key: the signature path succeeds, so
        // everything after it runs on fuzzer-chosen headers and claims.
        let mut parts = raw.splitn(3, '.');
        if let (Some(h), Some(p)) = (parts.next(), parts.next()) {
            // Signing is the slow part: only sign what gets as far as the
            // signature check (with a placeholder signature first).
            let placeholder = format!("{h}.{p}.{}", b64::encode_padded(&[1u8; 64]));
            let reaches_verify = Token::parse(&placeholder).is_ok_and(|t| {
                t.check_header(&[ARN.to_owned()], Some(CLIENT)).is_ok()
                    && claims::check(&t.payload, &rules_of(&f.strict), NOW).is_ok()
            });
            if reaches_verify {
                let signed = sign_segments(h, p);
                let store = f.seeded_store.clone();
                let step = check_with_engine(&f.strict, &store, &signed);
                if let TokenStep::Verified { .. } = step {
                    // Any change to the signature is refused.
                    let t = Token::parse(&signed).expect("verified token parses");
                    let mut sig = t.signature.clone();
                    sig[usize::from(data[0]) % 64] ^= 1 << (data.len() % 8);
                    let forged = format!("{h}.{p}.{}", b64::encode_padded(&sig));
                    let fresh = f.seeded_store.clone();
                    match check_with_engine(&f.strict, &fresh, &forged) {
                        TokenStep::Verified { .. } => {
                            panic!("a token with a flipped signature bit verified")
                        }
                        TokenStep::NeedKey { .. } => panic!("the key was not cached"),
                        TokenStep::Denied(_) => {}
                    }
                }
            }
        }
    });
}

// ------------------------------------------------------------- config ----

/// `config::parse` never panics, and what it accepts is consistent.
pub fn config_target(data: &[u8]) {
    let Ok(c) = config::parse(data) else {
        return;
    };
    assert!(c.bypass_validation || !c.alb_arns.is_empty());
    assert!(!c.username_claim.is_empty());
    assert!(c.clock_skew_s <= 3600);
    assert!(c.key_path_prefix.starts_with('/') && c.key_path_prefix.ends_with('/'));
    let managed = managed_headers(&c);
    for (i, name) in managed.iter().enumerate() {
        assert!(!name.is_empty());
        assert_eq!(name, &name.to_ascii_lowercase());
        // The ALB's identity header is set by the filter itself, never a
        // configured name.
        let configured = i + usize::from(!c.strip_alb_headers) < managed.len();
        assert!(!(configured && config::ALB_HEADERS.contains(&name.as_str())));
        assert!(
            !managed[..i].contains(name),
            "header {name:?} is managed twice"
        );
        assert_ne!(name, &c.token_header, "the token header is injected");
    }
    for path in [
        "/",
        "/healthz",
        "/static/x",
        "/static/../admin",
        "/%2e%2e/x",
    ] {
        let exempt = c.exempt_paths.is_exempt(path);
        if path.contains("..") || path.contains("%2e") {
            assert!(!exempt, "{path} is exempt");
        }
    }
    // Building an engine from any accepted configuration works.
    let small =
        c.key_cache_max <= 4096 && c.user_service.as_ref().is_none_or(|u| u.cache_max <= 4096);
    let engine = Engine::new(Rc::new(c));
    if small {
        engine.prepare(&MemoryStore::default());
    }
}

// ------------------------------------------------------- exempt paths ----

/// Percent-decoding as the most liberal upstream does it: `%XX` (`%3B`
/// included) and the non-standard `%uXXXX` (IIS, older Jetty); anything
/// else is left as is.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            if let (Some(&h), Some(&l)) = (input.get(i + 1), input.get(i + 2)) {
                if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                    out.push((h << 4 | l) as u8);
                    i += 3;
                    continue;
                }
            }
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                let digits = input.get(i + 2..i + 6).unwrap_or(&[]);
                let code = std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| d.len() == 4 && d.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|d| u32::from_str_radix(d, 16).ok())
                    .and_then(char::from_u32);
                if let Some(c) = code {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 6;
                    continue;
                }
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Whether a path has a dot segment as some upstream might see one:
/// backslashes as slashes, `;` path parameters stripped (servlet
/// containers), percent-decoded up to three times.
pub fn has_dot_segment(path: &[u8]) -> bool {
    let mut current = path.to_vec();
    for _ in 0..4 {
        let normalized: Vec<u8> = current
            .iter()
            .map(|&b| if b == b'\\' { b'/' } else { b })
            .collect();
        let dotted = normalized.split(|&b| b == b'/').any(|segment| {
            let bare = segment.split(|&b| b == b';').next().unwrap_or(segment);
            bare == b"." || bare == b".."
        });
        if dotted {
            return true;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    false
}

/// Input: exempt patterns, one per line, then the request path on the last
/// line. Invariant: an exempt path has no dot segment however it is decoded,
/// and its decoded form is still an exact exempt path or under an exempt
/// prefix.
pub fn exempt_paths_target(data: &[u8]) {
    let s = text(data);
    let mut lines: Vec<&str> = s.split('\n').collect();
    let Some(request) = lines.pop() else {
        return;
    };
    lines.truncate(16);
    let patterns: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let Ok(exempt) = ExemptPaths::new(&patterns) else {
        return;
    };
    // Patterns themselves never carry dot segments or encodings.
    for p in &patterns {
        assert!(!has_dot_segment(p.as_bytes()), "pattern {p:?} accepted");
    }
    if !exempt.is_exempt(request) {
        return;
    }
    // Like the matcher, a query or fragment ends the path (Envoy refuses
    // requests whose path has a fragment).
    let path = match request.find(['?', '#']) {
        Some(end) => &request[..end],
        None => request,
    };
    assert!(path.starts_with('/'));
    assert!(
        !has_dot_segment(path.as_bytes()),
        "{request:?} is exempt but has a dot segment once decoded"
    );
    let decoded = percent_decode(path.as_bytes());
    assert!(!decoded.contains(&0), "{request:?} decodes to a NUL");
    let under_pattern = patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => decoded.starts_with(prefix.as_bytes()),
        None => decoded == p.as_bytes(),
    });
    assert!(
        under_pattern,
        "{request:?} is exempt but decodes outside every pattern"
    );
}

// ------------------------------------------------------------ pem key ----

/// PEM and DER key parsing: never panics; what parses round-trips.
pub fn pem_key_target(data: &[u8]) {
    let check = |k: &PublicKey| {
        assert_eq!(k.spki_der.len(), 91, "a P-256 SPKI is 91 bytes");
        assert_eq!(PublicKey::from_spki_der(&k.spki_der).as_ref(), Ok(k));
    };
    if let Ok(k) = PublicKey::from_pem(data) {
        check(&k);
    }
    if let Ok(k) = PublicKey::from_spki_der(data) {
        check(&k);
    }
    // The bytes as the DER inside a PEM envelope, so the fuzzer reaches the
    // DER parser through the PEM path too.
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        standard_base64_lines(data)
    );
    if let Ok(k) = PublicKey::from_pem(pem.as_bytes()) {
        check(&k);
        assert_eq!(PublicKey::from_spki_der(data).as_ref(), Ok(&k));
    }
}

fn standard_base64_lines(data: &[u8]) -> String {
    // Standard alphabet with padding, 64 characters a line (RFC 7468).
    let url = b64::encode_padded(data);
    let std: String = url
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    std.as_bytes()
        .chunks(64)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

// -------------------------------------------------------- gRPC answer ----

/// Input: one byte `n`, a username of `n % 32` bytes, then the
/// `AuthenticateResponse` bytes. Invariants: injected headers are managed
/// and safe; an answer about another user is never used; what one worker
/// stored another worker reads back the same.
pub fn grpc_answer_target(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32).min(rest.len());
    let username = text(&rest[..n]).into_owned();
    let body = &rest[n..];
    with_fixtures(|f| {
        let names: &HeaderNames = &f.with_users.headers;
        let answer = users::decode_answer(body, &username, names, &[]);
        let message = <pb::AuthenticateResponse as prost::Message>::decode(body).ok();
        match &answer {
            Some(UserAnswer::Allowed(allowed_user)) => {
                let headers = &allowed_user.headers;
                let Some(pb::AuthenticateResponse {
                    result: Some(pb::authenticate_response::Result::User(user)),
                }) = &message
                else {
                    panic!("allowed without a decodable user");
                };
                assert_eq!(user.username, username, "an answer about another user");
                assert!(user.is_active, "an inactive user allowed");
                assert_eq!(allowed_user.groups, user.groups);
                let allowed = [HeaderRole::UserId, HeaderRole::Email, HeaderRole::Name]
                    .map(|role| names.get(role));
                for (i, (name, value)) in headers.iter().enumerate() {
                    assert!(allowed.contains(&name.as_str()), "{name:?} injected");
                    assert!(!value.is_empty() && is_safe_header_value(value));
                    assert!(!headers[..i].iter().any(|(n, _)| n == name));
                }
            }
            Some(UserAnswer::Refused(_)) => assert!(message.is_some()),
            None => {}
        }
        // Worker A records the answer in shared data; worker B reads it.
        let store = MemoryStore::default();
        let config = Rc::new(f.with_users.clone());
        let mut a = Engine::new(config.clone());
        let mut b = Engine::new(config);
        a.prepare(&store);
        let fetch = matches!(
            a.user_lookup(&store, &username, NOW),
            UserStep::NeedCall { fetch: true }
        );
        assert!(fetch);
        let recorded = a.user_answered(&store, &username, 0, Some(body), NOW);
        assert_eq!(recorded.as_deref(), answer.as_ref());
        match b.user_lookup(&store, &username, NOW + 0.1) {
            UserStep::Answer(seen) => assert_eq!(Some(&*seen), answer.as_ref()),
            UserStep::Unavailable => assert!(answer.is_none()),
            UserStep::NeedCall { .. } => panic!("worker B must see worker A's answer"),
        }
    });
}

/// The host's serialized header listing (`header_map::parse_pairs`), and the
/// stripping rule on whatever it yields: never a panic; every pair lies
/// inside the input; a re-serialization parses back to the same pairs; a
/// name chosen for stripping folds to a managed name, and every name that
/// folds to one is chosen.
pub fn header_pairs_target(data: &[u8]) {
    use alb_oidc::header_map::{folds_to, names_to_strip, parse_pairs, value_of};
    let Some(pairs) = parse_pairs(data) else {
        return;
    };
    let mut again = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in &pairs {
        again.extend((k.len() as u32).to_le_bytes());
        again.extend((v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        again.extend_from_slice(k);
        again.push(0);
        again.extend_from_slice(v);
        again.push(0);
    }
    assert_eq!(parse_pairs(&again).as_deref(), Some(pairs.as_slice()));
    let managed = vec!["x-auth-user".to_owned(), "x-claim-email".to_owned()];
    let chosen = names_to_strip(&pairs, &managed);
    for (name, _) in &pairs {
        let folds = managed.iter().any(|m| folds_to(name, m));
        assert_eq!(folds, chosen.contains(name), "{name:?}");
    }
    let _ = value_of(&pairs, "x-amzn-oidc-data");
}
