//! The flow's outbound calls: what each is for, how it is made, and how much
//! of its answer is read.

use super::host::CallRequest;
use crate::config::Config;
use crate::keys::MAX_KEY_BODY;
use crate::users;
use std::time::Duration;

/// A call the flow wants made, by purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// The ALB's public key for a kid.
    Key(String),
    /// The IdP's key set (`access_token.jwks_*`).
    AccessKeys,
    /// The user service's answer for a verified user.
    User {
        username: String,
        claims_json: String,
    },
}

/// How a call is made. Envoy numbers HTTP and gRPC calls separately, so a
/// token names a call only together with its kind (the host knows it from the
/// callback the answer comes through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Http,
    Grpc,
}

/// How much of a key's answer the host reads: one byte past the cap is
/// enough to know it is too large.
pub const MAX_KEY_ANSWER: usize = MAX_KEY_BODY + 1;
/// How much of the key set's answer the host reads: one byte past the cap.
pub const MAX_JWKS_ANSWER: usize = crate::access_token::jwks::MAX_JWKS_LEN + 1;
/// A user answer is small; anything near this size is not one.
pub const MAX_USER_ANSWER: usize = 64 * 1024;

/// How a call ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResponse {
    /// An HTTP answer; `status` is `None` when there was none (connection
    /// failure, reset or timeout: the host got no headers).
    Http { status: Option<u32>, body: Vec<u8> },
    /// A gRPC answer: its status, the size the host announced, and the
    /// message when the status is OK and the size within the call's limit.
    Grpc {
        status: u32,
        size: usize,
        body: Option<Vec<u8>>,
    },
}

impl Call {
    /// The call as the host makes it.
    pub fn request(&self, config: &Config) -> Option<CallRequest> {
        match self {
            Call::Key(kid) => Some(CallRequest::Http {
                cluster: config.key_cluster.clone(),
                path: config.key_path(kid),
                authority: config.key_authority.clone(),
                timeout: Duration::from_millis(config.key_fetch_timeout_ms),
            }),
            Call::AccessKeys => {
                let access = config.access_token.as_ref()?;
                Some(CallRequest::Http {
                    cluster: access.jwks_cluster.clone(),
                    path: access.jwks_path.clone(),
                    authority: access.jwks_authority.clone(),
                    timeout: Duration::from_millis(access.jwks_fetch_timeout_ms),
                })
            }
            Call::User {
                username,
                claims_json,
            } => {
                let us = config.user_service.as_ref()?;
                Some(CallRequest::Grpc {
                    upstream: us.grpc_service.clone(),
                    service: users::SERVICE,
                    method: users::METHOD,
                    message: users::request(username, claims_json),
                    timeout: Duration::from_millis(us.timeout_ms),
                })
            }
        }
    }
}
