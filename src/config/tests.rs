//! Configuration parsing: defaults, every refusal naming its field, strip list.

use super::*;

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188";

fn parse_str(s: &str) -> Result<Config, ConfigError> {
    parse(s.as_bytes())
}

fn minimal() -> String {
    format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}"}}"#)
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse_str(&minimal()).unwrap();
    assert_eq!(c.alb_arns, vec![ARN.to_owned()]);
    assert_eq!(c.username_claim, "sub");
    assert_eq!(c.token_header, "x-amzn-oidc-data");
    assert_eq!(c.key_cluster, "alb_public_keys");
    assert_eq!(
        c.key_authority,
        "public-keys.auth.elb.us-east-1.amazonaws.com"
    );
    assert_eq!(c.key_path("abc"), "/abc");
    assert_eq!(c.key_cache_ttl_s, 300);
    assert_eq!(c.key_failure_ttl_s, 30);
    assert_eq!(c.key_cache_max, 128);
    assert_eq!(c.headers.get(HeaderRole::User), "x-auth-user");
    assert_eq!(c.signature_backend, SignatureBackend::Auto);
    assert!(c.user_service.is_none());
    assert!(!c.bypass_validation && !c.allow_missing && !c.strip_alb_headers);
}

#[test]
fn govcloud_defaults_to_s3() {
    let c = parse_str(&format!(
        r#"{{"region":"us-gov-west-1","alb_arns":["{ARN}"]}}"#
    ))
    .unwrap();
    assert_eq!(c.key_authority, "s3-us-gov-west-1.amazonaws.com");
    assert_eq!(
        c.key_path("k1"),
        "/aws-elb-public-keys-prod-us-gov-west-1/k1"
    );
}

#[test]
fn china_needs_explicit_key_host() {
    let e = parse_str(&format!(
        r#"{{"region":"cn-north-1","alb_arns":["{ARN}"]}}"#
    ))
    .unwrap_err();
    assert_eq!(e.field, "key_authority");
    let c = parse_str(&format!(
        r#"{{"region":"cn-north-1","alb_arns":["{ARN}"],"key_authority":"keys.example.cn","key_path_prefix":"/p/"}}"#
    ))
    .unwrap();
    assert_eq!(c.key_path("k"), "/p/k");
}

#[test]
fn full_config_parses() {
    let c = parse_str(&format!(
        r#"{{"region":"eu-west-1","alb_arns":["{ARN}","{ARN}x"],"issuer":"https://idp","audience":"app",
        "client_id":"cid","exempt_paths":["/healthz","/static/*"],"username_claim":"email",
        "bypass_validation":false,"allow_missing":true,"clock_skew_s":5,"token_header":"X-Token",
        "key_cluster":"keys","key_authority":"127.0.0.1:9000","key_path_prefix":"/k/",
        "key_fetch_timeout_ms":200,"key_cache_ttl_s":60,"key_failure_ttl_s":2,"key_cache_max":16,
        "verified_token_cache_max":10,"headers":{{"user":"x-user","claims":"x-claims"}},
        "claim_headers":{{"email":"x-email","custom:groups":"x-idp-groups"}},
        "strip_alb_headers":true,"signature_backend":"rust",
        "user_service":{{"cluster":"users","timeout_ms":300,"revalidate_s":2,"failure_mode":"allow"}}}}"#
    ))
    .unwrap();
    assert_eq!(c.token_header, "x-token");
    assert_eq!(c.headers.get(HeaderRole::User), "x-user");
    assert_eq!(c.headers.get(HeaderRole::Email), "x-auth-email");
    assert_eq!(c.claim_headers.len(), 2);
    assert_eq!(c.signature_backend, SignatureBackend::Rust);
    let us = c.user_service.unwrap();
    assert_eq!(us.failure_mode, FailureMode::Allow);
    assert_eq!(us.revalidate_s, 2);
    assert_eq!(us.cache_max, 4096);
}

/// One refused configuration: what it is, the JSON, the field its error
/// must name.
struct Refusal {
    case: &'static str,
    json: String,
    field: &'static str,
}

