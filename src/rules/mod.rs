//! Authorization at the proxy: route rules on paths, methods and hosts that
//! decide whether a request needs no token, an optional one, a verified
//! user, a user meeting requirements (groups, claims), or is refused.
//!
//! Pure core: `AccessRules` is built once at configuration load
//! (`config::parse`); the flow calls `route` for every request, before
//! looking at the token, and `RouteDecision::check` once the user is known.
//!
//! Every reading of the path (`readings`) is routed: for each, the first
//! matching rule applies (the default rule when none matches), and the
//! strictest result wins (`Access` is ordered by strictness). A path that
//! today's exempt-path check calls ambiguous (`paths::is_ambiguous`) never
//! matches an `anyone` or `optional` rule.
//!
//! Names: `exempt_paths` become one leading `anyone` rule named
//! `exempt_paths`; the default rule is named `default`. Both names are
//! reserved, so every decision names exactly one rule per deciding reading,
//! usable as-is in counters (`rule.<name>.allowed`) and access logs.

mod groups;
mod matching;
pub mod readings;
mod requirement;

pub use groups::Groups;
pub use matching::{request_host, HostPattern, MethodName};
pub use requirement::{ClaimValues, Condition, Requirement, Subject, UserFacts};

use crate::paths::{self, PathPattern};
use serde::Deserialize;
use std::cell::OnceCell;
use std::fmt;

/// The name of the rule that applies when no configured rule matches.
pub const DEFAULT_RULE_NAME: &str = "default";
/// The name of the leading rule made of `exempt_paths`.
pub const EXEMPT_RULE_NAME: &str = "exempt_paths";

/// An `allow` value (of a rule or of `default_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allow {
    /// No authentication at all (as an exempt path).
    Anyone,
    /// No token: continue anonymously; a token must be valid.
    Optional,
    /// Any verified user.
    Authenticated,
    /// Refused (403) without looking at any token.
    Deny,
}

/// What a request needs, from the loosest to the strictest (the derived
/// order is the strictness order readings combine by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Anyone,
    Optional,
    Authenticated,
    /// A verified user meeting every deciding rule's requirement.
    Require,
    Deny,
}

impl From<Allow> for Access {
    fn from(allow: Allow) -> Self {
        match allow {
            Allow::Anyone => Access::Anyone,
            Allow::Optional => Access::Optional,
            Allow::Authenticated => Access::Authenticated,
            Allow::Deny => Access::Deny,
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow(Allow),
    Require(Requirement),
}

impl Action {
    pub fn access(&self) -> Access {
        match self {
            Action::Allow(allow) => (*allow).into(),
            Action::Require(_) => Access::Require,
        }
    }
}

/// One compiled rule. A field left out (`None`) matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) paths: Option<Vec<PathPattern>>,
    pub(crate) methods: Option<Vec<MethodName>>,
    pub(crate) hosts: Option<Vec<HostPattern>>,
    pub(crate) ignore_case: bool,
    pub(crate) action: Action,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn action(&self) -> &Action {
        &self.action
    }

    fn matches(&self, request: &Request<'_>, reading: &str, folded: bool) -> bool {
        let path_matches = |p: &PathPattern| {
            if folded && self.ignore_case {
                p.matches_ignoring_case(reading)
            } else {
                p.matches(reading)
            }
        };
        self.paths
            .as_ref()
            .is_none_or(|ps| ps.iter().any(path_matches))
            && self
                .methods
                .as_ref()
                .is_none_or(|ms| ms.iter().any(|m| m.matches(request.method)))
            && self
                .hosts
                .as_ref()
                .is_none_or(|hs| hs.iter().any(|h| h.matches(request.host)))
    }

    fn is_loose(&self) -> bool {
        self.action.access() <= Access::Optional
    }
}

/// Index of a rule in `AccessRules::names` (for counters set up at load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub usize);

/// The compiled rules, built once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    /// The exempt rule (if any), the configured rules, then the default
    /// rule: always last, matching everything.
    rules: Vec<Rule>,
    groups_claims: Vec<String>,
    /// Whether an unreadable path is refused (400): with `rules` or an
    /// explicit `default_rule`. Otherwise it is simply never exempt.
    refuse_unreadable: bool,
    any_ignore_case: bool,
}

impl Default for AccessRules {
    /// No rules: every request needs a verified user.
    fn default() -> Self {
        AccessRules::new(Vec::new(), Allow::Authenticated, false, Vec::new())
    }
}

/// The path cannot be read (malformed percent-encoding, an encoded NUL, not
/// UTF-8): the flow answers 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadablePath;

impl fmt::Display for UnreadablePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("path cannot be read (malformed percent-encoding or an encoded NUL)")
    }
}

impl std::error::Error for UnreadablePath {}

/// The request as rules see it.
struct Request<'a> {
    method: &'a str,
    host: &'a str,
    request_path: &'a str,
    /// Computed only when a loose rule matches.
    ambiguous: OnceCell<bool>,
}

