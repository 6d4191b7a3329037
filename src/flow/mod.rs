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

mod access;
mod calls;
pub mod host;
mod request;
mod waiting;

pub use access::{AccessTokenState, Login};
pub use calls::{Call, CallKind, CallResponse, MAX_JWKS_ANSWER, MAX_KEY_ANSWER, MAX_USER_ANSWER};
pub use host::{CallRequest, Counter, DispatchFailed, Host, Metrics, RequestHeaders};
pub use request::{read_and_strip, AlbHeader, Reading, RequestView, RouteInputs, ALL_ALB_HEADERS};
pub use waiting::max_wait;

use crate::access_token::checker::AccessTokenChecker;
use crate::config::{Config, ConfigError, FailureMode, HeaderRole, SignatureBackend};
use crate::denial::Denial;
use crate::engine::{Engine, KeyFetchResult, KeyResponse, PendingToken, Poll, TokenStep, UserStep};
use crate::identity::Identity;
use crate::keys::PublicKey;
use crate::rules::{Access, Groups, RouteDecision, RuleId, Subject, UnreadablePath, UserFacts};
use crate::users::UserAnswer;
use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use waiting::Waiting;

/// A header name and value to inject.
type Header = (String, String);

/// Parses a configuration as the filter loads it. The host and `alb-sim
/// check-config` both load through here, so a block this build parses but
/// would not enforce is refused in one place.
pub fn load_config(bytes: &[u8]) -> Result<Config, ConfigError> {
    crate::config::parse(bytes)
}

/// What happens to one request. Every final verdict names the rule that
/// decided it (`None` only for a path no rule could read), for the per-rule
/// counters and the access log.
#[derive(Debug)]
pub enum Verdict {
    /// Forward without identity (`anyone`, or `optional` without a token):
    /// only the stripping applies.
    Pass { rule: RuleId },
    /// Forward with this identity, the user service's headers and the
    /// groups header injected.
    Allow {
        login: Login,
        user: Option<Rc<UserAnswer>>,
        groups: GroupsHeader,
        /// The access token's headers (scopes, claim headers) and the
        /// access token itself when it goes on.
        access_headers: Vec<Header>,
        rule: RuleId,
    },
    /// Answer locally with the denial's status. `user` is set when the
    /// token verified (a 403).
    Deny {
        denial: Denial,
        rule: Option<RuleId>,
        user: Option<String>,
    },
    /// Paused: a verdict follows from a later event.
    Wait,
}

impl Verdict {
    /// A refusal before anyone was verified.
    fn deny(denial: Denial, rule: Option<RuleId>) -> Verdict {
        Verdict::Deny {
            denial,
            rule,
            user: None,
        }
    }

    /// The headers to add before forwarding (the incoming copies are gone).
    pub fn headers(&self) -> impl Iterator<Item = &(String, String)> {
        let none: &[Header] = &[];
        let (identity, access, user, groups) = match self {
            Verdict::Allow {
                login,
                user,
                groups,
                access_headers,
                ..
            } => (
                login.identity.headers.as_slice(),
                access_headers.as_slice(),
                match user.as_deref() {
                    Some(UserAnswer::Allowed(user)) => user.headers.as_slice(),
                    _ => none,
                },
                match groups {
                    GroupsHeader::OfToken => login.identity.groups_header.as_ref(),
                    GroupsHeader::Union(header) => Some(header),
                },
            ),
            _ => (none, none, none, None),
        };
        identity.iter().chain(access).chain(user).chain(groups)
    }

    /// The deciding rule (for the access log).
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            Verdict::Pass { rule } | Verdict::Allow { rule, .. } => Some(*rule),
            Verdict::Deny { rule, .. } => *rule,
            Verdict::Wait => None,
        }
    }

    /// The verified username (for the access log).
    pub fn username(&self) -> Option<&str> {
        match self {
            Verdict::Allow { login, .. } => Some(&login.identity.username),
            Verdict::Deny { user, .. } => user.as_deref(),
            _ => None,
        }
    }
}