fn with(extra: &str) -> String {
    format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}",{extra}}}"#)
}

fn refusals() -> Vec<Refusal> {
    let r = |case, json: String, field| Refusal { case, json, field };
    vec![
        r("nothing", "{}".into(), "region"),
        r("no arns", r#"{"region":"us-east-1"}"#.into(), "alb_arns"),
        r(
            "bad region",
            r#"{"region":"nowhere","alb_arns":"x"}"#.into(),
            "region",
        ),
        r(
            "arn not an arn",
            r#"{"region":"us-east-1","alb_arns":["nope"]}"#.into(),
            "alb_arns[0]",
        ),
        r(
            "arn of s3",
            r#"{"region":"us-east-1","alb_arns":["arn:aws:s3:::bucket"]}"#.into(),
            "alb_arns[0]",
        ),
        r(
            "arn cut short",
            r#"{"region":"us-east-1","alb_arns":["arn:aws:elasticloadbalancing:x"]}"#.into(),
            "alb_arns[0]",
        ),
        r(
            "second arn bad",
            format!(r#"{{"region":"us-east-1","alb_arns":["{ARN}",""]}}"#),
            "alb_arns[1]",
        ),
        r("unknown field", with(r#""bogus":1"#), "bogus"),
        r(
            "bypass as string",
            with(r#""bypass_validation":"true""#),
            "bypass_validation",
        ),
        r(
            "bypass as number",
            with(r#""bypass_validation":1"#),
            "bypass_validation",
        ),
        r(
            "unknown backend",
            with(r#""signature_backend":"fast""#),
            "signature_backend",
        ),
        r(
            "relative exempt path",
            with(r#""exempt_paths":["health"]"#),
            "exempt_paths[0]",
        ),
        r(
            "inner star",
            with(r#""exempt_paths":["/a/*/b"]"#),
            "exempt_paths[0]",
        ),
        r(
            "username claim empty",
            with(r#""username_claim":"""#),
            "username_claim",
        ),
        r(
            "clock skew too large",
            with(r#""clock_skew_s":3601"#),
            "clock_skew_s",
        ),
        r(
            "key cluster empty",
            with(r#""key_cluster":"""#),
            "key_cluster",
        ),
        r(
            "key authority with path",
            with(r#""key_authority":"h/x""#),
            "key_authority",
        ),
        r(
            "key cache of zero",
            with(r#""key_cache_max":0"#),
            "key_cache_max",
        ),
        r(
            "negative timeout",
            with(r#""key_fetch_timeout_ms":-1"#),
            "key_fetch_timeout_ms",
        ),
        r(
            "key path prefix relative",
            with(r#""key_path_prefix":"keys""#),
            "key_path_prefix",
        ),
        r(
            "bad header name",
            with(r#""headers":{"user":"bad header"}"#),
            "headers.user",
        ),
        r(
            "unknown header role",
            with(r#""headers":{"nick":"x"}"#),
            "headers.nick",
        ),
        r(
            "header name not a string",
            with(r#""headers":{"email":1}"#),
            "headers.email",
        ),
        r(
            "two roles one name",
            with(r#""headers":{"user":"x-auth-claims"}"#),
            "headers.claims",
        ),
        r(
            "claim header on identity",
            with(r#""claim_headers":{"email":"x-auth-user"}"#),
            "claim_headers.email",
        ),
        r(
            "claim header on alb header",
            with(r#""claim_headers":{"email":"x-amzn-oidc-data"}"#),
            "claim_headers.email",
        ),
        r(
            "claim name empty",
            with(r#""claim_headers":{"":"x-c"}"#),
            "claim_headers.",
        ),
        r(
            "token in identity header",
            with(r#""token_header":"x-auth-user""#),
            "token_header",
        ),
        r(
            "token in renamed-away identity header",
            with(r#""token_header":"x-auth-name","headers":{"name":"x-name"}"#),
            "token_header",
        ),
        r(
            "token header reserved",
            with(r#""token_header":"cookie""#),
            "token_header",
        ),
        r("empty issuer", with(r#""issuer":"""#), "issuer"),
        r("empty audience", with(r#""audience":"""#), "audience"),
        r("empty client id", with(r#""client_id":"""#), "client_id"),
        r(
            "user service without cluster",
            with(r#""user_service":{}"#),
            "user_service",
        ),
        r(
            "user service cluster empty",
            with(r#""user_service":{"cluster":""}"#),
            "user_service.cluster",
        ),
        r(
            "unknown failure mode",
            with(r#""user_service":{"cluster":"u","failure_mode":"open"}"#),
            "user_service.failure_mode",
        ),
        r(
            "revalidate of zero",
            with(r#""user_service":{"cluster":"u","revalidate_s":0}"#),
            "user_service.revalidate_s",
        ),
        r(
            "groups claim empty",
            with(r#""groups_claim":"""#),
            "groups_claim",
        ),
        r(
            "groups claim list empty",
            with(r#""groups_claim":[]"#),
            "groups_claim",
        ),
        r(
            "second groups claim empty",
            with(r#""groups_claim":["custom:groups",""]"#),
            "groups_claim[1]",
        ),
        r(
            "groups claim a number",
            with(r#""groups_claim":1"#),
            "groups_claim",
        ),
        r(
            "unknown default rule",
            with(r#""default_rule":"open""#),
            "default_rule",
        ),
        r(
            "default rule require",
            with(r#""default_rule":"require""#),
            "default_rule",
        ),
        r(
            "default rule with allow_missing",
            with(r#""default_rule":"authenticated","allow_missing":true"#),
            "default_rule",
        ),
        r("rules empty", with(r#""rules":[]"#), "rules"),
        r("rules not a list", with(r#""rules":{}"#), "rules"),
        r(
            "rule without name",
            with(r#""rules":[{"allow":"anyone"}]"#),
            "rules[0].name",
        ),
        r(
            "rule name with a space",
            with(r#""rules":[{"name":"a b","allow":"anyone"}]"#),
            "rules[0].name",
        ),
        r(
            "rule name too long",
            with(&format!(
                r#""rules":[{{"name":"{}","allow":"anyone"}}]"#,
                "a".repeat(65)
            )),
            "rules[0].name",
        ),
        r(
            "rule name empty",
            with(r#""rules":[{"name":"","allow":"anyone"}]"#),
            "rules[0].name",
        ),
        r(
            "rule name reserved for the default",
            with(r#""rules":[{"name":"default","allow":"anyone"}]"#),
            "rules[0].name",
        ),
        r(
            "rule name reserved for exempt paths",
            with(r#""rules":[{"name":"exempt_paths","allow":"anyone"}]"#),
            "rules[0].name",
        ),
        r(
            "rule name twice",
            with(r#""rules":[{"name":"a","allow":"anyone"},{"name":"a","allow":"deny"}]"#),
            "rules[1].name",
        ),
        r(
            "unknown rule field",
            with(r#""rules":[{"name":"a","allow":"anyone","path":["/x"]}]"#),
            "rules[0].path",
        ),
        r(
            "unknown allow value",
            with(r#""rules":[{"name":"a","allow":"everyone"}]"#),
            "rules[0].allow",
        ),
        r(
            "allow and require",
            with(
                r#""rules":[{"name":"a","allow":"anyone","require":{"groups_any":["x"]}}],"groups_claim":"g""#,
            ),
            "rules[0]",
        ),
        r(
            "neither allow nor require",
            with(r#""rules":[{"name":"a","paths":["/x"]}]"#),
            "rules[0]",
        ),
        r(
            "rule paths empty",
            with(r#""rules":[{"name":"a","paths":[],"allow":"deny"}]"#),
            "rules[0].paths",
        ),
        r(
            "rule path relative",
            with(r#""rules":[{"name":"a","paths":["/x","admin/*"],"allow":"deny"}]"#),
            "rules[0].paths[1]",
        ),
        r(
            "rule path with dot segment",
            with(r#""rules":[{"name":"a","paths":["/a/../b"],"allow":"deny"}]"#),
            "rules[0].paths[0]",
        ),
        r(
            "rule methods empty",
            with(r#""rules":[{"name":"a","methods":[],"allow":"deny"}]"#),
            "rules[0].methods",
        ),
        r(
            "rule method not a token",
            with(r#""rules":[{"name":"a","methods":["GET","PO ST"],"allow":"deny"}]"#),
            "rules[0].methods[1]",
        ),
        r(
            "rule hosts empty",
            with(r#""rules":[{"name":"a","hosts":[],"allow":"deny"}]"#),
            "rules[0].hosts",
        ),
        r(
            "rule host with port",
            with(r#""rules":[{"name":"a","hosts":["a.example.com:443"],"allow":"deny"}]"#),
            "rules[0].hosts[0]",
        ),
        r(
            "rule host wildcard inside",
            with(r#""rules":[{"name":"a","hosts":["a.*.com"],"allow":"deny"}]"#),
            "rules[0].hosts[0]",
        ),
        r(
            "ignore_case as string",
            with(r#""rules":[{"name":"a","ignore_case":"yes","allow":"deny"}]"#),
            "rules[0].ignore_case",
        ),
        r(
            "empty requirement",
            with(r#""rules":[{"name":"a","require":{}}]"#),
            "rules[0].require",
        ),
        r(
            "unknown requirement",
            with(r#""rules":[{"name":"a","require":{"scopes_any":["x"]}}]"#),
            "rules[0].require.scopes_any",
        ),
        r(
            "groups_any empty",
            with(r#""groups_claim":"g","rules":[{"name":"a","require":{"groups_any":[]}}]"#),
            "rules[0].require.groups_any",
        ),
        r(
            "groups_all empty",
            with(r#""groups_claim":"g","rules":[{"name":"a","require":{"groups_all":[]}}]"#),
            "rules[0].require.groups_all",
        ),
        r(
            "group name with a comma",
            with(
                r#""groups_claim":"g","rules":[{"name":"a","require":{"groups_any":["x","a,b"]}}]"#,
            ),
            "rules[0].require.groups_any[1]",
        ),
        r(
            "groups without a source",
            with(r#""rules":[{"name":"a","require":{"groups_any":["admin"]}}]"#),
            "rules[0].require.groups_any",
        ),
        r(
            "claims empty",
            with(r#""rules":[{"name":"a","require":{"claims":{}}}]"#),
            "rules[0].require.claims",
        ),
        r(
            "claim values empty",
            with(r#""rules":[{"name":"a","require":{"claims":{"custom:tenant":[]}}}]"#),
            "rules[0].require.claims.custom:tenant",
        ),
        r(
            "claim value an object",
            with(r#""rules":[{"name":"a","require":{"claims":{"custom:tenant":["acme",{}]}}}]"#),
            "rules[0].require.claims.custom:tenant[1]",
        ),
        r(
            "any_of empty",
            with(r#""rules":[{"name":"a","require":{"any_of":[]}}]"#),
            "rules[0].require.any_of",
        ),
        r(
            "any_of with an empty requirement",
            with(r#""rules":[{"name":"a","require":{"any_of":[{"claims":{"x":["1"]}},{}]}}]"#),
            "rules[0].require.any_of[1]",
        ),
        r(
            "nested groups empty",
            with(
                r#""user_service":{"cluster":"u"},"rules":[{"name":"ok","allow":"anyone"},{"name":"a","require":{"any_of":[{"groups_all":[]}]}}]"#,
            ),
            "rules[1].require.any_of[0].groups_all",
        ),
        r(
            "china without key host",
            format!(r#"{{"region":"cn-north-1","alb_arns":["{ARN}"]}}"#),
            "key_authority",
        ),
    ]
}

#[test]
fn errors_name_the_field() {
    let mut wrong = Vec::new();
    let cases = refusals();
    for Refusal { case, json, field } in &cases {
        match parse_str(json) {
            Ok(_) => wrong.push(format!("{case}: accepted {json}")),
            Err(e) if e.field != *field => wrong.push(format!(
                "{case}: field {:?}, expected {field:?} ({e})",
                e.field
            )),
            Err(e) if !e.to_string().contains(&format!("`{field}`")) => {
                wrong.push(format!("{case}: the message does not name `{field}`: {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn unknown_field_is_named_in_the_message() {
    let e = parse_str(&with(r#""bogus":1"#)).unwrap_err();
    assert!(e.message.contains("bogus"), "{e}");
}

#[test]
fn bypass_does_not_need_arns() {
    let c = parse_str(r#"{"region":"us-east-1","bypass_validation":true}"#).unwrap();
    assert!(c.bypass_validation);
    assert!(c.alb_arns.is_empty());
}

#[test]
fn garbage_is_refused() {
    for bad in [
        "",
        "  ",
        "[]",
        "null",
        "\"x\"",
        "{",
        "{}{}",
        "{\"region\":1}",
    ] {
        assert!(parse_str(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn strip_names_cover_everything_injected() {
    let c = parse_str(&with(r#""claim_headers":{"email":"x-email"}"#)).unwrap();
    assert_eq!(
        c.strip_names,
        [
            "x-auth-claims",
            "x-auth-email",
            "x-auth-groups",
            "x-auth-name",
            "x-auth-scopes",
            "x-auth-user",
            "x-auth-user-id",
            "x-email",
        ]
    );
    let alb = parse_str(&with(
        r#""strip_alb_headers":true,"token_header":"X-Token""#,
    ))
    .unwrap();
    assert_eq!(
        alb.strip_names,
        [
            "x-amzn-oidc-accesstoken",
            "x-amzn-oidc-data",
            "x-amzn-oidc-identity",
            "x-auth-claims",
            "x-auth-email",
            "x-auth-groups",
            "x-auth-name",
            "x-auth-scopes",
            "x-auth-user",
            "x-auth-user-id",
            "x-token",
        ]
    );
}

/// An app still reading `x-auth-user` after `headers.user` was renamed
/// must not see a client's forged copy: defaults are stripped as well.
#[test]
fn strip_names_keep_defaults_after_a_rename() {
    let c = parse_str(&with(
        r#""headers":{"user":"X-Who","groups":"x-roles"},"claim_headers":{"email":"x-auth-email-claim"}"#,
    ))
    .unwrap();
    assert_eq!(
        c.strip_names,
        [
            "x-auth-claims",
            "x-auth-email",
            "x-auth-email-claim",
            "x-auth-groups",
            "x-auth-name",
            "x-auth-scopes",
            "x-auth-user",
            "x-auth-user-id",
            "x-roles",
            "x-who",
        ]
    );
}

#[test]
fn user_service_upstream_is_a_grpc_service_encoded_at_load() {
    let c = parse_str(&format!(
        r#"{{"region":"us-east-1","alb_arns":"{ARN}","user_service":{{"cluster":"users","authority":"users.internal"}}}}"#
    ))
    .unwrap();
    let us = c.user_service.unwrap();
    assert_eq!(
        us.grpc_service.as_bytes(),
        b"\x0a\x17\x0a\x05users\x12\x0eusers.internal"
    );
    assert_eq!(us.authority.as_deref(), Some("users.internal"));
    let istio = parse_str(&format!(
        r#"{{"region":"us-east-1","alb_arns":"{ARN}","user_service":{{"cluster":"outbound|50051||u.ns.svc.cluster.local"}}}}"#
    ))
    .unwrap();
    let authority = istio.user_service.unwrap().authority;
    assert_eq!(authority.as_deref(), Some("u.ns.svc.cluster.local:50051"));
}

#[test]
fn user_service_names_that_cannot_be_sent_are_refused_at_load() {
    let long = "c".repeat(126);
    for (user_service, field) in [
        (format!(r#"{{"cluster":"{long}"}}"#), "user_service.cluster"),
        (
            r#"{"cluster":"users","authority":""}"#.to_owned(),
            "user_service.authority",
        ),
        (
            r#"{"cluster":"users","authority":"a b"}"#.to_owned(),
            "user_service.authority",
        ),
        (r#"{"cluster":"a|b"}"#.to_owned(), "user_service.authority"),
    ] {
        let json =
            format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}","user_service":{user_service}}}"#);
        assert_eq!(parse_str(&json).unwrap_err().field, field, "{json}");
    }
}
