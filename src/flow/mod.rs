//! The request flow of one worker, sans IO: a value that takes Envoy's
//! events (a request arrived, a call answered, a tick at `now`, a request
//! gone) and says what happens (continue, pause, resume, reply; which calls
//! to make; how often to tick). The host and the clock reach it only through
//! the traits in [`host`] and the `now` of each event, so `cargo test` can
//! script any interleaving: two workers, a client leaving mid-fetch, a lapsed
//! claim. See `docs/architecture.md`.
//!
//! Every request ends once: `on_request` returns a final verdict or `Wait`;
//! a request that waits is in [`Waiting`] until exactly one verdict for it
//! comes out of `on_call_answered` or `on_tick` (whose sweep answers 503 past
//! [`waiting::max_wait`]), or it is gone (`on_request_gone`).

mod calls;
pub mod host;
mod request;
mod waiting;

pub use calls::{Call, CallKind, CallResponse, MAX_KEY_ANSWER, MAX_USER_ANSWER};
pub use host::{CallRequest, Counter, DispatchFailed, Host, Metrics, RequestHeaders};
pub use request::{read_and_strip, RequestView};
pub use waiting::max_wait;

use crate::config::{Config, ConfigError, FailureMode, SignatureBackend};
use crate::denial::Denial;
use crate::engine::{Engine, KeyFetchResult, KeyResponse, PendingToken, Poll, TokenStep, UserStep};
use crate::identity::Identity;
use crate::keys::PublicKey;
use crate::users::UserAnswer;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use waiting::Waiting;

/// A header name and value to inject.
type Header = (String, String);

/// Parses a configuration as the filter loads it: `config::parse`, then a
/// refusal of what this build parses but does not enforce yet. Authorization
/// rules (`rules`, `default_rule`, `groups_claim`) are parsed and tested in
/// `rules`, but the flow does not apply them yet; accepting them would let
/// through every request a rule was meant to stop. The host and `alb-sim
/// check-config` both load through here.
pub fn load_config(bytes: &[u8]) -> Result<Config, ConfigError> {
    let config = crate::config::parse(bytes)?;
    if config.access.uses_authorization() {
        return Err(ConfigError::new(
            "rules",
            "authorization rules (rules, default_rule, groups_claim) are not enforced by this build yet; remove them",
        ));
    }
    Ok(config)
}

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
    /// Answer locally with the denial's status.
    Deny(Denial),
    /// Paused: a verdict follows from a later event.
    Wait,
}

impl Verdict {
    /// The headers to add before forwarding (the incoming copies are gone).
    pub fn headers(&self) -> impl Iterator<Item = &(String, String)> {
        let none: &[Header] = &[];
        let (identity, user) = match self {
            Verdict::Allow { identity, user } => (
                identity.headers.as_slice(),
                match user.as_deref() {
                    Some(UserAnswer::Allowed(headers)) => headers.as_slice(),
                    _ => none,
                },
            ),
            _ => (none, none),
        };
        identity.iter().chain(user)
    }
}

/// Tick periods: fast while something must be dispatched or polled, slow
/// (just the sweep) otherwise.
const TICK_DISPATCH: Duration = Duration::from_millis(1);
const TICK_POLL: Duration = Duration::from_millis(5);
const TICK_PENDING: Duration = Duration::from_millis(100);
const TICK_IDLE: Duration = Duration::from_millis(1000);

pub struct Flow {
    config: Rc<Config>,
    engine: Engine,
    waiting: Waiting,
    /// Calls wanted by requests, made on the next tick (root context).
    queue: Vec<Call>,
    /// Calls under way, by the host's token: Envoy numbers HTTP and gRPC
    /// calls separately. Key fetches go by HTTP, user calls by gRPC.
    key_calls: HashMap<u32, String>,
    user_calls: HashMap<u32, String>,
}

impl Flow {
    pub fn new(config: Config) -> Flow {
        if config.bypass_validation {
            log::warn!(
                "alb-oidc: bypass_validation is ON: token signatures are NOT checked. For local development only; never in production."
            );
        }
        let config = Rc::new(config);
        Flow {
            engine: Engine::new(config.clone()),
            config,
            waiting: Waiting::default(),
            queue: Vec::new(),
            key_calls: HashMap::new(),
            user_calls: HashMap::new(),
        }
    }

    /// Creates the shared slots; once per worker, before serving.
    pub fn prepare(&self, host: &dyn Host) {
        self.engine.prepare(host.store());
    }

