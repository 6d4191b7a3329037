//! One worker's access-token state, sans IO: the IdP's key set, shared by
//! every worker with one fetch in flight (`SharedCache`), and a per-worker
//! cache of verified access tokens.
//!
//! The ALB forwards the same access token for its whole lifetime (an hour
//! with Cognito), so after the first request the cost is one hash lookup
//! plus the checks `VerifiedAccessToken::recheck` repeats on every use.
//!
//! The key set is fetched again before it expires only for a token whose
//! `kid` it lacks, and at most once per `jwks_refetch_min_interval_s`
//! (shared by all workers: the time of the last fetch travels with the
//! key set). Key rotation works without a restart; a flood of random kids
//! costs at most one fetch per interval.

use super::{inspect, AccessSignatureVerifier, AccessTokenError, Jwks, VerifiedAccessToken};
use crate::config::{AccessTokenConfig, Config};
use crate::engine::{KeyResponse, Poll};
use crate::shared_cache::{Lookup, SharedCache, SharedStore};
use crate::ttl_cache::TtlCache;
use std::rc::Rc;

pub use super::PendingAccessToken;

/// Access tokens longer than this are verified but not cached (the
/// format's own limit is 16 KiB; real ones are 1 to 2 KiB).
pub const MAX_CACHED_ACCESS_TOKEN_LEN: usize = 16 * 1024;

/// The one name the key set has in its shared cache (the namespace says
/// which key set).
const KEY_SET: &str = "jwks";
/// The failure code a failed key-set fetch is remembered with.
const KEY_SET_UNAVAILABLE: u8 = 1;

/// A key set and when it was last fetched (or a fetch last failed while it
/// was kept): the start of its refetch interval.
#[derive(Debug)]
pub struct KeySet {
    pub jwks: Jwks,
    pub checked_at: f64,
    /// As stored in shared data: `checked_at`, then the JWKS document.
    bytes: Vec<u8>,
}

impl KeySet {
    fn new(body: &[u8], checked_at: f64) -> Result<KeySet, super::JwksError> {
        let jwks = Jwks::parse(body)?;
        let mut bytes = Vec::with_capacity(8 + body.len());
        bytes.extend_from_slice(&checked_at.to_le_bytes());
        bytes.extend_from_slice(body);
        Ok(KeySet {
            jwks,
            checked_at,
            bytes,
        })
    }

    fn decode(bytes: &[u8]) -> Option<Rc<KeySet>> {
        let checked_at = f64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        KeySet::new(bytes.get(8..)?, checked_at).ok().map(Rc::new)
    }

    fn document(&self) -> &[u8] {
        self.bytes.get(8..).unwrap_or_default()
    }
}

/// Where an access token stands after the checks that need no fetch.
#[derive(Debug)]
pub enum AccessStep {
    Verified {
        token: Rc<VerifiedAccessToken>,
        cache_hit: bool,
    },
    Invalid(AccessTokenError),
    /// The key set must be fetched first: `fetch` says whether this worker
    /// owns the fetch or waits for one already in flight.
    NeedKeys {
        pending: Box<PendingAccessToken>,
        fetch: bool,
    },
    /// The key set could not be fetched (recently).
    KeysUnavailable,
}

/// How a key-set fetch ended, for the counters and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksFetchResult {
    Ok,
    /// No answer, or a status other than 200.
    Failed,
    /// A 200 whose body is not a usable key set.
    Invalid,
}

/// What waiting requests get when a key-set fetch ends.
pub type KeysOutcome = Result<Rc<KeySet>, ()>;

pub struct AccessTokenChecker {
    config: AccessTokenConfig,
    clock_skew_s: u64,
    bypass_validation: bool,
    key_failure_ttl_s: u64,
    key_set: SharedCache<Rc<KeySet>>,
    /// The key set this worker is fetching again, kept should the fetch fail.
    refetching: Option<Rc<KeySet>>,
    verified: TtlCache<Rc<VerifiedAccessToken>>,
}

