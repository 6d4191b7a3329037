//! From the raw JSON fields to a `Config`: one step per concern, each
//! error naming its field.

use super::access_token::{access_token, AccessTokenConfig, DEFAULT_ACCESS_TOKEN_HEADER};
use super::headers::header_name;
use super::rules::{access_rules, AccessTokenSource, RawAccess, Sources};
use super::{
    Config, ConfigError, HeaderNames, HeaderRole, OneOrMany, RawConfig, RawUserService,
    UserServiceConfig, ALB_HEADERS,
};
use crate::aws::{self, AlbArn};
use crate::grpc_upstream;
use crate::paths::ExemptPaths;
use std::collections::BTreeMap;
use strum::VariantArray;

/// Turns the raw fields into a `Config`, one concern at a time; each step's
/// error names its field.
pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    // Read while `raw` is whole; its error is reported in field order below.
    let limits = limits(&raw);
    let region = region(raw.region)?;
    let alb_arns = alb_arns(raw.alb_arns, raw.bypass_validation)?;
    for (field, value) in [
        ("issuer", &raw.issuer),
        ("audience", &raw.audience),
        ("client_id", &raw.client_id),
    ] {
        optional_check(field, value.as_deref())?;
    }
    let exempt_paths = ExemptPaths::new(&raw.exempt_paths)
        .map_err(|(i, msg)| ConfigError::new(format!("exempt_paths[{i}]"), msg))?;
    let limits = limits?;
    let username_claim = non_empty("username_claim", raw.username_claim, "sub")?;
    let clock_skew_s = in_range("clock_skew_s", Some(raw.clock_skew_s), 0, 0, 3600)?;
    let token_header = header_name(
        "token_header",
        raw.token_header.as_deref().unwrap_or(DEFAULT_TOKEN_HEADER),
    )?;
    let keys = key_source(
        &region,
        raw.key_cluster,
        raw.key_authority,
        raw.key_path_prefix,
    )?;
    let headers = HeaderNames::from_config(raw.headers)?;
    let claim_headers = claim_headers("claim_headers", raw.claim_headers)?;
    let access_token = raw.access_token.map(access_token).transpose()?;
    distinct_header_names(
        &token_header,
        &headers,
        &claim_headers,
        access_token.as_ref(),
    )?;
    let user_service = raw.user_service.map(user_service).transpose()?;
    let access = access_rules(
        RawAccess {
            groups_claim: raw.groups_claim,
            default_rule: raw.default_rule,
            allow_missing: raw.allow_missing,
            rules: raw.rules,
        },
        &exempt_paths,
        Sources {
            groups: user_service.is_some()
                || access_token
                    .as_ref()
                    .is_some_and(|a| a.groups_claim.is_some()),
            access_token: match &access_token {
                None => AccessTokenSource::None,
                Some(a) if a.client_ids.is_empty() && a.audiences.is_empty() => {
                    AccessTokenSource::AnyClient
                }
                Some(_) => AccessTokenSource::BoundToClient,
            },
        },
    )?;
    let access_token_header = access_token.as_ref().map(|a| a.header.as_str());
    let strip_names = strip_names(
        &headers,
        &claim_headers,
        access_token.as_ref(),
        raw.strip_alb_headers.then_some(token_header.as_str()),
    );

    let mut alb_header_names: Vec<String> = ALB_HEADERS
        .iter()
        .map(|h| h.to_string())
        .chain([token_header.to_ascii_lowercase()])
        .chain(access_token_header.map(str::to_owned))
        .collect();
    alb_header_names.sort();
    alb_header_names.dedup();

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
        clock_skew_s,
        token_header,
        key_cluster: keys.cluster,
        key_authority: keys.authority,
        key_path_prefix: keys.path_prefix,
        key_fetch_timeout_ms: limits.key_fetch_timeout_ms,
        key_cache_ttl_s: limits.key_cache_ttl_s,
        key_failure_ttl_s: limits.key_failure_ttl_s,
        key_cache_max: limits.key_cache_max,
        verified_token_cache_max: limits.verified_token_cache_max,
        headers,
        claim_headers,
        strip_alb_headers: raw.strip_alb_headers,
        forward_unverified_alb_headers: raw.forward_unverified_alb_headers,
        alb_header_names,
        signature_backend: raw.signature_backend,
        user_service,
        access,
        access_token,
    })
}

