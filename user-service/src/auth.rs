//! The Authenticate decision: get-or-create, field sync, policy checks.
//! Written once over [`Store`], so both backends behave the same.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Map, Value};

use crate::db::{self, Access, NewUser, Store, UserRecord, UserUpdate};
use crate::profile::{profile_values, ProfileClaim, ProfileValues};

/// `last_login` is written when it is older than this (or when anything
/// else about the user changes), so warm users cost a read, not a write.
pub const LAST_LOGIN_RESOLUTION: ChronoDuration = ChronoDuration::seconds(60);

/// How many times a decision is retried after a lost race (two first logins
/// of the same user) or a transient lock conflict.
const MAX_ATTEMPTS: usize = 5;

/// The policies, named after the Django package's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `AMZN_OIDC_AUTO_CREATE_USERS`: create unknown users on first login.
    pub auto_create_users: bool,
    /// `AMZN_OIDC_LINK_EXISTING_USERS`: allow logging in to an existing
    /// account that was not created from OIDC claims.
    pub link_existing_users: bool,
    /// `AMZN_OIDC_REQUIRE_VERIFIED_EMAIL`: store an email only when
    /// `email_verified` is true (or the string "true").
    pub require_verified_email: bool,
    /// `AMZN_OIDC_FIRST_NAME_CLAIM`.
    pub first_name_claim: String,
    /// `AMZN_OIDC_LAST_NAME_CLAIM`.
    pub last_name_claim: String,
    /// Optional claim the user's groups are synced from at each login.
    pub groups_claim: Option<String>,
    /// `ALB_OIDC_PROFILE_CLAIMS`: claims stored as profile fields.
    pub profile_claims: Vec<ProfileClaim>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            auto_create_users: true,
            link_existing_users: false,
            require_verified_email: true,
            first_name_claim: "given_name".to_owned(),
            last_name_claim: "family_name".to_owned(),
            groups_claim: None,
            profile_claims: Vec::new(),
        }
    }
}

/// Why a user was refused (mirrors the proto enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    UnknownUser,
    Inactive,
    NotLinkable,
    InvalidClaims,
}

impl RefusalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::UnknownUser => "unknown_user",
            RefusalReason::Inactive => "inactive",
            RefusalReason::NotLinkable => "not_linkable",
            RefusalReason::InvalidClaims => "invalid_claims",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user, after sync, and what they may do. `created` is true on the
    /// first login.
    User {
        user: UserRecord,
        created: bool,
        access: Access,
    },
    Refused {
        reason: RefusalReason,
        message: String,
    },
}

fn refuse(reason: RefusalReason, message: impl Into<String>) -> Outcome {
    Outcome::Refused {
        reason,
        message: message.into(),
    }
}

/// The service could not decide.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("gave up after {MAX_ATTEMPTS} attempts: {0}")]
    Contention(String),
}

impl AuthError {
    /// True when the database is unreachable or overloaded (gRPC UNAVAILABLE)
    /// rather than failing for another reason (INTERNAL).
    pub fn is_unavailable(&self) -> bool {
        match self {
            AuthError::Db(e) => db::is_unavailable(e),
            AuthError::Contention(_) => true,
        }
    }
}

/// What the claims say about the user, after the policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimValues {
    /// The email to store (None: keep the stored one).
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The claim-managed groups (None: neither a groups claim configured
    /// nor access-token groups sent: logins leave groups alone).
    pub groups: Option<Vec<String>>,
    pub profile: ProfileValues,
}

fn non_empty_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Parses a groups claim: an array of strings, or a string separated by
/// commas and/or whitespace. Anything else counts as no groups.
pub fn parse_groups(value: Option<&Value>) -> Vec<String> {
    let groups: Vec<String> = match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_owned())
            .collect(),
        Some(Value::String(s)) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::to_owned)
            .collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            tracing::warn!(
                claim_type = json_type(other),
                "groups claim is neither an array of strings nor a string; treating it as no groups"
            );
            Vec::new()
        }
    };
    clean_groups(groups)
}

