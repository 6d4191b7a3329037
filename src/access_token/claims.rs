//! The access token's claims: lifetime, issuer, token use, audience,
//! client, the binding to the data token's login, and what the request
//! gets from it (groups, scopes, claim headers).

use super::error::AccessTokenError;
use crate::config::AccessTokenConfig;
use crate::identity::{claim_header_value, is_safe_header_value};
use crate::rules::Groups;
use serde_json::{Map, Value};

/// A verified access token: what rules and headers may use.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAccessToken {
    /// The `subject_claim` value, equal to the data token's `sub`.
    pub subject: String,
    /// Unix seconds after which the token is expired (skew included).
    pub valid_until: f64,
    /// Unix seconds before which the token is not yet valid (skew included).
    pub valid_from: f64,
    /// From `groups_claim`: sorted, each once.
    pub groups: Vec<String>,
    /// Group names dropped (a comma or control character, not a string).
    pub groups_dropped: usize,
    /// From `scopes_claim`: sorted, each once.
    pub scopes: Vec<String>,
    /// Scope values dropped (a control character, not a string).
    pub scopes_dropped: usize,
    /// `claim_headers`: header name and value pairs, in configuration order.
    pub headers: Vec<(String, String)>,
    /// The verified payload, for rules on access-token claims.
    pub payload: Map<String, Value>,
}

impl VerifiedAccessToken {
    pub fn is_current(&self, now_s: f64) -> bool {
        now_s < self.valid_until && now_s >= self.valid_from
    }

    /// The checks a cached token needs again on every use: its lifetime,
    /// and that it belongs to this request's login.
    pub fn recheck(&self, data_sub: &str, now_s: f64) -> Result<(), AccessTokenError> {
        if now_s >= self.valid_until {
            return Err(AccessTokenError::Expired);
        }
        if now_s < self.valid_from {
            return Err(AccessTokenError::NotYetValid);
        }
        if self.subject != data_sub {
            return Err(AccessTokenError::WrongSubject);
        }
        Ok(())
    }

    /// The `x-auth-scopes` value: space-joined; `None` without scopes.
    pub fn scopes_header_value(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }
}

fn number(payload: &Map<String, Value>, name: &str) -> Result<Option<f64>, AccessTokenError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or(AccessTokenError::BadClaims),
    }
}

/// Checks `payload` at `now_s` (Unix seconds) for the login whose data
/// token's `sub` is `data_sub`, in the order the issue lists the checks.
pub fn check(
    payload: &Map<String, Value>,
    config: &AccessTokenConfig,
    clock_skew_s: u64,
    data_sub: &str,
    now_s: f64,
) -> Result<VerifiedAccessToken, AccessTokenError> {
    let skew = clock_skew_s as f64;
    let exp = number(payload, "exp")?.ok_or(AccessTokenError::BadClaims)?;
    let valid_until = exp + skew;
    let valid_from = match number(payload, "nbf")? {
        Some(nbf) => nbf - skew,
        None => f64::NEG_INFINITY,
    };
    if now_s >= valid_until {
        return Err(AccessTokenError::Expired);
    }
    if now_s < valid_from {
        return Err(AccessTokenError::NotYetValid);
    }
    if payload.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(AccessTokenError::BadIssuer);
    }
    // Cognito marks its tokens; an ID token in the access token's place is refused.
    if payload
        .get("token_use")
        .is_some_and(|token_use| token_use != "access")
    {
        return Err(AccessTokenError::BadTokenUse);
    }
    if !config.audiences.is_empty() {
        let matches = match payload.get("aud") {
            Some(Value::String(aud)) => config.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| config.audiences.iter().any(|a| a == aud)),
            _ => false,
        };
        if !matches {
            return Err(AccessTokenError::BadAudience);
        }
    }
    if !config.client_ids.is_empty() {
        let client = payload.get(&config.client_id_claim).and_then(Value::as_str);
        if !client.is_some_and(|client| config.client_ids.iter().any(|c| c == client)) {
            return Err(AccessTokenError::BadClient);
        }
    }
    let subject = match payload.get(&config.subject_claim) {
        Some(Value::String(subject)) if subject == data_sub => subject.clone(),
        _ => return Err(AccessTokenError::WrongSubject),
    };

    let groups = Groups::collect(payload, config.groups_claim.as_slice(), []);
    let (scopes, scopes_dropped) = scopes(payload.get(&config.scopes_claim));
    let headers = config
        .claim_headers
        .iter()
        .filter_map(|(claim, header)| {
            let value = payload.get(claim).and_then(claim_header_value)?;
            Some((header.clone(), value))
        })
        .collect();
    Ok(VerifiedAccessToken {
        subject,
        valid_until,
        valid_from,
        groups: groups.names().iter().map(|g| (*g).to_owned()).collect(),
        groups_dropped: groups.dropped(),
        scopes,
        scopes_dropped,
        headers,
        payload: payload.clone(),
    })
}

/// Scopes from a space-separated string (OAuth's `scope`, Entra's `scp`)
/// or an array of strings (Okta's `scp`): sorted, each once, with the
/// number dropped. A scope is dropped when it is not a string, or would not
/// survive as one item of a space-joined header value.
fn scopes(claim: Option<&Value>) -> (Vec<String>, usize) {
    let items: Vec<Option<&str>> = match claim {
        None => Vec::new(),
        Some(Value::String(list)) => list.split(' ').map(Some).collect(),
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
        Some(_) => vec![None],
    };
    let mut dropped = 0;
    let mut scopes = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Some("") => {}
            Some(scope)
                if !scope.chars().any(char::is_whitespace) && is_safe_header_value(scope) =>
            {
                scopes.push(scope.to_owned())
            }
            _ => dropped += 1,
        }
    }
    scopes.sort_unstable();
    scopes.dedup();
    (scopes, dropped)
}
