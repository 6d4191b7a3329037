//! Writes the committed seed corpora under `fuzz/seeds/<target>/`:
//! `cargo run --example gen_seeds` (from `fuzz/`). Deterministic: the
//! tokens are signed with the test kit's standard key (RFC 6979 signatures).

use alb_oidc::b64;
use alb_oidc::users::pb;
use alb_oidc_testkit::fixtures::{standard_key, ARN, CLIENT, ISSUER, KID};
use alb_oidc_testkit::harness::{
    access_keys, alb_header, alb_payload, alb_token, public_pem, sign_segments, ACCESS_NOW,
    ACCESS_SUB,
};
use alb_oidc_testkit::idp::{self, IDP_CLIENT_ID, IDP_ISSUER};
use p256::pkcs8::EncodePublicKey;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).expect("create seed dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn tokens() {
    let h = alb_header();
    let p = alb_payload();
    write("token", "alb_valid", alb_token(&h, &p).as_bytes());
    write(
        "token",
        "alb_unpadded",
        sign_segments(
            &b64::encode_unpadded(h.as_bytes()),
            &b64::encode_unpadded(p.as_bytes()),
        )
        .as_bytes(),
    );
    write(
        "token",
        "other_kid",
        alb_token(&h.replace(KID, "0a1b2c3d-other-kid"), &p).as_bytes(),
    );
    write(
        "token",
        "nbf_aud",
        alb_token(
            &h,
            &format!(
                r#"{{"sub":"u2","aud":["x","app"],"nbf":1749999000,"exp":4000000000,"iss":"{ISSUER}"}}"#
            ),
        )
        .as_bytes(),
    );
    write(
        "token",
        "expired",
        alb_token(
            &h,
            &format!(r#"{{"sub":"u3","exp":1700000000,"iss":"{ISSUER}"}}"#),
        )
        .as_bytes(),
    );
    write(
        "token",
        "alg_none",
        format!(
            "{}.{}.",
            b64::encode_padded(h.replace("ES256", "none").as_bytes()),
            b64::encode_padded(p.as_bytes())
        )
        .as_bytes(),
    );
    write(
        "token",
        "hs256",
        alb_token(&h.replace("ES256", "HS256"), &p).as_bytes(),
    );
    write(
        "token",
        "duplicate_sub",
        alb_token(
            &h,
            &p.replace(r#""sub":"9f3c2a""#, r#""sub":"a","sub":"b""#),
        )
        .as_bytes(),
    );
    write(
        "token",
        "signer_prefix",
        alb_token(&h.replace(ARN, &ARN[..ARN.len() - 2]), &p).as_bytes(),
    );
    write(
        "token",
        "wrong_client",
        alb_token(&h.replace(CLIENT, "client-2"), &p).as_bytes(),
    );
    write(
        "token",
        "kid_traversal",
        alb_token(&h.replace(KID, "../../etc"), &p).as_bytes(),
    );
    write(
        "token",
        "claims_headers_crlf",
        alb_token(
            &h,
            &format!(
                r#"{{"sub":"u4","email":"a@b\r\nx-auth-user: admin","groups":["a","b,c"],"exp":4000000000.5,"iss":"{ISSUER}"}}"#
            ),
        )
        .as_bytes(),
    );
}

fn exempt_paths() {
    for (name, text) in [
        ("exact", "/healthz\n/static/*\n/healthz?verbose=1"),
        ("prefix", "/healthz\n/static/*\n/static/app.js"),
        ("dotdot", "/static/*\n/static/../admin"),
        ("encoded_dots", "/static/*\n/static/%2e%2E/admin"),
        ("encoded_slash", "/static/*\n/static/..%2fadmin"),
        ("semicolon", "/static/*\n/static/..;/admin"),
        ("backslash", "/*\n/static\\..\\admin"),
        ("double_encoded", "/static/*\n/static/%252e%252e/admin"),
        ("query", "/api/public*\n/api/public/x?y=/../"),
        ("fragment", "/health\n/health#/../admin"),
        ("double_slash", "/static/*\n/static//x"),
        ("bad_pattern", "/a/../b\n/a/../b"),
    ] {
        write("exempt_paths", name, text.as_bytes());
    }
}

fn configs() {
    let full = format!(
        r#"{{"region":"us-east-1","alb_arns":["{ARN}"],"issuer":"{ISSUER}","audience":"app","client_id":"{CLIENT}",
"exempt_paths":["/healthz","/static/*"],"username_claim":"email","allow_missing":false,"clock_skew_s":30,
"token_header":"x-amzn-oidc-data","key_cluster":"alb_public_keys","key_authority":"keys.local:8080",
"key_path_prefix":"/keys/","key_fetch_timeout_ms":2000,"key_cache_ttl_s":600,"key_failure_ttl_s":10,
"key_cache_max":64,"verified_token_cache_max":100,
"headers":{{"user":"X-User","claims":"x-claims","user_id":"x-uid","email":"x-mail","groups":"x-groups","name":"x-name"}},
"claim_headers":{{"email":"x-email","groups":"x-token-groups"}},"strip_alb_headers":true,"signature_backend":"rust",
"user_service":{{"cluster":"users","timeout_ms":500,"revalidate_s":60,"failure_mode":"allow","cache_max":100}}}}"#
    );
    write("config", "full", full.as_bytes());
    write(
        "config",
        "minimal",
        format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}"}}"#).as_bytes(),
    );
    write(
        "config",
        "bypass",
        br#"{"region":"eu-west-1","bypass_validation":true}"#,
    );
    write(
        "config",
        "govcloud",
        br#"{"region":"us-gov-west-1","alb_arns":["arn:aws-us-gov:elasticloadbalancing:x"]}"#,
    );
    write(
        "config",
        "china_needs_authority",
        br#"{"region":"cn-north-1","bypass_validation":true}"#,
    );
    write(
        "config",
        "duplicate_header",
        format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}","claim_headers":{{"email":"x-auth-user"}}}}"#)
            .as_bytes(),
    );
    write("config", "empty", b"  ");
    write("config", "not_object", b"[1,2]");
}

