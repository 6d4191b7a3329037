//! What the flow needs from its host, as small traits: the request's
//! headers, shared data, the signature verifier, counters and outbound calls.
//! `src/host/` implements them with proxy-wasm calls; tests with fakes.

use crate::denial::Denial;
use crate::engine::SignatureVerifier;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

impl Counter {
    pub const ALL: [Counter; 14] = [
        Counter::Allowed,
        Counter::Exempt,
        Counter::Anonymous,
        Counter::TokenCacheHit,
        Counter::TokenCacheMiss,
        Counter::KeyFetchOk,
        Counter::KeyFetchNotFound,
        Counter::KeyFetchFailed,
        Counter::KeyFetchInvalid,
        Counter::UserCalls,
        Counter::UserCacheHit,
        Counter::UserRefused,
        Counter::UserFailed,
        Counter::UserFailOpen,
    ];

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
        }
    }

    /// The position of `self` in [`Counter::ALL`]. The match is exhaustive,
    /// so a new variant does not compile until it has a place; a test checks
    /// that `ALL` agrees.
    pub fn index(self) -> usize {
        match self {
            Counter::Allowed => 0,
            Counter::Exempt => 1,
            Counter::Anonymous => 2,
            Counter::TokenCacheHit => 3,
            Counter::TokenCacheMiss => 4,
            Counter::KeyFetchOk => 5,
            Counter::KeyFetchNotFound => 6,
            Counter::KeyFetchFailed => 7,
            Counter::KeyFetchInvalid => 8,
            Counter::UserCalls => 9,
            Counter::UserCacheHit => 10,
            Counter::UserRefused => 11,
            Counter::UserFailed => 12,
            Counter::UserFailOpen => 13,
        }
    }
}

/// The stat name of a refusal's counter.
pub fn denied_counter_name(denial: Denial) -> String {
    format!("alb_oidc.requests.denied.{}", denial.metric_suffix())
}

pub trait Metrics {
    fn count(&self, counter: Counter);
    fn denied(&self, denial: Denial);
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
        assert_eq!(names.len(), 14);
    }
}
