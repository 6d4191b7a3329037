//! The per-worker authentication engine: everything a request needs decided,
//! with the host reduced to inputs (header values, fetch results, the time)
//! and outputs (what to inject, what to fetch, what to refuse).

use crate::claims::{self, CheckedClaims, ClaimRules};
use crate::config::Config;
use crate::denial::Denial;
use crate::identity::{self, Identity};
use crate::keys::PublicKey;
use crate::shared_cache::{Lookup, SharedCache, SharedStore};
use crate::token::Token;
use crate::ttl_cache::TtlCache;
use crate::users::{self, UserAnswer};
use std::rc::Rc;

/// Tokens larger than this are verified but not cached (as `jwt_authn`
/// does), which bounds the token cache's memory.
pub const MAX_CACHED_TOKEN_LEN: usize = 8 * 1024;

/// Failure codes stored in the shared key cache.
const KEY_NOT_FOUND: u8 = 1;
const KEY_UNAVAILABLE: u8 = 2;
const USER_SERVICE_FAILED: u8 = 3;

/// How long a failed user-service call is remembered: long enough to spare a
/// struggling service a stampede, short enough to recover at once.
const USER_FAILURE_TTL_S: f64 = 1.0;

/// The configured verifier is not available on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verifier unavailable")]
pub struct VerifierUnavailable;

/// Verifies an ES256 signature; `Err` when the verifier itself is missing.
pub trait SignatureVerifier {
    fn verify(
        &self,
        key: &PublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifierUnavailable>;
}

/// The pure-Rust verifier (always available).
pub struct RustVerifier;

impl SignatureVerifier for RustVerifier {
    fn verify(
        &self,
        key: &PublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifierUnavailable> {
        Ok(crate::verify::verify_rust(key, signing_input, signature))
    }
}

/// A token that passed every check but the signature, waiting for its key.
#[derive(Debug, Clone)]
pub struct PendingToken {
    pub kid: String,
    token: Token,
    claims: CheckedClaims,
}

#[derive(Debug)]
pub enum TokenStep {
    Verified {
        identity: Rc<Identity>,
        cache_hit: bool,
    },
    Denied(Denial),
    /// The key must be fetched first: `fetch` says whether this worker owns
    /// the fetch (dispatch it) or waits for one already in flight.
    NeedKey {
        pending: PendingToken,
        fetch: bool,
    },
}

/// How a key request ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyResponse {
    /// No response: connection failure, reset or timeout.
    NoResponse,
    Response {
        status: u32,
        body: Vec<u8>,
    },
}

/// The key fetch's verdict, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFetchResult {
    Ok,
    NotFound,
    Failed,
    Invalid,
}

/// The state of something another worker is fetching.
#[derive(Debug)]
pub enum Poll<T> {
    Resolved(T),
    Waiting,
    /// The other worker's claim lapsed; this worker now owns the fetch.
    MustFetch,
}

#[derive(Debug)]
pub enum UserStep {
    Answer(Rc<UserAnswer>),
    /// The service could not be reached (recently).
    Unavailable,
    NeedCall {
        fetch: bool,
    },
}

pub struct Engine {
    config: Rc<Config>,
    rules: ClaimRules,
    tokens: TtlCache<Rc<Identity>>,
    keys: SharedCache<Rc<PublicKey>>,
    users: Option<SharedCache<Rc<UserAnswer>>>,
}

impl Engine {
    pub fn new(config: Rc<Config>) -> Engine {
        let rules = ClaimRules {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            clock_skew_s: config.clock_skew_s,
            username_claim: config.username_claim.clone(),
        };
        // Keys fetched from different places must not share slots.
        let key_ns = format!(
            "keys/{}/{}{}",
            config.key_cluster, config.key_authority, config.key_path_prefix
        );
        let keys = SharedCache::new(&key_ns, config.key_cache_max, config.key_cache_max);
        let users = config.user_service.as_ref().map(|us| {
            // Where the answers came from (the cluster, and the authority
            // that picks a service behind it) and the username claim (the
            // same string under another claim is another user) make the
            // namespace: a configuration update that changes any of them
            // asks again rather than reuse another service's answers.
            let ns = format!(
                "users/{}/{}/{}",
                us.cluster,
                us.authority.as_deref().unwrap_or_default(),
                config.username_claim
            );
            SharedCache::new(&ns, us.cache_max, us.cache_max.min(65_536))
                .with_bytes_max(us.cache_bytes_max)
        });
        Engine {
            tokens: TtlCache::new(config.verified_token_cache_max),
            rules,
            keys,
            users,
            config,
        }
    }

    /// Creates the shared slots; call once per worker before serving.
    pub fn prepare(&self, store: &dyn SharedStore) {
        self.keys.prepare(store);
        if let Some(users) = &self.users {
            users.prepare(store);
        }
    }

    fn key_fetch_deadline(&self, now: f64) -> f64 {
        now + self.config.key_fetch_timeout_ms as f64 / 1000.0 + 1.0
    }

