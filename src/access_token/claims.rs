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
    /// `claim_headers`: header name and value pairs, in a stable order (by claim name).
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
    crate::claims::numeric_claim(payload, name).map_err(|()| AccessTokenError::BadClaims)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://idp.example.com/pool";
    const NOW: f64 = 1_000_000.0;

    /// The `access_token` block with `extra` fields, through the real parser.
    fn config(extra: &str) -> AccessTokenConfig {
        let json = format!(
            r#"{{"region":"us-east-1","bypass_validation":true,"access_token":{{
                "issuer":"{ISS}","jwks_cluster":"idp","jwks_authority":"idp.example.com",
                "jwks_path":"/jwks.json"{extra}}}}}"#
        );
        crate::config::parse(json.as_bytes())
            .unwrap()
            .access_token
            .unwrap()
    }

    fn payload(extra: Value) -> Map<String, Value> {
        let mut p = json!({"sub":"u1","iss":ISS,"exp":NOW + 60.0,"token_use":"access"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p.as_object().unwrap().clone()
    }

    fn check_at(
        config: &AccessTokenConfig,
        extra: Value,
        now: f64,
    ) -> Result<VerifiedAccessToken, AccessTokenError> {
        check(&payload(extra), config, 0, "u1", now)
    }

    #[test]
    fn lifetime() {
        let c = config("");
        assert!(check_at(&c, json!({}), NOW).is_ok());
        assert_eq!(
            check_at(&c, json!({"exp": null}), NOW),
            Err(AccessTokenError::BadClaims)
        );
        assert_eq!(
            check_at(&c, json!({"exp": "2000000"}), NOW),
            Err(AccessTokenError::BadClaims)
        );
        assert_eq!(
            check_at(&c, json!({"exp": NOW}), NOW),
            Err(AccessTokenError::Expired)
        );
        assert!(check_at(&c, json!({"exp": NOW + 1.0}), NOW).is_ok());
        assert_eq!(
            check_at(&c, json!({"nbf": NOW + 1.0}), NOW),
            Err(AccessTokenError::NotYetValid)
        );
        assert!(check_at(&c, json!({"nbf": NOW}), NOW).is_ok());
        assert_eq!(
            check_at(&c, json!({"nbf": "x"}), NOW),
            Err(AccessTokenError::BadClaims)
        );
        // clock_skew_s widens both ends.
        let p = payload(json!({"exp": NOW, "nbf": NOW + 30.0}));
        assert!(check(&p, &c, 30, "u1", NOW).is_ok());
        assert_eq!(
            check(&p, &c, 29, "u1", NOW),
            Err(AccessTokenError::NotYetValid)
        );
        assert_eq!(
            check(&p, &c, 30, "u1", NOW + 30.0),
            Err(AccessTokenError::Expired)
        );
    }

    #[test]
    fn issuer_and_token_use() {
        let c = config("");
        assert_eq!(
            check_at(&c, json!({"iss": null}), NOW),
            Err(AccessTokenError::BadIssuer)
        );
        assert_eq!(
            check_at(&c, json!({"iss": format!("{ISS}/")}), NOW),
            Err(AccessTokenError::BadIssuer)
        );
        assert_eq!(
            check_at(&c, json!({"iss": [ISS]}), NOW),
            Err(AccessTokenError::BadIssuer)
        );
        assert_eq!(
            check_at(&c, json!({"token_use": "id"}), NOW),
            Err(AccessTokenError::BadTokenUse)
        );
        assert_eq!(
            check_at(&c, json!({"token_use": ["access"]}), NOW),
            Err(AccessTokenError::BadTokenUse)
        );
        assert!(check_at(&c, json!({"token_use": null}), NOW).is_ok());
    }

    #[test]
    fn audiences_when_set() {
        let open = config("");
        assert!(check_at(&open, json!({"aud": "anything"}), NOW).is_ok());
        let c = config(r#","audiences":["api://a","api://b"]"#);
        assert!(check_at(&c, json!({"aud": "api://b"}), NOW).is_ok());
        assert!(check_at(&c, json!({"aud": ["x", "api://a"]}), NOW).is_ok());
        assert_eq!(
            check_at(&c, json!({}), NOW),
            Err(AccessTokenError::BadAudience)
        );
        assert_eq!(
            check_at(&c, json!({"aud": "api://c"}), NOW),
            Err(AccessTokenError::BadAudience)
        );
        assert_eq!(
            check_at(&c, json!({"aud": ["x"]}), NOW),
            Err(AccessTokenError::BadAudience)
        );
        assert_eq!(
            check_at(&c, json!({"aud": {"api://a": 1}}), NOW),
            Err(AccessTokenError::BadAudience)
        );
    }

    #[test]
    fn client_ids_when_set() {
        let c = config(r#","client_ids":["app1"]"#);
        assert!(check_at(&c, json!({"client_id": "app1"}), NOW).is_ok());
        assert_eq!(
            check_at(&c, json!({"client_id": "app2"}), NOW),
            Err(AccessTokenError::BadClient)
        );
        assert_eq!(
            check_at(&c, json!({}), NOW),
            Err(AccessTokenError::BadClient)
        );
        assert_eq!(
            check_at(&c, json!({"client_id": ["app1"]}), NOW),
            Err(AccessTokenError::BadClient)
        );
        // Okta's `cid`: only the configured claim counts.
        let okta = config(r#","client_ids":["app1"],"client_id_claim":"cid""#);
        assert!(check_at(&okta, json!({"cid": "app1"}), NOW).is_ok());
        assert_eq!(
            check_at(&okta, json!({"client_id": "app1"}), NOW),
            Err(AccessTokenError::BadClient)
        );
    }

    #[test]
    fn subject_binds_to_the_data_token() {
        let c = config("");
        assert_eq!(
            check(&payload(json!({})), &c, 0, "u2", NOW),
            Err(AccessTokenError::WrongSubject)
        );
        assert_eq!(
            check_at(&c, json!({"sub": null}), NOW),
            Err(AccessTokenError::WrongSubject)
        );
        assert_eq!(
            check_at(&c, json!({"sub": 1}), NOW),
            Err(AccessTokenError::WrongSubject)
        );
        // Okta: the user id is `uid`, `sub` is the login name.
        let okta = config(r#","subject_claim":"uid""#);
        let p = payload(json!({"sub": "alice@example.com", "uid": "u1"}));
        assert_eq!(check(&p, &okta, 0, "u1", NOW).unwrap().subject, "u1");
        assert_eq!(
            check(&p, &okta, 0, "alice@example.com", NOW),
            Err(AccessTokenError::WrongSubject)
        );
    }

    #[test]
    fn groups_scopes_and_claim_headers() {
        let c = config(
            r#","groups_claim":"cognito:groups","claim_headers":{"custom:tier":"x-auth-tier","custom:n":"x-n","custom:obj":"x-obj"}"#,
        );
        let t = check_at(
            &c,
            json!({
                "cognito:groups": ["staff", "admin", "staff", 7, "a,b"],
                "scope": "openid  profile aws.cognito.signin.user.admin openid",
                "custom:tier": "gold",
                "custom:n": 3,
                "custom:obj": {"a": 1},
            }),
            NOW,
        )
        .unwrap();
        assert_eq!(t.groups, ["admin", "staff"]);
        assert_eq!(t.groups_dropped, 2);
        assert_eq!(
            t.scopes,
            ["aws.cognito.signin.user.admin", "openid", "profile"]
        );
        assert_eq!(t.scopes_dropped, 0);
        assert_eq!(
            t.scopes_header_value().as_deref(),
            Some("aws.cognito.signin.user.admin openid profile")
        );
        assert_eq!(
            t.headers,
            [
                ("x-n".to_owned(), "3".to_owned()),
                ("x-auth-tier".to_owned(), "gold".to_owned())
            ]
        );
        assert_eq!(t.valid_until, NOW + 60.0);
        // Groups as a comma-separated string, scopes as Okta's `scp` array.
        let okta = config(r#","groups_claim":"groups","scopes_claim":"scp""#);
        let t = check_at(
            &okta,
            json!({"groups": "Everyone, Domain Admins", "scp": ["email", "openid", 5, "a b", "c\u{7}"]}),
            NOW,
        )
        .unwrap();
        assert_eq!(t.groups, ["Domain Admins", "Everyone"]);
        assert_eq!(t.scopes, ["email", "openid"]);
        assert_eq!(t.scopes_dropped, 3);
        // Without the claims: nothing, and no scopes header.
        let t = check_at(&config(""), json!({}), NOW).unwrap();
        assert!(t.groups.is_empty() && t.scopes.is_empty() && t.headers.is_empty());
        assert_eq!(t.scopes_header_value(), None);
        let t = check_at(&config(""), json!({"scope": 5}), NOW).unwrap();
        assert_eq!((t.scopes.len(), t.scopes_dropped), (0, 1));
    }

    #[test]
    fn recheck_on_a_cache_hit() {
        let c = config("");
        let t = check_at(&c, json!({"nbf": NOW}), NOW).unwrap();
        assert_eq!(t.recheck("u1", NOW + 59.0), Ok(()));
        assert!(t.is_current(NOW + 59.0));
        assert_eq!(t.recheck("u1", NOW + 60.0), Err(AccessTokenError::Expired));
        assert!(!t.is_current(NOW + 60.0));
        assert_eq!(
            t.recheck("u1", NOW - 1.0),
            Err(AccessTokenError::NotYetValid)
        );
        assert_eq!(t.recheck("u2", NOW), Err(AccessTokenError::WrongSubject));
    }
}
