//! The access token verified end to end in the core (issue 13): tokens
//! minted by the test kit's IdP keys (RSA, P-256, P-384) against a parsed
//! key set, every refusal of the issue's Verification section, and the
//! property that only the right signature verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::access_token::{
    inspect, AccessSignatureVerifier, AccessTokenError, Algorithm, JwkKey, Jwks,
    RustAccessVerifier, VerifiedAccessToken,
};
use alb_oidc::config::AccessTokenConfig;
use alb_oidc::engine::VerifierUnavailable;
use alb_oidc_testkit::idp::{
    self, access_token, b64, hs256, sign_segments, IdpKey, RsaFixture, IDP_CLIENT_ID, IDP_ISSUER,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

const NOW: f64 = 1_800_000_000.0;
const SUB: &str = "0b1c2d3e-user";

struct Keys {
    rsa: IdpKey,
    other_rsa: IdpKey,
    p256: IdpKey,
    p384: IdpKey,
    jwks: Jwks,
}

/// The IdP's keys (RSA A as `rsa-a`, P-256, P-384, and RSA A again as
/// `rs256-only` with its JWK's `alg` set), and its key set. RSA B signs
/// but is not in the set.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = IdpKey::rsa(RsaFixture::A, "rsa-a").unwrap();
        let other_rsa = IdpKey::rsa(RsaFixture::B, "rsa-b").unwrap();
        let p256 = IdpKey::p256("idp p256", "ec-256").unwrap();
        let p384 = IdpKey::p384("idp p384", "ec-384").unwrap();
        let mut rs256_only = IdpKey::rsa(RsaFixture::A, "rs256-only").unwrap().jwk();
        rs256_only["alg"] = json!("RS256");
        let doc = idp::jwks(&[rsa.jwk(), p256.jwk(), p384.jwk(), rs256_only]);
        let jwks = Jwks::parse(doc.as_bytes()).unwrap();
        Keys {
            rsa,
            other_rsa,
            p256,
            p384,
            jwks,
        }
    })
}

/// An `access_token` block through the real parser: every algorithm
/// allowed (unless `extra` says otherwise), the client checked, groups and
/// scopes and one claim header.
fn config(extra: &str) -> AccessTokenConfig {
    let algorithms = if extra.contains("\"algorithms\"") {
        ""
    } else {
        r#","algorithms":["RS256","RS384","RS512","ES256","ES384"]"#
    };
    let json = format!(
        r#"{{"region":"us-east-1","bypass_validation":true,"access_token":{{
            "issuer":"{IDP_ISSUER}","jwks_cluster":"idp","jwks_authority":"idp.example.com",
            "jwks_path":"/jwks.json","client_ids":["{IDP_CLIENT_ID}"],
            "groups_claim":"cognito:groups","claim_headers":{{"custom:tier":"x-auth-tier"}}{algorithms}{extra}}}}}"#
    );
    alb_oidc::config::parse(json.as_bytes())
        .unwrap()
        .access_token
        .unwrap()
}

/// A Cognito-shaped access token's claims.
fn claims() -> Value {
    json!({
        "sub": SUB,
        "iss": IDP_ISSUER,
        "client_id": IDP_CLIENT_ID,
        "token_use": "access",
        "scope": "openid profile",
        "cognito:groups": ["admin", "staff"],
        "custom:tier": "gold",
        "exp": NOW + 3600.0,
        "iat": NOW - 10.0,
    })
}

fn header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "kid": kid, "typ": "JWT"})
}

fn verify_with(
    raw: &str,
    config: &AccessTokenConfig,
    verifier: &impl AccessSignatureVerifier,
) -> Result<VerifiedAccessToken, AccessTokenError> {
    inspect(raw, config, 0, SUB, NOW)?.verify(&keys().jwks, verifier)
}

fn verify(raw: &str) -> Result<VerifiedAccessToken, AccessTokenError> {
    verify_with(raw, &config(""), &RustAccessVerifier)
}

fn mint(alg: &str, key: &IdpKey) -> String {
    access_token(&header(alg, &key.kid), &claims(), key).unwrap()
}

#[test]
fn each_algorithm_verifies() {
    let k = keys();
    for (alg, key) in [
        ("RS256", &k.rsa),
        ("RS384", &k.rsa),
        ("RS512", &k.rsa),
        ("ES256", &k.p256),
        ("ES384", &k.p384),
    ] {
        let t = verify(&mint(alg, key)).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        assert_eq!(t.subject, SUB, "{alg}");
        assert_eq!(t.groups, ["admin", "staff"], "{alg}");
        assert_eq!(t.scopes, ["openid", "profile"], "{alg}");
        assert_eq!(
            t.headers,
            [("x-auth-tier".to_owned(), "gold".to_owned())],
            "{alg}"
        );
        assert_eq!(t.valid_until, NOW + 3600.0, "{alg}");
    }
}

