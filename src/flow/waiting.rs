//! Requests paused on a call: who waits for what, since when, and how long
//! a wait may last before the sweep answers it.

use super::access::Login;
use super::Ticket;
use crate::access_token::checker::PendingAccessToken;
use crate::config::Config;
use crate::denial::Denial;
use crate::engine::PendingToken;
use crate::identity::Identity;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

/// What a paused request waits for. Each stage has a time budget; the
/// sweep's deadline is their sum, so a stage added later extends it.
pub enum Stage {
    Key(PendingToken),
    AccessKeys(AccessKeysWait),
    User(Login),
}

/// A request whose access token waits for the IdP's key set.
pub struct AccessKeysWait {
    pub identity: Rc<Identity>,
    pub pending: Box<PendingAccessToken>,
}

struct Paused {
    stage: Stage,
    ticket: Ticket,
    /// When the request arrived: the deadline covers all of its stages.
    since: f64,
}

/// Every kind of stage, for the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    Key,
    AccessKeys,
    User,
}

impl StageKind {
    const ALL: [StageKind; 3] = [StageKind::Key, StageKind::AccessKeys, StageKind::User];

    /// The longest a stage can legitimately take: another worker's claim
    /// lapsing (its timeout plus the claim's one second of slack), then this
    /// worker's own call. Zero for a stage the configuration does not use.
    fn budget_ms(self, config: &Config) -> u64 {
        let timeout_ms = match self {
            StageKind::Key => Some(config.key_fetch_timeout_ms),
            StageKind::AccessKeys => config
                .access_token
                .as_ref()
                .map(|a| a.jwks_fetch_timeout_ms),
            StageKind::User => config.user_service.as_ref().map(|u| u.timeout_ms),
        };
        timeout_ms.map_or(0, |t| 2 * t + CLAIM_SLACK_MS)
    }

    /// What a request still waiting at its deadline is told. Fetches end
    /// by their own timeouts well before it, so only a lost answer gets
    /// here: the key set's stage answers 503 even when the access token is
    /// not required.
    fn lapse(self) -> Denial {
        match self {
            StageKind::Key => Denial::KeyUnavailable,
            StageKind::AccessKeys => Denial::JwksUnavailable,
            StageKind::User => Denial::UserServiceUnavailable,
        }
    }
}

impl Stage {
    fn kind(&self) -> StageKind {
        match self {
            Stage::Key(_) => StageKind::Key,
            Stage::AccessKeys(_) => StageKind::AccessKeys,
            Stage::User(_) => StageKind::User,
        }
    }
}

/// How long past its timeout another worker's claim on a call stands
/// (`engine`'s deadlines).
const CLAIM_SLACK_MS: u64 = 1000;
/// Ticks, polls and delivery on top of every stage's budget.
const SWEEP_MARGIN_MS: u64 = 1000;

/// How long a request may stay paused before the sweep answers it: the sum
/// of every stage's budget, whichever stages it passes through.
pub fn max_wait(config: &Config) -> Duration {
    let budget: u64 = StageKind::ALL.iter().map(|s| s.budget_ms(config)).sum();
    Duration::from_millis(budget + SWEEP_MARGIN_MS)
}

/// The paused requests of one worker and the lists they wait on.
#[derive(Default)]
pub struct Waiting {
    paused: HashMap<u32, Paused>,
    by_kid: HashMap<String, Vec<u32>>,
    by_user: HashMap<String, Vec<u32>>,
    /// The requests waiting for the IdP's key set.
    by_access_keys: Vec<u32>,
    /// Kids, users and the key set another worker is fetching, polled from
    /// the tick.
    pub remote_keys: HashSet<String>,
    pub remote_users: HashSet<String>,
    pub remote_access_keys: bool,
}

impl Waiting {
    pub fn is_empty(&self) -> bool {
        self.paused.is_empty()
    }

    pub fn has_remote(&self) -> bool {
        !self.remote_keys.is_empty() || !self.remote_users.is_empty() || self.remote_access_keys
    }

    /// Pauses `ctx` on a key. `since` is the request's arrival.
    pub fn wait_key(&mut self, ctx: u32, pending: PendingToken, ticket: Ticket, since: f64) {
        self.by_kid
            .entry(pending.kid.clone())
            .or_default()
            .push(ctx);
        self.pause(ctx, Stage::Key(pending), ticket, since);
    }

    pub fn wait_user(&mut self, ctx: u32, login: Login, ticket: Ticket, since: f64) {
        self.by_user
            .entry(login.identity.username.clone())
            .or_default()
            .push(ctx);
        self.pause(ctx, Stage::User(login), ticket, since);
    }

