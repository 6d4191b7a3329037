//! Profile fields: claims stored on the user (`ALB_OIDC_PROFILE_CLAIMS`),
//! the equivalent of overriding the Django backend's `_sync_user_fields`.

use serde_json::{Map, Value};

use crate::db::ProfileField;

/// Most mappings `--profile-claims` accepts.
pub const MAX_PROFILE_CLAIMS: usize = 32;
/// Longest value stored (bytes of the string, or of the JSON text); a longer
/// one is skipped so that one odd claim cannot bloat every answer.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Longest field name.
const MAX_FIELD_NAME: usize = 64;

/// One `claim=field` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileClaim {
    pub claim: String,
    pub field: String,
}

/// Field names are `^[a-z][a-z0-9_]{0,63}$`: the filter's `user_headers`
/// keys name them, and they read the same in JSON, logs and SQL.
pub fn check_field_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_FIELD_NAME;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "profile field name {name:?} must start with a-z and contain only a-z, 0-9 and _ \
             (at most {MAX_FIELD_NAME} characters)"
        ))
    }
}

/// Parses `claim=field,claim=field,...` (spaces around items are ignored;
/// the last `=` separates, so a claim name may contain `=` but not `,`).
/// Empty: no profile fields.
pub fn parse_profile_claims(spec: &str) -> Result<Vec<ProfileClaim>, String> {
    let mut mappings: Vec<ProfileClaim> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((claim, field)) = item.rsplit_once('=') else {
            return Err(format!("{item:?} is not claim=field"));
        };
        let (claim, field) = (claim.trim(), field.trim());
        if claim.is_empty() || claim.chars().any(char::is_control) {
            return Err(format!(
                "{item:?}: the claim name must be non-empty, without control characters"
            ));
        }
        check_field_name(field)?;
        if mappings.iter().any(|m| m.field == field) {
            return Err(format!("profile field {field:?} is mapped twice"));
        }
        mappings.push(ProfileClaim {
            claim: claim.to_owned(),
            field: field.to_owned(),
        });
    }
    if mappings.len() > MAX_PROFILE_CLAIMS {
        return Err(format!(
            "{} mappings; at most {MAX_PROFILE_CLAIMS} are allowed",
            mappings.len()
        ));
    }
    Ok(mappings)
}

/// What the claims say about the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileValues {
    /// Fields to hold these values (sorted by name).
    pub present: Vec<ProfileField>,
    /// Fields whose value was too long: left as stored.
    pub oversized: Vec<String>,
}

impl ProfileValues {
    /// The stored profile brought in line with the claims: present values
    /// written, oversized ones kept as they were, every other field
    /// (absent or null claim, field no longer mapped) removed. Returns what
    /// to set and what to remove; both empty when nothing changes.
    pub fn changes(&self, stored: &[ProfileField]) -> (Vec<ProfileField>, Vec<String>) {
        let set: Vec<ProfileField> = self
            .present
            .iter()
            .filter(|f| !stored.contains(f))
            .cloned()
            .collect();
        let remove: Vec<String> = stored
            .iter()
            .filter(|s| {
                !self.present.iter().any(|p| p.name == s.name) && !self.oversized.contains(&s.name)
            })
            .map(|s| s.name.clone())
            .collect();
        (set, remove)
    }
}

/// The profile values of a verified payload. Strings are stored as they
/// are; numbers, booleans, arrays and objects as their JSON text; null
/// counts as absent.
pub fn profile_values(mappings: &[ProfileClaim], claims: &Map<String, Value>) -> ProfileValues {
    let mut out = ProfileValues::default();
    for m in mappings {
        let value = match claims.get(&m.claim) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if value.len() > MAX_VALUE_BYTES {
            tracing::warn!(
                claim = %m.claim,
                field = %m.field,
                bytes = value.len(),
                limit = MAX_VALUE_BYTES,
                "profile claim value too long; not stored (the stored value, if any, stays)"
            );
            out.oversized.push(m.field.clone());
            continue;
        }
        out.present.push(ProfileField {
            name: m.field.clone(),
            value,
        });
    }
    out.present.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn field(name: &str, value: &str) -> ProfileField {
        ProfileField {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn mappings_parse() {
        assert_eq!(parse_profile_claims("").unwrap(), vec![]);
        assert_eq!(
            parse_profile_claims(" custom:department=department , custom:employee_id=employee_id,")
                .unwrap(),
            vec![
                ProfileClaim {
                    claim: "custom:department".into(),
                    field: "department".into()
                },
                ProfileClaim {
                    claim: "custom:employee_id".into(),
                    field: "employee_id".into()
                },
            ]
        );
        assert_eq!(
            parse_profile_claims("a=b=c").unwrap(),
            vec![ProfileClaim {
                claim: "a=b".into(),
                field: "c".into()
            }]
        );
    }

    #[test]
    fn bad_mappings_are_refused() {
        for spec in [
            "department",
            "=department",
            "x=",
            "x=Department",
            "x=1dept",
            "x=dept-name",
            "x=dept name",
            "a=f,b=f",
            "a\u{1}b=f",
        ] {
            assert!(parse_profile_claims(spec).is_err(), "{spec:?}");
        }
        let long_field = format!("c={}", "f".repeat(65));
        assert!(parse_profile_claims(&long_field).is_err());
        assert!(parse_profile_claims(&format!("c={}", "f".repeat(64))).is_ok());
    }

    #[test]
    fn at_most_32_mappings() {
        let spec = |n: usize| {
            (0..n)
                .map(|i| format!("c{i}=f{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(parse_profile_claims(&spec(32)).unwrap().len(), 32);
        let err = parse_profile_claims(&spec(33)).unwrap_err();
        assert!(err.contains("33 mappings"), "{err}");
    }

    #[test]
    fn values_from_claims() {
        let mappings = parse_profile_claims("s=s,n=n,b=b,a=a,o=o,z=z,missing=m,long=l").unwrap();
        let claims = json!({
            "s": "Sales", "n": 42, "b": true, "a": ["x", 1], "o": {"k": "v"}, "z": null,
            "long": "x".repeat(1025),
        });
        let v = profile_values(&mappings, claims.as_object().unwrap());
        assert_eq!(
            v.present,
            vec![
                field("a", r#"["x",1]"#),
                field("b", "true"),
                field("n", "42"),
                field("o", r#"{"k":"v"}"#),
                field("s", "Sales"),
            ]
        );
        assert_eq!(v.oversized, vec!["l".to_owned()]);
        let exactly = json!({"long": "x".repeat(1024)});
        let v = profile_values(&mappings, exactly.as_object().unwrap());
        assert_eq!(v.present, vec![field("l", &"x".repeat(1024))]);
    }

    #[test]
    fn changes_against_the_stored_profile() {
        let v = ProfileValues {
            present: vec![field("a", "1"), field("b", "new")],
            oversized: vec!["c".into()],
        };
        let stored = vec![
            field("a", "1"),
            field("b", "old"),
            field("c", "kept"),
            field("d", "gone"),
        ];
        assert_eq!(
            v.changes(&stored),
            (vec![field("b", "new")], vec!["d".to_owned()])
        );
        assert_eq!(
            v.changes(&[field("a", "1"), field("b", "new")]),
            (vec![], vec![])
        );
    }
}