impl AccessTokenChecker {
    /// `None` without an `access_token` block.
    pub fn new(config: &Config) -> Option<AccessTokenChecker> {
        let access = config.access_token.as_ref()?;
        // Everything that changes which keys these are: a configuration
        // update pointing elsewhere never reuses another key set.
        let namespace = format!(
            "jwks/{}/{}{}/{}",
            access.jwks_cluster, access.jwks_authority, access.jwks_path, access.issuer
        );
        Some(AccessTokenChecker {
            config: access.clone(),
            clock_skew_s: config.clock_skew_s,
            bypass_validation: config.bypass_validation,
            key_failure_ttl_s: config.key_failure_ttl_s,
            key_set: SharedCache::new(&namespace, 1, 1),
            refetching: None,
            verified: TtlCache::new(config.verified_token_cache_max),
        })
    }

    pub fn config(&self) -> &AccessTokenConfig {
        &self.config
    }

    /// Creates the shared slot; once per worker, before serving.
    pub fn prepare(&self, store: &dyn SharedStore) {
        self.key_set.prepare(store);
    }

    fn fetch_deadline(&self, now: f64) -> f64 {
        now + self.config.jwks_fetch_timeout_ms as f64 / 1000.0 + 1.0
    }

    /// Checks `raw` for the login whose data token's `sub` is `data_sub`:
    /// the cache first, then everything that needs no key, then the key set.
    pub fn check(
        &mut self,
        raw: &str,
        data_sub: &str,
        now: f64,
        store: &dyn SharedStore,
        verifier: &dyn AccessSignatureVerifier,
    ) -> AccessStep {
        if let Some(token) = self.verified.get(raw, now) {
            return match token.recheck(data_sub, now) {
                Ok(()) => AccessStep::Verified {
                    token: token.clone(),
                    cache_hit: true,
                },
                Err(error) => AccessStep::Invalid(error),
            };
        }
        let pending = match inspect(raw, &self.config, self.clock_skew_s, data_sub, now) {
            Ok(pending) => pending,
            Err(error) => return AccessStep::Invalid(error),
        };
        if self.bypass_validation {
            return AccessStep::Verified {
                token: self.remember(raw, pending.accept_unverified()),
                cache_hit: false,
            };
        }
        let deadline = self.fetch_deadline(now);
        let interval = self.config.jwks_refetch_min_interval_s as f64;
        let lookup = self
            .key_set
            .lookup(store, KEY_SET, now, deadline, KeySet::decode);
        let lookup = match lookup {
            // A kid the key set lacks: fetch it again, unless it was
            // fetched within the interval (then the token is invalid).
            Lookup::Ready(keys) if keys.jwks.get(pending.kid()).is_none() => {
                if now < keys.checked_at + interval {
                    return AccessStep::Invalid(AccessTokenError::UnknownKey);
                }
                let fresh = self.key_set.lookup_fresh(
                    store,
                    KEY_SET,
                    now,
                    deadline,
                    KeySet::decode,
                    |keys| now >= keys.checked_at + interval,
                );
                if matches!(fresh, Lookup::Fetch) {
                    self.refetching = Some(keys);
                }
                fresh
            }
            other => other,
        };
        match lookup {
            Lookup::Ready(keys) => match self.finish(raw, &pending, &keys, verifier) {
                Ok(token) => AccessStep::Verified {
                    token,
                    cache_hit: false,
                },
                Err(error) => AccessStep::Invalid(error),
            },
            Lookup::Failed(_) => AccessStep::KeysUnavailable,
            Lookup::Wait => AccessStep::NeedKeys {
                pending: Box::new(pending),
                fetch: false,
            },
            Lookup::Fetch => AccessStep::NeedKeys {
                pending: Box::new(pending),
                fetch: true,
            },
        }
    }

    /// The key checks and the signature, with a key set at hand.
    pub fn finish(
        &mut self,
        raw: &str,
        pending: &PendingAccessToken,
        keys: &KeySet,
        verifier: &dyn AccessSignatureVerifier,
    ) -> Result<Rc<VerifiedAccessToken>, AccessTokenError> {
        let token = pending.verify(&keys.jwks, &DynVerifier(verifier))?;
        Ok(self.remember(raw, token))
    }