/// Where `x-auth-groups` comes from.
#[derive(Debug)]
pub enum GroupsHeader {
    /// The token's groups alone: the identity's ready-made header, if any.
    OfToken,
    /// The token's and the user service's groups.
    Union(Header),
}

/// A routed request on its way through the flow: how it was routed, and
/// what is checked once its user is known.
#[derive(Debug)]
pub struct Ticket {
    decision: RouteDecision,
    /// The configuration the decision was made under (`Flow::generation`).
    generation: u64,
    /// Kept to route the request again should the configuration change
    /// while it waits: an old configuration's decision is never applied.
    inputs: RouteInputs,
    /// The incoming `x-amzn-oidc-identity`, compared with the verified `sub`.
    claimed_sub: Option<Vec<u8>>,
    /// The access token as read (removed from the request until it is
    /// verified), and the value to put back when the request goes on.
    access_token: Option<Result<String, ()>>,
    forward_access_token: Option<String>,
}

/// Where a request stands before its rule is applied.
enum Step {
    Allow {
        login: Login,
        user: Option<Rc<UserAnswer>>,
    },
    Deny {
        denial: Denial,
        identity: Option<Rc<Identity>>,
    },
}

impl Step {
    fn deny(denial: Denial) -> Step {
        Step::Deny {
            denial,
            identity: None,
        }
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
    /// The access-token stage's state, with an `access_token` block.
    access: Option<AccessTokenChecker>,
    waiting: Waiting,
    /// Calls wanted by requests, made on the next tick (root context).
    queue: Vec<Call>,
    /// Calls under way, by the host's token: Envoy numbers HTTP and gRPC
    /// calls separately. Key fetches go by HTTP, user calls by gRPC.
    key_calls: HashMap<u32, String>,
    user_calls: HashMap<u32, String>,
    /// Key-set fetches under way, with the generation they were made under.
    jwks_calls: HashMap<u32, u64>,
    /// Bumped by `reconfigure`: tickets of an older generation are routed
    /// again before their rule applies.
    generation: u64,
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
            access: AccessTokenChecker::new(&config),
            config,
            waiting: Waiting::default(),
            queue: Vec::new(),
            key_calls: HashMap::new(),
            user_calls: HashMap::new(),
            jwks_calls: HashMap::new(),
            generation: 0,
        }
    }

    /// Creates the shared slots; once per worker, before serving.
    pub fn prepare(&self, host: &dyn Host) {
        self.engine.prepare(host.store());
        if let Some(access) = &self.access {
            access.prepare(host.store());
        }
    }

    /// Takes a new configuration. Requests already paused keep waiting for
    /// their calls and are routed again and answered under the new one.
    pub fn reconfigure(&mut self, next: Flow) {
        self.config = next.config;
        self.engine = next.engine;
        self.access = next.access;
        self.generation += 1;
    }

    /// Every rule's name, by `RuleId` (for the host's per-rule counters).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.config.access.names()
    }

    /// A rule's name (for the access log); `RuleId`s come from verdicts of
    /// the configuration in force.
    pub fn rule_name(&self, rule: RuleId) -> &str {
        self.config.access.rule(rule).map_or("", |r| r.name())
    }

    pub fn signature_backend(&self) -> SignatureBackend {
        self.config.signature_backend
    }

    /// A request's headers arrived: strip, route, then decide or pause.
    pub fn on_request(
        &mut self,
        ctx: u32,
        headers: &mut dyn RequestHeaders,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        let config = self.config.clone();
        // Identity headers are only ever set by this filter: every client
        // copy goes, in any case and with `_` for `-` (see header_map). With
        // `strip_alb_headers` the ALB's go too, in `strip`.
        let mut view = read_and_strip(
            headers,
            &Reading {
                token_header: &config.token_header,
                access_header: config.access_token.as_ref().map(|a| a.header.as_str()),
                route: config.access.reads_request(),
                strip: &config.strip_names,
                alb: if config.strip_alb_headers {
                    &[]
                } else {
                    &config.alb_header_names
                },
            },
        );
        let decision = match config.access.route(
            &view.route.method,
            &view.route.authority,
            view.route.path.as_deref(),
        ) {
            Ok(decision) => decision,
            Err(UnreadablePath) => {
                return settle(host, ctx, Verdict::deny(Denial::UnreadablePath, None));
            }
        };
        let rule = decision.first_rule();
        let access = decision.access();
        let verdict = match (access, view.token.take()) {
            (Access::Deny, _) => Verdict::deny(Denial::DeniedByRule, Some(rule)),
            (Access::Anyone, _) => {
                host.count(Counter::Exempt);
                self.pass_unverified(&view, headers, rule)
            }
            (Access::Optional, None) => {
                host.count(Counter::Anonymous);
                self.pass_unverified(&view, headers, rule)
            }
            (_, None) => Verdict::deny(Denial::MissingToken, Some(rule)),
            (_, Some(Err(()))) => Verdict::deny(Denial::Malformed, Some(rule)),
            (_, Some(Ok(token))) => {
                // Set again from the verified `sub` if the request goes on;
                // the access token goes on once verified.
                view.remove_alb_headers(headers, &[AlbHeader::Identity, AlbHeader::AccessToken]);
                let ticket = Ticket {
                    decision,
                    generation: self.generation,
                    inputs: view.route,
                    claimed_sub: view.claimed_sub,
                    access_token: view.access_token,
                    forward_access_token: None,
                };
                return self.start(ctx, &token, ticket, now, host);
            }
        };
        settle(host, ctx, verdict)
    }

    /// A request that continues without a verified token: the ALB's headers
    /// go (nobody verified them) unless the operator asked otherwise.
    fn pass_unverified(
        &self,
        view: &RequestView,
        headers: &mut dyn RequestHeaders,
        rule: RuleId,
    ) -> Verdict {
        if !self.config.forward_unverified_alb_headers {
            view.remove_alb_headers(headers, ALL_ALB_HEADERS);
        }
        Verdict::Pass { rule }
    }

    /// The decision that applies to `ticket` now: its own, or, if the
    /// configuration changed since, the new configuration's.
    fn decision<'t>(&self, ticket: &'t Ticket) -> Result<Cow<'t, RouteDecision>, UnreadablePath> {
        if ticket.generation == self.generation {
            return Ok(Cow::Borrowed(&ticket.decision));
        }
        let inputs = &ticket.inputs;
        self.config
            .access
            .route(&inputs.method, &inputs.authority, inputs.path.as_deref())
            .map(Cow::Owned)
    }

    /// Applies the request's rule to where it stands, and settles it.
    fn conclude(&self, ctx: u32, ticket: &Ticket, step: Step, host: &dyn Host) -> Verdict {
        let verdict = match self.decision(ticket) {
            Err(UnreadablePath) => Verdict::deny(Denial::UnreadablePath, None),
            Ok(decision) => match step {
                Step::Allow { login, user } => self.authorize(&decision, ticket, login, user, host),
                Step::Deny { denial, identity } => Verdict::Deny {
                    denial,
                    rule: Some(decision.first_rule()),
                    user: identity.map(|i| i.username.clone()),
                },
            },
        };
        settle(host, ctx, verdict)
    }

    /// A verified (and, with a user service, accepted) user: the rule's
    /// requirements, on the union of the token's and the service's groups.
    fn authorize(
        &self,
        decision: &RouteDecision,
        ticket: &Ticket,
        login: Login,
        user: Option<Rc<UserAnswer>>,
        host: &dyn Host,
    ) -> Verdict {
        let identity = &login.identity;
        if let Some(claimed) = &ticket.claimed_sub {
            if identity.sub.as_deref().map(str::as_bytes) != Some(claimed.as_slice()) {
                host.count(Counter::AlbIdentityMismatch);
                log::info!(
                    "alb-oidc: x-amzn-oidc-identity {:?} differs from the verified sub {:?} of {:?} (replaced): traffic that did not come through the ALB?",
                    String::from_utf8_lossy(claimed),
                    identity.sub.as_deref().unwrap_or_default(),
                    identity.username
                );
            }
        }
        let access = &self.config.access;
        let user_groups = match user.as_deref() {
            Some(UserAnswer::Allowed(allowed)) => allowed.groups.as_slice(),
            _ => &[],
        };
        let access_token = login.verified_access_token();
        let access_groups = access_token.map_or(&[][..], |t| t.groups.as_slice());
        let more_groups = access_groups.iter().chain(user_groups);
        let groups = Groups::with_user_groups(&identity.groups, more_groups.map(String::as_str));
        if groups.dropped() > 0 {
            host.count(Counter::GroupsDropped);
            log::info!(
                "alb-oidc: dropped {} group name(s) of {:?} from the user service (a comma or control character)",
                groups.dropped(),
                identity.username
            );
        }
        if decision.access() == Access::Deny {
            // Only after a configuration change routed a waiting request to
            // an `allow: deny` rule.
            return Verdict::Deny {
                denial: Denial::DeniedByRule,
                rule: Some(decision.first_rule()),
                user: Some(identity.username.clone()),
            };
        }
        if user.is_none() && decision.needs_user_service(access) {
            // `failure_mode: allow` let the user in without an answer; a rule
            // on permissions cannot be decided without one.
            log::warn!(
                "alb-oidc: rule {} needs the user service's answer for {:?}, which is unavailable",
                decision.rule_name(access),
                identity.username
            );
            return Verdict::Deny {
                denial: Denial::UserServiceUnavailable,
                rule: Some(decision.first_rule()),
                user: Some(identity.username.clone()),
            };
        }
        let subject = Subject::new(&groups, &identity.payload);
        let subject = match access_token {
            Some(token) => subject.with_access_token(&token.scopes, &token.payload),
            None => subject,
        };
        let subject = match user.as_deref() {
            Some(UserAnswer::Allowed(allowed)) => subject.with_user(UserFacts {
                permissions: &allowed.permissions,
                all_permissions: allowed.all_permissions,
                is_staff: allowed.is_staff,
                is_superuser: allowed.is_superuser,
            }),
            _ => subject,
        };
        match decision.check(access, &subject) {
            Ok(()) => {
                // Without groups from the user service or the access token
                // the union is the data token's, whose header the identity
                // already holds.
                let groups = match user_groups.is_empty() && access_groups.is_empty() {
                    true => None,
                    false => groups.header_value(),
                }
                .map_or(GroupsHeader::OfToken, |value| {
                    GroupsHeader::Union((
                        self.config.headers.get(HeaderRole::Groups).to_owned(),
                        value,
                    ))
                });
                let access_headers = self.access_headers(&login, ticket);
                Verdict::Allow {
                    login,
                    user,
                    groups,
                    access_headers,
                    rule: decision.first_rule(),
                }
            }
            Err(unmet) => {
                log::debug!("alb-oidc: {:?} refused: {unmet}", identity.username);
                // It might have held with the access token nobody could
                // verify: the filter cannot decide.
                let denial = match login.access {
                    AccessTokenState::Unavailable => Denial::JwksUnavailable,
                    _ => Denial::Forbidden,
                };
                Verdict::Deny {
                    denial,
                    rule: access.rule_id(unmet.rule).or(Some(decision.first_rule())),
                    user: Some(identity.username.clone()),
                }
            }
        }
    }

    /// The access token's headers for a request that goes on: its scopes,
    /// its `claim_headers`, and the token itself when it may go on.
    fn access_headers(&self, login: &Login, ticket: &Ticket) -> Vec<Header> {
        let Some(access) = &self.config.access_token else {
            return Vec::new();
        };
        let mut headers = Vec::new();
        if let Some(token) = login.verified_access_token() {
            if let Some(scopes) = token.scopes_header_value() {
                let name = self.config.headers.get(HeaderRole::Scopes).to_owned();
                headers.push((name, scopes));
            }
            headers.extend(token.headers.iter().cloned());
        }
        // `strip_alb_headers` removed it for good.
        if let (Some(raw), false) = (&ticket.forward_access_token, self.config.strip_alb_headers) {
            headers.push((access.header.clone(), raw.clone()));
        }
        headers
    }

    /// The request ended (answered, or its client left): forget it.
    pub fn on_request_gone(&mut self, ctx: u32) {
        self.waiting.forget(ctx);
    }

    /// How many bytes of call `token`'s answer the host should read; `None`
    /// when the call is not this flow's.
    pub fn answer_limit(&self, kind: CallKind, token: u32) -> Option<usize> {
        match kind {
            CallKind::Http if self.jwks_calls.contains_key(&token) => Some(MAX_JWKS_ANSWER),
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
            CallResponse::Http { status, body } => {
                let response = match status {
                    None => KeyResponse::NoResponse,
                    Some(status) => KeyResponse::Response { status, body },
                };
                match (
                    self.key_calls.remove(&token),
                    self.jwks_calls.remove(&token),
                ) {
                    (Some(kid), _) => self.key_answered(&kid, response, now, host),
                    (None, Some(generation)) if generation == self.generation => {
                        self.access_keys_answered(response, now, host)
                    }
                    (None, Some(_)) => {
                        // Fetched under an older configuration, perhaps from
                        // another key set: fetch again for whoever waits.
                        if self.waiting.has_access_key_waiters() {
                            self.queue.push(Call::AccessKeys);
                        }
                        Vec::new()
                    }
                    (None, None) => Vec::new(),
                }
            }
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
        for (ctx, denial, ticket) in self.waiting.sweep(now, max_wait) {
            verdicts.push((ctx, self.conclude(ctx, &ticket, Step::deny(denial), host)));
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

    fn start(
        &mut self,
        ctx: u32,
        token: &str,
        ticket: Ticket,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
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
                self.access_stage(ctx, identity, ticket, now, now, host)
            }
            TokenStep::Denied(denial) => {
                host.count(Counter::TokenCacheMiss);
                self.conclude(ctx, &ticket, Step::deny(denial), host)
            }
            TokenStep::NeedKey { pending, fetch } => {
                host.count(Counter::TokenCacheMiss);
                let kid = pending.kid.clone();
                if fetch {
                    self.queue.push(Call::Key(kid));
                } else if !self.engine.is_fetching_key_here(&kid) {
                    self.waiting.remote_keys.insert(kid);
                }
                self.waiting.wait_key(ctx, pending, ticket, now);
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
        for (ctx, pending, ticket, since) in self.waiting.take_key_waiters(kid) {
            let verdict = match &outcome {
                Ok(key) => self.finish_token(ctx, pending, key, ticket, since, now, host),
                Err(denial) => self.conclude(ctx, &ticket, Step::deny(*denial), host),
            };
            if !matches!(verdict, Verdict::Wait) {
                verdicts.push((ctx, verdict));
            }
        }
        verdicts
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_token(
        &mut self,
        ctx: u32,
        pending: PendingToken,
        key: &PublicKey,
        ticket: Ticket,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        match self.engine.finish_token(pending, key, host.verifier()) {
            Ok(identity) => self.access_stage(ctx, identity, ticket, since, now, host),
            Err(denial) => self.conclude(ctx, &ticket, Step::deny(denial), host),
        }
    }

    // ---- the user service ----

    fn user_stage(
        &mut self,
        ctx: u32,
        login: Login,
        ticket: Ticket,
        since: f64,
        now: f64,
        host: &dyn Host,
    ) -> Verdict {
        if self.config.user_service.is_none() {
            let step = Step::Allow { login, user: None };
            return self.conclude(ctx, &ticket, step, host);
        }
        let step = match self
            .engine
            .user_lookup(host.store(), &login.identity.username, now)
        {
            UserStep::Answer(answer) => {
                host.count(Counter::UserCacheHit);
                user_step(host, login, answer)
            }
            UserStep::Unavailable => self.user_unavailable(host, login),
            UserStep::NeedCall { fetch } => {
                let username = login.identity.username.clone();
                if fetch {
                    self.queue.push(Call::User {
                        username,
                        claims_json: login.identity.claims_json.clone(),
                        access_groups: login.access_groups().to_vec(),
                    });
                } else if !self.engine.is_calling_user_here(&username) {
                    self.waiting.remote_users.insert(username);
                }
                self.waiting.wait_user(ctx, login, ticket, since);
                return Verdict::Wait;
            }
        };
        self.conclude(ctx, &ticket, step, host)
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
        if let Some(UserAnswer::Allowed(allowed)) = answer.as_deref() {
            if allowed.permissions_header_omitted {
                host.count(Counter::PermissionsHeaderOmitted);
                log::info!(
                    "alb-oidc: {username:?} has {} permissions, too many for x-auth-permissions (over {} bytes): header omitted, rules still see them all",
                    allowed.permissions.len(),
                    crate::users::MAX_PERMISSIONS_HEADER
                );
            }
        }
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
        for (ctx, login, ticket) in self.waiting.take_user_waiters(username) {
            let step = match &answer {
                Some(answer) => user_step(host, login, answer.clone()),
                None => self.user_unavailable(host, login),
            };
            verdicts.push((ctx, self.conclude(ctx, &ticket, step, host)));
        }
        verdicts
    }

    fn user_unavailable(&self, host: &dyn Host, login: Login) -> Step {
        let fail_open = self
            .config
            .user_service
            .as_ref()
            .is_some_and(|u| u.failure_mode == FailureMode::Allow);
        if fail_open {
            host.count(Counter::UserFailOpen);
            log::warn!(
                "alb-oidc: user service unavailable; failure_mode=allow, forwarding {:?} with claims-only identity",
                login.identity.username
            );
            Step::Allow { login, user: None }
        } else {
            Step::deny(Denial::UserServiceUnavailable)
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
                // Queued under a configuration that had the call's block
                // (user_service or access_token); the one in force has not.
                None => Err(DispatchFailed(
                    "the configuration in force has no block for this call".to_owned(),
                )),
            };
            match dispatched {
                Ok(token) => match call {
                    Call::Key(kid) => {
                        self.key_calls.insert(token, kid);
                    }
                    Call::AccessKeys => {
                        self.jwks_calls.insert(token, self.generation);
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
                        Call::AccessKeys => log::error!(
                            "alb-oidc: cannot fetch the IdP's key set: dispatch to cluster {:?} failed ({status}); is access_token.jwks_cluster defined?",
                            self.config.access_token.as_ref().map(|a| a.jwks_cluster.as_str()).unwrap_or_default()
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
            Call::AccessKeys => self.access_keys_not_dispatched(now, host),
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
        let mut verdicts = self.poll_access_keys(now, host);
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
                    let claims = self.waiting.login_of_user_waiter(&username).map(|login| {
                        (
                            login.identity.claims_json.clone(),
                            login.access_groups().to_vec(),
                        )
                    });
                    match claims {
                        Some((claims_json, access_groups)) => self.queue.push(Call::User {
                            username,
                            claims_json,
                            access_groups,
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

fn user_step(host: &dyn Host, login: Login, answer: Rc<UserAnswer>) -> Step {
    match answer.as_ref() {
        UserAnswer::Allowed(_) => Step::Allow {
            login,
            user: Some(answer),
        },
        UserAnswer::Refused(reason) => {
            host.count(Counter::UserRefused);
            log::debug!(
                "alb-oidc: user {:?} refused by the user service: {reason}",
                login.identity.username
            );
            Step::Deny {
                denial: Denial::UserRefused,
                identity: Some(login.identity),
            }
        }
    }
}

/// Counts a final verdict (the one place outcomes are counted) and logs a
/// refusal's reason.
fn settle(host: &dyn Host, ctx: u32, verdict: Verdict) -> Verdict {
    match &verdict {
        Verdict::Allow { rule, .. } => {
            host.count(Counter::Allowed);
            host.ruled(*rule, true);
        }
        Verdict::Pass { rule } => host.ruled(*rule, true),
        Verdict::Deny { denial, rule, .. } => {
            host.denied(*denial);
            if let Some(rule) = rule {
                host.ruled(*rule, false);
            }
            log::debug!("alb-oidc: request {ctx} denied: {}", denial.metric_suffix());
        }
        Verdict::Wait => {}
    }
    verdict
}