    pub fn has_access_key_waiters(&self) -> bool {
        !self.by_access_keys.is_empty()
    }

    pub fn wait_access_keys(&mut self, ctx: u32, wait: AccessKeysWait, ticket: Ticket, since: f64) {
        self.by_access_keys.push(ctx);
        self.pause(ctx, Stage::AccessKeys(wait), ticket, since);
    }

    /// The requests waiting for the key set, with their arrival.
    pub fn take_access_key_waiters(&mut self) -> Vec<(u32, AccessKeysWait, Ticket, f64)> {
        self.remote_access_keys = false;
        let mut out = Vec::new();
        for ctx in std::mem::take(&mut self.by_access_keys) {
            if let Some(Paused {
                stage: Stage::AccessKeys(wait),
                ticket,
                since,
            }) = self.paused.remove(&ctx)
            {
                out.push((ctx, wait, ticket, since));
            }
        }
        out
    }

    /// The kids the tokens waiting for the key set name.
    pub fn access_kids(&self) -> Vec<&str> {
        self.by_access_keys
            .iter()
            .filter_map(|ctx| match self.paused.get(ctx) {
                Some(Paused {
                    stage: Stage::AccessKeys(wait),
                    ..
                }) => Some(wait.pending.kid()),
                _ => None,
            })
            .collect()
    }

    fn pause(&mut self, ctx: u32, stage: Stage, ticket: Ticket, since: f64) {
        let paused = Paused {
            stage,
            ticket,
            since,
        };
        self.paused.insert(ctx, paused);
    }

    /// The requests waiting on `kid`, with their pending tokens, tickets and
    /// arrival.
    pub fn take_key_waiters(&mut self, kid: &str) -> Vec<(u32, PendingToken, Ticket, f64)> {
        self.remote_keys.remove(kid);
        let mut out = Vec::new();
        for ctx in self.by_kid.remove(kid).unwrap_or_default() {
            if let Some(Paused {
                stage: Stage::Key(pending),
                ticket,
                since,
            }) = self.paused.remove(&ctx)
            {
                out.push((ctx, pending, ticket, since));
            }
        }
        out
    }

    pub fn take_user_waiters(&mut self, username: &str) -> Vec<(u32, Login, Ticket)> {
        self.remote_users.remove(username);
        let mut out = Vec::new();
        for ctx in self.by_user.remove(username).unwrap_or_default() {
            if let Some(Paused {
                stage: Stage::User(login),
                ticket,
                ..
            }) = self.paused.remove(&ctx)
            {
                out.push((ctx, login, ticket));
            }
        }
        out
    }

    /// A login still waiting on `username`, to call the user service on
    /// its behalf.
    pub fn login_of_user_waiter(&self, username: &str) -> Option<&Login> {
        self.by_user
            .get(username)
            .into_iter()
            .flatten()
            .find_map(|ctx| match self.paused.get(ctx) {
                Some(Paused {
                    stage: Stage::User(login),
                    ..
                }) => Some(login),
                _ => None,
            })
    }

    pub fn drop_user_waiters(&mut self, username: &str) {
        self.by_user.remove(username);
    }

    /// The request ended (answered, or its client left).
    pub fn forget(&mut self, ctx: u32) {
        self.paused.remove(&ctx);
    }

    /// Answers 503 to every request paused past `max_wait`, and drops
    /// waiter entries of requests that are gone.
    pub fn sweep(&mut self, now: f64, max_wait: Duration) -> Vec<(u32, Denial, Ticket)> {
        let limit = max_wait.as_secs_f64();
        let stale: Vec<u32> = self
            .paused
            .iter()
            .filter(|(_, p)| now - p.since > limit)
            .map(|(ctx, _)| *ctx)
            .collect();
        let mut answers = Vec::new();
        for ctx in stale {
            if let Some(p) = self.paused.remove(&ctx) {
                log::error!(
                    "alb-oidc: request {ctx} waited {:.1}s for a call; answering 503",
                    now - p.since
                );
                answers.push((ctx, p.stage.kind().lapse(), p.ticket));
            }
        }
        let paused = &self.paused;
        for lists in [&mut self.by_kid, &mut self.by_user] {
            lists.retain(|_, ctxs| {
                ctxs.retain(|c| paused.contains_key(c));
                !ctxs.is_empty()
            });
        }
        self.by_access_keys.retain(|c| paused.contains_key(c));
        if self.by_access_keys.is_empty() {
            self.remote_access_keys = false;
        }
        let by_kid = &self.by_kid;
        self.remote_keys.retain(|k| by_kid.contains_key(k));
        let by_user = &self.by_user;
        self.remote_users.retain(|u| by_user.contains_key(u));
        answers
    }
}
