//! The per-request hot path of the filter's core, set up once for every
//! measurement of it (the criterion benches and the instruction counts of
//! `examples/flow_cost.rs`): a `Flow` whose verified-token cache already
//! holds the token, and a typical ALB request to `/api/orders/42`, under
//! three configurations that differ only in their authorization settings.
//!
//! Set-up that goes wrong panics, as in the fuzz harness: a measurement of
//! a flow that does not serve the request as expected must not run.
#![allow(clippy::expect_used, clippy::panic)]

use crate::fake_host::{FakeHeaders, FakeHost};
use crate::fixtures::{ARN, CLIENT, ISSUER};
use crate::harness::{alb_header, alb_token, public_pem, NOW};
use alb_oidc::config;
use alb_oidc::flow::{CallResponse, Flow, Verdict};
use serde_json::{json, Value};

/// The configurations compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `exempt_paths` only.
    NoRules,
    /// Plus `groups_claim` (the token's groups and `x-auth-groups`).
    GroupsClaimOnly,
    /// Plus the 20 rules of [`twenty_rules_json`], the 20th deciding.
    TwentyRules,
}

impl Variant {
    pub const ALL: [Variant; 3] = [
        Variant::NoRules,
        Variant::GroupsClaimOnly,
        Variant::TwentyRules,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::NoRules => "rules_none",
            Variant::GroupsClaimOnly => "groups_claim_only",
            Variant::TwentyRules => "rules_20",
        }
    }

    /// The rule that decides the request.
    pub fn deciding_rule(self) -> &'static str {
        match self {
            Variant::TwentyRules => "api",
            _ => "default",
        }
    }

    pub fn config_json(self) -> Value {
        let mut json = json!({
            "region": "us-east-1",
            "alb_arns": [ARN],
            "issuer": ISSUER,
            "client_id": CLIENT,
            "exempt_paths": ["/healthz"],
            "signature_backend": "rust",
        });
        if self != Variant::NoRules {
            json["groups_claim"] = "custom:groups".into();
        }
        if self == Variant::TwentyRules {
            json["rules"] = twenty_rules_json();
        }
        json
    }
}

/// 19 rules a `GET` to `/api/...` on app.example.com passes by (other
/// paths, hosts, methods), then `api`, which it matches.
pub fn twenty_rules_json() -> Value {
    let mut rules: Vec<Value> = (0..19)
        .map(|i| match i % 4 {
            0 => json!({"name": format!("r{i}"), "paths": [format!("/area{i}/*")], "allow": "anyone"}),
            1 => json!({"name": format!("r{i}"), "hosts": [format!("h{i}.example.com")], "allow": "deny"}),
            2 => json!({"name": format!("r{i}"), "paths": ["/api/*"], "methods": ["DELETE"],
                        "require": {"groups_any": ["admin"]}}),
            _ => json!({"name": format!("r{i}"), "paths": [format!("/exact{i}"), format!("/p{i}/*")],
                        "ignore_case": true, "allow": "optional"}),
        })
        .collect();
    rules.push(json!({"name": "api", "paths": ["/api/*"],
        "require": {"groups_any": ["admin", "staff"], "claims": {"custom:tenant": ["acme", "globex"]}}}));
    Value::Array(rules)
}

/// A warmed flow and the request it serves.
pub struct HotFlow {
    pub flow: Flow,
    pub host: FakeHost,
    pairs: Vec<(&'static str, String)>,
    next_ctx: u32,
}

impl HotFlow {
    /// Panics if the flow does not serve the request as expected.
    pub fn new(variant: Variant) -> HotFlow {
        let token = alb_token(
            &alb_header(),
            &format!(
                r#"{{"sub":"7c1e4f0a-2b9d-4e51-9a3c-5d2f8e6b1a01","email_verified":"true","email":"bench.user@example.com","username":"bench-user","custom:groups":"dev, staff","custom:tenant":"acme","exp":4000000000,"iss":"{ISSUER}"}}"#
            ),
        );
        let pairs = vec![
            (":authority", "app.example.com".to_owned()),
            (":path", "/api/orders/42?expand=items".to_owned()),
            (":method", "GET".to_owned()),
            (":scheme", "https".to_owned()),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) bench".to_owned(),
            ),
            ("accept", "application/json".to_owned()),
            ("x-forwarded-for", "203.0.113.7".to_owned()),
            (
                "x-amzn-trace-id",
                "Root=1-67891233-abcdef012345678912345678".to_owned(),
            ),
            ("x-amzn-oidc-data", token),
            (
                "x-amzn-oidc-identity",
                "7c1e4f0a-2b9d-4e51-9a3c-5d2f8e6b1a01".to_owned(),
            ),
            (
                "x-amzn-oidc-accesstoken",
                "eyJraWQiOiJhY2Nlc3MifQ.eyJzdWIiOiJiZW5jaCJ9.c2ln".to_owned(),
            ),
        ];
        let config = config::parse(variant.config_json().to_string().as_bytes())
            .expect("the variant's configuration");
        let mut host = FakeHost::default();
        let mut flow = Flow::new(config);
        flow.prepare(&host);
        // The first request fetches the key (dispatched on the next tick)
        // and fills the token cache.
        let first = flow.on_request(1, &mut headers_of(&pairs), NOW, &host);
        assert!(matches!(first, Verdict::Wait), "{first:?}");
        assert!(flow.on_tick(NOW + 0.001, &mut host).is_empty());
        let call = host.key_calls()[0];
        let key = CallResponse::Http {
            status: Some(200),
            body: public_pem().into_bytes(),
        };
        let answered = flow.on_call_answered(call, key, NOW, &mut host);
        assert!(
            matches!(answered.as_slice(), [(1, Verdict::Allow { .. })]),
            "{answered:?}"
        );
        flow.on_request_gone(1);
        HotFlow {
            flow,
            host,
            pairs,
            next_ctx: 2,
        }
    }

    /// The request's headers, fresh (the flow removes some).
    pub fn headers(&self) -> FakeHeaders {
        headers_of(&self.pairs)
    }

    /// One request through the flow: a cache hit, decided at once.
    pub fn request(&mut self, headers: &mut FakeHeaders) -> Verdict {
        let ctx = self.next_ctx;
        self.next_ctx = self.next_ctx.wrapping_add(1).max(2);
        let verdict = self.flow.on_request(ctx, headers, NOW, &self.host);
        self.flow.on_request_gone(ctx);
        verdict
    }
}

fn headers_of(pairs: &[(&'static str, String)]) -> FakeHeaders {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
    FakeHeaders::new(&pairs)
}
