//! `groups_claim`, `default_rule` and `rules`: from their JSON to the
//! compiled `AccessRules`, each error naming its field
//! (`rules[2].require.groups_any`).

use super::{ConfigError, OneOrMany};
use crate::paths::{ExemptPaths, PathPattern};
use crate::rules::{
    AccessRules, Action, Allow, ClaimValues, Condition, HostPattern, MethodName, Requirement, Rule,
    DEFAULT_RULE_NAME, EXEMPT_RULE_NAME,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: Option<String>,
    paths: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    #[serde(default)]
    ignore_case: bool,
    allow: Option<Allow>,
    require: Option<RawRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirement {
    groups_any: Option<Vec<String>>,
    groups_all: Option<Vec<String>>,
    claims: Option<BTreeMap<String, Vec<Value>>>,
    scopes_any: Option<Vec<String>>,
    scopes_all: Option<Vec<String>>,
    access_claims: Option<BTreeMap<String, Vec<Value>>>,
    any_of: Option<Vec<RawRequirement>>,
}

/// What requirements can rely on, from the rest of the configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sources {
    /// `groups_claim`, `user_service` or `access_token.groups_claim` is set.
    pub groups: bool,
    /// Whether the access token is verified, and bound to this app's
    /// client (`client_ids` or `audiences` set).
    pub access_token: AccessTokenSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AccessTokenSource {
    None,
    /// Verified, but any app client of the issuer is accepted.
    AnyClient,
    BoundToClient,
}

/// The authorization settings as given.
pub(super) struct RawAccess {
    pub groups_claim: Option<OneOrMany>,
    pub default_rule: Option<Allow>,
    pub allow_missing: bool,
    pub rules: Option<Vec<RawRule>>,
}

/// Compiles the rules: `exempt_paths` lead as one `anyone` rule;
/// `allow_missing` alone makes the default `optional`.
pub(super) fn access_rules(
    raw: RawAccess,
    exempt_paths: &ExemptPaths,
    sources: Sources,
) -> Result<AccessRules, ConfigError> {
    let groups_claims = groups_claims(raw.groups_claim)?;
    let default = match (raw.default_rule, raw.allow_missing) {
        (Some(_), true) => return Err(ConfigError::new(
            "default_rule",
            "cannot be set together with allow_missing (which means default_rule \"optional\"); \
                 remove allow_missing",
        )),
        (Some(allow), false) => allow,
        (None, true) => Allow::Optional,
        (None, false) => Allow::Authenticated,
    };
    let refuse_unreadable = raw.default_rule.is_some() || raw.rules.is_some();
    let sources = Sources {
        groups: sources.groups || !groups_claims.is_empty(),
        ..sources
    };
    let mut rules = Vec::new();
    if !exempt_paths.is_empty() {
        rules.push(Rule {
            name: EXEMPT_RULE_NAME.to_owned(),
            paths: Some(exempt_paths.patterns()),
            methods: None,
            hosts: None,
            ignore_case: false,
            action: Action::Allow(Allow::Anyone),
        });
    }
    let rules_given = raw.rules.is_some();
    let raw_rules = raw.rules.unwrap_or_default();
    if rules_given && raw_rules.is_empty() {
        return Err(ConfigError::new(
            "rules",
            "must not be empty (omit it for no rules)",
        ));
    }
    for (i, raw_rule) in raw_rules.into_iter().enumerate() {
        let field = format!("rules[{i}]");
        let rule = rule(&field, raw_rule, sources)?;
        if let Some(j) = rules
            .iter()
            .skip(usize::from(!exempt_paths.is_empty()))
            .position(|r| r.name == rule.name)
        {
            return Err(ConfigError::new(
                format!("{field}.name"),
                format!("{:?} is already the name of rules[{j}]", rule.name),
            ));
        }
        rules.push(rule);
    }
    Ok(AccessRules::new(
        rules,
        default,
        refuse_unreadable,
        groups_claims,
    ))
}

fn groups_claims(value: Option<OneOrMany>) -> Result<Vec<String>, ConfigError> {
    let (claims, indexed) = match value {
        None => return Ok(Vec::new()),
        Some(OneOrMany::One(claim)) => (vec![claim], false),
        Some(OneOrMany::Many(claims)) => (claims, true),
    };
    if claims.is_empty() {
        return Err(ConfigError::new(
            "groups_claim",
            "must not be empty (omit it for no groups from the token)",
        ));
    }
    if let Some(i) = claims.iter().position(String::is_empty) {
        let field = if indexed {
            format!("groups_claim[{i}]")
        } else {
            "groups_claim".to_owned()
        };
        return Err(ConfigError::new(field, "claim name must not be empty"));
    }
    Ok(claims)
}

fn is_rule_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn rule(field: &str, raw: RawRule, sources: Sources) -> Result<Rule, ConfigError> {
    let name = raw
        .name
        .ok_or_else(|| ConfigError::new(format!("{field}.name"), "required"))?;
    if !is_rule_name(&name) {
        return Err(ConfigError::new(
            format!("{field}.name"),
            format!("{name:?} must match [A-Za-z0-9_-]{{1,64}}"),
        ));
    }
    if name == DEFAULT_RULE_NAME || name == EXEMPT_RULE_NAME {
        return Err(ConfigError::new(
            format!("{field}.name"),
            format!("{name:?} is reserved (it names the {name} rule in counters and logs)"),
        ));
    }
    // Folded once here, so that a reading without upper case is its own
    // folded reading (`route` skips folding those).
    let ignore_case = raw.ignore_case;
    let paths = list(field, "paths", raw.paths, |p| {
        PathPattern::parse(&if ignore_case {
            p.to_ascii_lowercase()
        } else {
            p.to_owned()
        })
    })?;
    let methods = list(field, "methods", raw.methods, MethodName::parse)?;
    let hosts = list(field, "hosts", raw.hosts, HostPattern::parse)?;
    let action = match (raw.allow, raw.require) {
        (Some(allow), None) => Action::Allow(allow),
        (None, Some(require)) => {
            Action::Require(requirement(&format!("{field}.require"), require, sources)?)
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                field,
                "has both `allow` and `require`; give exactly one",
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(
                field,
                "needs `allow` or `require` (exactly one)",
            ))
        }
    };
    Ok(Rule {
        name,
        paths,
        methods,
        hosts,
        ignore_case: raw.ignore_case,
        action,
    })
}