    /// Takes a new configuration. Requests already paused keep waiting for
    /// their calls and are answered under the new one.
    pub fn reconfigure(&mut self, next: Flow) {
        self.config = next.config;
        self.engine = next.engine;
    }

    pub fn signature_backend(&self) -> SignatureBackend {
        self.config.signature_backend
    }

    /// A request's headers arrived: strip, then decide or pause.
    pub fn on_request(
        &mut self,
        ctx: u32,
        headers: &mut dyn RequestHeaders,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        let config = self.config.clone();
        // Identity headers are only ever set by this filter: every client
        // copy goes, in any case and with `_` for `-` (see header_map).
        let want_path = !config.exempt_paths.is_empty();
        let view = read_and_strip(
            headers,
            &config.token_header,
            want_path,
            &config.strip_names,
        );
        // A path that is not UTF-8 is never exempt.
        let verdict = if want_path
            && config
                .exempt_paths
                .is_exempt(view.path.as_deref().unwrap_or_default())
        {
            host.count(Counter::Exempt);
            Verdict::Pass
        } else {
            match view.token {
                Some(Ok(token)) => self.start(ctx, &token, now, host),
                Some(Err(())) => Verdict::Deny(Denial::Malformed),
                None if config.allow_missing => {
                    host.count(Counter::Anonymous);
                    Verdict::Pass
                }
                None => Verdict::Deny(Denial::MissingToken),
            }
        };
        settle(host, ctx, verdict)
    }

    /// The request ended (answered, or its client left): forget it.
    pub fn on_request_gone(&mut self, ctx: u32) {
        self.waiting.forget(ctx);
    }

    /// How many bytes of call `token`'s answer the host should read; `None`
    /// when the call is not this flow's.
    pub fn answer_limit(&self, kind: CallKind, token: u32) -> Option<usize> {
        match kind {
            CallKind::Http => self
                .key_calls
                .contains_key(&token)
                .then_some(MAX_KEY_ANSWER),
            CallKind::Grpc => self
                .user_calls
                .contains_key(&token)
                .then_some(MAX_USER_ANSWER),
        }
    }

    /// A call answered (root context). Returns the verdicts of the requests
    /// it decides; calls they need next are made at once.
    pub fn on_call_answered(
        &mut self,
        token: u32,
        response: CallResponse,
        now: f64,
        host: &mut dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let mut verdicts = match response {
            CallResponse::Http { status, body } => match self.key_calls.remove(&token) {
                Some(kid) => {
                    let response = match status {
                        None => KeyResponse::NoResponse,
                        Some(status) => KeyResponse::Response { status, body },
                    };
                    self.key_answered(&kid, response, now, host)
                }
                None => Vec::new(),
            },
            CallResponse::Grpc { status, size, body } => match self.user_calls.remove(&token) {
                Some(username) => {
                    let body = body.filter(|_| status == 0 && size <= MAX_USER_ANSWER);
                    self.user_answered(&username, status, body.as_deref(), now, host)
                }
                None => Vec::new(),
            },
        };
        verdicts.extend(self.dispatch_queued(now, host));
        verdicts
    }

    /// The root's tick: make queued calls, check calls other workers own,
    /// and sweep requests paused too long.
    pub fn on_tick(&mut self, now: f64, host: &mut dyn Host) -> Vec<(u32, Verdict)> {
        let mut verdicts = self.dispatch_queued(now, host);
        verdicts.extend(self.poll_remote(now, host));
        // Polling may have claimed calls: make them now.
        verdicts.extend(self.dispatch_queued(now, host));
        let max_wait = max_wait(&self.config);
        for (ctx, denial) in self.waiting.sweep(now, max_wait) {
            verdicts.push((ctx, settle(host, ctx, Verdict::Deny(denial))));
        }
        verdicts
    }

    /// The tick period the flow wants now.
    pub fn tick_period(&self) -> Duration {
        if !self.queue.is_empty() {
            TICK_DISPATCH
        } else if self.waiting.has_remote() {
            TICK_POLL
        } else if !self.waiting.is_empty() {
            TICK_PENDING
        } else {
            TICK_IDLE
        }
    }

    // ---- the token ----

    fn start(&mut self, ctx: u32, token: &str, now: f64, host: &dyn Host) -> Verdict {
        match self
            .engine
            .check_token(token, now, host.store(), host.verifier())
        {
            TokenStep::Verified {
                identity,
                cache_hit,
            } => {
                host.count(if cache_hit {
                    Counter::TokenCacheHit
                } else {
                    Counter::TokenCacheMiss
                });
                self.user_stage(ctx, identity, now, now, host)
            }
            TokenStep::Denied(denial) => {
                host.count(Counter::TokenCacheMiss);
                Verdict::Deny(denial)
            }
            TokenStep::NeedKey { pending, fetch } => {
                host.count(Counter::TokenCacheMiss);
                let kid = pending.kid.clone();
                if fetch {
                    self.queue.push(Call::Key(kid));
                } else if !self.engine.is_fetching_key_here(&kid) {
                    self.waiting.remote_keys.insert(kid);
                }
                self.waiting.wait_key(ctx, pending, now);
                Verdict::Wait
            }
        }
    }

