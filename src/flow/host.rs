//! What the flow needs from its host, as small traits: the request's
//! headers, shared data, the signature verifier, counters and outbound calls.
//! `src/host/` implements them with proxy-wasm calls; tests with fakes.

use crate::access_token::AccessSignatureVerifier;
use crate::denial::Denial;
use crate::engine::SignatureVerifier;
use crate::rules::RuleId;
use crate::shared_cache::SharedStore;
use std::time::Duration;

/// The headers of the request being decided.
pub trait RequestHeaders {
    /// Every header, in proxy-wasm's serialization (`header_map::parse_pairs`);
    /// `None` when the host could not list them.
    fn listing(&self) -> Option<Vec<u8>>;
    /// One header's value as bytes, for hosts whose listing failed.
    fn value(&self, name: &str) -> Option<Vec<u8>>;
    /// Removes every value of a header named as the client sent it.
    fn remove(&mut self, name: &[u8]);
}

/// The filter's counters. `Counter::name` is the stat name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::VariantArray)]
pub enum Counter {
    Allowed,
    Exempt,
    Anonymous,
    TokenCacheHit,
    TokenCacheMiss,
    KeyFetchOk,
    KeyFetchNotFound,
    KeyFetchFailed,
    KeyFetchInvalid,
    UserCalls,
    UserCacheHit,
    UserRefused,
    UserFailed,
    UserFailOpen,
    /// A verified request whose `x-amzn-oidc-identity` was not its `sub`.
    AlbIdentityMismatch,
    /// Group names dropped (a comma, a control character, not a string).
    GroupsDropped,
    /// Access tokens (issue 13): verified, absent (no header), invalid.
    AccessTokenVerified,
    AccessTokenAbsent,
    AccessTokenInvalid,
    /// Fetches of the IdP's key set: a usable one, no answer or not 200,
    /// a 200 that is not a usable key set.
    JwksFetchOk,
    JwksFetchFailed,
    JwksFetchInvalid,
    AccessTokenCacheHit,
    AccessTokenCacheMiss,
}

impl Counter {
    /// Every counter, in declaration order (derived, so never out of date).
    pub const ALL: &'static [Counter] = <Counter as strum::VariantArray>::VARIANTS;

    pub fn name(self) -> &'static str {
        match self {
            Counter::Allowed => "alb_oidc.requests.allowed",
            Counter::Exempt => "alb_oidc.requests.exempt",
            Counter::Anonymous => "alb_oidc.requests.anonymous",
            Counter::TokenCacheHit => "alb_oidc.token_cache.hit",
            Counter::TokenCacheMiss => "alb_oidc.token_cache.miss",
            Counter::KeyFetchOk => "alb_oidc.key_fetch.ok",
            Counter::KeyFetchNotFound => "alb_oidc.key_fetch.not_found",
            Counter::KeyFetchFailed => "alb_oidc.key_fetch.failed",
            Counter::KeyFetchInvalid => "alb_oidc.key_fetch.invalid",
            Counter::UserCalls => "alb_oidc.user_service.calls",
            Counter::UserCacheHit => "alb_oidc.user_service.cache_hit",
            Counter::UserRefused => "alb_oidc.user_service.refused",
            Counter::UserFailed => "alb_oidc.user_service.failed",
            Counter::UserFailOpen => "alb_oidc.user_service.fail_open",
            Counter::AlbIdentityMismatch => "alb_oidc.alb_identity_mismatch",
            Counter::GroupsDropped => "alb_oidc.groups_dropped",
            Counter::AccessTokenVerified => "alb_oidc.access_token.verified",
            Counter::AccessTokenAbsent => "alb_oidc.access_token.absent",
            Counter::AccessTokenInvalid => "alb_oidc.access_token.invalid",
            Counter::JwksFetchOk => "alb_oidc.jwks_fetch.ok",
            Counter::JwksFetchFailed => "alb_oidc.jwks_fetch.failed",
            Counter::JwksFetchInvalid => "alb_oidc.jwks_fetch.invalid",
            Counter::AccessTokenCacheHit => "alb_oidc.access_token_cache.hit",
            Counter::AccessTokenCacheMiss => "alb_oidc.access_token_cache.miss",
        }
    }

    /// The position of `self` in [`Counter::ALL`]: a field-less enum's
    /// discriminants count up in declaration order, as `ALL` lists them.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The stat name of a refusal's counter.
pub fn denied_counter_name(denial: Denial) -> String {
    format!("alb_oidc.requests.denied.{}", denial.metric_suffix())
}

/// The stat names of a rule's counters: (allowed, denied). Rule names are
/// `[A-Za-z0-9_-]{1,64}` (checked at load), so they make plain stat names.
pub fn rule_counter_names(rule: &str) -> (String, String) {
    (
        format!("alb_oidc.rule.{rule}.allowed"),
        format!("alb_oidc.rule.{rule}.denied"),
    )
}

pub trait Metrics {
    fn count(&self, counter: Counter);
    fn denied(&self, denial: Denial);
    /// A request routed to `rule` was forwarded (`allowed`) or answered
    /// locally. `rule` indexes `AccessRules::names` of the configuration in
    /// force (the host defines the counters at configuration).
    fn ruled(&self, rule: RuleId, allowed: bool);
}

/// An outbound call, with everything the host needs to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRequest {
    /// An HTTP GET through `dispatch_http_call`.
    Http {
        cluster: String,
        path: String,
        authority: String,
        timeout: Duration,
    },
    /// A unary gRPC call through `dispatch_grpc_call`. `upstream` is a
    /// serialized `GrpcService` (see `grpc_upstream`), never a bare name.
    Grpc {
        upstream: String,
        service: &'static str,
        method: &'static str,
        message: Vec<u8>,
        timeout: Duration,
    },
}

/// Why the host could not start a call (the host's status, for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchFailed(pub String);

/// The host side of the flow: everything but the request's own headers.
pub trait Host: Metrics {
    fn store(&self) -> &dyn SharedStore;
    fn verifier(&self) -> &dyn SignatureVerifier;
    /// The access token's verifier (the same backend as `verifier`).
    fn access_verifier(&self) -> &dyn AccessSignatureVerifier;
    /// Starts a call; its answer comes back with the returned token. Only
    /// called from the root context's callbacks (tick, call answered): the
    /// SDK routes an answer to the context that dispatched the call, and a
    /// request's context can vanish before its answer arrives.
    fn dispatch(&mut self, call: &CallRequest) -> Result<u32, DispatchFailed>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_place_and_a_distinct_name() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 24);
    }
}
