//! Filter configuration: parsed from the JSON Envoy (or Istio's
//! `pluginConfig`) hands to `on_configure`, validated once, then immutable.
//!
//! Every error names the field it is about, so an operator reading Envoy's
//! "unable to create filter" log line knows what to fix.

mod access_token;
mod headers;
mod rules;
#[cfg(test)]
mod tests;
mod validate;

pub use access_token::{AccessTokenConfig, DEFAULT_ACCESS_TOKEN_HEADER};
pub use headers::{HeaderNames, HeaderRole};

use crate::paths::ExemptPaths;
use crate::rules::{AccessRules, Allow};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use validate::validate;

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
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
    /// The shared user cache's bound in bytes: each of its `cache_max`
    /// slots holds at most `cache_bytes_max / cache_max` bytes (a larger
    /// answer is kept only by the worker that asked), and each worker's
    /// local copy holds at most `cache_bytes_max`.
    pub cache_bytes_max: usize,
    /// Profile field -> header name, in a stable order (by field).
    pub user_headers: Vec<(String, String)>,
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
    pub forward_unverified_alb_headers: bool,
    /// The ALB's headers as the flow removes them (lower case): the ALB
    /// header names, `token_header` and `access_token.header`.
    pub alb_header_names: Vec<String>,
    pub signature_backend: SignatureBackend,
    pub user_service: Option<UserServiceConfig>,
    /// What the filter removes from every incoming request before anything
    /// else happens (lower case): every header name it injects, the default
    /// identity header names too (an app still reading `x-auth-user` after a
    /// rename must not see a client's copy), plus the ALB's headers,
    /// `token_header` and `access_token.header` (after the tokens are read)
    /// with `strip_alb_headers`.
    pub strip_names: Vec<String>,
    /// The route rules (`rules`, `default_rule`, `groups_claim`, with
    /// `exempt_paths` and `allow_missing` folded in), compiled once.
    pub access: AccessRules,
    /// The IdP's access token (`access_token`), when it is to be verified.
    pub access_token: Option<AccessTokenConfig>,
}

/// The headers an ALB adds. On a verified request they are forwarded
/// (`x-amzn-oidc-identity` rewritten to the verified `sub`) unless
/// `strip_alb_headers`; on a request nobody verified they are removed unless
/// `forward_unverified_alb_headers`.
pub const ALB_HEADERS: [&str; 3] = [
    "x-amzn-oidc-data",
    ALB_IDENTITY_HEADER,
    "x-amzn-oidc-accesstoken",
];

/// The ALB's unsigned copy of the token's `sub`.
pub const ALB_IDENTITY_HEADER: &str = "x-amzn-oidc-identity";

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
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
    cache_bytes_max: Option<u64>,
    #[serde(default)]
    user_headers: BTreeMap<String, String>,
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
    headers: BTreeMap<String, String>,
    #[serde(default)]
    claim_headers: BTreeMap<String, String>,
    #[serde(default)]
    strip_alb_headers: bool,
    #[serde(default)]
    forward_unverified_alb_headers: bool,
    #[serde(default)]
    signature_backend: SignatureBackend,
    user_service: Option<RawUserService>,
    groups_claim: Option<OneOrMany>,
    default_rule: Option<Allow>,
    rules: Option<Vec<rules::RawRule>>,
    access_token: Option<access_token::RawAccessToken>,
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

impl Config {
    /// `:path` of the key request for `kid` (kid already validated).
    pub fn key_path(&self, kid: &str) -> String {
        format!("{}{}", self.key_path_prefix, kid)
    }
}