fn keys() {
    let pem = public_pem();
    write("pem_key", "p256_pem", pem.as_bytes());
    let der = standard_key()
        .expect("standard key")
        .verifying_key()
        .to_public_key_der()
        .expect("DER");
    write("pem_key", "p256_der", der.as_bytes());
    write(
        "pem_key",
        "p384_pem",
        b"-----BEGIN PUBLIC KEY-----\n\
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEPKdR7ch8yoUkQrXVnm3yFxSsB0bAXxdt\n\
dOgB2aiHNFCoNY1FSfcwiHKnWtd29wkz3JxNBdA6r6yMY6yHrrq9ui1tIxeaOqde\n\
BpEMfmpp4+dWjH8TOoNeZxIaBF4Uo0Ib\n\
-----END PUBLIC KEY-----\n",
    );
    write(
        "pem_key",
        "certificate_label",
        pem.replace("PUBLIC KEY", "CERTIFICATE").as_bytes(),
    );
    write("pem_key", "garbage", b"<html>404</html>");
}

fn grpc() {
    use pb::authenticate_response::Result as R;
    let encode =
        |r: R| prost::Message::encode_to_vec(&pb::AuthenticateResponse { result: Some(r) });
    let user = |username: &str, active: bool| pb::User {
        id: 7,
        username: username.into(),
        email: "ada@example.com".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        groups: vec!["admin".into(), "staff".into(), "a,b".into(), String::new()],
        is_active: active,
        created_from_oidc: true,
        ..Default::default()
    };
    // Input layout: length byte, username, then the response.
    let framed = |username: &str, body: Vec<u8>| {
        let mut out = vec![username.len() as u8];
        out.extend_from_slice(username.as_bytes());
        out.extend(body);
        out
    };
    write(
        "grpc_answer",
        "allowed",
        &framed("ada", encode(R::User(user("ada", true)))),
    );
    write(
        "grpc_answer",
        "inactive",
        &framed("ada", encode(R::User(user("ada", false)))),
    );
    write(
        "grpc_answer",
        "other_user",
        &framed("ada", encode(R::User(user("eve", true)))),
    );
    let mut crlf = user("ada", true);
    crlf.email = "a@b\r\nx-auth-user: admin".into();
    crlf.first_name = " ".into();
    write(
        "grpc_answer",
        "crlf_email",
        &framed("ada", encode(R::User(crlf))),
    );
    write(
        "grpc_answer",
        "refusal",
        &framed(
            "bob",
            encode(R::Refusal(pb::Refusal {
                reason: pb::refusal::Reason::NotLinkable as i32,
                message: "no".into(),
            })),
        ),
    );
    write(
        "grpc_answer",
        "refusal_unknown_reason",
        &framed(
            "bob",
            encode(R::Refusal(pb::Refusal {
                reason: 99,
                message: String::new(),
            })),
        ),
    );
    write("grpc_answer", "empty", &framed("ada", Vec::new()));
}