    fn key_answered(
        &mut self,
        kid: &str,
        response: KeyResponse,
        now: f64,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let (result, outcome) = self.engine.key_fetched(host.store(), kid, response, now);
        host.count(match result {
            KeyFetchResult::Ok => Counter::KeyFetchOk,
            KeyFetchResult::NotFound => Counter::KeyFetchNotFound,
            KeyFetchResult::Failed => Counter::KeyFetchFailed,
            KeyFetchResult::Invalid => Counter::KeyFetchInvalid,
        });
        if let Err(denial) = outcome {
            log::info!(
                "alb-oidc: key fetch for kid {kid:?} failed: {result:?} ({})",
                denial.metric_suffix()
            );
        }
        self.resolve_key(kid, outcome, now, host)
    }

    fn resolve_key(
        &mut self,
        kid: &str,
        outcome: Result<Rc<PublicKey>, Denial>,
        now: f64,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for (ctx, pending, since) in self.waiting.take_key_waiters(kid) {
            let verdict = match &outcome {
                Ok(key) => self.finish_token(ctx, pending, key, since, now, host),
                Err(denial) => Verdict::Deny(*denial),
            };
            if !matches!(verdict, Verdict::Wait) {
                verdicts.push((ctx, settle(host, ctx, verdict)));
            }
        }
        verdicts
    }

    fn finish_token(
        &mut self,
        ctx: u32,
        pending: PendingToken,
        key: &PublicKey,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        match self.engine.finish_token(pending, key, host.verifier()) {
            Ok(identity) => self.user_stage(ctx, identity, since, now, host),
            Err(denial) => Verdict::Deny(denial),
        }
    }

    // ---- the user service ----

    fn user_stage(
        &mut self,
        ctx: u32,
        identity: Rc<Identity>,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        if self.config.user_service.is_none() {
            return Verdict::Allow {
                identity,
                user: None,
            };
        }
        match self
            .engine
            .user_lookup(host.store(), &identity.username, now)
        {
            UserStep::Answer(answer) => {
                host.count(Counter::UserCacheHit);
                user_verdict(host, identity, answer)
            }
            UserStep::Unavailable => self.user_unavailable(host, identity),
            UserStep::NeedCall { fetch } => {
                let username = identity.username.clone();
                if fetch {
                    self.queue.push(Call::User {
                        username,
                        claims_json: identity.claims_json.clone(),
                    });
                } else if !self.engine.is_calling_user_here(&username) {
                    self.waiting.remote_users.insert(username);
                }
                self.waiting.wait_user(ctx, identity, since);
                Verdict::Wait
            }
        }
    }

    fn user_answered(
        &mut self,
        username: &str,
        grpc_status: u32,
        body: Option<&[u8]>,
        now: f64,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let answer = self
            .engine
            .user_answered(host.store(), username, grpc_status, body, now);
        if answer.is_none() {
            host.count(Counter::UserFailed);
            log::warn!(
                "alb-oidc: user service call failed (grpc status {grpc_status}) or answered garbage"
            );
        }
        self.resolve_user(username, answer, host)
    }

