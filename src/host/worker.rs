//! Per-worker state shared by the root and HTTP contexts: the engine, the
//! requests paused on a fetch, and the fetches themselves.
//!
//! Invariant (tested end to end): every request that returns `Pause` is in
//! `pending` and in exactly one waiter list, and leaves it only through a
//! verdict applied by the root (resume or local reply), its own end, or the
//! sweep, which answers 503 to anything older than every timeout combined.

use super::metrics::{Counter, Metrics};
use super::store::HostStore;
use super::verifier::HostVerifier;
use crate::config::FailureMode;
use crate::denial::Denial;
use crate::engine::{Engine, KeyResponse, PendingToken, Poll, TokenStep, UserStep};
use crate::identity::Identity;
use crate::keys::PublicKey;
use crate::users::{self, UserAnswer};
use proxy_wasm::hostcalls;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

/// What happens to one request.
#[derive(Debug)]
pub enum Verdict {
    /// Forward without identity (exempt path, or no token with
    /// `allow_missing`): only the stripping applies.
    Pass,
    /// Forward with this identity (and the user service's headers) injected.
    Allow {
        identity: Rc<Identity>,
        user: Option<Rc<UserAnswer>>,
    },
    Deny(Denial),
    /// Paused: a fetch is under way; the root will deliver the verdict.
    Wait,
}

enum Call {
    Key(String),
    User {
        username: String,
        claims_json: String,
    },
}

enum Stage {
    Key(PendingToken),
    User(Rc<Identity>),
}

struct Pending {
    stage: Stage,
    since: f64,
}

pub struct Worker {
    pub engine: Engine,
    pub metrics: Metrics,
    verifier: HostVerifier,
    pending: HashMap<u32, Pending>,
    key_waiters: HashMap<String, Vec<u32>>,
    user_waiters: HashMap<String, Vec<u32>>,
    remote_keys: HashSet<String>,
    remote_users: HashSet<String>,
    queue: Vec<Call>,
    calls: HashMap<u32, Call>,
    tick_ms: u64,
}

/// Tick periods: fast while something must be dispatched or polled, slow
/// (just the sweep) otherwise.
const TICK_DISPATCH_MS: u64 = 1;
const TICK_POLL_MS: u64 = 5;
const TICK_PENDING_MS: u64 = 100;
const TICK_IDLE_MS: u64 = 1000;

impl Worker {
    pub fn new(engine: Engine, metrics: Metrics) -> Worker {
        let verifier = HostVerifier::new(engine.config.signature_backend);
        Worker {
            engine,
            metrics,
            verifier,
            pending: HashMap::new(),
            key_waiters: HashMap::new(),
            user_waiters: HashMap::new(),
            remote_keys: HashSet::new(),
            remote_users: HashSet::new(),
            queue: Vec::new(),
            calls: HashMap::new(),
            tick_ms: 0,
        }
    }

    /// Replaces the engine after a reconfiguration; requests already paused
    /// keep waiting for their fetches and are answered by the new engine.
    pub fn reconfigure(&mut self, engine: Engine) {
        self.verifier = HostVerifier::new(engine.config.signature_backend);
        self.engine = engine;
    }

    /// A request with a token: verify it (HTTP context, own request).
    pub fn start(&mut self, ctx: u32, token: &str, now: f64) -> Verdict {
        match self
            .engine
            .check_token(token, now, &HostStore, &self.verifier)
        {
            TokenStep::Verified {
                identity,
                cache_hit,
            } => {
                self.metrics.count(if cache_hit {
                    Counter::TokenCacheHit
                } else {
                    Counter::TokenCacheMiss
                });
                self.user_stage(ctx, identity, now)
            }
            TokenStep::Denied(denial) => {
                self.metrics.count(Counter::TokenCacheMiss);
                Verdict::Deny(denial)
            }
            TokenStep::NeedKey { pending, fetch } => {
                self.metrics.count(Counter::TokenCacheMiss);
                let kid = pending.kid.clone();
                if fetch {
                    self.queue.push(Call::Key(kid.clone()));
                } else if !self.engine.is_fetching_key_here(&kid) {
                    self.remote_keys.insert(kid.clone());
                }
                self.key_waiters.entry(kid).or_default().push(ctx);
                self.pending.insert(
                    ctx,
                    Pending {
                        stage: Stage::Key(pending),
                        since: now,
                    },
                );
                Verdict::Wait
            }
        }
    }

