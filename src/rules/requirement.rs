//! What a `require` rule demands of a verified user.
//!
//! A requirement object is a list of conditions that must all hold. Later
//! sources of facts (access-token scopes, user-service permissions) are
//! more `Condition` variants and more `Subject` fields, nothing else.

use super::groups::Groups;
use serde_json::{Map, Value};

/// One requirement object: every condition must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// At least one of these groups.
    GroupsAny(Vec<String>),
    /// Every one of these groups.
    GroupsAll(Vec<String>),
    /// Every listed claim has one of its accepted values.
    Claims(Vec<ClaimValues>),
    /// At least one of these scopes of the verified access token.
    ScopesAny(Vec<String>),
    /// Every one of these scopes of the verified access token.
    ScopesAll(Vec<String>),
    /// Every listed claim of the verified access token has one of its
    /// accepted values (compared as `Claims` compares).
    AccessClaims(Vec<ClaimValues>),
    /// At least one nested requirement holds.
    AnyOf(Vec<Requirement>),
}

/// A claim and the values it may have, as JSON text (numbers and booleans
/// compare as their JSON text: `42`, `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimValues {
    pub claim: String,
    pub accepted: Vec<String>,
}

/// What a requirement is checked against: the verified user. Built with
/// `Subject::new`, so that later sources (an access token's scopes, the
/// user service's permissions) are more fields, set by more constructors.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Subject<'s> {
    pub groups: &'s Groups<'s>,
    /// The verified token's payload.
    pub claims: &'s Map<String, Value>,
    /// The verified access token's scopes (sorted, each once); empty
    /// without one.
    pub scopes: &'s [String],
    /// The verified access token's payload, if there is one.
    pub access_claims: Option<&'s Map<String, Value>>,
}

impl<'s> Subject<'s> {
    pub fn new(groups: &'s Groups<'s>, claims: &'s Map<String, Value>) -> Self {
        Subject {
            groups,
            claims,
            scopes: &[],
            access_claims: None,
        }
    }

    /// What a verified access token adds: its scopes and its claims.
    pub fn with_access_token(
        self,
        scopes: &'s [String],
        access_claims: &'s Map<String, Value>,
    ) -> Self {
        Subject {
            scopes,
            access_claims: Some(access_claims),
            ..self
        }
    }
}

impl Requirement {
    /// `conditions` must not be empty (the configuration refuses that).
    pub fn new(conditions: Vec<Condition>) -> Self {
        Requirement { conditions }
    }

    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// `Err` names the condition that failed, relative to this object
    /// (`groups_any`, `claims.custom:tenant`, `any_of`).
    pub fn check(&self, subject: &Subject<'_>) -> Result<(), String> {
        for condition in &self.conditions {
            condition.check(subject)?;
        }
        Ok(())
    }
}

impl Condition {
    /// The configuration field this condition comes from.
    pub fn field(&self) -> &'static str {
        match self {
            Condition::GroupsAny(_) => "groups_any",
            Condition::GroupsAll(_) => "groups_all",
            Condition::Claims(_) => "claims",
            Condition::ScopesAny(_) => "scopes_any",
            Condition::ScopesAll(_) => "scopes_all",
            Condition::AccessClaims(_) => "access_claims",
            Condition::AnyOf(_) => "any_of",
        }
    }

    fn check(&self, subject: &Subject<'_>) -> Result<(), String> {
        let holds = match self {
            Condition::GroupsAny(groups) => groups.iter().any(|g| subject.groups.contains(g)),
            Condition::GroupsAll(groups) => groups.iter().all(|g| subject.groups.contains(g)),
            Condition::Claims(claims) => {
                return claims_hold("claims", claims, Some(subject.claims))
            }
            Condition::ScopesAny(scopes) => scopes.iter().any(|s| has_scope(subject, s)),
            Condition::ScopesAll(scopes) => scopes.iter().all(|s| has_scope(subject, s)),
            Condition::AccessClaims(claims) => {
                return claims_hold("access_claims", claims, subject.access_claims)
            }
            Condition::AnyOf(options) => options.iter().any(|r| r.check(subject).is_ok()),
        };
        if holds {
            Ok(())
        } else {
            Err(self.field().to_owned())
        }
    }
}

fn has_scope(subject: &Subject<'_>, scope: &str) -> bool {
    subject
        .scopes
        .binary_search_by(|s| s.as_str().cmp(scope))
        .is_ok()
}

/// Every claim of `claims` holds in `payload` (none holds without one);
/// `Err` names the first that does not, under `field`.
fn claims_hold(
    field: &str,
    claims: &[ClaimValues],
    payload: Option<&Map<String, Value>>,
) -> Result<(), String> {
    match claims
        .iter()
        .find(|c| !c.holds(payload.and_then(|p| p.get(&c.claim))))
    {
        Some(failed) => Err(format!("{field}.{}", failed.claim)),
        None => Ok(()),
    }
}