#[test]
fn signature_refusals() {
    let k = keys();
    let good = mint("RS256", &k.rsa);
    let (text, _) = good.rsplit_once('.').unwrap();
    let (h, p) = text.split_once('.').unwrap();
    // RSA B signs under RSA A's kid: a valid signature by the wrong key.
    let wrong_key = sign_segments(h, p, |t| k.other_rsa.sign("RS256", t)).unwrap();
    // Another payload under the good signature.
    let mut other = claims();
    other["cognito:groups"] = json!(["admin", "root"]);
    let swapped = format!(
        "{}.{}.{}",
        h,
        b64(other.to_string().as_bytes()),
        good.rsplit_once('.').unwrap().1
    );
    // A signature one byte short, and an RS384 signature under an RS256 header.
    let short = {
        let sig = k.rsa.sign("RS256", text.as_bytes()).unwrap();
        format!("{text}.{}", b64(&sig[..sig.len() - 1]))
    };
    let other_hash = sign_segments(h, p, |t| k.rsa.sign("RS384", t)).unwrap();
    // ES256 and ES384 signatures in DER, as some libraries emit them.
    let der256 = {
        let (h, p) = (
            b64(header("ES256", "ec-256").to_string().as_bytes()),
            b64(claims().to_string().as_bytes()),
        );
        sign_segments(&h, &p, |t| k.p256.sign_der(t)).unwrap()
    };
    let der384 = {
        let (h, p) = (
            b64(header("ES384", "ec-384").to_string().as_bytes()),
            b64(claims().to_string().as_bytes()),
        );
        sign_segments(&h, &p, |t| k.p384.sign_der(t)).unwrap()
    };
    for (case, raw) in [
        ("wrong key", wrong_key),
        ("swapped payload", swapped),
        ("short signature", short),
        ("RS384 signature under RS256", other_hash),
        ("ES256 DER", der256),
        ("ES384 DER", der384),
    ] {
        assert_eq!(verify(&raw), Err(AccessTokenError::BadSignature), "{case}");
    }
}

#[test]
fn algorithm_confusion_is_refused() {
    let k = keys();
    let payload = b64(claims().to_string().as_bytes());
    let seg = |h: Value| b64(h.to_string().as_bytes());
    // HS256 with the RSA public key's bytes as the HMAC secret.
    let secret = k.rsa.public_der().unwrap();
    let hs256_pub = sign_segments(&seg(header("HS256", "rsa-a")), &payload, |t| {
        hs256(&secret, t)
    })
    .unwrap();
    let none = format!("{}.{payload}.", seg(header("none", "rsa-a")));
    let none_signed = format!("{}.{payload}.{}", seg(header("none", "rsa-a")), b64(b"x"));
    // An RSA key for an ES256 header (64 bytes signed by P-256) and an EC
    // key for an RS256 header (signed by the RSA key); curves crossed.
    let es_on_rsa = sign_segments(&seg(header("ES256", "rsa-a")), &payload, |t| {
        k.p256.sign("ES256", t)
    })
    .unwrap();
    let rs_on_ec = sign_segments(&seg(header("RS256", "ec-256")), &payload, |t| {
        k.rsa.sign("RS256", t)
    })
    .unwrap();
    let es384_on_p256 = sign_segments(&seg(header("ES384", "ec-256")), &payload, |t| {
        k.p384.sign("ES384", t)
    })
    .unwrap();
    let es256_on_p384 = sign_segments(&seg(header("ES256", "ec-384")), &payload, |t| {
        k.p256.sign("ES256", t)
    })
    .unwrap();
    // The JWK says RS256: a (valid) RS384 signature by the same key is refused.
    let rs384_on_rs256_only = sign_segments(&seg(header("RS384", "rs256-only")), &payload, |t| {
        k.rsa.sign("RS384", t)
    })
    .unwrap();
    for (case, raw, expected) in [
        (
            "HS256 with the public key",
            hs256_pub,
            AccessTokenError::UnsupportedAlgorithm,
        ),
        (
            "alg none, empty signature",
            none,
            AccessTokenError::Malformed,
        ),
        (
            "alg none, a signature",
            none_signed,
            AccessTokenError::UnsupportedAlgorithm,
        ),
        (
            "RSA key, ES256 header",
            es_on_rsa,
            AccessTokenError::KeyMismatch,
        ),
        (
            "EC key, RS256 header",
            rs_on_ec,
            AccessTokenError::KeyMismatch,
        ),
        (
            "P-256 key, ES384 header",
            es384_on_p256,
            AccessTokenError::KeyMismatch,
        ),
        (
            "P-384 key, ES256 header",
            es256_on_p384,
            AccessTokenError::KeyMismatch,
        ),
        (
            "JWK alg RS256, RS384 header",
            rs384_on_rs256_only,
            AccessTokenError::KeyMismatch,
        ),
    ] {
        assert_eq!(verify(&raw).map(|_| ()), Err(expected), "{case}");
    }
    // The same RS256 token the JWK's alg allows verifies.
    let rs256_only = sign_segments(&seg(header("RS256", "rs256-only")), &payload, |t| {
        k.rsa.sign("RS256", t)
    })
    .unwrap();
    assert!(verify(&rs256_only).is_ok());
}

