//! `access_token`: where the IdP's access token comes from, how it is
//! verified and what is taken from it (issue 13). Optional; each error
//! names its field (`access_token.algorithms[1]`).

use super::headers::header_name;
use super::validate::{claim_headers, in_range, non_empty};
use super::ConfigError;
use crate::access_token::Algorithm;
use crate::grpc_upstream;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Where the ALB forwards the IdP's access token.
pub const DEFAULT_ACCESS_TOKEN_HEADER: &str = "x-amzn-oidc-accesstoken";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessToken {
    header: Option<String>,
    #[serde(default)]
    required: bool,
    issuer: Option<String>,
    jwks_cluster: Option<String>,
    jwks_authority: Option<String>,
    jwks_path: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    client_ids: Vec<String>,
    algorithms: Option<Vec<String>>,
    client_id_claim: Option<String>,
    subject_claim: Option<String>,
    groups_claim: Option<String>,
    scopes_claim: Option<String>,
    #[serde(default)]
    claim_headers: BTreeMap<String, String>,
    jwks_cache_ttl_s: Option<u64>,
    jwks_fetch_timeout_ms: Option<u64>,
    jwks_refetch_min_interval_s: Option<u64>,
}

/// The `access_token` block, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenConfig {
    /// Lower case; `x-amzn-oidc-accesstoken` unless configured.
    pub header: String,
    /// A missing or invalid access token is a 401 (else it counts as absent),
    /// an unreachable key set a 503.
    pub required: bool,
    /// What `iss` must equal.
    pub issuer: String,
    /// The Envoy cluster, `:authority` and `:path` of the key set (JWKS).
    pub jwks_cluster: String,
    pub jwks_authority: String,
    pub jwks_path: String,
    /// `aud` must contain one of these when any are set.
    pub audiences: Vec<String>,
    /// The `client_id_claim` claim must be one of these when any are set.
    pub client_ids: Vec<String>,
    /// The algorithms a token may be signed with (default RS256), each once.
    pub algorithms: Vec<Algorithm>,
    /// `client_id` (Cognito) unless configured: Okta's `cid`, Entra's `azp`
    /// or `appid`.
    pub client_id_claim: String,
    /// The claim that must equal the data token's `sub` (`sub` unless
    /// configured; Okta's user id is `uid`).
    pub subject_claim: String,
    /// The claim holding groups (an array, or a comma-separated string), if any.
    pub groups_claim: Option<String>,
    /// The claim holding scopes (space-separated, or an array); `scope` unless configured.
    pub scopes_claim: String,
    /// Claim name -> header name, in a stable order.
    pub claim_headers: Vec<(String, String)>,
    pub jwks_cache_ttl_s: u64,
    pub jwks_fetch_timeout_ms: u64,
    pub jwks_refetch_min_interval_s: u64,
}

pub(super) fn access_token(raw: RawAccessToken) -> Result<AccessTokenConfig, ConfigError> {
    let header = header_name(
        "access_token.header",
        raw.header.as_deref().unwrap_or(DEFAULT_ACCESS_TOKEN_HEADER),
    )?;
    let issuer = required(
        "access_token.issuer",
        raw.issuer,
        "the IdP's issuer, which the access token's `iss` must equal",
    )?;
    let jwks_cluster = required(
        "access_token.jwks_cluster",
        raw.jwks_cluster,
        "the Envoy cluster serving the IdP's key set",
    )?;
    let jwks_authority = required(
        "access_token.jwks_authority",
        raw.jwks_authority,
        "the host[:port] of the IdP's key set",
    )?;
    if !grpc_upstream::is_valid_authority(&jwks_authority) {
        return Err(ConfigError::new(
            "access_token.jwks_authority",
            format!("{jwks_authority:?} is not a host[:port]"),
        ));
    }
    let jwks_path = required(
        "access_token.jwks_path",
        raw.jwks_path,
        "the path of the IdP's key set (e.g. \"/.well-known/jwks.json\")",
    )?;
    if !jwks_path.starts_with('/')
        || jwks_path.contains('#')
        || !jwks_path.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ConfigError::new(
            "access_token.jwks_path",
            "must start with '/' and contain no '#', spaces or control characters",
        ));
    }
    let audiences = names("access_token.audiences", raw.audiences)?;
    let client_ids = names("access_token.client_ids", raw.client_ids)?;
    let algorithms = algorithms(raw.algorithms)?;
    let client_id_claim = non_empty(
        "access_token.client_id_claim",
        raw.client_id_claim,
        "client_id",
    )?;
    let subject_claim = non_empty("access_token.subject_claim", raw.subject_claim, "sub")?;
    if raw.groups_claim.as_deref() == Some("") {
        return Err(ConfigError::new(
            "access_token.groups_claim",
            "must not be empty (omit it for no groups from the access token)",
        ));
    }
    let scopes_claim = non_empty("access_token.scopes_claim", raw.scopes_claim, "scope")?;
    let claim_headers = claim_headers("access_token.claim_headers", raw.claim_headers)?;
    Ok(AccessTokenConfig {
        header,
        required: raw.required,
        issuer,
        jwks_cluster,
        jwks_authority,
        jwks_path,
        audiences,
        client_ids,
        algorithms,
        client_id_claim,
        subject_claim,
        groups_claim: raw.groups_claim,
        scopes_claim,
        claim_headers,
        jwks_cache_ttl_s: in_range(
            "access_token.jwks_cache_ttl_s",
            raw.jwks_cache_ttl_s,
            600,
            1,
            86_400,
        )?,
        jwks_fetch_timeout_ms: in_range(
            "access_token.jwks_fetch_timeout_ms",
            raw.jwks_fetch_timeout_ms,
            5000,
            1,
            60_000,
        )?,
        // At least a second: the interval is what bounds the fetches a
        // flood of random kids can cause.
        jwks_refetch_min_interval_s: in_range(
            "access_token.jwks_refetch_min_interval_s",
            raw.jwks_refetch_min_interval_s,
            30,
            1,
            3600,
        )?,
    })
}

fn required(field: &str, value: Option<String>, what: &str) -> Result<String, ConfigError> {
    match value {
        None => Err(ConfigError::new(field, format!("required: {what}"))),
        Some(value) if value.is_empty() => Err(ConfigError::new(field, "must not be empty")),
        Some(value) => Ok(value),
    }
}

/// `audiences` or `client_ids`: empty means "not checked"; each entry says something.
fn names(field: &str, values: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if let Some(i) = values.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            format!("{field}[{i}]"),
            "must not be empty",
        ));
    }
    Ok(values)
}

fn algorithms(values: Option<Vec<String>>) -> Result<Vec<Algorithm>, ConfigError> {
    let Some(values) = values else {
        return Ok(vec![Algorithm::Rs256]);
    };
    if values.is_empty() {
        return Err(ConfigError::new(
            "access_token.algorithms",
            "must not be empty (omit it for [\"RS256\"])",
        ));
    }
    let mut algorithms = Vec::with_capacity(values.len());
    for (i, name) in values.iter().enumerate() {
        let field = format!("access_token.algorithms[{i}]");
        let alg = Algorithm::from_name(name).ok_or_else(|| {
            ConfigError::new(
                &field,
                format!("{name:?} is not one of RS256, RS384, RS512, ES256, ES384"),
            )
        })?;
        if algorithms.contains(&alg) {
            return Err(ConfigError::new(field, format!("{name:?} is listed twice")));
        }
        algorithms.push(alg);
    }
    Ok(algorithms)
}

#[cfg(test)]
mod tests;
