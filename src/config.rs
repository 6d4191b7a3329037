//! Filter configuration: parsed from the JSON Envoy (or Istio's
//! `pluginConfig`) hands to `on_configure`, validated once, then immutable.
//!
//! Every error names the field it is about, so an operator reading Envoy's
//! "unable to create filter" log line knows what to fix.

use crate::grpc_upstream;
use crate::paths::ExemptPaths;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid alb-oidc configuration: {}", self.message)
        } else {
            write!(
                f,
                "invalid alb-oidc configuration: field `{}`: {}",
                self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignatureBackend {
    /// Envoy's native `verify_signature` when the host has it, else pure Rust.
    #[default]
    Auto,
    /// Only the host's `verify_signature` (fails closed without it).
    Host,
    /// Only the pure-Rust p256 verifier.
    Rust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// User service unreachable: 503.
    #[default]
    Deny,
    /// User service unreachable: continue with claims-only identity.
    Allow,
}

/// Names of the headers the filter injects (and always strips first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    pub user: String,
    pub claims: String,
    pub user_id: String,
    pub email: String,
    pub groups: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserServiceConfig {
    pub cluster: String,
    /// The `:authority` of calls: as configured, else derived from an Istio
    /// cluster name (`grpc_upstream::default_authority`); when `None` Envoy
    /// uses the cluster name.
    pub authority: Option<String>,
    /// What Envoy's gRPC call takes as `upstream`: a serialized
    /// `GrpcService` naming `cluster` (see `grpc_upstream`), never the bare
    /// name. Encoded once here, so a name that cannot be sent is refused at
    /// load.
    pub grpc_service: String,
    pub timeout_ms: u64,
    pub revalidate_s: u64,
    pub failure_mode: FailureMode,
    pub cache_max: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub region: String,
    pub alb_arns: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub client_id: Option<String>,
    pub exempt_paths: ExemptPaths,
    pub username_claim: String,
    pub bypass_validation: bool,
    pub allow_missing: bool,
    pub clock_skew_s: u64,
    pub token_header: String,
    pub key_cluster: String,
    pub key_authority: String,
    pub key_path_prefix: String,
    pub key_fetch_timeout_ms: u64,
    pub key_cache_ttl_s: u64,
    pub key_failure_ttl_s: u64,
    pub key_cache_max: usize,
    pub verified_token_cache_max: usize,
    pub headers: HeaderNames,
    /// Claim name -> header name, in a stable order.
    pub claim_headers: Vec<(String, String)>,
    pub strip_alb_headers: bool,
    pub signature_backend: SignatureBackend,
    pub user_service: Option<UserServiceConfig>,
    /// What the filter removes from every incoming request before anything
    /// else happens (lower case): every header name it injects, plus the
    /// ALB's headers and `token_header` (after the token is read) with
    /// `strip_alb_headers`.
    pub strip_names: Vec<String>,
}

/// The headers an ALB adds; forwarded unless `strip_alb_headers`.
pub const ALB_HEADERS: [&str; 3] = [
    "x-amzn-oidc-data",
    "x-amzn-oidc-identity",
    "x-amzn-oidc-accesstoken",
];

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHeaders {
    user: Option<String>,
    claims: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    groups: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserService {
    cluster: String,
    authority: Option<String>,
    timeout_ms: Option<u64>,
    revalidate_s: Option<u64>,
    #[serde(default)]
    failure_mode: FailureMode,
    cache_max: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    region: Option<String>,
    alb_arns: Option<OneOrMany>,
    issuer: Option<String>,
    audience: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    exempt_paths: Vec<String>,
    username_claim: Option<String>,
    #[serde(default)]
    bypass_validation: bool,
    #[serde(default)]
    allow_missing: bool,
    #[serde(default)]
    clock_skew_s: u64,
    token_header: Option<String>,
    key_cluster: Option<String>,
    key_authority: Option<String>,
    key_path_prefix: Option<String>,
    key_fetch_timeout_ms: Option<u64>,
    key_cache_ttl_s: Option<u64>,
    key_failure_ttl_s: Option<u64>,
    key_cache_max: Option<u64>,
    verified_token_cache_max: Option<u64>,
    #[serde(default)]
    headers: RawHeaders,
    #[serde(default)]
    claim_headers: BTreeMap<String, String>,
    #[serde(default)]
    strip_alb_headers: bool,
    #[serde(default)]
    signature_backend: SignatureBackend,
    user_service: Option<RawUserService>,
}

/// Parses and validates the filter configuration.
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "",
            "configuration is empty; `region` and `alb_arns` are required",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        ConfigError::new(field, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", format!("trailing data after the JSON object: {e}")))?;
    validate(raw)
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let region = raw
        .region
        .ok_or_else(|| ConfigError::new("region", "required (e.g. \"us-east-1\")"))?;
    if !is_region(&region) {
        return Err(ConfigError::new(
            "region",
            format!("{region:?} is not an AWS region name (e.g. \"us-east-1\")"),
        ));
    }

    let alb_arns = match raw.alb_arns {
        None => Vec::new(),
        Some(OneOrMany::One(arn)) => vec![arn],
        Some(OneOrMany::Many(arns)) => arns,
    };
    for (i, arn) in alb_arns.iter().enumerate() {
        if !arn.starts_with("arn:") || !arn.contains(":elasticloadbalancing:") {
            return Err(ConfigError::new(
                format!("alb_arns[{i}]"),
                format!("{arn:?} is not an ALB ARN (arn:<partition>:elasticloadbalancing:...)"),
            ));
        }
    }
    if alb_arns.is_empty() && !raw.bypass_validation {
        return Err(ConfigError::new(
            "alb_arns",
            "required: the ARN(s) of your ALB; a token signed by any other ALB in the region is refused",
        ));
    }

    for (field, value) in [
        ("issuer", &raw.issuer),
        ("audience", &raw.audience),
        ("client_id", &raw.client_id),
    ] {
        if value.as_deref() == Some("") {
            return Err(ConfigError::new(
                field,
                "must not be empty (omit it to skip the check)",
            ));
        }
    }

    let exempt_paths = ExemptPaths::new(&raw.exempt_paths)
        .map_err(|(i, msg)| ConfigError::new(format!("exempt_paths[{i}]"), msg))?;

    let username_claim = raw.username_claim.unwrap_or_else(|| "sub".to_owned());
    if username_claim.is_empty() {
        return Err(ConfigError::new("username_claim", "must not be empty"));
    }
    if raw.clock_skew_s > 3600 {
        return Err(ConfigError::new("clock_skew_s", "must be at most 3600"));
    }

    let token_header = header_name("token_header", raw.token_header, "x-amzn-oidc-data")?;

    let key_cluster = raw
        .key_cluster
        .unwrap_or_else(|| "alb_public_keys".to_owned());
    if key_cluster.is_empty() {
        return Err(ConfigError::new("key_cluster", "must not be empty"));
    }
    let (default_authority, default_prefix) = default_key_location(&region);
    let key_authority = match raw.key_authority {
        Some(a) if a.is_empty() || a.contains(['/', ' ', '\t']) => {
            return Err(ConfigError::new(
                "key_authority",
                format!("{a:?} is not a host[:port]"),
            ))
        }
        Some(a) => a,
        None => default_authority.ok_or_else(|| {
            ConfigError::new(
                "key_authority",
                format!(
                    "required for region {region}: AWS documents no public key host for it; \
                     set key_authority and key_path_prefix"
                ),
            )
        })?,
    };
    let key_path_prefix = raw.key_path_prefix.unwrap_or(default_prefix);
    if !key_path_prefix.starts_with('/')
        || !key_path_prefix.ends_with('/')
        || key_path_prefix.contains(['?', '#', '%', ' '])
    {
        return Err(ConfigError::new(
            "key_path_prefix",
            "must start and end with '/' and contain no '?', '#', '%' or spaces",
        ));
    }

    let key_fetch_timeout_ms = in_range(
        "key_fetch_timeout_ms",
        raw.key_fetch_timeout_ms,
        5000,
        1,
        60_000,
    )?;
    let key_cache_ttl_s = in_range("key_cache_ttl_s", raw.key_cache_ttl_s, 300, 1, 86_400)?;
    let key_failure_ttl_s = in_range("key_failure_ttl_s", raw.key_failure_ttl_s, 30, 1, 3600)?;
    let key_cache_max = in_range("key_cache_max", raw.key_cache_max, 128, 1, 4096)? as usize;
    let verified_token_cache_max = in_range(
        "verified_token_cache_max",
        raw.verified_token_cache_max,
        1024,
        0,
        1_000_000,
    )? as usize;

    let h = raw.headers;
    let headers = HeaderNames {
        user: header_name("headers.user", h.user, "x-auth-user")?,
        claims: header_name("headers.claims", h.claims, "x-auth-claims")?,
        user_id: header_name("headers.user_id", h.user_id, "x-auth-user-id")?,
        email: header_name("headers.email", h.email, "x-auth-email")?,
        groups: header_name("headers.groups", h.groups, "x-auth-groups")?,
        name: header_name("headers.name", h.name, "x-auth-name")?,
    };

    let mut claim_headers = Vec::new();
    for (claim, header) in raw.claim_headers {
        let field = format!("claim_headers.{claim}");
        if claim.is_empty() {
            return Err(ConfigError::new(field, "claim name must not be empty"));
        }
        claim_headers.push((claim, header_name(&field, Some(header), "")?));
    }

    let mut seen: Vec<(String, String)> = vec![("token_header".to_owned(), token_header.clone())];
    let named = [
        ("headers.user", &headers.user),
        ("headers.claims", &headers.claims),
        ("headers.user_id", &headers.user_id),
        ("headers.email", &headers.email),
        ("headers.groups", &headers.groups),
        ("headers.name", &headers.name),
    ];
    for (field, name) in named
        .into_iter()
        .map(|(f, n)| (f.to_owned(), n.clone()))
        .chain(
            claim_headers
                .iter()
                .map(|(c, h)| (format!("claim_headers.{c}"), h.clone())),
        )
    {
        if ALB_HEADERS.contains(&name.as_str()) {
            return Err(ConfigError::new(
                field,
                format!("{name:?} is an ALB header; injected headers need their own names"),
            ));
        }
        if let Some((other, _)) = seen.iter().find(|(_, n)| *n == name) {
            return Err(ConfigError::new(
                field,
                format!("header {name:?} is already used by `{other}`"),
            ));
        }
        seen.push((field, name));
    }

    let user_service = raw.user_service.map(validate_user_service).transpose()?;

    let injected = [
        &headers.user,
        &headers.claims,
        &headers.user_id,
        &headers.email,
        &headers.groups,
        &headers.name,
    ];
    let mut strip_names: Vec<String> = injected
        .into_iter()
        .chain(claim_headers.iter().map(|(_, header)| header))
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if raw.strip_alb_headers {
        strip_names.extend(ALB_HEADERS.iter().map(|h| h.to_string()));
        strip_names.push(token_header.to_ascii_lowercase());
    }
    strip_names.sort();
    strip_names.dedup();

    Ok(Config {
        strip_names,
        region,
        alb_arns,
        issuer: raw.issuer,
        audience: raw.audience,
        client_id: raw.client_id,
        exempt_paths,
        username_claim,
        bypass_validation: raw.bypass_validation,
        allow_missing: raw.allow_missing,
        clock_skew_s: raw.clock_skew_s,
        token_header,
        key_cluster,
        key_authority,
        key_path_prefix,
        key_fetch_timeout_ms,
        key_cache_ttl_s,
        key_failure_ttl_s,
        key_cache_max,
        verified_token_cache_max,
        headers,
        claim_headers,
        strip_alb_headers: raw.strip_alb_headers,
        signature_backend: raw.signature_backend,
        user_service,
    })
}

fn validate_user_service(raw: RawUserService) -> Result<UserServiceConfig, ConfigError> {
    if raw.cluster.is_empty() {
        return Err(ConfigError::new(
            "user_service.cluster",
            "must not be empty",
        ));
    }
    let authority = match raw.authority {
        Some(authority) if grpc_upstream::is_valid_authority(&authority) => Some(authority),
        Some(_) => {
            return Err(ConfigError::new(
                "user_service.authority",
                "must be a host, or host:port",
            ))
        }
        None => grpc_upstream::default_authority(&raw.cluster)
            .map_err(|e| ConfigError::new("user_service.authority", e.to_string()))?,
    };
    let grpc_service = grpc_upstream::encode(&raw.cluster, authority.as_deref())
        .map_err(|e| ConfigError::new("user_service.cluster", e.to_string()))?;
    Ok(UserServiceConfig {
        cluster: raw.cluster,
        authority,
        grpc_service,
        timeout_ms: in_range("user_service.timeout_ms", raw.timeout_ms, 1000, 1, 60_000)?,
        revalidate_s: in_range(
            "user_service.revalidate_s",
            raw.revalidate_s,
            300,
            1,
            86_400,
        )?,
        failure_mode: raw.failure_mode,
        cache_max: in_range("user_service.cache_max", raw.cache_max, 4096, 1, 1_000_000)? as usize,
    })
}

fn in_range(
    field: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(ConfigError::new(
            field,
            format!("{v} is out of range ({min}..={max})"),
        ));
    }
    Ok(v)
}

/// Header names are matched case-insensitively by HTTP and stored lowercase by
/// Envoy, so they are normalised to lowercase; anything that is not an HTTP
/// token (or is a pseudo-header) is refused.
fn header_name(field: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let name = value
        .unwrap_or_else(|| default.to_owned())
        .to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ConfigError::new(
            field,
            format!("{name:?} is not a valid HTTP header name"),
        ));
    }
    if matches!(
        name.as_str(),
        "host"
            | "connection"
            | "content-length"
            | "transfer-encoding"
            | "te"
            | "upgrade"
            | "keep-alive"
            | "proxy-connection"
            | "cookie"
            | "authorization"
    ) {
        return Err(ConfigError::new(
            field,
            format!("{name:?} is a reserved header and cannot carry identity"),
        ));
    }
    Ok(name)
}

fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Where a region's ALB public keys live, as AWS documents it. `None` for
/// partitions AWS documents no host for (China): those must be configured.
fn default_key_location(region: &str) -> (Option<String>, String) {
    if region.starts_with("us-gov-") {
        (
            Some(format!("s3-{region}.amazonaws.com")),
            format!("/aws-elb-public-keys-prod-{region}/"),
        )
    } else if region.starts_with("cn-") {
        (None, "/".to_owned())
    } else {
        (
            Some(format!("public-keys.auth.elb.{region}.amazonaws.com")),
            "/".to_owned(),
        )
    }
}

impl Config {
    /// `:path` of the key request for `kid` (kid already validated).
    pub fn key_path(&self, kid: &str) -> String {
        format!("{}{}", self.key_path_prefix, kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188";

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
        assert_eq!(c.headers.user, "x-auth-user");
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
        assert_eq!(c.headers.user, "x-user");
        assert_eq!(c.headers.email, "x-auth-email");
        assert_eq!(c.claim_headers.len(), 2);
        assert_eq!(c.signature_backend, SignatureBackend::Rust);
        let us = c.user_service.unwrap();
        assert_eq!(us.failure_mode, FailureMode::Allow);
        assert_eq!(us.revalidate_s, 2);
        assert_eq!(us.cache_max, 4096);
    }

    fn field_of(json: &str) -> String {
        parse_str(json).unwrap_err().field
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of("{}"), "region");
        assert_eq!(field_of(r#"{"region":"us-east-1"}"#), "alb_arns");
        assert_eq!(field_of(r#"{"region":"nowhere","alb_arns":"x"}"#), "region");
        assert_eq!(
            field_of(r#"{"region":"us-east-1","alb_arns":["nope"]}"#),
            "alb_arns[0]"
        );
        let with = |extra: &str| format!(r#"{{"region":"us-east-1","alb_arns":"{ARN}",{extra}}}"#);
        assert!(parse_str(&with(r#""bogus":1"#))
            .unwrap_err()
            .message
            .contains("bogus"));
        assert_eq!(
            field_of(&with(r#""bypass_validation":"true""#)),
            "bypass_validation"
        );
        assert_eq!(
            field_of(&with(r#""bypass_validation":1"#)),
            "bypass_validation"
        );
        assert_eq!(
            field_of(&with(r#""signature_backend":"fast""#)),
            "signature_backend"
        );
        assert_eq!(
            field_of(&with(r#""exempt_paths":["health"]"#)),
            "exempt_paths[0]"
        );
        assert_eq!(
            field_of(&with(r#""exempt_paths":["/a/*/b"]"#)),
            "exempt_paths[0]"
        );
        assert_eq!(field_of(&with(r#""key_cache_max":0"#)), "key_cache_max");
        assert_eq!(
            field_of(&with(r#""key_fetch_timeout_ms":-1"#)),
            "key_fetch_timeout_ms"
        );
        assert_eq!(
            field_of(&with(r#""key_path_prefix":"keys""#)),
            "key_path_prefix"
        );
        assert_eq!(
            field_of(&with(r#""headers":{"user":"bad header"}"#)),
            "headers.user"
        );
        assert_eq!(field_of(&with(r#""headers":{"nick":"x"}"#)), "headers.nick");
        assert_eq!(
            field_of(&with(r#""headers":{"user":"x-auth-claims"}"#)),
            "headers.claims"
        );
        assert_eq!(
            field_of(&with(r#""claim_headers":{"email":"x-auth-user"}"#)),
            "claim_headers.email"
        );
        assert_eq!(
            field_of(&with(r#""claim_headers":{"email":"x-amzn-oidc-data"}"#)),
            "claim_headers.email"
        );
        assert_eq!(field_of(&with(r#""issuer":"""#)), "issuer");
        assert_eq!(field_of(&with(r#""user_service":{}"#)), "user_service");
        assert_eq!(
            field_of(&with(
                r#""user_service":{"cluster":"u","failure_mode":"open"}"#
            )),
            "user_service.failure_mode"
        );
        assert_eq!(
            field_of(&with(r#""user_service":{"cluster":"u","revalidate_s":0}"#)),
            "user_service.revalidate_s"
        );
        let e = parse_str(&with(r#""bypass_validation":"true""#)).unwrap_err();
        assert!(e.to_string().contains("`bypass_validation`"), "{e}");
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
        let c = parse_str(&format!(
            r#"{{"region":"us-east-1","alb_arns":"{ARN}","claim_headers":{{"email":"x-email"}}}}"#
        ))
        .unwrap();
        let m = &c.strip_names;
        assert_eq!(m.len(), 7);
        assert!(m.contains(&"x-email".to_owned()) && m.contains(&"x-auth-groups".to_owned()));
        let alb = parse_str(&format!(
            r#"{{"region":"us-east-1","alb_arns":"{ARN}","strip_alb_headers":true}}"#
        ))
        .unwrap();
        assert_eq!(alb.strip_names.len(), 6 + ALB_HEADERS.len());
        assert!(ALB_HEADERS
            .iter()
            .all(|h| alb.strip_names.contains(&h.to_string())));
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
            let json = format!(
                r#"{{"region":"us-east-1","alb_arns":"{ARN}","user_service":{user_service}}}"#
            );
            assert_eq!(parse_str(&json).unwrap_err().field, field, "{json}");
        }
    }
}