impl Request<'_> {
    fn is_ambiguous(&self) -> bool {
        *self
            .ambiguous
            .get_or_init(|| paths::is_ambiguous(self.request_path))
    }
}

impl AccessRules {
    /// `rules` in order (exempt rule first, if any); `refuse_unreadable`
    /// when `rules` or `default_rule` was configured.
    pub(crate) fn new(
        mut rules: Vec<Rule>,
        default: Allow,
        refuse_unreadable: bool,
        groups_claims: Vec<String>,
    ) -> Self {
        rules.push(Rule {
            name: DEFAULT_RULE_NAME.to_owned(),
            paths: None,
            methods: None,
            hosts: None,
            ignore_case: false,
            action: Action::Allow(default),
        });
        let any_ignore_case = rules.iter().any(|r| r.ignore_case);
        AccessRules {
            rules,
            groups_claims,
            refuse_unreadable,
            any_ignore_case,
        }
    }

    /// Every rule's name, by `RuleId`: the exempt rule, the configured
    /// rules, `default` last.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.0)
    }

    /// The id of the rule named `name` (names are unique).
    pub fn rule_id(&self, name: &str) -> Option<RuleId> {
        self.rules.iter().position(|r| r.name == name).map(RuleId)
    }

    /// Whether routing reads the request (`:method`, `:authority`,
    /// `:path`): not when the default rule is all there is and unreadable
    /// paths are not refused.
    pub fn reads_request(&self) -> bool {
        self.rules.len() > 1 || self.refuse_unreadable
    }

    /// What applies when no rule matches.
    pub fn default_access(&self) -> Access {
        self.rules
            .last()
            .map_or(Access::Authenticated, |r| r.action.access())
    }

    /// The claims that hold groups (`groups_claim`).
    pub fn groups_claims(&self) -> &[String] {
        &self.groups_claims
    }

    /// The groups rules see and `x-auth-groups` carries.
    pub fn groups<'a>(
        &self,
        claims: &'a serde_json::Map<String, serde_json::Value>,
        user_groups: impl IntoIterator<Item = &'a str>,
    ) -> Groups<'a> {
        Groups::collect(claims, &self.groups_claims, user_groups)
    }

    /// The groups a verified token holds (`groups_claim`), sorted, each
    /// once, and how many names were dropped: computed once per token (the
    /// identity caches them), joined with the user service's per request.
    pub fn token_groups(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> (Vec<String>, usize) {
        let groups = Groups::collect(claims, &self.groups_claims, []);
        let names = groups.names().iter().map(|n| (*n).to_owned()).collect();
        (names, groups.dropped())
    }

    /// Routes a request: `request_path` is `:path` as received (query
    /// included or not), `None` when it is not UTF-8; `authority` is
    /// `:authority`; `method` is `:method`. `Err` only when unreadable
    /// paths are refused (see `refuse_unreadable`).
    pub fn route(
        &self,
        method: &str,
        authority: &str,
        request_path: Option<&str>,
    ) -> Result<RouteDecision, UnreadablePath> {
        if !self.reads_request() {
            return Ok(Combined::default().decision(self));
        }
        let request = Request {
            method,
            host: request_host(authority),
            request_path: request_path.unwrap_or_default(),
            ambiguous: OnceCell::new(),
        };
        let full = request.request_path;
        // Neither query nor fragment is part of the path.
        let path = &full[..full.find(['?', '#']).unwrap_or(full.len())];
        let mut combined = Combined::default();
        if request_path.is_some() && readings::is_single_reading(path) {
            self.route_reading(&request, path, &mut combined);
        } else if request_path.is_none() || !readings::is_readable(path) {
            if self.refuse_unreadable {
                return Err(UnreadablePath);
            }
            // Only exempt paths configured: as before, never exempt.
            let _ = request.ambiguous.set(true);
            self.route_reading(&request, path, &mut combined);
        } else {
            for reading in readings::readings(path) {
                self.route_reading(&request, &reading, &mut combined);
            }
        }
        Ok(combined.decision(self))
    }

    /// One reading, and its case-folded twin when a rule ignores case
    /// (`ignore_case` rules' patterns are lower case, so a reading without
    /// upper case is its own twin).
    fn route_reading(&self, request: &Request<'_>, reading: &str, combined: &mut Combined) {
        combined.add(self.first_match(request, reading, false));
        if self.any_ignore_case && reading.bytes().any(|b| b.is_ascii_uppercase()) {
            combined.add(self.first_match(request, reading, true));
        }
    }

    /// The rule that applies to one reading: the first that matches, loose
    /// rules skipped for an ambiguous path; the default when none does.
    /// With `folded`, rules with `ignore_case` compare the case-folded reading.
    /// The access is never looser than a skipped rule's (so that an
    /// ambiguous path can only be decided more strictly).
    fn first_match(&self, request: &Request<'_>, reading: &str, folded: bool) -> (Access, usize) {
        let mut floor = Access::Anyone;
        let last = self.rules.len().saturating_sub(1);
        for (i, rule) in self.rules.iter().enumerate() {
            if i != last && !rule.matches(request, reading, folded) {
                continue;
            }
            let access = rule.action.access();
            if i != last && rule.is_loose() && request.is_ambiguous() {
                floor = floor.max(access);
                continue;
            }
            return (access.max(floor), i);
        }
        (floor.max(Access::Authenticated), last)
    }

    /// The rule one exact reading gets, as `route` decides each reading:
    /// for tests and diagnostics (`route` combines these over all readings).
    pub fn decide_reading(
        &self,
        method: &str,
        authority: &str,
        request_path: &str,
        reading: &str,
        folded: bool,
    ) -> (Access, RuleId) {
        let request = Request {
            method,
            host: request_host(authority),
            request_path,
            ambiguous: OnceCell::new(),
        };
        let (access, i) = self.first_match(&request, reading, folded);
        (access, RuleId(i))
    }
}