/// Where the ALB puts its token.
const DEFAULT_TOKEN_HEADER: &str = "x-amzn-oidc-data";

fn region(value: Option<String>) -> Result<String, ConfigError> {
    let region =
        value.ok_or_else(|| ConfigError::new("region", "required (e.g. \"us-east-1\")"))?;
    if !aws::is_region(&region) {
        return Err(ConfigError::new(
            "region",
            format!("{region:?} is not an AWS region name (e.g. \"us-east-1\")"),
        ));
    }
    Ok(region)
}

fn alb_arns(value: Option<OneOrMany>, bypass: bool) -> Result<Vec<String>, ConfigError> {
    let arns = match value {
        None => Vec::new(),
        Some(OneOrMany::One(arn)) => vec![arn],
        Some(OneOrMany::Many(arns)) => arns,
    };
    if let Some((i, arn)) = arns
        .iter()
        .enumerate()
        .find(|(_, arn)| AlbArn::parse(arn).is_none())
    {
        return Err(ConfigError::new(
            format!("alb_arns[{i}]"),
            format!(
                "{arn:?} is not an ALB ARN \
                 (arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/...)"
            ),
        ));
    }
    if arns.is_empty() && !bypass {
        return Err(ConfigError::new(
            "alb_arns",
            "required: the ARN(s) of your ALB; a token signed by any other ALB in the region is refused",
        ));
    }
    Ok(arns)
}

/// A check that is skipped when its field is left out; set, it must say something.
fn optional_check(field: &str, value: Option<&str>) -> Result<(), ConfigError> {
    if value == Some("") {
        return Err(ConfigError::new(
            field,
            "must not be empty (omit it to skip the check)",
        ));
    }
    Ok(())
}

pub(super) fn non_empty(
    field: &str,
    value: Option<String>,
    default: &str,
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    if value.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    Ok(value)
}

/// The Envoy cluster and URL the region's public keys are fetched from.
struct KeySource {
    cluster: String,
    authority: String,
    path_prefix: String,
}

fn key_source(
    region: &str,
    cluster: Option<String>,
    authority: Option<String>,
    path_prefix: Option<String>,
) -> Result<KeySource, ConfigError> {
    let cluster = non_empty("key_cluster", cluster, "alb_public_keys")?;
    let documented = aws::key_location(region);
    let authority = match authority {
        Some(a) if a.is_empty() || a.contains(['/', ' ', '\t']) => {
            return Err(ConfigError::new(
                "key_authority",
                format!("{a:?} is not a host[:port]"),
            ))
        }
        Some(a) => a,
        None => documented.authority.ok_or_else(|| {
            ConfigError::new(
                "key_authority",
                format!(
                    "required for region {region}: AWS documents no public key host for it; \
                     set key_authority and key_path_prefix"
                ),
            )
        })?,
    };
    let path_prefix = path_prefix.unwrap_or(documented.path_prefix);
    if !path_prefix.starts_with('/')
        || !path_prefix.ends_with('/')
        || path_prefix.contains(['?', '#', '%', ' '])
    {
        return Err(ConfigError::new(
            "key_path_prefix",
            "must start and end with '/' and contain no '?', '#', '%' or spaces",
        ));
    }
    Ok(KeySource {
        cluster,
        authority,
        path_prefix,
    })
}

/// Timeouts, lifetimes and cache sizes.
struct Limits {
    key_fetch_timeout_ms: u64,
    key_cache_ttl_s: u64,
    key_failure_ttl_s: u64,
    key_cache_max: usize,
    verified_token_cache_max: usize,
}

fn limits(raw: &RawConfig) -> Result<Limits, ConfigError> {
    Ok(Limits {
        key_fetch_timeout_ms: in_range(
            "key_fetch_timeout_ms",
            raw.key_fetch_timeout_ms,
            5000,
            1,
            60_000,
        )?,
        key_cache_ttl_s: in_range("key_cache_ttl_s", raw.key_cache_ttl_s, 300, 1, 86_400)?,
        key_failure_ttl_s: in_range("key_failure_ttl_s", raw.key_failure_ttl_s, 30, 1, 3600)?,
        key_cache_max: in_range("key_cache_max", raw.key_cache_max, 128, 1, 4096)? as usize,
        verified_token_cache_max: in_range(
            "verified_token_cache_max",
            raw.verified_token_cache_max,
            1024,
            0,
            1_000_000,
        )? as usize,
    })
}

