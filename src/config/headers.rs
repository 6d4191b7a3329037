//! The identity headers the filter injects: their roles, default names and
//! configured names (the one list of them), and what makes a header name
//! acceptable.

use super::ConfigError;
use std::collections::BTreeMap;
use strum::VariantArray;

/// What an injected identity header carries. Its configuration key (under
/// `headers`) is its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum HeaderRole {
    /// The username claim.
    User,
    /// The verified payload, base64url.
    Claims,
    /// The user service's id of the user.
    UserId,
    /// The user service's (verified) email.
    Email,
    /// The user service's groups, comma-joined.
    Groups,
    /// The user service's "first last".
    Name,
    /// The verified access token's scopes, space-joined.
    Scopes,
}

impl HeaderRole {
    /// The key under `headers` in the configuration (`user_id`).
    pub fn key(self) -> &'static str {
        self.into()
    }

    /// The header's name unless configured otherwise.
    pub fn default_name(self) -> &'static str {
        match self {
            HeaderRole::User => "x-auth-user",
            HeaderRole::Claims => "x-auth-claims",
            HeaderRole::UserId => "x-auth-user-id",
            HeaderRole::Email => "x-auth-email",
            HeaderRole::Groups => "x-auth-groups",
            HeaderRole::Name => "x-auth-name",
            HeaderRole::Scopes => "x-auth-scopes",
        }
    }

    /// The configuration field naming this header (`headers.user_id`).
    pub fn field(self) -> String {
        format!("headers.{}", self.key())
    }

    fn from_key(key: &str) -> Option<HeaderRole> {
        HeaderRole::VARIANTS
            .iter()
            .copied()
            .find(|role| role.key() == key)
    }
}

/// The names (lower case) of the injected identity headers, one per role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// Indexed by `HeaderRole as usize` (the order of `HeaderRole::VARIANTS`).
    names: [String; HeaderRole::VARIANTS.len()],
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            names: std::array::from_fn(|i| HeaderRole::VARIANTS[i].default_name().to_owned()),
        }
    }
}

impl HeaderNames {
    /// The header name for `role`.
    pub fn get(&self, role: HeaderRole) -> &str {
        &self.names[role as usize]
    }

    /// Every role with its header name, in the order of `HeaderRole`.
    pub fn iter(&self) -> impl Iterator<Item = (HeaderRole, &str)> {
        HeaderRole::VARIANTS
            .iter()
            .map(|&role| (role, self.get(role)))
    }

    /// The names from the `headers` object: each key a role, each value a
    /// header name; a role left out keeps its default.
    pub(super) fn from_config(raw: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut names = HeaderNames::default();
        for (key, value) in raw {
            let Some(role) = HeaderRole::from_key(&key) else {
                let known: Vec<&str> = HeaderRole::VARIANTS.iter().map(|r| r.key()).collect();
                return Err(ConfigError::new(
                    format!("headers.{key}"),
                    format!(
                        "unknown field `{key}`, expected one of `{}`",
                        known.join("`, `")
                    ),
                ));
            };
            names.names[role as usize] = header_name(&role.field(), &value)?;
        }
        Ok(names)
    }
}

/// Header names are matched case-insensitively by HTTP and stored lowercase by
/// Envoy, so they are normalised to lowercase; anything that is not an HTTP
/// token (or is a pseudo-header) is refused.
pub(super) fn header_name(field: &str, value: &str) -> Result<String, ConfigError> {
    let name = value.to_ascii_lowercase();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_keys() {
        let names = HeaderNames::default();
        let listed: Vec<(&str, &str)> = names.iter().map(|(r, n)| (r.key(), n)).collect();
        assert_eq!(
            listed,
            [
                ("user", "x-auth-user"),
                ("claims", "x-auth-claims"),
                ("user_id", "x-auth-user-id"),
                ("email", "x-auth-email"),
                ("groups", "x-auth-groups"),
                ("name", "x-auth-name"),
                ("scopes", "x-auth-scopes"),
            ]
        );
        assert_eq!(HeaderRole::UserId.field(), "headers.user_id");
        // `get` indexes by discriminant: VARIANTS must be in that order.
        for (i, role) in HeaderRole::VARIANTS.iter().enumerate() {
            assert_eq!(*role as usize, i, "{role:?}");
        }
    }

    #[test]
    fn configured_names_replace_defaults() {
        let raw = BTreeMap::from([
            ("email".to_owned(), "X-Mail".to_owned()),
            ("user".to_owned(), "x-who".to_owned()),
        ]);
        let names = HeaderNames::from_config(raw).unwrap();
        assert_eq!(names.get(HeaderRole::Email), "x-mail");
        assert_eq!(names.get(HeaderRole::User), "x-who");
        assert_eq!(names.get(HeaderRole::Groups), "x-auth-groups");
        let unknown = BTreeMap::from([("nick".to_owned(), "x".to_owned())]);
        assert_eq!(
            HeaderNames::from_config(unknown).unwrap_err().field,
            "headers.nick"
        );
    }

    #[test]
    fn header_name_rules() {
        assert_eq!(header_name("f", "X-Ok_1").unwrap(), "x-ok_1");
        for bad in [
            "",
            "bad header",
            ":path",
            "a\r\nb",
            "host",
            "Cookie",
            "authorization",
        ] {
            assert_eq!(header_name("f", bad).unwrap_err().field, "f", "{bad:?}");
        }
        assert!(header_name("f", &"a".repeat(128)).is_ok());
        assert!(header_name("f", &"a".repeat(129)).is_err());
    }
}