    fn remember(&mut self, raw: &str, token: VerifiedAccessToken) -> Rc<VerifiedAccessToken> {
        let token = Rc::new(token);
        if raw.len() <= MAX_CACHED_ACCESS_TOKEN_LEN {
            self.verified.insert(raw, token.clone(), token.valid_until);
        }
        token
    }

    /// Records this worker's key-set fetch and shares it. The requests
    /// waiting for it get the new key set, or `Err` when the fetch failed.
    /// A failed refetch keeps the key set it was to replace (with its
    /// refetch interval restarted): an IdP outage during a rotation then
    /// costs only the tokens signed with new keys.
    pub fn keys_fetched(
        &mut self,
        store: &dyn SharedStore,
        response: KeyResponse,
        now: f64,
    ) -> (JwksFetchResult, KeysOutcome) {
        let previous = self.refetching.take();
        let parsed = match response {
            KeyResponse::Response { status: 200, body } => match KeySet::new(&body, now) {
                Ok(keys) => Ok(keys),
                Err(error) => {
                    log::info!("alb-oidc: the IdP's key set is unusable: {error}");
                    Err(JwksFetchResult::Invalid)
                }
            },
            KeyResponse::Response { .. } | KeyResponse::NoResponse => Err(JwksFetchResult::Failed),
        };
        let until = now + self.config.jwks_cache_ttl_s as f64;
        match parsed {
            Ok(keys) => {
                let keys = Rc::new(keys);
                self.publish(store, keys.clone(), until, now);
                (JwksFetchResult::Ok, Ok(keys))
            }
            Err(result) => {
                match previous.and_then(|p| KeySet::new(p.document(), now).ok()) {
                    Some(kept) => self.publish(store, Rc::new(kept), until, now),
                    None => {
                        let until = now + self.key_failure_ttl_s as f64;
                        self.key_set
                            .complete(store, KEY_SET, Err(KEY_SET_UNAVAILABLE), until, now);
                    }
                }
                (result, Err(()))
            }
        }
    }

    fn publish(&mut self, store: &dyn SharedStore, keys: Rc<KeySet>, until: f64, now: f64) {
        let bytes = keys.bytes.clone();
        self.key_set
            .complete(store, KEY_SET, Ok((keys, bytes)), until, now);
    }

    /// Gives up a fetch that could not even be dispatched.
    pub fn fetch_not_dispatched(&mut self, store: &dyn SharedStore, now: f64) {
        self.refetching = None;
        self.key_set.abandon(store, KEY_SET, now);
    }

    /// Re-checks a key set another worker is fetching (from the tick), for
    /// requests waiting with tokens naming `kids`: a key set that lacks one
    /// of them and is due for a refetch is the one being replaced.
    pub fn poll_keys(
        &mut self,
        store: &dyn SharedStore,
        kids: &[&str],
        now: f64,
    ) -> Poll<KeysOutcome> {
        let deadline = self.fetch_deadline(now);
        let interval = self.config.jwks_refetch_min_interval_s as f64;
        let stale = |keys: &Rc<KeySet>| {
            now >= keys.checked_at + interval && kids.iter().any(|k| keys.jwks.get(k).is_none())
        };
        match self
            .key_set
            .lookup_fresh(store, KEY_SET, now, deadline, KeySet::decode, stale)
        {
            Lookup::Ready(keys) => Poll::Resolved(Ok(keys)),
            Lookup::Failed(_) => Poll::Resolved(Err(())),
            Lookup::Wait => Poll::Waiting,
            Lookup::Fetch => Poll::MustFetch,
        }
    }

    pub fn is_fetching_here(&self) -> bool {
        self.key_set.is_fetching_here(KEY_SET)
    }
}

/// `PendingAccessToken::verify` takes a sized verifier.
struct DynVerifier<'a>(&'a dyn AccessSignatureVerifier);

impl AccessSignatureVerifier for DynVerifier<'_> {
    fn verify(
        &self,
        key: &super::JwkKey,
        alg: super::Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, crate::engine::VerifierUnavailable> {
        self.0.verify(key, alg, signing_input, signature)
    }
}