/// A rule's `paths`, `methods` or `hosts`: absent matches everything;
/// present, it must list something.
fn list<T>(
    rule: &str,
    name: &str,
    values: Option<Vec<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(values) = values else {
        return Ok(None);
    };
    if values.is_empty() {
        return Err(ConfigError::new(
            format!("{rule}.{name}"),
            "must not be empty (omit it to match every request)",
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| parse(v).map_err(|msg| ConfigError::new(format!("{rule}.{name}[{i}]"), msg)))
        .collect::<Result<Vec<T>, _>>()
        .map(Some)
}

fn requirement(
    field: &str,
    raw: RawRequirement,
    sources: Sources,
) -> Result<Requirement, ConfigError> {
    let groups_known = sources.groups;
    let mut conditions = Vec::new();
    if let Some(groups) = raw.groups_any {
        conditions.push(Condition::GroupsAny(group_names(
            &format!("{field}.groups_any"),
            groups,
            groups_known,
        )?));
    }
    if let Some(groups) = raw.groups_all {
        conditions.push(Condition::GroupsAll(group_names(
            &format!("{field}.groups_all"),
            groups,
            groups_known,
        )?));
    }
    if let Some(claims) = raw.claims {
        conditions.push(Condition::Claims(claim_values(
            &format!("{field}.claims"),
            claims,
        )?));
    }
    if let Some(scopes) = raw.scopes_any {
        let field = format!("{field}.scopes_any");
        conditions.push(Condition::ScopesAny(scope_names(&field, scopes, sources)?));
    }
    if let Some(scopes) = raw.scopes_all {
        let field = format!("{field}.scopes_all");
        conditions.push(Condition::ScopesAll(scope_names(&field, scopes, sources)?));
    }
    if let Some(claims) = raw.access_claims {
        let field = format!("{field}.access_claims");
        access_token_bound(&field, sources)?;
        conditions.push(Condition::AccessClaims(claim_values(&field, claims)?));
    }
    if let Some(options) = raw.any_of {
        let any_of = format!("{field}.any_of");
        if options.is_empty() {
            return Err(ConfigError::new(any_of, "must not be empty"));
        }
        let options = options
            .into_iter()
            .enumerate()
            .map(|(i, o)| requirement(&format!("{any_of}[{i}]"), o, sources))
            .collect::<Result<Vec<_>, _>>()?;
        conditions.push(Condition::AnyOf(options));
    }
    if conditions.is_empty() {
        return Err(ConfigError::new(
            field,
            "must list at least one of groups_any, groups_all, claims, scopes_any, scopes_all, \
             access_claims, any_of \
             (for any verified user, use allow: \"authenticated\")",
        ));
    }
    Ok(Requirement::new(conditions))
}

fn group_names(
    field: &str,
    groups: Vec<String>,
    groups_known: bool,
) -> Result<Vec<String>, ConfigError> {
    if groups.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    if !groups_known {
        return Err(ConfigError::new(
            field,
            "no group can ever be known: set groups_claim or user_service",
        ));
    }
    if let Some(i) = groups
        .iter()
        .position(|g| g.is_empty() || g.contains(',') || g.chars().any(char::is_control))
    {
        return Err(ConfigError::new(
            format!("{field}[{i}]"),
            "a group name is not empty and has no comma or control character",
        ));
    }
    Ok(groups)
}

/// Scopes and access-token claims come only from a verified access token
/// issued to this app: without `client_ids` or `audiences`, a token the
/// same user got for another app client of the issuer (same keys, same
/// `sub`) could bring broader scopes.
fn access_token_bound(field: &str, sources: Sources) -> Result<(), ConfigError> {
    match sources.access_token {
        AccessTokenSource::BoundToClient => Ok(()),
        AccessTokenSource::None => Err(ConfigError::new(
            field,
            "needs the access_token block: scopes and access-token claims come from the verified access token",
        )),
        AccessTokenSource::AnyClient => Err(ConfigError::new(
            field,
            "needs access_token.client_ids or access_token.audiences: otherwise a token issued to \
             another app client of the same issuer could bring broader scopes",
        )),
    }
}

fn scope_names(
    field: &str,
    scopes: Vec<String>,
    sources: Sources,
) -> Result<Vec<String>, ConfigError> {
    access_token_bound(field, sources)?;
    if scopes.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    if let Some(i) = scopes
        .iter()
        .position(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(ConfigError::new(
            format!("{field}[{i}]"),
            "a scope is not empty and has no whitespace or control character",
        ));
    }
    Ok(scopes)
}

fn claim_values(
    field: &str,
    claims: BTreeMap<String, Vec<Value>>,
) -> Result<Vec<ClaimValues>, ConfigError> {
    if claims.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    claims
        .into_iter()
        .map(|(claim, values)| {
            let field = format!("{field}.{claim}");
            if claim.is_empty() {
                return Err(ConfigError::new(field, "claim name must not be empty"));
            }
            if values.is_empty() {
                return Err(ConfigError::new(field, "must list at least one value"));
            }
            let accepted = values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                    _ => Err(ConfigError::new(
                        format!("{field}[{i}]"),
                        "must be a string, a number or a boolean",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ClaimValues { claim, accepted })
        })
        .collect()
}