/// The strictest result so far, and the rules that decided it.
#[derive(Default)]
struct Combined {
    decided: Option<(Access, usize)>,
    /// Further rules at `Require`: their requirements all apply.
    more: Vec<usize>,
}

impl Combined {
    fn add(&mut self, (access, rule): (Access, usize)) {
        match self.decided {
            Some((current, _)) if access < current => {}
            Some((current, first)) if access == current => {
                if access == Access::Require && rule != first && !self.more.contains(&rule) {
                    self.more.push(rule);
                }
            }
            _ => {
                self.decided = Some((access, rule));
                self.more.clear();
            }
        }
    }

    fn decision(self, rules: &AccessRules) -> RouteDecision {
        let (access, first) = self
            .decided
            .unwrap_or((rules.default_access(), rules.rules.len().saturating_sub(1)));
        RouteDecision {
            access,
            first: RuleId(first),
            more: self.more.into_iter().map(RuleId).collect(),
        }
    }
}

/// What a request needs, and the rule(s) that decided it. Owns no borrow,
/// so a request paused for a key or the user service can keep it; names
/// and requirements are looked up in the `AccessRules` it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    access: Access,
    first: RuleId,
    /// Further deciding rules, only for `Require` (all their requirements apply).
    more: Vec<RuleId>,
}

/// A requirement that did not hold: which rule, which condition
/// (`require.groups_any`, `require.claims.custom:tenant`), for the debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet<'r> {
    pub rule: &'r str,
    pub requirement: String,
}

impl fmt::Display for Unmet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}: {} not met", self.rule, self.requirement)
    }
}

impl RouteDecision {
    pub fn access(&self) -> Access {
        self.access
    }

    /// The (first) deciding rule: the one counters and access logs name.
    pub fn first_rule(&self) -> RuleId {
        self.first
    }

    /// The deciding rules: one, or for `Require` every rule whose
    /// requirement applies (the one found first, first).
    pub fn rule_ids(&self) -> impl Iterator<Item = RuleId> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }

    /// The name of the (first) deciding rule: for logs and access logs.
    pub fn rule_name<'r>(&self, rules: &'r AccessRules) -> &'r str {
        rules
            .rule(self.first)
            .map_or(DEFAULT_RULE_NAME, |r| r.name.as_str())
    }

    /// Every deciding rule's name (for per-rule counters).
    pub fn rule_names<'r>(&self, rules: &'r AccessRules) -> Vec<&'r str> {
        self.rule_ids()
            .filter_map(|id| rules.rule(id))
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Whether a deciding rule needs the user service's answer (permissions,
    /// staff, superuser): such a request fails closed without one, whatever
    /// `failure_mode` says.
    pub fn needs_user_service(&self, rules: &AccessRules) -> bool {
        self.rule_ids().any(|id| {
            matches!(rules.rule(id).map(|r| &r.action), Some(Action::Require(req)) if req.needs_user_service())
        })
    }

    /// Whether the verified `subject` may pass. Only `Require` checks
    /// anything; `Deny` never passes (the flow refuses it before any token
    /// is read; this keeps a misuse closed).
    pub fn check<'r>(
        &self,
        rules: &'r AccessRules,
        subject: &Subject<'_>,
    ) -> Result<(), Unmet<'r>> {
        if self.access == Access::Deny {
            return Err(Unmet {
                rule: self.rule_name(rules),
                requirement: "allow: deny".to_owned(),
            });
        }
        for id in self.rule_ids() {
            let Some(rule) = rules.rule(id) else {
                continue;
            };
            if let Action::Require(requirement) = &rule.action {
                requirement.check(subject).map_err(|failed| Unmet {
                    rule: rule.name.as_str(),
                    requirement: format!("require.{failed}"),
                })?;
            }
        }
        Ok(())
    }
}