#[test]
fn only_configured_algorithms() {
    let k = keys();
    let rs256_only = config(r#","algorithms":["RS256"]"#);
    assert!(verify_with(&mint("RS256", &k.rsa), &rs256_only, &RustAccessVerifier).is_ok());
    for (alg, key) in [
        ("RS384", &k.rsa),
        ("RS512", &k.rsa),
        ("ES256", &k.p256),
        ("ES384", &k.p384),
    ] {
        assert_eq!(
            verify_with(&mint(alg, key), &rs256_only, &RustAccessVerifier).map(|_| ()),
            Err(AccessTokenError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
}

#[test]
fn keys_named_in_the_header_are_ignored() {
    let k = keys();
    // The attacker's own key, offered every way a header can offer one,
    // signs under the IdP's kid: only the key set's key counts.
    let mut h = header("RS256", "rsa-a");
    h["jwk"] = k.other_rsa.jwk();
    h["jku"] = json!("https://attacker.example/jwks.json");
    h["x5u"] = json!("https://attacker.example/cert.pem");
    h["x5c"] = json!(["MIIBattacker"]);
    let forged = access_token(&h, &claims(), &k.other_rsa).unwrap();
    assert_eq!(
        verify(&forged).map(|_| ()),
        Err(AccessTokenError::BadSignature)
    );
    // The same header members on a genuine token change nothing.
    let genuine = access_token(&h, &claims(), &k.rsa).unwrap();
    assert!(verify(&genuine).is_ok());
}

#[test]
fn header_refusals() {
    let k = keys();
    let with = |extra: Value| {
        let mut h = header("RS256", "rsa-a");
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                h.as_object_mut().unwrap().remove(key);
            } else {
                h[key] = value.clone();
            }
        }
        access_token(&h, &claims(), &k.rsa).unwrap()
    };
    for (extra, expected) in [
        (json!({"crit": ["exp"]}), Err(AccessTokenError::BadHeader)),
        (
            json!({"b64": false, "crit": ["b64"]}),
            Err(AccessTokenError::BadHeader),
        ),
        (json!({"b64": false}), Err(AccessTokenError::BadHeader)),
        (json!({"kid": null}), Err(AccessTokenError::MissingKid)),
        (json!({"kid": "unknown"}), Err(AccessTokenError::UnknownKey)),
        (json!({"kid": "RSA-A"}), Err(AccessTokenError::UnknownKey)),
        (json!({"typ": "at+jwt"}), Ok(())),
    ] {
        assert_eq!(
            verify(&with(extra.clone())).map(|_| ()),
            expected,
            "{extra}"
        );
    }
    // Padded segments (a re-encoding of a valid token) are refused.
    let good = mint("RS256", &k.rsa);
    let padded: Vec<String> = good
        .split('.')
        .map(|s| {
            let pad = (4 - s.len() % 4) % 4;
            format!("{s}{}", "=".repeat(pad))
        })
        .collect();
    let padded = padded.join(".");
    assert_ne!(padded, good);
    assert_eq!(
        verify(&padded).map(|_| ()),
        Err(AccessTokenError::Malformed)
    );
    assert_eq!(
        verify("ya29.a0Af").map(|_| ()),
        Err(AccessTokenError::Opaque)
    );
}

#[test]
fn claim_refusals() {
    let k = keys();
    let with = |extra: Value| {
        let mut c = claims();
        for (key, value) in extra.as_object().unwrap() {
            if value.is_null() {
                c.as_object_mut().unwrap().remove(key);
            } else {
                c[key] = value.clone();
            }
        }
        access_token(&header("RS256", "rsa-a"), &c, &k.rsa).unwrap()
    };
    for (extra, expected) in [
        (json!({"exp": null}), AccessTokenError::BadClaims),
        (json!({"exp": NOW}), AccessTokenError::Expired),
        (json!({"nbf": NOW + 1.0}), AccessTokenError::NotYetValid),
        (
            json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"}),
            AccessTokenError::BadIssuer,
        ),
        (json!({"token_use": "id"}), AccessTokenError::BadTokenUse),
        (
            json!({"client_id": "another-app-client"}),
            AccessTokenError::BadClient,
        ),
        (json!({"client_id": null}), AccessTokenError::BadClient),
        (
            json!({"sub": "someone-else"}),
            AccessTokenError::WrongSubject,
        ),
    ] {
        assert_eq!(
            verify(&with(extra.clone())).map(|_| ()),
            Err(expected),
            "{extra}"
        );
    }
    let audiences = config(r#","audiences":["api://orders"]"#);
    let check =
        |extra: Value| verify_with(&with(extra), &audiences, &RustAccessVerifier).map(|_| ());
    assert_eq!(check(json!({})), Err(AccessTokenError::BadAudience));
    assert_eq!(
        check(json!({"aud": "api://billing"})),
        Err(AccessTokenError::BadAudience)
    );
    assert_eq!(
        check(json!({"aud": ["api://billing", "api://orders"]})),
        Ok(())
    );
}

/// A verifier that is not there (signature_backend "host" without one).
struct Missing;

impl AccessSignatureVerifier for Missing {
    fn verify(
        &self,
        _: &JwkKey,
        _: Algorithm,
        _: &[u8],
        _: &[u8],
    ) -> Result<bool, VerifierUnavailable> {
        Err(VerifierUnavailable)
    }
}

#[test]
fn bypass_skips_only_the_signature() {
    let k = keys();
    let c = config("");
    // Signed by RSA B under RSA A's kid: refused when verified, accepted
    // with bypass_validation.
    let forged = access_token(&header("RS256", "rsa-a"), &claims(), &k.other_rsa).unwrap();
    let pending = inspect(&forged, &c, 0, SUB, NOW).unwrap();
    assert_eq!((pending.kid(), pending.alg()), ("rsa-a", Algorithm::Rs256));
    assert_eq!(
        pending.verify(&k.jwks, &RustAccessVerifier).map(|_| ()),
        Err(AccessTokenError::BadSignature)
    );
    assert_eq!(pending.accept_unverified().subject, SUB);
    // Claims are still checked without a signature check.
    let mut expired = claims();
    expired["exp"] = json!(NOW - 1.0);
    let raw = access_token(&header("RS256", "rsa-a"), &expired, &k.other_rsa).unwrap();
    assert_eq!(
        inspect(&raw, &c, 0, SUB, NOW).map(|_| ()),
        Err(AccessTokenError::Expired)
    );
    assert_eq!(inspect(&raw, &c, 2, SUB, NOW).map(|_| ()), Ok(()));
    // A missing verifier is its own reason, not a bad signature.
    assert_eq!(
        verify_with(&mint("RS256", &k.rsa), &c, &Missing).map(|_| ()),
        Err(AccessTokenError::VerifierUnavailable)
    );
}

/// One signed token per algorithm, minted once (RSA signing is slow unoptimised).
fn signed_tokens() -> &'static Vec<String> {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let k = keys();
        vec![
            mint("RS256", &k.rsa),
            mint("RS512", &k.rsa),
            mint("ES256", &k.p256),
            mint("ES384", &k.p384),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A token signed by the right key verifies; with any one signature
    /// byte flipped (any non-zero xor) it does not.
    #[test]
    fn only_the_exact_signature_verifies(which in 0usize..4, index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let raw = &signed_tokens()[which];
        prop_assert!(verify(raw).is_ok());
        let (text, sig) = raw.rsplit_once('.').unwrap();
        let mut sig = alb_oidc::b64::decode_unpadded(sig).unwrap();
        let i = index.index(sig.len());
        sig[i] ^= flip;
        let tampered = format!("{text}.{}", b64(&sig));
        prop_assert_eq!(verify(&tampered).map(|_| ()), Err(AccessTokenError::BadSignature));
    }
}
