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
}

pub fn request(username: &str, claims_json: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&pb::AuthenticateRequest {
        username: username.to_owned(),
        claims_json: claims_json.to_owned(),
    })
}

/// Decodes an `AuthenticateResponse`. `None` for garbage or an answer about
/// another user: the filter then treats the service as unavailable.
pub fn decode_answer(bytes: &[u8], username: &str, names: &HeaderNames) -> Option<UserAnswer> {
    let response = <pb::AuthenticateResponse as prost::Message>::decode(bytes).ok()?;
    match response.result? {
        pb::authenticate_response::Result::User(user) => {
            if user.username != username {
                return None;
            }
            if !user.is_active {
                return Some(UserAnswer::Refused("inactive".to_owned()));
            }
            Some(UserAnswer::Allowed(AllowedUser {
                headers: user_headers(&user, names),
                groups: user.groups,
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
        }
    }

    #[test]
    fn allowed_user() {
        let a = decode_answer(&encode(R::User(user("ada", true))), "ada", &names()).unwrap();
        assert_eq!(
            a,
            UserAnswer::Allowed(AllowedUser {
                headers: vec![
                    ("x-auth-user-id".into(), "7".into()),
                    ("x-auth-email".into(), "a@x".into()),
                    ("x-auth-name".into(), "Ada Lovelace".into()),
                ],
                groups: vec!["admin".into(), "staff".into()],
            })
        );
    }

    #[test]
    fn refusals_and_garbage() {
        assert!(matches!(
            decode_answer(&encode(R::User(user("ada", false))), "ada", &names()),
            Some(UserAnswer::Refused(_))
        ));
        let refusal = R::Refusal(pb::Refusal {
            reason: pb::refusal::Reason::NotLinkable as i32,
            message: "m".into(),
        });
        assert_eq!(
            decode_answer(&encode(refusal), "ada", &names()),
            Some(UserAnswer::Refused("not_linkable".into()))
        );
        assert_eq!(
            decode_answer(&encode(R::User(user("eve", true))), "ada", &names()),
            None
        );
        assert_eq!(decode_answer(b"\xff\xff\xff", "ada", &names()), None);
        assert_eq!(decode_answer(b"", "ada", &names()), None);
    }

    #[test]
    fn request_round_trip() {
        let r = <pb::AuthenticateRequest as prost::Message>::decode(request("u", "{}").as_slice())
            .unwrap();
        assert_eq!((r.username.as_str(), r.claims_json.as_str()), ("u", "{}"));
    }
}
