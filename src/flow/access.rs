//! The access-token stage (issue 13): after the data token verified and
//! before the user service is asked, the IdP's access token is verified
//! against the IdP's key set, and its groups, scopes and claims join the
//! login.
//!
//! | access token | `required` | otherwise |
//! |---|---|---|
//! | missing | 401 `access_token_missing` | absent |
//! | invalid (opaque, bad signature, expired, another login...) | 401 `access_token_invalid` | absent |
//! | key set unreachable, 5xx, garbage | 503 `jwks_unavailable` | decided without it; a rule that fails without it is 503 |
//!
//! An absent token is never used, and is not forwarded unless
//! `forward_unverified_alb_headers` says so.

use super::calls::Call;
use super::host::{Counter, Host};
use super::waiting::AccessKeysWait;
use super::{Flow, Step, Ticket, Verdict};
use crate::access_token::checker::{AccessStep, JwksFetchResult, KeysOutcome};
use crate::access_token::{AccessTokenError, VerifiedAccessToken};
use crate::denial::Denial;
use crate::engine::{KeyResponse, Poll};
use crate::identity::Identity;
use serde_json::Value;
use std::rc::Rc;

/// What the access token brought to a login.
#[derive(Debug, Clone)]
pub enum AccessTokenState {
    /// No `access_token` block.
    NotConfigured,
    Verified(Rc<VerifiedAccessToken>),
    /// Missing or invalid, and not required: as if none came.
    Absent,
    /// The key set could not be fetched, and the token is not required.
    Unavailable,
}

/// A verified login: the data token's identity and its access token.
#[derive(Debug, Clone)]
pub struct Login {
    pub identity: Rc<Identity>,
    pub access: AccessTokenState,
}

impl Login {
    pub fn verified_access_token(&self) -> Option<&Rc<VerifiedAccessToken>> {
        match &self.access {
            AccessTokenState::Verified(token) => Some(token),
            _ => None,
        }
    }
}

/// How a token that could not be used ends: refused when required, else
/// the login goes on without it (and the token as received, if any, only
/// with `forward_unverified_alb_headers`).
enum Unusable {
    Missing,
    Invalid(AccessTokenError, Option<String>),
    KeysUnavailable(String),
}

