//! The groups a rule sees: from the verified token's `groups_claim` claims
//! and from the user service, as one deduplicated, sorted set.

use serde_json::{Map, Value};

/// A user's groups, borrowed from the verified claims and the user
/// service's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups<'a> {
    /// Sorted, each once.
    names: Vec<&'a str>,
    dropped: usize,
}

impl<'a> Groups<'a> {
    /// The union of the claims named by `groups_claims` and `user_groups`.
    /// A claim holds an array of strings, or one string of comma-separated
    /// items (whitespace around each trimmed; `Domain Admins` stays one
    /// group). Empty items are skipped; names with a comma or a control
    /// character, and values that are not strings, are dropped and counted
    /// (`dropped`): the caller logs and counts them.
    pub fn collect(
        claims: &'a Map<String, Value>,
        groups_claims: &[String],
        user_groups: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut groups = Groups::default();
        for claim in groups_claims {
            match claims.get(claim) {
                None => {}
                Some(Value::String(items)) => {
                    for item in items.split(',') {
                        groups.add(item.trim());
                    }
                }
                Some(Value::Array(items)) => {
                    for item in items {
                        match item {
                            Value::String(name) => groups.add(name),
                            _ => groups.dropped += 1,
                        }
                    }
                }
                Some(_) => groups.dropped += 1,
            }
        }
        for name in user_groups {
            groups.add(name);
        }
        groups.names.sort_unstable();
        groups.names.dedup();
        groups
    }

    /// The union of groups already collected from a token (sorted, each
    /// once, as `collect` leaves them) and `user_groups`. Without user
    /// groups nothing is sorted again: the common case on every request.
    pub fn with_user_groups(
        token_groups: &'a [String],
        user_groups: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut groups = Groups {
            names: token_groups.iter().map(String::as_str).collect(),
            dropped: 0,
        };
        let before = groups.names.len();
        for name in user_groups {
            groups.add(name);
        }
        if groups.names.len() != before {
            groups.names.sort_unstable();
            groups.names.dedup();
        }
        groups
    }

    fn add(&mut self, name: &'a str) {
        if name.is_empty() {
            return;
        }
        if name.contains(',') || name.chars().any(char::is_control) {
            self.dropped += 1;
        } else {
            self.names.push(name);
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.binary_search(&name).is_ok()
    }

    /// Sorted, each once.
    pub fn names(&self) -> &[&'a str] {
        &self.names
    }

    /// How many names were dropped (comma, control character, not a string).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The `x-auth-groups` value: comma-joined; `None` for no groups (empty
    /// values are not injected).
    pub fn header_value(&self) -> Option<String> {
        (!self.names.is_empty()).then(|| self.names.join(","))
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

    #[test]
    fn union_of_claims_and_user_service() {
        let c = claims(json!({
            "custom:groups": " Domain Admins , staff,,admin ",
            "custom:roles": ["admin", "ops", 7, "a,b", "bell\u{7}"],
            "other": ["ignored"],
        }));
        let user = ["zeta".to_owned(), "staff".to_owned()];
        let g = Groups::collect(
            &c,
            &[
                "custom:groups".into(),
                "custom:roles".into(),
                "missing".into(),
            ],
            user.iter().map(String::as_str),
        );
        assert_eq!(
            g.names(),
            ["Domain Admins", "admin", "ops", "staff", "zeta"]
        );
        assert_eq!(g.dropped(), 3);
        assert_eq!(
            g.header_value().as_deref(),
            Some("Domain Admins,admin,ops,staff,zeta")
        );
        assert!(g.contains("Domain Admins") && !g.contains("ignored") && !g.contains("Domain"));
    }

    #[test]
    fn token_groups_joined_with_the_user_service() {
        let token = ["admin".to_owned(), "staff".to_owned()];
        let user = ["zeta", "admin", "a,b", ""];
        let g = Groups::with_user_groups(&token, user);
        assert_eq!(g.names(), ["admin", "staff", "zeta"]);
        assert_eq!(g.dropped(), 1);
        let g = Groups::with_user_groups(&token, []);
        assert_eq!(g.header_value().as_deref(), Some("admin,staff"));
    }

    #[test]
    fn a_claim_of_another_type_is_dropped() {
        let c = claims(json!({"g": {"admin": true}, "h": 5}));
        let g = Groups::collect(&c, &["g".into(), "h".into()], []);
        assert_eq!(g.names(), [] as [&str; 0]);
        assert_eq!(g.dropped(), 2);
        assert_eq!(g.header_value(), None);
    }
}