impl ClaimValues {
    /// A string must be one of the values, an array must contain one;
    /// strings are never split (list-valued claims belong in `groups_claim`).
    fn holds(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::Array(items)) => items.iter().any(|item| self.accepts(item)),
            Some(value) => self.accepts(value),
            None => false,
        }
    }

    fn accepts(&self, value: &Value) -> bool {
        let text = match value {
            Value::String(s) => s.as_str(),
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            Value::Number(n) => return self.accepted.contains(&n.to_string()),
            Value::Null | Value::Array(_) | Value::Object(_) => return false,
        };
        self.accepted.iter().any(|a| a == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn tenant(values: &[&str]) -> Condition {
        Condition::Claims(vec![ClaimValues {
            claim: "custom:tenant".into(),
            accepted: values.iter().map(|v| v.to_string()).collect(),
        }])
    }

    fn check(condition: Condition, payload: Value, groups: &[&str]) -> Result<(), String> {
        let c = claims(payload);
        let user: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let g = Groups::collect(&c, &[], user.iter().map(String::as_str));
        Requirement::new(vec![condition]).check(&Subject::new(&g, &c))
    }

    #[test]
    fn claims_compare_strings_arrays_and_json_text() {
        let t = || tenant(&["acme", "42", "true"]);
        for (payload, expected) in [
            (json!({"custom:tenant": "acme"}), true),
            (json!({"custom:tenant": "Acme"}), false),
            (json!({"custom:tenant": "acme,globex"}), false),
            (json!({"custom:tenant": ["x", "acme"]}), true),
            (json!({"custom:tenant": ["x", 42]}), true),
            (json!({"custom:tenant": 42}), true),
            (json!({"custom:tenant": 42.0}), false),
            (json!({"custom:tenant": true}), true),
            (json!({"custom:tenant": false}), false),
            (json!({"custom:tenant": null}), false),
            (json!({"custom:tenant": {"acme": 1}}), false),
            (json!({"custom:tenant": [["acme"]]}), false),
            (json!({}), false),
        ] {
            let result = check(t(), payload.clone(), &[]);
            assert_eq!(result.is_ok(), expected, "{payload}");
            if !expected {
                assert_eq!(result, Err("claims.custom:tenant".to_owned()));
            }
        }
    }

    #[test]
    fn groups_any_all_and_any_of() {
        let any = || Condition::GroupsAny(vec!["admin".into(), "ops".into()]);
        let all = || Condition::GroupsAll(vec!["staff".into(), "oncall".into()]);
        assert_eq!(check(any(), json!({}), &["ops"]), Ok(()));
        assert_eq!(
            check(any(), json!({}), &["staff"]),
            Err("groups_any".into())
        );
        assert_eq!(check(all(), json!({}), &["staff", "oncall"]), Ok(()));
        assert_eq!(
            check(all(), json!({}), &["staff"]),
            Err("groups_all".into())
        );
        let either = || {
            Condition::AnyOf(vec![
                Requirement::new(vec![all()]),
                Requirement::new(vec![Condition::GroupsAny(vec!["admin".into()])]),
            ])
        };
        assert_eq!(check(either(), json!({}), &["admin"]), Ok(()));
        assert_eq!(check(either(), json!({}), &["oncall", "staff"]), Ok(()));
        assert_eq!(
            check(either(), json!({}), &["oncall"]),
            Err("any_of".into())
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let c = claims(json!({"custom:tenant": "acme"}));
        let user = ["admin".to_owned()];
        let g = Groups::collect(&c, &[], user.iter().map(String::as_str));
        let subject = Subject::new(&g, &c);
        let both = Requirement::new(vec![
            Condition::GroupsAny(vec!["admin".into()]),
            tenant(&["globex"]),
        ]);
        assert_eq!(both.check(&subject), Err("claims.custom:tenant".into()));
        let both = Requirement::new(vec![
            Condition::GroupsAny(vec!["admin".into()]),
            tenant(&["acme"]),
        ]);
        assert_eq!(both.check(&subject), Ok(()));
    }

    #[test]
    fn scopes_and_access_claims_need_a_verified_access_token() {
        let c = claims(json!({}));
        let g = Groups::collect(&c, &[], []);
        let access = claims(json!({"custom:tier": "gold", "scope": "ignored"}));
        let scopes = vec!["orders.read".to_owned(), "orders.write".to_owned()];
        let without = Subject::new(&g, &c);
        let with = Subject::new(&g, &c).with_access_token(&scopes, &access);
        let any = Requirement::new(vec![Condition::ScopesAny(vec![
            "admin".into(),
            "orders.write".into(),
        ])]);
        let all = Requirement::new(vec![Condition::ScopesAll(vec![
            "orders.read".into(),
            "orders.delete".into(),
        ])]);
        let tier = Requirement::new(vec![Condition::AccessClaims(vec![ClaimValues {
            claim: "custom:tier".into(),
            accepted: vec!["gold".into()],
        }])]);
        assert_eq!(any.check(&with), Ok(()));
        assert_eq!(any.check(&without), Err("scopes_any".into()));
        assert_eq!(all.check(&with), Err("scopes_all".into()));
        assert_eq!(tier.check(&with), Ok(()));
        assert_eq!(
            tier.check(&without),
            Err("access_claims.custom:tier".into())
        );
        // A data-token claim of the same name never stands in for it.
        let data = claims(json!({"custom:tier": "gold"}));
        assert_eq!(
            tier.check(&Subject::new(&g, &data)),
            Err("access_claims.custom:tier".into())
        );
    }
}
