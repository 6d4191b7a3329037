//! Counters, visible in Envoy's `/stats` and `/stats/prometheus`.

use crate::denial::Denial;
use crate::engine::KeyFetchResult;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

const COUNTERS: [(Counter, &str); 14] = [
    (Counter::Allowed, "alb_oidc.requests.allowed"),
    (Counter::Exempt, "alb_oidc.requests.exempt"),
    (Counter::Anonymous, "alb_oidc.requests.anonymous"),
    (Counter::TokenCacheHit, "alb_oidc.token_cache.hit"),
    (Counter::TokenCacheMiss, "alb_oidc.token_cache.miss"),
    (Counter::KeyFetchOk, "alb_oidc.key_fetch.ok"),
    (Counter::KeyFetchNotFound, "alb_oidc.key_fetch.not_found"),
    (Counter::KeyFetchFailed, "alb_oidc.key_fetch.failed"),
    (Counter::KeyFetchInvalid, "alb_oidc.key_fetch.invalid"),
    (Counter::UserCalls, "alb_oidc.user_service.calls"),
    (Counter::UserCacheHit, "alb_oidc.user_service.cache_hit"),
    (Counter::UserRefused, "alb_oidc.user_service.refused"),
    (Counter::UserFailed, "alb_oidc.user_service.failed"),
    (Counter::UserFailOpen, "alb_oidc.user_service.fail_open"),
];

/// Metric ids, defined once per VM.
pub struct Metrics {
    counters: Vec<Option<u32>>,
    denied: Vec<Option<u32>>,
}

// Host-call audit: Envoy takes a metric name as a stat name (its tag
// extraction may read it, which is what `stats_tags` are for); ours are fixed
// ASCII names.
fn define(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

impl Metrics {
    pub fn define() -> Metrics {
        Metrics {
            counters: COUNTERS.iter().map(|(_, name)| define(name)).collect(),
            denied: Denial::ALL
                .iter()
                .map(|d| define(&format!("alb_oidc.requests.denied.{}", d.metric_suffix())))
                .collect(),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            // A failed increment must never fail the request.
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    pub fn count(&self, counter: Counter) {
        if let Some(i) = COUNTERS.iter().position(|(c, _)| *c == counter) {
            Self::bump(self.counters.get(i).copied().flatten());
        }
    }

    pub fn denied(&self, denial: Denial) {
        if let Some(i) = Denial::ALL.iter().position(|d| *d == denial) {
            Self::bump(self.denied.get(i).copied().flatten());
        }
    }

    pub fn key_fetch(&self, result: KeyFetchResult) {
        self.count(match result {
            KeyFetchResult::Ok => Counter::KeyFetchOk,
            KeyFetchResult::NotFound => Counter::KeyFetchNotFound,
            KeyFetchResult::Failed => Counter::KeyFetchFailed,
            KeyFetchResult::Invalid => Counter::KeyFetchInvalid,
        });
    }
}