/// `claim_headers` (of the data token, or of the access token under
/// `prefix`): claim name -> header name.
pub(super) fn claim_headers(
    prefix: &str,
    raw: BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    raw.into_iter()
        .map(|(claim, header)| {
            let field = format!("{prefix}.{claim}");
            if claim.is_empty() {
                return Err(ConfigError::new(field, "claim name must not be empty"));
            }
            let header = header_name(&field, &header)?;
            Ok((claim, header))
        })
        .collect()
}

/// Every injected header needs a name of its own: not the token's, not an
/// ALB header, not another injected header's. The default identity names
/// are always stripped, so neither token can travel in one of them. The
/// access token's header is the ALB's, or one of its own.
fn distinct_header_names(
    token_header: &str,
    headers: &HeaderNames,
    claim_headers: &[(String, String)],
    access_token: Option<&AccessTokenConfig>,
) -> Result<(), ConfigError> {
    let identity_name = |name: &str| {
        HeaderRole::VARIANTS
            .iter()
            .any(|role| role.default_name() == name)
    };
    if identity_name(token_header) {
        return Err(ConfigError::new(
            "token_header",
            format!("{token_header:?} is an identity header name, removed from every request"),
        ));
    }
    let mut seen: Vec<(String, &str)> = vec![("token_header".to_owned(), token_header)];
    if let Some(access_token) = access_token {
        let name = access_token.header.as_str();
        if identity_name(name) {
            return Err(ConfigError::new(
                "access_token.header",
                format!("{name:?} is an identity header name, removed from every request"),
            ));
        }
        if name != DEFAULT_ACCESS_TOKEN_HEADER && ALB_HEADERS.contains(&name) {
            return Err(ConfigError::new(
                "access_token.header",
                format!("{name:?} is the ALB's header for something else"),
            ));
        }
        if name == token_header {
            return Err(ConfigError::new(
                "access_token.header",
                format!("header {name:?} is already used by `token_header`"),
            ));
        }
        seen.push(("access_token.header".to_owned(), name));
    }
    let access_claim_headers = access_token.map_or(&[][..], |a| &a.claim_headers);
    let injected =
        headers
            .iter()
            .map(|(role, name)| (role.field(), name))
            .chain(
                claim_headers
                    .iter()
                    .map(|(claim, name)| (format!("claim_headers.{claim}"), name.as_str())),
            )
            .chain(access_claim_headers.iter().map(|(claim, name)| {
                (format!("access_token.claim_headers.{claim}"), name.as_str())
            }));
    for (field, name) in injected {
        if ALB_HEADERS.contains(&name) {
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
    Ok(())
}

fn user_service(raw: RawUserService) -> Result<UserServiceConfig, ConfigError> {
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

/// See `Config::strip_names`. `token_header` is given with `strip_alb_headers`.
fn strip_names(
    headers: &HeaderNames,
    claim_headers: &[(String, String)],
    access_token: Option<&AccessTokenConfig>,
    token_header: Option<&str>,
) -> Vec<String> {
    let defaults = HeaderRole::VARIANTS.iter().map(|role| role.default_name());
    let configured = headers.iter().map(|(_, name)| name);
    let claims = claim_headers.iter().map(|(_, name)| name.as_str());
    let access_claims = access_token
        .into_iter()
        .flat_map(|a| a.claim_headers.iter().map(|(_, name)| name.as_str()));
    let mut names: Vec<String> = defaults
        .chain(configured)
        .chain(claims)
        .chain(access_claims)
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(token_header) = token_header {
        names.extend(ALB_HEADERS.iter().map(|h| h.to_string()));
        names.push(token_header.to_ascii_lowercase());
        names.extend(access_token.map(|a| a.header.clone()));
    }
    names.sort();
    names.dedup();
    names
}

pub(super) fn in_range(
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
