//! The `access_token` block: defaults, every refusal naming its field, its
//! headers among the others.

use crate::access_token::Algorithm;
use crate::config::{parse, Config, ConfigError};

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188";

/// The required fields, then `extra`.
const REQUIRED: &str = r#""issuer":"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE","jwks_cluster":"idp_jwks","jwks_authority":"cognito-idp.us-east-1.amazonaws.com","jwks_path":"/us-east-1_EXAMPLE/.well-known/jwks.json""#;

fn with_block(block: &str, top: &str) -> Result<Config, ConfigError> {
    parse(
        format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}","access_token":{{{block}}}{top}}}"#)
            .as_bytes(),
    )
}

fn block(extra: &str) -> Result<Config, ConfigError> {
    with_block(&format!("{REQUIRED}{extra}"), "")
}

#[test]
fn absent_by_default() {
    let c = parse(format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}"}}"#).as_bytes()).unwrap();
    assert_eq!(c.access_token, None);
}

#[test]
fn defaults() {
    let a = block("").unwrap().access_token.unwrap();
    assert_eq!(a.header, "x-amzn-oidc-accesstoken");
    assert!(!a.required);
    assert_eq!(
        a.issuer,
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE"
    );
    assert_eq!(a.jwks_cluster, "idp_jwks");
    assert_eq!(a.jwks_authority, "cognito-idp.us-east-1.amazonaws.com");
    assert_eq!(a.jwks_path, "/us-east-1_EXAMPLE/.well-known/jwks.json");
    assert!(a.audiences.is_empty() && a.client_ids.is_empty());
    assert_eq!(a.algorithms, [Algorithm::Rs256]);
    assert_eq!(a.client_id_claim, "client_id");
    assert_eq!(a.subject_claim, "sub");
    assert_eq!(a.groups_claim, None);
    assert_eq!(a.scopes_claim, "scope");
    assert!(a.claim_headers.is_empty());
    assert_eq!(a.jwks_cache_ttl_s, 600);
    assert_eq!(a.jwks_fetch_timeout_ms, 5000);
    assert_eq!(a.jwks_refetch_min_interval_s, 30);
}

/// The issue's example block, as written there.
#[test]
fn the_issue_example() {
    let c = with_block(
        r#""header": "x-amzn-oidc-accesstoken",
  "required": false,
  "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE",
  "jwks_cluster": "idp_jwks",
  "jwks_authority": "cognito-idp.us-east-1.amazonaws.com",
  "jwks_path": "/us-east-1_EXAMPLE/.well-known/jwks.json",
  "audiences": [],
  "client_ids": ["EXAMPLEclientid"],
  "algorithms": ["RS256"],
  "client_id_claim": "client_id",
  "subject_claim": "sub",
  "groups_claim": "cognito:groups",
  "scopes_claim": "scope",
  "claim_headers": {"custom:tier": "x-auth-tier"},
  "jwks_cache_ttl_s": 600,
  "jwks_fetch_timeout_ms": 5000,
  "jwks_refetch_min_interval_s": 30"#,
        "",
    )
    .unwrap();
    let a = c.access_token.unwrap();
    assert_eq!(a.client_ids, ["EXAMPLEclientid"]);
    assert_eq!(a.groups_claim.as_deref(), Some("cognito:groups"));
    assert_eq!(
        a.claim_headers,
        [("custom:tier".to_owned(), "x-auth-tier".to_owned())]
    );
}

#[test]
fn every_field_set() {
    let a = block(
        r#","header":"X-Access","required":true,"audiences":["api://a"],"client_ids":["c1","c2"],
           "algorithms":["ES384","RS512","RS256","ES256","RS384"],"client_id_claim":"cid","subject_claim":"uid",
           "groups_claim":"groups","scopes_claim":"scp","jwks_cache_ttl_s":1,"jwks_fetch_timeout_ms":60000,
           "jwks_refetch_min_interval_s":3600"#,
    )
    .unwrap()
    .access_token
    .unwrap();
    assert_eq!(a.header, "x-access");
    assert!(a.required);
    assert_eq!(a.audiences, ["api://a"]);
    assert_eq!(a.client_ids, ["c1", "c2"]);
    assert_eq!(
        a.algorithms,
        [
            Algorithm::Es384,
            Algorithm::Rs512,
            Algorithm::Rs256,
            Algorithm::Es256,
            Algorithm::Rs384
        ]
    );
    assert_eq!(
        (a.client_id_claim.as_str(), a.subject_claim.as_str()),
        ("cid", "uid")
    );
    assert_eq!(
        (a.groups_claim.as_deref(), a.scopes_claim.as_str()),
        (Some("groups"), "scp")
    );
    assert_eq!(
        (
            a.jwks_cache_ttl_s,
            a.jwks_fetch_timeout_ms,
            a.jwks_refetch_min_interval_s
        ),
        (1, 60000, 3600)
    );
}