    /// Checks a token, cheapest steps first.
    pub fn check_token(
        &mut self,
        raw: &str,
        now: f64,
        store: &dyn SharedStore,
        verifier: &dyn SignatureVerifier,
    ) -> TokenStep {
        if let Some(identity) = self.tokens.get(raw, now) {
            if identity.claims.is_current(now) {
                return TokenStep::Verified {
                    identity: identity.clone(),
                    cache_hit: true,
                };
            }
        }
        match self.check_uncached(raw, now, store, verifier) {
            Ok(step) => step,
            Err(denial) => TokenStep::Denied(denial),
        }
    }

    fn check_uncached(
        &mut self,
        raw: &str,
        now: f64,
        store: &dyn SharedStore,
        verifier: &dyn SignatureVerifier,
    ) -> Result<TokenStep, Denial> {
        let token = Token::parse(raw)?;
        if self.config.bypass_validation {
            let claims = claims::check(&token.payload, &self.rules, now)?;
            return Ok(TokenStep::Verified {
                identity: self.verified(token, claims),
                cache_hit: false,
            });
        }
        let kid = token
            .check_header(&self.config.alb_arns, self.config.client_id.as_deref())?
            .to_owned();
        let claims = claims::check(&token.payload, &self.rules, now)?;
        let deadline = self.key_fetch_deadline(now);
        match self.keys.lookup(store, &kid, now, deadline, |der| {
            PublicKey::from_spki_der(der).ok().map(Rc::new)
        }) {
            Lookup::Ready(key) => {
                let pending = PendingToken { kid, token, claims };
                self.finish_token(pending, &key, verifier)
                    .map(|identity| TokenStep::Verified {
                        identity,
                        cache_hit: false,
                    })
            }
            Lookup::Failed(code) => Err(key_denial(code)),
            Lookup::Wait => Ok(TokenStep::NeedKey {
                pending: PendingToken { kid, token, claims },
                fetch: false,
            }),
            Lookup::Fetch => Ok(TokenStep::NeedKey {
                pending: PendingToken { kid, token, claims },
                fetch: true,
            }),
        }
    }

    /// Builds and caches the identity of a token that passed every check.
    fn verified(&mut self, token: Token, claims: CheckedClaims) -> Rc<Identity> {
        let identity = Rc::new(identity::build(
            &self.config,
            &token.payload,
            &token.payload_json,
            claims,
        ));
        if token.raw.len() <= MAX_CACHED_TOKEN_LEN {
            self.tokens
                .insert(&token.raw, identity.clone(), identity.claims.valid_until);
        }
        identity
    }

    /// Verifies a pending token's signature with its key.
    pub fn finish_token(
        &mut self,
        pending: PendingToken,
        key: &PublicKey,
        verifier: &dyn SignatureVerifier,
    ) -> Result<Rc<Identity>, Denial> {
        let token = pending.token;
        match verifier.verify(key, token.signing_input(), &token.signature) {
            Ok(true) => Ok(self.verified(token, pending.claims)),
            Ok(false) => Err(Denial::BadSignature),
            Err(VerifierUnavailable) => Err(Denial::VerifierUnavailable),
        }
    }

    /// Records the result of this worker's key fetch and shares it.
    pub fn key_fetched(
        &mut self,
        store: &dyn SharedStore,
        kid: &str,
        response: KeyResponse,
        now: f64,
    ) -> (KeyFetchResult, Result<Rc<PublicKey>, Denial>) {
        let (verdict, result) = match response {
            KeyResponse::Response { status: 200, body } => match PublicKey::from_pem(&body) {
                Ok(key) => (KeyFetchResult::Ok, Ok(key)),
                Err(_) => (KeyFetchResult::Invalid, Err(KEY_UNAVAILABLE)),
            },
            KeyResponse::Response {
                status: 403 | 404, ..
            } => (KeyFetchResult::NotFound, Err(KEY_NOT_FOUND)),
            KeyResponse::Response { .. } | KeyResponse::NoResponse => {
                (KeyFetchResult::Failed, Err(KEY_UNAVAILABLE))
            }
        };
        let outcome = match result {
            Ok(key) => {
                let key = Rc::new(key);
                let until = now + self.config.key_cache_ttl_s as f64;
                let der = key.spki_der.clone();
                self.keys
                    .complete(store, kid, Ok((key.clone(), der)), until, now);
                Ok(key)
            }
            Err(code) => {
                let until = now + self.config.key_failure_ttl_s as f64;
                self.keys.complete(store, kid, Err(code), until, now);
                Err(key_denial(code))
            }
        };
        (verdict, outcome)
    }

    /// Gives up a key fetch that could not even be dispatched (nothing is
    /// cached: a configuration problem is not the key's fault).
    pub fn key_fetch_not_dispatched(&mut self, store: &dyn SharedStore, kid: &str, now: f64) {
        self.keys.abandon(store, kid, now);
    }