/// Trims, drops empty names and names with control characters, sorts and
/// deduplicates.
pub fn clean_groups(groups: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut groups: Vec<String> = groups
        .into_iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty() && !has_control(g))
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Policy {
    /// Applies the claim policies to a verified payload.
    pub fn claim_values(&self, claims: &Map<String, Value>) -> ClaimValues {
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let email = non_empty_str(claims, "email")
            .filter(|_| verified || !self.require_verified_email)
            .map(str::to_owned);

        let (name_first, name_last) = match non_empty_str(claims, "name") {
            Some(name) => {
                let name = name.trim();
                match name.split_once(' ') {
                    Some((first, last)) => (Some(first.to_owned()), Some(last.trim().to_owned())),
                    None => (Some(name.to_owned()), Some(String::new())),
                }
            }
            None => (None, None),
        };
        let first_name = non_empty_str(claims, &self.first_name_claim)
            .map(str::to_owned)
            .or(name_first);
        let last_name = non_empty_str(claims, &self.last_name_claim)
            .map(str::to_owned)
            .or(name_last);
        let groups = self
            .groups_claim
            .as_deref()
            .map(|claim| parse_groups(claims.get(claim)));
        ClaimValues {
            email,
            first_name,
            last_name,
            groups,
            profile: profile_values(&self.profile_claims, claims),
        }
    }

    /// The claim values with the access token's groups joined to the
    /// groups claim's: together they are the claim-managed groups.
    pub fn claim_values_with(
        &self,
        claims: &Map<String, Value>,
        access_token_groups: &[String],
    ) -> ClaimValues {
        let mut values = self.claim_values(claims);
        let extra = clean_groups(access_token_groups.iter().cloned());
        if !extra.is_empty() {
            let from_claim = values.groups.take().unwrap_or_default();
            values.groups = Some(clean_groups(from_claim.into_iter().chain(extra)));
        }
        values
    }
}

/// Validates the inputs; the claims as an object, or why they are refused.
pub fn parse_request(
    username: &str,
    claims_json: &str,
) -> Result<Map<String, Value>, (RefusalReason, String)> {
    if username.is_empty() {
        return Err((RefusalReason::InvalidClaims, "empty username".to_owned()));
    }
    if has_control(username) {
        return Err((
            RefusalReason::InvalidClaims,
            "username contains control characters".to_owned(),
        ));
    }
    match serde_json::from_str::<Value>(claims_json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err((
            RefusalReason::InvalidClaims,
            format!("claims are a JSON {}, not an object", json_type(&other)),
        )),
        Err(e) => Err((
            RefusalReason::InvalidClaims,
            format!("claims are not valid JSON: {e}"),
        )),
    }
}

/// The Authenticate logic over a store.
#[derive(Debug, Clone)]
pub struct Authenticator {
    store: Store,
    policy: Policy,
}

impl Authenticator {
    pub fn new(store: Store, policy: Policy) -> Self {
        Self { store, policy }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Authenticate without access-token groups.
    pub async fn authenticate(
        &self,
        username: &str,
        claims_json: &str,
    ) -> Result<Outcome, AuthError> {
        self.authenticate_with(username, claims_json, &[]).await
    }

    pub async fn authenticate_with(
        &self,
        username: &str,
        claims_json: &str,
        access_token_groups: &[String],
    ) -> Result<Outcome, AuthError> {
        let claims = match parse_request(username, claims_json) {
            Ok(claims) => claims,
            Err((reason, message)) => return Ok(refuse(reason, message)),
        };
        let values = self.policy.claim_values_with(&claims, access_token_groups);
        let mut last_error = String::from("lost the creation race repeatedly");
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(username, &values).await {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => {
                    tracing::debug!(username, attempt, "lost a first-login race; retrying");
                }
                Err(e) if db::is_retryable(&e) => {
                    tracing::debug!(username, attempt, error = %e, "transient database conflict; retrying");
                    last_error = e.to_string();
                }
                Err(e) => return Err(AuthError::Db(e)),
            }
        }
        Err(AuthError::Contention(last_error))
    }