    fn user_stage(&mut self, ctx: u32, identity: Rc<Identity>, now: f64) -> Verdict {
        if self.engine.config.user_service.is_none() {
            return Verdict::Allow {
                identity,
                user: None,
            };
        }
        match self.engine.user_lookup(&HostStore, &identity.username, now) {
            UserStep::Answer(answer) => {
                self.metrics.count(Counter::UserCacheHit);
                self.user_verdict(&identity, &answer)
            }
            UserStep::Unavailable => self.user_unavailable(&identity),
            UserStep::NeedCall { fetch } => {
                let username = identity.username.clone();
                if fetch {
                    self.queue.push(Call::User {
                        username: username.clone(),
                        claims_json: identity.claims_json.clone(),
                    });
                } else if !self.engine.is_calling_user_here(&username) {
                    self.remote_users.insert(username.clone());
                }
                self.user_waiters.entry(username).or_default().push(ctx);
                self.pending.insert(
                    ctx,
                    Pending {
                        stage: Stage::User(identity),
                        since: now,
                    },
                );
                Verdict::Wait
            }
        }
    }

    fn user_verdict(&self, identity: &Rc<Identity>, answer: &Rc<UserAnswer>) -> Verdict {
        match answer.as_ref() {
            UserAnswer::Allowed(_) => Verdict::Allow {
                identity: identity.clone(),
                user: Some(answer.clone()),
            },
            UserAnswer::Refused(reason) => {
                self.metrics.count(Counter::UserRefused);
                log::debug!(
                    "alb-oidc: user {:?} refused by the user service: {reason}",
                    identity.username
                );
                Verdict::Deny(Denial::UserRefused)
            }
        }
    }

    fn user_unavailable(&self, identity: &Rc<Identity>) -> Verdict {
        let fail_open = self
            .engine
            .config
            .user_service
            .as_ref()
            .is_some_and(|u| u.failure_mode == FailureMode::Allow);
        if fail_open {
            self.metrics.count(Counter::UserFailOpen);
            log::warn!(
                "alb-oidc: user service unavailable; failure_mode=allow, forwarding {:?} with claims-only identity",
                identity.username
            );
            Verdict::Allow {
                identity: identity.clone(),
                user: None,
            }
        } else {
            Verdict::Deny(Denial::UserServiceUnavailable)
        }
    }

    /// The request ended (client gone, or answered): forget it.
    pub fn forget(&mut self, ctx: u32) {
        self.pending.remove(&ctx);
    }

