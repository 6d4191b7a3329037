//! The IdP's access token (issue 13): its key set (JWKS) parser and its
//! token parser and claim checks, driven by fuzzer bytes. As the rest of the
//! harness: never panics on its own, asserts what must hold for any input.

use crate::idp::{self, IdpKey, RsaFixture, IDP_CLIENT_ID, IDP_ISSUER};
use alb_oidc::access_token::jwks::{is_valid_kid, MAX_JWKS_KEYS, MAX_JWKS_LEN};
use alb_oidc::access_token::jws::MAX_ACCESS_TOKEN_LEN;
use alb_oidc::access_token::{
    inspect, AccessJws, AccessTokenError, Algorithm, JwkKey, Jwks, RustAccessVerifier,
    VerifiedAccessToken,
};
use alb_oidc::config::AccessTokenConfig;
use alb_oidc::identity::is_safe_header_value;
use rsa::traits::PublicKeyParts;
use serde_json::Value;

const ALL: [Algorithm; 5] = [
    Algorithm::Rs256,
    Algorithm::Rs384,
    Algorithm::Rs512,
    Algorithm::Es256,
    Algorithm::Es384,
];

/// The fixed moment and login the access-token target checks tokens at.
pub const ACCESS_NOW: f64 = 1_800_000_000.0;
pub const ACCESS_SUB: &str = "0b1c2d3e-user";

/// The IdP's keys the seeds are signed with, and the key set the target
/// verifies against: RSA A (`rsa-a`), P-256 (`ec-256`), P-384 (`ec-384`).
pub fn access_keys() -> [IdpKey; 3] {
    [
        IdpKey::rsa(RsaFixture::A, "rsa-a").unwrap(),
        IdpKey::p256("idp p256", "ec-256").unwrap(),
        IdpKey::p384("idp p384", "ec-384").unwrap(),
    ]
}

/// The fixed `access_token` block: every algorithm, the client checked,
/// groups, scopes and a claim header, through the real configuration parser.
pub fn access_config() -> AccessTokenConfig {
    let json = format!(
        r#"{{"region":"us-east-1","bypass_validation":true,"access_token":{{
            "issuer":"{IDP_ISSUER}","jwks_cluster":"idp","jwks_authority":"idp.example.com",
            "jwks_path":"/jwks.json","client_ids":["{IDP_CLIENT_ID}"],
            "algorithms":["RS256","RS384","RS512","ES256","ES384"],
            "groups_claim":"cognito:groups","claim_headers":{{"custom:tier":"x-auth-tier"}}}}}}"#
    );
    alb_oidc::config::parse(json.as_bytes())
        .unwrap()
        .access_token
        .unwrap()
}

struct AccessFixtures {
    config: AccessTokenConfig,
    jwks: Jwks,
}

thread_local! {
    static ACCESS: AccessFixtures = {
        let doc = idp::jwks(&access_keys().map(|k| k.jwk()));
        AccessFixtures { config: access_config(), jwks: Jwks::parse(doc.as_bytes()).unwrap() }
    };
}

// ---------------------------------------------------------------- jwks ----

/// `Jwks::parse`: never panics; a key set it accepts holds at most
/// `MAX_JWKS_KEYS` entries, each usable key under a valid kid found by
/// `get` and no other, RSA moduli within 2048..=8192 bits, and parsing is
/// a function of the bytes.
pub fn jwks_target(data: &[u8]) {
    let parsed = Jwks::parse(data);
    if data.len() > MAX_JWKS_LEN {
        assert!(
            parsed.is_err(),
            "a key set of {} bytes was accepted",
            data.len()
        );
    }
    let Ok(jwks) = parsed else { return };
    assert!(jwks.keys().len() + jwks.skipped() <= MAX_JWKS_KEYS);
    for (i, jwk) in jwks.keys().iter().enumerate() {
        assert!(is_valid_kid(&jwk.kid), "kid {:?}", jwk.kid);
        assert!(
            jwks.keys()[..i].iter().all(|other| other.kid != jwk.kid),
            "kid {:?} twice",
            jwk.kid
        );
        assert_eq!(jwks.get(&jwk.kid), Some(jwk));
        if let JwkKey::Rsa(key) = &jwk.key {
            assert!(
                (256..=1024).contains(&key.size()),
                "RSA modulus of {} bytes",
                key.size()
            );
        }
        for alg in ALL {
            if jwk.fits(alg) {
                assert_eq!(jwk.key.kind(), alg.key_kind());
                assert!(jwk.alg.is_none_or(|own| own == alg));
            }
        }
    }
    assert_eq!(Jwks::parse(data).as_ref(), Ok(&jwks));
}