    /// One attempt; `Ok(None)` when another caller created the user first.
    async fn attempt(
        &self,
        username: &str,
        values: &ClaimValues,
    ) -> Result<Option<Outcome>, sqlx::Error> {
        let now = db::now();
        let Some(user) = self.store.find_user(username).await? else {
            if !self.policy.auto_create_users {
                return Ok(Some(refuse(
                    RefusalReason::UnknownUser,
                    format!("no user {username:?} and auto-create is off"),
                )));
            }
            let new = NewUser {
                username: username.to_owned(),
                email: values.email.clone().unwrap_or_default(),
                first_name: values.first_name.clone().unwrap_or_default(),
                last_name: values.last_name.clone().unwrap_or_default(),
                is_active: true,
                created_from_oidc: true,
                last_login: Some(now),
                groups: values.groups.clone().unwrap_or_default(),
                groups_from_oidc: true,
                profile: values.profile.present.clone(),
            };
            let Some(user) = self.store.insert_user(&new, now).await? else {
                return Ok(None);
            };
            let access = self.store.access(&user).await?;
            return Ok(Some(Outcome::User {
                user,
                created: true,
                access,
            }));
        };
        if !user.created_from_oidc && !self.policy.link_existing_users {
            return Ok(Some(refuse(
                RefusalReason::NotLinkable,
                format!(
                    "user {username:?} exists but was not created from OIDC claims and linking existing users is off"
                ),
            )));
        }
        if !user.is_active {
            return Ok(Some(refuse(
                RefusalReason::Inactive,
                format!("user {username:?} is deactivated"),
            )));
        }
        let user = self.sync(user, values, now).await?;
        let access = self.store.access(&user).await?;
        Ok(Some(Outcome::User {
            user,
            created: false,
            access,
        }))
    }

