//! Identities the proxy can log in as: a JSON object mapping a name to the
//! userinfo claims the IdP would return (Cognito style: `email_verified` and
//! custom attributes as strings). A member `access_token` (an object) is no
//! claim: it holds what the identity's access token says besides the login
//! (`cognito:groups`, `scope`), as Cognito keeps groups and scopes there.

use std::path::Path;

use crate::error::{Error, Result};
use alb_oidc_testkit::token::{Claims, OrderedEntries};

/// The reserved name that forwards requests with no claims at all
/// (the ALB's `OnUnauthenticatedRequest=allow` for a logged-out user).
pub const ANONYMOUS: &str = "anonymous";

/// The built-in set, identical to `alb-sim/identities.example.json`.
pub const BUILTIN_JSON: &str = include_str!("../identities.example.json");

/// The member of an identity that holds its access-token claims.
pub const ACCESS_TOKEN_MEMBER: &str = "access_token";

/// One identity: its userinfo claims and its access token's own claims.
#[derive(Debug, Clone)]
struct Identity {
    name: String,
    claims: Claims,
    access: Claims,
}

/// Named claim sets, in file order.
#[derive(Debug, Clone)]
pub struct Identities(Vec<Identity>);

impl Identities {
    /// Parses an identities document: `{"name": {claims...}, ...}`.
    /// Duplicate names or claims, non-object values and the reserved name
    /// `anonymous` are errors.
    pub fn from_json(text: &str) -> Result<Self> {
        let entries: OrderedEntries<Claims> = serde_json::from_str(text)?;
        if entries.0.is_empty() {
            return Err(Error::Invalid("identities: no identity defined".into()));
        }
        for (name, _) in &entries.0 {
            if name == ANONYMOUS {
                return Err(Error::Invalid(format!(
                    "identities: {ANONYMOUS:?} is reserved (it means: no token)"
                )));
            }
            if name.is_empty() {
                return Err(Error::Invalid("identities: empty name".into()));
            }
        }
        let mut identities = Vec::with_capacity(entries.0.len());
        for (name, mut claims) in entries.0 {
            let access = match claims.remove(ACCESS_TOKEN_MEMBER) {
                None => Claims::new(),
                Some(value @ serde_json::Value::Object(_)) => {
                    Claims::from_json(&value.to_string())?
                }
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "identities: {name}.{ACCESS_TOKEN_MEMBER} is not an object"
                    )))
                }
            };
            identities.push(Identity {
                name,
                claims,
                access,
            });
        }
        Ok(Identities(identities))
    }

    /// Reads an identities file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io_path("reading", path, e))?;
        Self::from_json(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    /// The built-in identities (alice, bob, carol).
    pub fn builtin() -> Result<Self> {
        Self::from_json(BUILTIN_JSON)
    }

    /// `load(path)` when given, else [`Identities::builtin`].
    pub fn load_or_builtin(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) => Self::load(path),
            None => Self::builtin(),
        }
    }

    /// The claims of `name`.
    pub fn get(&self, name: &str) -> Option<&Claims> {
        self.find(name).map(|i| &i.claims)
    }

    /// What the access token of `name` says besides the login (empty when
    /// the identity has no `access_token` member).
    pub fn access_claims(&self, name: &str) -> Option<&Claims> {
        self.find(name).map(|i| &i.access)
    }

    fn find(&self, name: &str) -> Option<&Identity> {
        self.0.iter().find(|i| i.name == name)
    }

    /// The names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|i| i.name.as_str())
    }

    /// The first identity's name (the default user when none is configured).
    pub fn first_name(&self) -> Option<&str> {
        self.0.first().map(|i| i.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::Value;

    #[test]
    fn builtin_matches_the_brief() {
        let ids = Identities::builtin().unwrap();
        assert_eq!(ids.names().collect::<Vec<_>>(), ["alice", "bob", "carol"]);
        let alice = ids.get("alice").unwrap();
        assert_eq!(alice.get("email_verified"), Some(&Value::from("true")));
        assert_eq!(
            alice.get("custom:groups"),
            Some(&Value::from("admin,staff"))
        );
        assert_eq!(alice.get(ACCESS_TOKEN_MEMBER), None, "not a claim");
        let access = ids.access_claims("alice").unwrap();
        assert_eq!(
            access.get("cognito:groups"),
            Some(&serde_json::json!(["admin"]))
        );
        let bob = ids.get("bob").unwrap();
        assert_eq!(bob.get("email_verified"), Some(&Value::from("false")));
        assert!(ids.get("carol").unwrap().get("sub").is_some());
        assert!(ids.get(ANONYMOUS).is_none());
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(Identities::from_json("{}").is_err());
        assert!(Identities::from_json(r#"{"anonymous":{}}"#).is_err());
        assert!(Identities::from_json(r#"{"a":{},"a":{}}"#).is_err());
        assert!(Identities::from_json(r#"{"a":1}"#).is_err());
        assert!(Identities::from_json(r#"{"a":{"sub":"1","sub":"2"}}"#).is_err());
        assert!(Identities::from_json(r#"{"a":{"access_token":"x"}}"#).is_err());
    }
}