// -------------------------------------------------------- access token ----

/// `raw` through `inspect` and the key set as the target sees them: the
/// fixed configuration, login and clock, and the fixed key set.
pub fn access_token_verify(raw: &str) -> Result<VerifiedAccessToken, AccessTokenError> {
    ACCESS.with(|f| {
        inspect(raw, &f.config, 0, ACCESS_SUB, ACCESS_NOW)?.verify(&f.jwks, &RustAccessVerifier)
    })
}

fn assert_checked(t: &VerifiedAccessToken, config: &AccessTokenConfig) {
    assert_eq!(t.subject, ACCESS_SUB);
    assert!(t.valid_from <= ACCESS_NOW && ACCESS_NOW < t.valid_until);
    assert_eq!(
        t.payload.get("iss").and_then(Value::as_str),
        Some(IDP_ISSUER)
    );
    let client = t
        .payload
        .get(&config.client_id_claim)
        .and_then(Value::as_str);
    assert_eq!(client, Some(IDP_CLIENT_ID));
    for g in &t.groups {
        assert!(
            !g.is_empty() && !g.contains(',') && is_safe_header_value(g),
            "group {g:?}"
        );
    }
    assert!(
        t.scopes.windows(2).all(|w| w[0] < w[1]),
        "scopes {:?}",
        t.scopes
    );
    for s in &t.scopes {
        assert!(!s.is_empty() && !s.chars().any(char::is_whitespace) && is_safe_header_value(s));
    }
    for (name, value) in &t.headers {
        assert_eq!(name, "x-auth-tier");
        assert!(is_safe_header_value(value), "header value {value:?}");
    }
}

/// `AccessJws::parse` and `inspect` with the fixed configuration, then the
/// key checks and signature against the fixed key set: never panics; what
/// parses has one spelling (unpadded, three segments), a valid kid, an
/// ECDSA signature of its algorithm's length, and is refused when its
/// algorithm is not allowed; what passes the claims is the fixed login's,
/// current, from the issuer and client, with safe groups, scopes and headers.
pub fn access_token_target(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let parsed = AccessJws::parse(&raw, &ALL);
    if raw.len() > MAX_ACCESS_TOKEN_LEN {
        assert!(parsed.is_err(), "a token of {} bytes parsed", raw.len());
    }
    if let Ok(jws) = &parsed {
        assert_eq!(raw.matches('.').count(), 2, "{raw:?}");
        assert!(!raw.contains('='), "padded token parsed: {raw:?}");
        assert!(is_valid_kid(&jws.kid));
        if let Some(len) = jws.alg.ecdsa_signature_len() {
            assert_eq!(jws.signature.len(), len);
        }
        assert_eq!(AccessJws::parse(&raw, &[jws.alg]).as_ref(), Ok(jws));
        let others: Vec<Algorithm> = ALL.iter().copied().filter(|a| *a != jws.alg).collect();
        assert_eq!(
            AccessJws::parse(&raw, &others),
            Err(AccessTokenError::AlgorithmNotAllowed)
        );
    }
    ACCESS.with(|f| {
        let Ok(pending) = inspect(&raw, &f.config, 0, ACCESS_SUB, ACCESS_NOW) else {
            return;
        };
        assert!(
            parsed.is_ok(),
            "inspect passed a token the parser refuses: {raw:?}"
        );
        assert_eq!(pending.raw(), raw);
        let unverified = pending.clone().accept_unverified();
        assert_checked(&unverified, &f.config);
        if let Ok(verified) = pending.verify(&f.jwks, &RustAccessVerifier) {
            assert_eq!(verified, unverified);
            let jwk = f.jwks.get(pending.kid()).unwrap();
            assert!(jwk.fits(pending.alg()));
        }
    });
}