    /// Re-checks a key another worker is fetching (from the root's tick).
    pub fn poll_key(
        &mut self,
        store: &dyn SharedStore,
        kid: &str,
        now: f64,
    ) -> Poll<Result<Rc<PublicKey>, Denial>> {
        let deadline = self.key_fetch_deadline(now);
        match self.keys.lookup(store, kid, now, deadline, |der| {
            PublicKey::from_spki_der(der).ok().map(Rc::new)
        }) {
            Lookup::Ready(key) => Poll::Resolved(Ok(key)),
            Lookup::Failed(code) => Poll::Resolved(Err(key_denial(code))),
            Lookup::Wait => Poll::Waiting,
            Lookup::Fetch => Poll::MustFetch,
        }
    }

    pub fn is_fetching_key_here(&self, kid: &str) -> bool {
        self.keys.is_fetching_here(kid)
    }

    // ---- user service ----

    fn user_deadline(&self, now: f64) -> f64 {
        let ms = self
            .config
            .user_service
            .as_ref()
            .map_or(1000, |u| u.timeout_ms);
        now + ms as f64 / 1000.0 + 1.0
    }

    /// Looks up the user service's answer for `username`.
    pub fn user_lookup(&mut self, store: &dyn SharedStore, username: &str, now: f64) -> UserStep {
        let deadline = self.user_deadline(now);
        let names = &self.config.headers;
        let profile_headers = self
            .config
            .user_service
            .as_ref()
            .map_or(&[][..], |u| &u.user_headers);
        let Some(users) = self.users.as_mut() else {
            return UserStep::Unavailable;
        };
        match users.lookup(store, username, now, deadline, |bytes| {
            users::decode_answer(bytes, username, names, profile_headers).map(Rc::new)
        }) {
            Lookup::Ready(answer) => UserStep::Answer(answer),
            Lookup::Failed(_) => UserStep::Unavailable,
            Lookup::Wait => UserStep::NeedCall { fetch: false },
            Lookup::Fetch => UserStep::NeedCall { fetch: true },
        }
    }

    /// Records the user service's reply (`grpc_status` 0 and a body, or a
    /// failure) and shares it. `None`: the service is unavailable.
    pub fn user_answered(
        &mut self,
        store: &dyn SharedStore,
        username: &str,
        grpc_status: u32,
        body: Option<&[u8]>,
        now: f64,
    ) -> Option<Rc<UserAnswer>> {
        let revalidate = self
            .config
            .user_service
            .as_ref()
            .map_or(1, |u| u.revalidate_s) as f64;
        let names = &self.config.headers;
        let profile_headers = self
            .config
            .user_service
            .as_ref()
            .map_or(&[][..], |u| &u.user_headers);
        let users = self.users.as_mut()?;
        let answer = match (grpc_status, body) {
            (0, Some(bytes)) => users::decode_answer(bytes, username, names, profile_headers)
                .map(|a| (a, bytes.to_vec())),
            _ => None,
        };
        match answer {
            Some((answer, bytes)) => {
                let answer = Rc::new(answer);
                let len = bytes.len();
                let shared = users.complete(
                    store,
                    username,
                    Ok((answer.clone(), bytes)),
                    now + revalidate,
                    now,
                );
                if !shared {
                    log::info!(
                        "alb-oidc: the user service's answer for {username:?} ({len} bytes) is larger than a slot of the shared user cache (user_service.cache_bytes_max / cache_max): kept by this worker only"
                    );
                }
                Some(answer)
            }
            None => {
                let until = now + USER_FAILURE_TTL_S.min(revalidate);
                users.complete(store, username, Err(USER_SERVICE_FAILED), until, now);
                None
            }
        }
    }

    /// Re-checks a user another worker is asking about (from the tick).
    pub fn poll_user(
        &mut self,
        store: &dyn SharedStore,
        username: &str,
        now: f64,
    ) -> Poll<Option<Rc<UserAnswer>>> {
        match self.user_lookup(store, username, now) {
            UserStep::Answer(answer) => Poll::Resolved(Some(answer)),
            UserStep::Unavailable => Poll::Resolved(None),
            UserStep::NeedCall { fetch: false } => Poll::Waiting,
            UserStep::NeedCall { fetch: true } => Poll::MustFetch,
        }
    }

    pub fn user_call_not_dispatched(&mut self, store: &dyn SharedStore, username: &str, now: f64) {
        if let Some(users) = self.users.as_mut() {
            users.abandon(store, username, now);
        }
    }

    pub fn is_calling_user_here(&self, username: &str) -> bool {
        self.users
            .as_ref()
            .is_some_and(|u| u.is_fetching_here(username))
    }
}

fn key_denial(code: u8) -> Denial {
    if code == KEY_NOT_FOUND {
        Denial::UnknownKey
    } else {
        Denial::KeyUnavailable
    }
}