/// `REQUIRED` without `field`.
fn required_without(field: &str) -> String {
    REQUIRED
        .split(',')
        .filter(|f| !f.starts_with(&format!("\"{field}\"")))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn refusals_name_their_field() {
    for field in ["issuer", "jwks_cluster", "jwks_authority", "jwks_path"] {
        let e = with_block(&required_without(field), "").unwrap_err();
        assert_eq!(e.field, format!("access_token.{field}"), "{e}");
    }
    let e = block(r#","bogus":1"#).unwrap_err();
    assert_eq!(e.field, "access_token.bogus", "{e}");
    let e = parse(
        format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}","access_token":[]}}"#).as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.field, "access_token", "{e}");
    for (extra, field) in [
        (r#","issuer":"""#, "access_token.issuer"),
        (r#","jwks_cluster":"""#, "access_token.jwks_cluster"),
        (r#","jwks_authority":"a/b""#, "access_token.jwks_authority"),
        (r#","jwks_authority":"a b""#, "access_token.jwks_authority"),
        (r#","jwks_path":"jwks.json""#, "access_token.jwks_path"),
        (r#","jwks_path":"/a b""#, "access_token.jwks_path"),
        (r#","jwks_path":"/a#b""#, "access_token.jwks_path"),
        (r#","header":"bad header""#, "access_token.header"),
        (r#","header":"cookie""#, "access_token.header"),
        (r#","required":"yes""#, "access_token.required"),
        (r#","audiences":"api://a""#, "access_token.audiences"),
        (r#","audiences":["a",""]"#, "access_token.audiences[1]"),
        (r#","client_ids":[""]"#, "access_token.client_ids[0]"),
        (r#","algorithms":[]"#, "access_token.algorithms"),
        (
            r#","algorithms":["RS256","HS256"]"#,
            "access_token.algorithms[1]",
        ),
        (r#","algorithms":["none"]"#, "access_token.algorithms[0]"),
        (r#","algorithms":["PS256"]"#, "access_token.algorithms[0]"),
        (r#","algorithms":["rs256"]"#, "access_token.algorithms[0]"),
        (
            r#","algorithms":["RS256","ES256","RS256"]"#,
            "access_token.algorithms[2]",
        ),
        (r#","client_id_claim":"""#, "access_token.client_id_claim"),
        (r#","subject_claim":"""#, "access_token.subject_claim"),
        (r#","groups_claim":"""#, "access_token.groups_claim"),
        (r#","scopes_claim":"""#, "access_token.scopes_claim"),
        (
            r#","claim_headers":{"":"x-a"}"#,
            "access_token.claim_headers.",
        ),
        (
            r#","claim_headers":{"tier":"bad header"}"#,
            "access_token.claim_headers.tier",
        ),
        (r#","jwks_cache_ttl_s":0"#, "access_token.jwks_cache_ttl_s"),
        (
            r#","jwks_cache_ttl_s":86401"#,
            "access_token.jwks_cache_ttl_s",
        ),
        (
            r#","jwks_fetch_timeout_ms":0"#,
            "access_token.jwks_fetch_timeout_ms",
        ),
        (
            r#","jwks_fetch_timeout_ms":60001"#,
            "access_token.jwks_fetch_timeout_ms",
        ),
        (
            r#","jwks_refetch_min_interval_s":0"#,
            "access_token.jwks_refetch_min_interval_s",
        ),
        (
            r#","jwks_refetch_min_interval_s":3601"#,
            "access_token.jwks_refetch_min_interval_s",
        ),
    ] {
        // A required field given again replaces the one in REQUIRED.
        let name = extra.split('"').nth(1).unwrap_or_default();
        let json = format!("{}{extra}", required_without(name));
        let e = with_block(&json, "").unwrap_err();
        assert_eq!(e.field, field, "{extra}: {e}");
    }
}

#[test]
fn headers_stay_distinct() {
    for (extra, top, field) in [
        (r#","header":"x-amzn-oidc-data""#, "", "access_token.header"),
        (
            r#","header":"x-amzn-oidc-identity""#,
            "",
            "access_token.header",
        ),
        (r#","header":"x-auth-user""#, "", "access_token.header"),
        (
            r#","header":"x-tok""#,
            r#","token_header":"x-tok""#,
            "access_token.header",
        ),
        (
            r#","claim_headers":{"tier":"x-auth-groups"}"#,
            "",
            "access_token.claim_headers.tier",
        ),
        (
            r#","claim_headers":{"tier":"x-amzn-oidc-accesstoken"}"#,
            "",
            "access_token.claim_headers.tier",
        ),
        (
            r#","claim_headers":{"tier":"x-tier"}"#,
            r#","claim_headers":{"custom:tier":"x-tier"}"#,
            "access_token.claim_headers.tier",
        ),
        (
            r#","header":"x-access","claim_headers":{"tier":"x-access"}"#,
            "",
            "access_token.claim_headers.tier",
        ),
    ] {
        let e = with_block(&format!("{REQUIRED}{extra}"), top).unwrap_err();
        assert_eq!(e.field, field, "{extra} {top}: {e}");
    }
}

#[test]
fn its_headers_are_stripped_and_handled_as_the_albs() {
    let c = block(r#","claim_headers":{"custom:tier":"X-Auth-Tier"}"#).unwrap();
    assert!(c.strip_names.contains(&"x-auth-tier".to_owned()));
    assert!(!c
        .strip_names
        .contains(&"x-amzn-oidc-accesstoken".to_owned()));
    let custom = with_block(
        &format!(r#"{REQUIRED},"header":"X-Access-Token""#),
        r#","strip_alb_headers":true"#,
    )
    .unwrap();
    assert!(custom
        .alb_header_names
        .contains(&"x-access-token".to_owned()));
    assert!(custom.strip_names.contains(&"x-access-token".to_owned()));
    assert!(custom
        .strip_names
        .contains(&"x-amzn-oidc-accesstoken".to_owned()));
    let kept = block(r#","header":"X-Access-Token""#).unwrap();
    assert!(kept.alb_header_names.contains(&"x-access-token".to_owned()));
    assert!(!kept.strip_names.contains(&"x-access-token".to_owned()));
}

/// Scopes and access-token claims come from a token bound to this app's
/// client: without `client_ids` or `audiences`, another app client's
/// token for the same user could bring broader scopes.
#[test]
fn rules_on_scopes_need_a_bound_access_token() {
    let rule = |require: &str| {
        format!(r#","rules":[{{"name":"r","paths":["/x"],"require":{{{require}}}}}]"#)
    };
    let base = format!(
        r#"{{"region":"us-east-1","alb_arns":"{ARN}"{}}}"#,
        rule(r#""scopes_any":["a"]"#)
    );
    let err = parse(base.as_bytes()).unwrap_err();
    assert_eq!(err.field, "rules[0].require.scopes_any");
    assert!(
        err.message.contains("access_token block"),
        "{}",
        err.message
    );
    for require in [
        r#""scopes_any":["a"]"#,
        r#""scopes_all":["a"]"#,
        r#""access_claims":{"custom:tier":["gold"]}"#,
    ] {
        let err = with_block(REQUIRED, &rule(require)).unwrap_err();
        assert!(err.field.starts_with("rules[0].require."), "{}", err.field);
        assert!(err.message.contains("client_ids"), "{}", err.message);
        for bound in [r#","client_ids":["c"]"#, r#","audiences":["api"]"#] {
            assert!(
                with_block(&format!("{REQUIRED}{bound}"), &rule(require)).is_ok(),
                "{require} {bound}"
            );
        }
    }
    let bound = format!(r#"{REQUIRED},"client_ids":["c"]"#);
    for (require, field) in [
        (r#""scopes_any":[]"#, "rules[0].require.scopes_any"),
        (r#""scopes_all":["a b"]"#, "rules[0].require.scopes_all[0]"),
        (r#""access_claims":{}"#, "rules[0].require.access_claims"),
    ] {
        assert_eq!(with_block(&bound, &rule(require)).unwrap_err().field, field);
    }
    // Groups from the access token alone make group rules possible.
    let groups = rule(r#""groups_any":["admin"]"#);
    assert!(with_block(REQUIRED, &groups).is_err());
    let with_groups = format!(r#"{REQUIRED},"groups_claim":"cognito:groups""#);
    assert!(with_block(&with_groups, &groups).is_ok());
}