    /// Dispatches queued calls (root context, from its tick).
    pub fn dispatch_queued(&mut self, now: f64) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for call in std::mem::take(&mut self.queue) {
            match self.dispatch(&call) {
                Ok(token) => {
                    self.calls.insert(token, call);
                }
                Err(status) => match call {
                    Call::Key(kid) => {
                        log::error!(
                            "alb-oidc: cannot fetch key {kid:?}: dispatch to cluster {:?} failed ({status:?}); is the cluster defined?",
                            self.engine.config.key_cluster
                        );
                        self.engine.key_fetch_not_dispatched(&kid);
                        self.metrics.count(Counter::KeyFetchFailed);
                        verdicts.extend(self.resolve_key(&kid, Err(Denial::KeyUnavailable), now));
                    }
                    Call::User { username, .. } => {
                        log::error!(
                            "alb-oidc: cannot call the user service: dispatch failed ({status:?}); is user_service.cluster defined?"
                        );
                        self.engine.user_call_not_dispatched(&username);
                        self.metrics.count(Counter::UserFailed);
                        verdicts.extend(self.resolve_user(&username, None, now));
                    }
                },
            }
        }
        verdicts
    }

    fn dispatch(&self, call: &Call) -> Result<u32, proxy_wasm::types::Status> {
        let config = &self.engine.config;
        match call {
            Call::Key(kid) => {
                let path = config.key_path(kid);
                // Host-call audit: Envoy looks the cluster up by name and
                // parses nothing else here; `:path` is prefix + a kid that
                // matched `^[A-Za-z0-9_-]{1,64}$`, `:authority` is validated
                // at load.
                hostcalls::dispatch_http_call(
                    &config.key_cluster,
                    vec![
                        (":method", "GET"),
                        (":path", &path),
                        (":authority", &config.key_authority),
                        ("accept", "*/*"),
                    ],
                    None,
                    vec![],
                    Duration::from_millis(config.key_fetch_timeout_ms),
                )
            }
            Call::User {
                username,
                claims_json,
            } => {
                let Some(us) = &config.user_service else {
                    return Err(proxy_wasm::types::Status::BadArgument);
                };
                self.metrics.count(Counter::UserCalls);
                // Host-call audit: `upstream` is parsed by Envoy as a
                // serialized GrpcService before any fallback to a cluster
                // name, so it is one (encoded at load, `grpc_upstream`);
                // service and method are plain names; the message is our
                // prost encoding.
                hostcalls::dispatch_grpc_call(
                    &us.grpc_service,
                    users::SERVICE,
                    users::METHOD,
                    vec![],
                    Some(&users::request(username, claims_json)),
                    Duration::from_millis(us.timeout_ms),
                )
            }
        }
    }

    /// Whether `token` is a key fetch of this worker.
    pub fn is_key_call(&self, token: u32) -> bool {
        matches!(self.calls.get(&token), Some(Call::Key(_)))
    }

    /// A key fetch answered (root context).
    pub fn on_key_response(
        &mut self,
        token: u32,
        response: KeyResponse,
        now: f64,
    ) -> Vec<(u32, Verdict)> {
        let Some(Call::Key(kid)) = self.calls.remove(&token) else {
            return Vec::new();
        };
        let (result, outcome) = self.engine.key_fetched(&HostStore, &kid, response, now);
        self.metrics.key_fetch(result);
        if let Err(denial) = outcome {
            log::info!(
                "alb-oidc: key fetch for kid {kid:?} failed: {result:?} ({})",
                denial.metric_suffix()
            );
        }
        self.resolve_key(&kid, outcome, now)
    }

    /// A user-service call answered (root context).
    pub fn on_user_response(
        &mut self,
        token: u32,
        grpc_status: u32,
        body: Option<&[u8]>,
        now: f64,
    ) -> Vec<(u32, Verdict)> {
        let Some(Call::User { username, .. }) = self.calls.remove(&token) else {
            return Vec::new();
        };
        let answer = self
            .engine
            .user_answered(&HostStore, &username, grpc_status, body, now);
        if answer.is_none() {
            self.metrics.count(Counter::UserFailed);
            log::warn!("alb-oidc: user service call failed (grpc status {grpc_status}) or answered garbage");
        }
        self.resolve_user(&username, answer, now)
    }

    fn resolve_key(
        &mut self,
        kid: &str,
        outcome: Result<Rc<PublicKey>, Denial>,
        now: f64,
    ) -> Vec<(u32, Verdict)> {
        self.remote_keys.remove(kid);
        let mut verdicts = Vec::new();
        for ctx in self.key_waiters.remove(kid).unwrap_or_default() {
            let Some(Pending {
                stage: Stage::Key(pending),
                ..
            }) = self.pending.remove(&ctx)
            else {
                continue;
            };
            let verdict = match &outcome {
                Ok(key) => match self.engine.finish_token(pending, key, &self.verifier) {
                    Ok(identity) => self.user_stage(ctx, identity, now),
                    Err(denial) => Verdict::Deny(denial),
                },
                Err(denial) => Verdict::Deny(*denial),
            };
            if !matches!(verdict, Verdict::Wait) {
                verdicts.push((ctx, verdict));
            }
        }
        verdicts
    }

    fn resolve_user(
        &mut self,
        username: &str,
        answer: Option<Rc<UserAnswer>>,
        _now: f64,
    ) -> Vec<(u32, Verdict)> {
        self.remote_users.remove(username);
        let mut verdicts = Vec::new();
        for ctx in self.user_waiters.remove(username).unwrap_or_default() {
            let Some(Pending {
                stage: Stage::User(identity),
                ..
            }) = self.pending.remove(&ctx)
            else {
                continue;
            };
            let verdict = match &answer {
                Some(answer) => self.user_verdict(&identity, answer),
                None => self.user_unavailable(&identity),
            };
            verdicts.push((ctx, verdict));
        }
        verdicts
    }

    /// Checks on fetches other workers own (root context, from its tick).
    pub fn poll_remote(&mut self, now: f64) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for kid in self.remote_keys.clone() {
            match self.engine.poll_key(&HostStore, &kid, now) {
                Poll::Resolved(outcome) => verdicts.extend(self.resolve_key(&kid, outcome, now)),
                Poll::Waiting => {}
                Poll::MustFetch => {
                    self.remote_keys.remove(&kid);
                    self.queue.push(Call::Key(kid));
                }
            }
        }
        for username in self.remote_users.clone() {
            match self.engine.poll_user(&HostStore, &username, now) {
                Poll::Resolved(answer) => {
                    verdicts.extend(self.resolve_user(&username, answer, now))
                }
                Poll::Waiting => {}
                Poll::MustFetch => {
                    self.remote_users.remove(&username);
                    let claims_json = self
                        .user_waiters
                        .get(&username)
                        .into_iter()
                        .flatten()
                        .find_map(|ctx| match self.pending.get(ctx) {
                            Some(Pending {
                                stage: Stage::User(identity),
                                ..
                            }) => Some(identity.claims_json.clone()),
                            _ => None,
                        });
                    match claims_json {
                        Some(claims_json) => self.queue.push(Call::User {
                            username,
                            claims_json,
                        }),
                        None => {
                            self.engine.user_call_not_dispatched(&username);
                            self.user_waiters.remove(&username);
                        }
                    }
                }
            }
        }
        verdicts
    }

    /// Answers 503 to any request paused longer than every timeout allows.
    /// Unreachable when the fetch logic is right; it is the guarantee that a
    /// bug there costs a 503, never a hung request.
    pub fn sweep(&mut self, now: f64) -> Vec<(u32, Verdict)> {
        let config = &self.engine.config;
        let max_wait = (config.key_fetch_timeout_ms
            + config.user_service.as_ref().map_or(0, |u| u.timeout_ms))
            as f64
            / 1000.0
            + 5.0;
        let stale: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| now - p.since > max_wait)
            .map(|(ctx, _)| *ctx)
            .collect();
        let mut verdicts = Vec::new();
        for ctx in stale {
            if let Some(p) = self.pending.remove(&ctx) {
                log::error!(
                    "alb-oidc: request {ctx} waited {:.1}s for a fetch; answering 503",
                    now - p.since
                );
                let denial = match p.stage {
                    Stage::Key(_) => Denial::KeyUnavailable,
                    Stage::User(_) => Denial::UserServiceUnavailable,
                };
                verdicts.push((ctx, Verdict::Deny(denial)));
            }
        }
        // Waiter lists of answered or vanished requests.
        let pending = &self.pending;
        self.key_waiters.retain(|_, ctxs| {
            ctxs.retain(|c| pending.contains_key(c));
            !ctxs.is_empty()
        });
        self.user_waiters.retain(|_, ctxs| {
            ctxs.retain(|c| pending.contains_key(c));
            !ctxs.is_empty()
        });
        let key_waiters = &self.key_waiters;
        self.remote_keys.retain(|k| key_waiters.contains_key(k));
        let user_waiters = &self.user_waiters;
        self.remote_users.retain(|u| user_waiters.contains_key(u));
        verdicts
    }

    /// Adjusts the root's tick to what is outstanding (callable from any
    /// context: the tick always belongs to the root).
    pub fn update_tick(&mut self) {
        let wanted = if !self.queue.is_empty() {
            TICK_DISPATCH_MS
        } else if !self.remote_keys.is_empty() || !self.remote_users.is_empty() {
            TICK_POLL_MS
        } else if !self.pending.is_empty() {
            TICK_PENDING_MS
        } else {
            TICK_IDLE_MS
        };
        if wanted != self.tick_ms
            && hostcalls::set_tick_period(Duration::from_millis(wanted)).is_ok()
        {
            self.tick_ms = wanted;
        }
    }
}