impl Flow {
    /// The access-token stage of a request whose data token verified.
    pub(super) fn access_stage(
        &mut self,
        ctx: u32,
        identity: Rc<Identity>,
        mut ticket: Ticket,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        let Some(checker) = self.access.as_mut() else {
            let login = Login {
                identity,
                access: AccessTokenState::NotConfigured,
            };
            return self.user_stage(ctx, login, ticket, since, now, host);
        };
        let raw = match ticket.access_token.take() {
            None => {
                return self.unusable(ctx, identity, ticket, Unusable::Missing, since, now, host)
            }
            Some(Err(())) => {
                let invalid = Unusable::Invalid(AccessTokenError::Malformed, None);
                return self.unusable(ctx, identity, ticket, invalid, since, now, host);
            }
            Some(Ok(raw)) => raw,
        };
        // The two tokens must come from the same login. A data token
        // without a string `sub` binds no access token.
        let Some(sub) = identity.payload.get("sub").and_then(Value::as_str) else {
            let invalid = Unusable::Invalid(AccessTokenError::WrongSubject, Some(raw));
            return self.unusable(ctx, identity, ticket, invalid, since, now, host);
        };
        let step = checker.check(&raw, sub, now, host.store(), host.access_verifier());
        host.count(match step {
            AccessStep::Verified {
                cache_hit: true, ..
            } => Counter::AccessTokenCacheHit,
            _ => Counter::AccessTokenCacheMiss,
        });
        match step {
            AccessStep::Verified { token, .. } => {
                self.access_verified(ctx, identity, token, ticket, raw, since, now, host)
            }
            AccessStep::Invalid(error) => {
                let why = Unusable::Invalid(error, Some(raw));
                self.unusable(ctx, identity, ticket, why, since, now, host)
            }
            AccessStep::KeysUnavailable => {
                let why = Unusable::KeysUnavailable(raw);
                self.unusable(ctx, identity, ticket, why, since, now, host)
            }
            AccessStep::NeedKeys { pending, fetch } => {
                if fetch {
                    self.queue.push(Call::AccessKeys);
                } else if !checker.is_fetching_here() {
                    self.waiting.remote_access_keys = true;
                }
                ticket.access_token = Some(Ok(raw));
                let wait = AccessKeysWait { identity, pending };
                self.waiting.wait_access_keys(ctx, wait, ticket, since);
                Verdict::Wait
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn access_verified(
        &mut self,
        ctx: u32,
        identity: Rc<Identity>,
        token: Rc<VerifiedAccessToken>,
        mut ticket: Ticket,
        raw: String,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        host.count(Counter::AccessTokenVerified);
        if token.groups_dropped > 0 || token.scopes_dropped > 0 {
            host.count(Counter::GroupsDropped);
            log::info!(
                "alb-oidc: dropped {} group name(s) and {} scope(s) of {:?} from the access token (a comma or control character, or not a string)",
                token.groups_dropped,
                token.scopes_dropped,
                identity.username
            );
        }
        ticket.forward_access_token = Some(raw);
        let login = Login {
            identity,
            access: AccessTokenState::Verified(token),
        };
        self.user_stage(ctx, login, ticket, since, now, host)
    }

    #[allow(clippy::too_many_arguments)]
    fn unusable(
        &mut self,
        ctx: u32,
        identity: Rc<Identity>,
        mut ticket: Ticket,
        why: Unusable,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        let required = self
            .config
            .access_token
            .as_ref()
            .is_some_and(|a| a.required);
        let (denial, access, raw) = match why {
            Unusable::Missing => {
                host.count(Counter::AccessTokenAbsent);
                (Denial::AccessTokenMissing, AccessTokenState::Absent, None)
            }
            Unusable::Invalid(error, raw) => {
                host.count(Counter::AccessTokenInvalid);
                log::debug!(
                    "alb-oidc: access token of {:?} not accepted: {error} ({})",
                    identity.username,
                    error.metric_suffix()
                );
                (Denial::AccessTokenInvalid, AccessTokenState::Absent, raw)
            }
            Unusable::KeysUnavailable(raw) => (
                Denial::JwksUnavailable,
                AccessTokenState::Unavailable,
                Some(raw),
            ),
        };
        if required {
            let step = Step::Deny {
                denial,
                identity: Some(identity),
            };
            return self.conclude(ctx, &ticket, step, host);
        }
        // Nobody vouches for it: it goes on only if the operator asked.
        if self.config.forward_unverified_alb_headers {
            ticket.forward_access_token = raw;
        }
        let login = Login { identity, access };
        self.user_stage(ctx, login, ticket, since, now, host)
    }

    /// This worker's key-set fetch answered.
    pub(super) fn access_keys_answered(
        &mut self,
        response: KeyResponse,
        now: f64,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let Some(checker) = self.access.as_mut() else {
            return Vec::new();
        };
        let (result, outcome) = checker.keys_fetched(host.store(), response, now);
        host.count(match result {
            JwksFetchResult::Ok => Counter::JwksFetchOk,
            JwksFetchResult::Failed => Counter::JwksFetchFailed,
            JwksFetchResult::Invalid => Counter::JwksFetchInvalid,
        });
        if result != JwksFetchResult::Ok {
            log::warn!("alb-oidc: fetching the IdP's key set failed: {result:?}");
        }
        self.resolve_access_keys(outcome, now, host)
    }

    /// The key-set fetch could not be made.
    pub(super) fn access_keys_not_dispatched(
        &mut self,
        now: f64,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        if let Some(checker) = self.access.as_mut() {
            checker.fetch_not_dispatched(host.store(), now);
        }
        host.count(Counter::JwksFetchFailed);
        self.resolve_access_keys(Err(()), now, host)
    }

    /// Checks on a key-set fetch another worker owns (from the tick).
    pub(super) fn poll_access_keys(&mut self, now: f64, host: &dyn Host) -> Vec<(u32, Verdict)> {
        if !self.waiting.remote_access_keys {
            return Vec::new();
        }
        let Some(checker) = self.access.as_mut() else {
            return Vec::new();
        };
        let kids = self.waiting.access_kids();
        match checker.poll_keys(host.store(), &kids, now) {
            Poll::Resolved(outcome) => self.resolve_access_keys(outcome, now, host),
            Poll::Waiting => Vec::new(),
            Poll::MustFetch => {
                self.waiting.remote_access_keys = false;
                self.queue.push(Call::AccessKeys);
                Vec::new()
            }
        }
    }

    fn resolve_access_keys(
        &mut self,
        outcome: KeysOutcome,
        now: f64,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for (ctx, wait, mut ticket, since) in self.waiting.take_access_key_waiters() {
            let raw = ticket
                .access_token
                .take()
                .and_then(Result::ok)
                .unwrap_or_default();
            let checked = match (&outcome, self.access.as_mut()) {
                (Ok(keys), Some(checker)) => {
                    checker.finish(&raw, &wait.pending, keys, host.access_verifier())
                }
                _ => Err(AccessTokenError::VerifierUnavailable),
            };
            let verdict = match (checked, &outcome) {
                (Ok(token), _) => {
                    self.access_verified(ctx, wait.identity, token, ticket, raw, since, now, host)
                }
                (Err(_), Err(())) => {
                    let why = Unusable::KeysUnavailable(raw);
                    self.unusable(ctx, wait.identity, ticket, why, since, now, host)
                }
                (Err(error), Ok(_)) => {
                    let why = Unusable::Invalid(error, Some(raw));
                    self.unusable(ctx, wait.identity, ticket, why, since, now, host)
                }
            };
            if !matches!(verdict, Verdict::Wait) {
                verdicts.push((ctx, verdict));
            }
        }
        verdicts
    }
}