    fn resolve_user(
        &mut self,
        username: &str,
        answer: Option<Rc<UserAnswer>>,
        host: &dyn Host,
    ) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for (ctx, identity) in self.waiting.take_user_waiters(username) {
            let verdict = match &answer {
                Some(answer) => user_verdict(host, identity, answer.clone()),
                None => self.user_unavailable(host, identity),
            };
            verdicts.push((ctx, settle(host, ctx, verdict)));
        }
        verdicts
    }

    fn user_unavailable(&self, host: &dyn Host, identity: Rc<Identity>) -> Verdict {
        let fail_open = self
            .config
            .user_service
            .as_ref()
            .is_some_and(|u| u.failure_mode == FailureMode::Allow);
        if fail_open {
            host.count(Counter::UserFailOpen);
            log::warn!(
                "alb-oidc: user service unavailable; failure_mode=allow, forwarding {:?} with claims-only identity",
                identity.username
            );
            Verdict::Allow {
                identity,
                user: None,
            }
        } else {
            Verdict::Deny(Denial::UserServiceUnavailable)
        }
    }

    // ---- calls ----

    fn dispatch_queued(&mut self, now: f64, host: &mut dyn Host) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for call in std::mem::take(&mut self.queue) {
            if matches!(call, Call::User { .. }) {
                host.count(Counter::UserCalls);
            }
            let dispatched = match call.request(&self.config) {
                Some(request) => host.dispatch(&request),
                None => Err(DispatchFailed("no user_service configured".to_owned())),
            };
            match dispatched {
                Ok(token) => match call {
                    Call::Key(kid) => {
                        self.key_calls.insert(token, kid);
                    }
                    Call::User { username, .. } => {
                        self.user_calls.insert(token, username);
                    }
                },
                Err(DispatchFailed(status)) => {
                    match &call {
                        Call::Key(kid) => log::error!(
                            "alb-oidc: cannot fetch key {kid:?}: dispatch to cluster {:?} failed ({status}); is the cluster defined?",
                            self.config.key_cluster
                        ),
                        Call::User { .. } => log::error!(
                            "alb-oidc: cannot call the user service: dispatch failed ({status}); is user_service.cluster defined?"
                        ),
                    }
                    verdicts.extend(self.calls_failed(call, now, host));
                }
            }
        }
        verdicts
    }

    /// A call that could not be made, or whose answer made no sense: nothing
    /// is cached (a configuration problem is not the key's or user's fault),
    /// and its waiters get 503 (or fail open).
    fn calls_failed(&mut self, call: Call, now: f64, host: &dyn Host) -> Vec<(u32, Verdict)> {
        match call {
            Call::Key(kid) => {
                self.engine
                    .key_fetch_not_dispatched(host.store(), &kid, now);
                host.count(Counter::KeyFetchFailed);
                self.resolve_key(&kid, Err(Denial::KeyUnavailable), now, host)
            }
            Call::User { username, .. } => {
                self.engine
                    .user_call_not_dispatched(host.store(), &username, now);
                host.count(Counter::UserFailed);
                self.resolve_user(&username, None, host)
            }
        }
    }

    /// Checks on calls other workers own (root context, from its tick).
    fn poll_remote(&mut self, now: f64, host: &dyn Host) -> Vec<(u32, Verdict)> {
        let mut verdicts = Vec::new();
        for kid in self.waiting.remote_keys.clone() {
            match self.engine.poll_key(host.store(), &kid, now) {
                Poll::Resolved(outcome) => {
                    verdicts.extend(self.resolve_key(&kid, outcome, now, host))
                }
                Poll::Waiting => {}
                Poll::MustFetch => {
                    self.waiting.remote_keys.remove(&kid);
                    self.queue.push(Call::Key(kid));
                }
            }
        }
        for username in self.waiting.remote_users.clone() {
            match self.engine.poll_user(host.store(), &username, now) {
                Poll::Resolved(answer) => {
                    verdicts.extend(self.resolve_user(&username, answer, host))
                }
                Poll::Waiting => {}
                Poll::MustFetch => {
                    self.waiting.remote_users.remove(&username);
                    match self.waiting.claims_of_user_waiter(&username) {
                        Some(claims_json) => self.queue.push(Call::User {
                            username,
                            claims_json,
                        }),
                        None => {
                            self.engine
                                .user_call_not_dispatched(host.store(), &username, now);
                            self.waiting.drop_user_waiters(&username);
                        }
                    }
                }
            }
        }
        verdicts
    }
}

fn user_verdict(host: &dyn Host, identity: Rc<Identity>, answer: Rc<UserAnswer>) -> Verdict {
    match answer.as_ref() {
        UserAnswer::Allowed(_) => Verdict::Allow {
            identity,
            user: Some(answer),
        },
        UserAnswer::Refused(reason) => {
            host.count(Counter::UserRefused);
            log::debug!(
                "alb-oidc: user {:?} refused by the user service: {reason}",
                identity.username
            );
            Verdict::Deny(Denial::UserRefused)
        }
    }
}

/// Counts a final verdict (the one place outcomes are counted) and logs a
/// refusal's reason.
fn settle(host: &dyn Host, ctx: u32, verdict: Verdict) -> Verdict {
    match &verdict {
        Verdict::Allow { .. } => host.count(Counter::Allowed),
        Verdict::Deny(denial) => {
            host.denied(*denial);
            log::debug!("alb-oidc: request {ctx} denied: {}", denial.metric_suffix());
        }
        Verdict::Pass | Verdict::Wait => {}
    }
    verdict
}