fn b64_seeds() {
    for (name, s) in [
        ("padded1", "YQ=="),
        ("padded2", "YWI="),
        ("unpadded", "YWI"),
        ("three", "YWJj"),
        ("url_alphabet", "-_8"),
        ("std_alphabet", "+/8="),
        ("trailing_bits", "YR=="),
        ("middle_padding", "YW=I"),
    ] {
        write("b64", name, s.as_bytes());
    }
}

/// Key sets: the access-token target's own, and one of each refusal and skip.
fn jwks_seeds() {
    let [rsa, p256, p384] = access_keys();
    let (r, e2, e3) = (rsa.jwk(), p256.jwk(), p384.jwk());
    let with = |jwk: &Value, key: &str, value: Value| {
        let mut jwk = jwk.clone();
        jwk[key] = value;
        jwk
    };
    let without = |jwk: &Value, key: &str| {
        let mut jwk = jwk.clone();
        jwk.as_object_mut().expect("a JWK is an object").remove(key);
        jwk
    };
    for (name, keys) in [
        ("fixture", vec![r.clone(), e2.clone(), e3.clone()]),
        ("rsa_alg", vec![with(&r, "alg", json!("RS256"))]),
        ("enc_use", vec![with(&r, "use", json!("enc")), e2.clone()]),
        (
            "duplicate_kid",
            vec![r.clone(), with(&e2, "kid", json!(rsa.kid))],
        ),
        ("no_kid", vec![without(&e3, "kid"), e2.clone()]),
        ("curve_mismatch", vec![with(&e2, "crv", json!("P-384"))]),
        (
            "oct_key",
            vec![json!({"kty":"oct","kid":"hs","k":"c2VjcmV0"})],
        ),
    ] {
        write("jwks", name, idp::jwks(&keys).as_bytes());
    }
    write("jwks", "empty", br#"{"keys":[]}"#);
}

/// Access tokens valid for the target's configuration at its clock, with
/// every algorithm, and the refusals the issue lists.
fn access_token_seeds() {
    let [rsa, p256, p384] = access_keys();
    let claims = json!({
        "sub": ACCESS_SUB, "iss": IDP_ISSUER, "client_id": IDP_CLIENT_ID, "token_use": "access",
        "scope": "openid profile", "cognito:groups": ["admin", "staff"], "custom:tier": "gold",
        "exp": ACCESS_NOW + 3600.0, "iat": ACCESS_NOW - 10.0,
    });
    let header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let token = |h: &Value, c: &Value, key: &idp::IdpKey| {
        idp::access_token(h, c, key).expect("sign an access token")
    };
    for (alg, key) in [
        ("RS256", &rsa),
        ("RS384", &rsa),
        ("RS512", &rsa),
        ("ES256", &p256),
        ("ES384", &p384),
    ] {
        let name = alg.to_lowercase();
        write(
            "access_token",
            &name,
            token(&header(alg, &key.kid), &claims, key).as_bytes(),
        );
    }
    let mut okta = claims.clone();
    okta["scp"] = json!(["openid", "email"]);
    write(
        "access_token",
        "scp_array",
        token(&header("RS256", &rsa.kid), &okta, &rsa).as_bytes(),
    );
    let mut other = claims.clone();
    other["sub"] = json!("someone-else");
    write(
        "access_token",
        "wrong_sub",
        token(&header("RS256", &rsa.kid), &other, &rsa).as_bytes(),
    );
    write(
        "access_token",
        "unknown_kid",
        token(&header("RS256", "rsa-rotated"), &claims, &rsa).as_bytes(),
    );
    write(
        "access_token",
        "crit",
        token(
            &json!({"alg":"RS256","kid":rsa.kid,"crit":["exp"]}),
            &claims,
            &rsa,
        )
        .as_bytes(),
    );
    // Algorithm confusion: HS256 with the RSA key's public DER as the secret.
    let (h, c) = (
        idp::b64(header("HS256", &rsa.kid).to_string().as_bytes()),
        idp::b64(claims.to_string().as_bytes()),
    );
    let public = rsa.public_der().expect("public DER");
    let hs = idp::sign_segments(&h, &c, |text| idp::hs256(&public, text)).expect("HS256");
    write("access_token", "hs256_public_key", hs.as_bytes());
    write(
        "access_token",
        "alg_none",
        format!("{}.{c}.", idp::b64(br#"{"alg":"none"}"#)).as_bytes(),
    );
    let h2 = idp::b64(header("ES256", &p256.kid).to_string().as_bytes());
    let der = idp::sign_segments(&h2, &c, |text| p256.sign_der(text)).expect("DER signature");
    write("access_token", "es256_der", der.as_bytes());
}

fn main() {
    jwks_seeds();
    access_token_seeds();
    tokens();
    exempt_paths();
    configs();
    keys();
    grpc();
    b64_seeds();
}