    /// Brings a stored user in line with the claims; writes only when
    /// something changed or `last_login` is older than the resolution.
    async fn sync(
        &self,
        mut user: UserRecord,
        values: &ClaimValues,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, sqlx::Error> {
        let email = values.email.clone().unwrap_or_else(|| user.email.clone());
        let first_name = values
            .first_name
            .clone()
            .unwrap_or_else(|| user.first_name.clone());
        let last_name = values
            .last_name
            .clone()
            .unwrap_or_else(|| user.last_name.clone());
        let (set_profile, remove_profile) = values.profile.changes(&user.profile);
        let fields_changed = email != user.email
            || first_name != user.first_name
            || last_name != user.last_name
            || !set_profile.is_empty()
            || !remove_profile.is_empty();

        let (add_groups, remove_groups) = match &values.groups {
            Some(desired) => {
                let add: Vec<String> = desired
                    .iter()
                    .filter(|g| !user.groups.iter().any(|m| &m.name == *g))
                    .cloned()
                    .collect();
                let remove: Vec<String> = user
                    .groups
                    .iter()
                    .filter(|m| m.from_oidc && !desired.contains(&m.name))
                    .map(|m| m.name.clone())
                    .collect();
                (add, remove)
            }
            None => (Vec::new(), Vec::new()),
        };
        let login_stale = match user.last_login {
            Some(t) => now - t >= LAST_LOGIN_RESOLUTION || t > now,
            None => true,
        };
        let groups_changed = !add_groups.is_empty() || !remove_groups.is_empty();
        if !(fields_changed || groups_changed || login_stale) {
            return Ok(user);
        }
        let update = UserUpdate {
            email,
            first_name,
            last_name,
            updated_at: if fields_changed || groups_changed {
                now
            } else {
                user.updated_at
            },
            last_login: Some(now),
            add_groups,
            remove_groups,
            set_profile,
            remove_profile,
        };
        self.store.update_user(user.id, &update).await?;
        user.email = update.email;
        user.first_name = update.first_name;
        user.last_name = update.last_name;
        user.updated_at = update.updated_at;
        user.last_login = update.last_login;
        user.groups
            .retain(|m| !update.remove_groups.contains(&m.name));
        user.groups
            .extend(update.add_groups.into_iter().map(|name| db::Membership {
                name,
                from_oidc: true,
            }));
        user.groups.sort_by(|a, b| a.name.cmp(&b.name));
        user.profile
            .retain(|f| !update.remove_profile.contains(&f.name));
        for field in update.set_profile {
            match user.profile.iter_mut().find(|f| f.name == field.name) {
                Some(stored) => stored.value = field.value,
                None => user.profile.push(field),
            }
        }
        user.profile.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn email_requires_verification_by_default() {
        let p = Policy::default();
        let v = p.claim_values(&obj(json!({"email": "a@x"})));
        assert_eq!(v.email, None);
        let v = p.claim_values(&obj(json!({"email": "a@x", "email_verified": "false"})));
        assert_eq!(v.email, None);
        let v = p.claim_values(&obj(json!({"email": "a@x", "email_verified": "True"})));
        assert_eq!(v.email, None);
        let v = p.claim_values(&obj(json!({"email": "a@x", "email_verified": 1})));
        assert_eq!(v.email, None);
        let v = p.claim_values(&obj(json!({"email": "a@x", "email_verified": true})));
        assert_eq!(v.email.as_deref(), Some("a@x"));
        let v = p.claim_values(&obj(json!({"email": "a@x", "email_verified": "true"})));
        assert_eq!(v.email.as_deref(), Some("a@x"));
        let p = Policy {
            require_verified_email: false,
            ..Policy::default()
        };
        let v = p.claim_values(&obj(json!({"email": "a@x"})));
        assert_eq!(v.email.as_deref(), Some("a@x"));
    }

    #[test]
    fn names_from_claims_and_name_fallback() {
        let p = Policy::default();
        let v = p.claim_values(&obj(json!({"given_name": "Ann", "family_name": "Lee"})));
        assert_eq!(
            (v.first_name.as_deref(), v.last_name.as_deref()),
            (Some("Ann"), Some("Lee"))
        );
        let v = p.claim_values(&obj(json!({"name": "Ann Marie Lee"})));
        assert_eq!(
            (v.first_name.as_deref(), v.last_name.as_deref()),
            (Some("Ann"), Some("Marie Lee"))
        );
        let v = p.claim_values(&obj(json!({"name": "Cher"})));
        assert_eq!(
            (v.first_name.as_deref(), v.last_name.as_deref()),
            (Some("Cher"), Some(""))
        );
        let v = p.claim_values(&obj(json!({"given_name": "Ann", "name": "Annie Lee"})));
        assert_eq!(
            (v.first_name.as_deref(), v.last_name.as_deref()),
            (Some("Ann"), Some("Lee"))
        );
        let v = p.claim_values(&obj(json!({})));
        assert_eq!((v.first_name, v.last_name), (None, None));
        let p = Policy {
            first_name_claim: "fn".into(),
            last_name_claim: "ln".into(),
            ..Policy::default()
        };
        let v = p.claim_values(&obj(json!({"fn": "A", "ln": "B", "given_name": "X"})));
        assert_eq!(
            (v.first_name.as_deref(), v.last_name.as_deref()),
            (Some("A"), Some("B"))
        );
    }

    #[test]
    fn groups_claim_shapes() {
        assert_eq!(
            parse_groups(Some(&json!(["b", "a", "a", "", 3]))),
            vec!["a", "b"]
        );
        assert_eq!(
            parse_groups(Some(&json!("x, y z,,\tw"))),
            vec!["w", "x", "y", "z"]
        );
        assert!(parse_groups(None).is_empty());
        assert!(parse_groups(Some(&json!(null))).is_empty());
        assert!(parse_groups(Some(&json!(5))).is_empty());
        let p = Policy::default();
        assert_eq!(p.claim_values(&obj(json!({"groups": ["a"]}))).groups, None);
        let p = Policy {
            groups_claim: Some("cognito:groups".into()),
            ..Policy::default()
        };
        assert_eq!(
            p.claim_values(&obj(json!({"cognito:groups": ["a"]})))
                .groups,
            Some(vec!["a".to_owned()])
        );
        assert_eq!(p.claim_values(&obj(json!({}))).groups, Some(vec![]));
    }

    #[test]
    fn request_validation() {
        assert!(parse_request("alice", "{}").is_ok());
        for (user, claims) in [
            ("", "{}"),
            ("a\u{0}b", "{}"),
            ("alice", "[]"),
            ("alice", "\"x\""),
            ("alice", "not json"),
            ("alice", ""),
        ] {
            match parse_request(user, claims) {
                Err((reason, _)) => assert_eq!(reason, RefusalReason::InvalidClaims),
                Ok(other) => panic!("{user:?} {claims:?}: {other:?}"),
            }
        }
    }
}
