//! The filter's side of the user service: the gRPC messages (generated from
//! `proto/user_service.proto`) and what an answer means for a request.

use crate::config::{HeaderNames, HeaderRole};
use crate::identity::is_safe_header_value;

/// Generated from `proto/user_service.proto`.
pub mod pb {
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    include!(concat!(env!("OUT_DIR"), "/alboidc.users.v1.rs"));
}

pub const SERVICE: &str = "alboidc.users.v1.UserService";
pub const METHOD: &str = "Authenticate";

/// What the user service said about a user.
#[derive(Debug, Clone, PartialEq)]
pub enum UserAnswer {
    Allowed(AllowedUser),
    Refused(String),
}

/// An active user, as the filter uses it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AllowedUser {
    /// Headers to add for this user (`x-auth-groups` is not among them: the
    /// flow injects the union of these groups and the token's).
    pub headers: Vec<(String, String)>,
    /// The user's groups, as the service listed them (the flow drops and
    /// counts names it cannot carry).
    pub groups: Vec<String>,
    /// Effective permissions (`app_label.codename`), sorted, unique. Empty
    /// for a superuser: see `all_permissions`.
    pub permissions: Vec<String>,
    /// A superuser's "every permission" (Django's `is_superuser` in
    /// `has_perm`), sent instead of a list.
    pub all_permissions: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Profile fields (name, value), sorted by name, names unique.
    pub profile: Vec<(String, String)>,
    /// `x-auth-permissions` was left out: longer than
    /// [`MAX_PERMISSIONS_HEADER`].
    pub permissions_header_omitted: bool,
}

pub fn request(username: &str, claims_json: &str) -> Vec<u8> {
    request_with_groups(username, claims_json, &[])
}

/// The request with the groups of a verified access token, which the
/// service syncs as claim groups together with the data token's.
pub fn request_with_groups(
    username: &str,
    claims_json: &str,
    access_token_groups: &[String],
) -> Vec<u8> {
    prost::Message::encode_to_vec(&pb::AuthenticateRequest {
        username: username.to_owned(),
        claims_json: claims_json.to_owned(),
        access_token_groups: access_token_groups.to_vec(),
    })
}

/// Decodes an `AuthenticateResponse`. `None` for garbage or an answer about
/// another user: the filter then treats the service as unavailable.
pub fn decode_answer(
    bytes: &[u8],
    username: &str,
    names: &HeaderNames,
    profile_headers: &[(String, String)],
) -> Option<UserAnswer> {
    let response = <pb::AuthenticateResponse as prost::Message>::decode(bytes).ok()?;
    match response.result? {
        pb::authenticate_response::Result::User(mut user) => {
            if user.username != username {
                return None;
            }
            if !user.is_active {
                return Some(UserAnswer::Refused("inactive".to_owned()));
            }
            let mut headers = user_headers(&user, names);
            let mut permissions = std::mem::take(&mut user.permissions);
            permissions.sort_unstable();
            permissions.dedup();
            let profile = profile(std::mem::take(&mut user.profile));
            let permissions_header_omitted =
                access_headers(&mut headers, &user, &permissions, names);
            for (field, header) in profile_headers {
                if let Some((_, value)) = profile.iter().find(|(name, _)| name == field) {
                    if !value.is_empty() && is_safe_header_value(value) {
                        headers.push((header.clone(), value.clone()));
                    }
                }
            }
            Some(UserAnswer::Allowed(AllowedUser {
                headers,
                groups: user.groups,
                permissions,
                all_permissions: user.all_permissions,
                is_staff: user.is_staff,
                is_superuser: user.is_superuser,
                profile,
                permissions_header_omitted,
            }))
        }
        pb::authenticate_response::Result::Refusal(r) => {
            let reason = pb::refusal::Reason::try_from(r.reason)
                .map(|r| r.as_str_name().to_ascii_lowercase())
                .unwrap_or_else(|_| "unknown".to_owned());
            Some(UserAnswer::Refused(reason))
        }
    }
}

/// Sorted by name; a repeated name keeps its last value, as protobuf's
/// `map<string, string>` (the same wire format) does.
fn profile(fields: Vec<pb::ProfileField>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(fields.len());
    for f in fields {
        match out.iter_mut().find(|(name, _)| *name == f.name) {
            Some(existing) => existing.1 = f.value,
            None => out.push((f.name, f.value)),
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Many servers refuse header fields longer than 8 KiB (Envoy's own
/// default limit for all headers is 60 KiB): a longer permissions header is
/// left out, and rules still see every permission.
pub const MAX_PERMISSIONS_HEADER: usize = 8 * 1024;

/// `x-auth-permissions` (comma-joined, `*` for a superuser, omitted when
/// empty or too long), `x-auth-staff` and `x-auth-superuser` (`true`, or
/// absent). Returns whether the permissions header was too long.
fn access_headers(
    headers: &mut Vec<(String, String)>,
    user: &pb::User,
    permissions: &[String],
    names: &HeaderNames,
) -> bool {
    let joined = if user.all_permissions {
        "*".to_owned()
    } else {
        permissions.join(",")
    };
    let omitted = joined.len() > MAX_PERMISSIONS_HEADER;
    if !joined.is_empty() && !omitted && is_safe_header_value(&joined) {
        headers.push((names.get(HeaderRole::Permissions).to_owned(), joined));
    }
    for (role, set) in [
        (HeaderRole::Staff, user.is_staff),
        (HeaderRole::Superuser, user.is_superuser),
    ] {
        if set {
            headers.push((names.get(role).to_owned(), "true".to_owned()));
        }
    }
    omitted
}

fn user_headers(user: &pb::User, names: &HeaderNames) -> Vec<(String, String)> {
    let name = format!("{} {}", user.first_name.trim(), user.last_name.trim());
    [
        (HeaderRole::UserId, user.id.to_string()),
        (HeaderRole::Email, user.email.clone()),
        (HeaderRole::Name, name.trim().to_owned()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty() && is_safe_header_value(value))
    .map(|(role, value)| (names.get(role).to_owned(), value))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::authenticate_response::Result as R;

    fn names() -> HeaderNames {
        HeaderNames::default()
    }

    fn encode(result: R) -> Vec<u8> {
        prost::Message::encode_to_vec(&pb::AuthenticateResponse {
            result: Some(result),
        })
    }

    fn user(username: &str, active: bool) -> pb::User {
        pb::User {
            id: 7,
            username: username.into(),
            email: "a@x".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            groups: vec!["admin".into(), "staff".into()],
            is_active: active,
            created_from_oidc: true,
            ..Default::default()
        }
    }

    #[test]
    fn allowed_user() {
        let a = decode_answer(&encode(R::User(user("ada", true))), "ada", &names(), &[]).unwrap();
        assert_eq!(
            a,
            UserAnswer::Allowed(AllowedUser {
                headers: vec![
                    ("x-auth-user-id".into(), "7".into()),
                    ("x-auth-email".into(), "a@x".into()),
                    ("x-auth-name".into(), "Ada Lovelace".into()),
                ],
                groups: vec!["admin".into(), "staff".into()],
                ..AllowedUser::default()
            })
        );
    }

    fn field(name: &str, value: &str) -> pb::ProfileField {
        pb::ProfileField {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn permissions_flags_and_profile() {
        let u = pb::User {
            permissions: vec![
                "docs.view".into(),
                "admin.view_log".into(),
                "docs.edit".into(),
                "docs.view".into(),
            ],
            is_staff: true,
            profile: vec![
                field("level", "3"),
                field("department", "Sales"),
                field("level", "4"),
            ],
            ..user("ada", true)
        };
        let Some(UserAnswer::Allowed(a)) = decode_answer(&encode(R::User(u)), "ada", &names(), &[])
        else {
            panic!("expected an allowed user");
        };
        assert_eq!(
            a.permissions,
            vec!["admin.view_log", "docs.edit", "docs.view"],
            "sorted, each once"
        );
        assert!(!a.all_permissions);
        assert!(a.is_staff);
        assert!(!a.is_superuser);
        assert_eq!(
            a.profile,
            vec![
                ("department".to_owned(), "Sales".to_owned()),
                ("level".to_owned(), "4".to_owned())
            ],
            "sorted by name; a repeated name keeps its last value"
        );
    }

    #[test]
    fn superuser_is_all_permissions() {
        let u = pb::User {
            all_permissions: true,
            is_superuser: true,
            ..user("ada", true)
        };
        let Some(UserAnswer::Allowed(a)) = decode_answer(&encode(R::User(u)), "ada", &names(), &[])
        else {
            panic!("expected an allowed user");
        };
        assert!(a.all_permissions && a.is_superuser && !a.is_staff);
        assert!(a.permissions.is_empty());
        assert!(a.profile.is_empty());
    }

    /// An answer from a service that predates permissions decodes with
    /// none of them: fields 9 to 13 absent.
    #[test]
    fn answer_without_the_new_fields() {
        let a = decode_answer(&encode(R::User(user("ada", true))), "ada", &names(), &[]).unwrap();
        let UserAnswer::Allowed(a) = a else {
            panic!("expected an allowed user");
        };
        assert_eq!(
            (
                a.permissions.len(),
                a.all_permissions,
                a.is_staff,
                a.is_superuser,
                a.profile.len()
            ),
            (0, false, false, false, 0)
        );
    }

    #[test]
    fn refusals_and_garbage() {
        assert!(matches!(
            decode_answer(&encode(R::User(user("ada", false))), "ada", &names(), &[]),
            Some(UserAnswer::Refused(_))
        ));
        let refusal = R::Refusal(pb::Refusal {
            reason: pb::refusal::Reason::NotLinkable as i32,
            message: "m".into(),
        });
        assert_eq!(
            decode_answer(&encode(refusal), "ada", &names(), &[]),
            Some(UserAnswer::Refused("not_linkable".into()))
        );
        assert_eq!(
            decode_answer(&encode(R::User(user("eve", true))), "ada", &names(), &[]),
            None
        );
        assert_eq!(decode_answer(b"\xff\xff\xff", "ada", &names(), &[]), None);
        assert_eq!(decode_answer(b"", "ada", &names(), &[]), None);
    }

    #[test]
    fn request_round_trip() {
        let r = <pb::AuthenticateRequest as prost::Message>::decode(request("u", "{}").as_slice())
            .unwrap();
        assert_eq!((r.username.as_str(), r.claims_json.as_str()), ("u", "{}"));
        assert!(r.access_token_groups.is_empty());
        let groups = vec!["cognito-ops".to_owned(), "b".to_owned()];
        let r = <pb::AuthenticateRequest as prost::Message>::decode(
            request_with_groups("u", "{}", &groups).as_slice(),
        )
        .unwrap();
        assert_eq!(r.access_token_groups, groups);
    }
}
