//! One scripted Envoy worker around the request flow: a `Flow`, its fake
//! host, and every verdict each request got, with the invariants checked
//! on the way (a verdict only for a paused request, a resumed request is
//! decided). The flow's integration tests drive it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::fake_host::{FakeHeaders, FakeHost};
use crate::store::MemoryStore;
use alb_oidc::config::Config;
use alb_oidc::denial::Denial;
use alb_oidc::flow::{CallResponse, Flow, Verdict};
use std::collections::HashMap;
use std::rc::Rc;

/// One worker: a flow, its host, and every verdict it gave, per request.
pub struct Worker {
    pub flow: Flow,
    pub host: FakeHost,
    pub verdicts: HashMap<u32, Vec<Verdict>>,
    pub waiting: Vec<u32>,
}

impl Worker {
    pub fn new(config: Config, store: &Rc<MemoryStore>) -> Worker {
        let host = FakeHost::sharing(store);
        let flow = Flow::new(config);
        flow.prepare(&host);
        Worker {
            flow,
            host,
            verdicts: HashMap::new(),
            waiting: Vec::new(),
        }
    }

    pub fn alone(config: Config) -> Worker {
        Worker::new(config, &Rc::new(MemoryStore::default()))
    }

    pub fn request(&mut self, ctx: u32, token: &str, now: f64) -> &Verdict {
        self.send(ctx, &[(":path", "/x"), ("x-amzn-oidc-data", token)], now);
        self.verdicts[&ctx].last().unwrap()
    }

    /// Sends a request with these headers; returns the headers as the
    /// flow left them (`removed` lists what it took out).
    pub fn send(&mut self, ctx: u32, pairs: &[(&str, &str)], now: f64) -> FakeHeaders {
        let mut headers = FakeHeaders::new(pairs);
        let verdict = self.flow.on_request(ctx, &mut headers, now, &self.host);
        if matches!(verdict, Verdict::Wait) {
            self.waiting.push(ctx);
        }
        self.record(ctx, verdict);
        headers
    }

    pub fn denial(&self, ctx: u32) -> Option<Denial> {
        match self.outcome(ctx) {
            Verdict::Deny { denial, .. } => Some(*denial),
            _ => None,
        }
    }

    pub fn rule(&self, ctx: u32) -> String {
        let rule = self.outcome(ctx).rule().expect("a rule");
        self.flow.rule_name(rule).to_owned()
    }

    pub fn record(&mut self, ctx: u32, verdict: Verdict) -> &Verdict {
        let list = self.verdicts.entry(ctx).or_default();
        list.push(verdict);
        list.last().unwrap()
    }

    pub fn deliver(&mut self, verdicts: Vec<(u32, Verdict)>) {
        for (ctx, verdict) in verdicts {
            assert!(
                self.waiting.contains(&ctx),
                "a verdict for request {ctx}, which is not paused"
            );
            assert!(
                !matches!(verdict, Verdict::Wait),
                "a resumed request must be decided"
            );
            self.waiting.retain(|c| *c != ctx);
            self.record(ctx, verdict);
        }
    }

    pub fn tick(&mut self, now: f64) {
        let verdicts = self.flow.on_tick(now, &mut self.host);
        self.deliver(verdicts);
    }

    pub fn answer(&mut self, token: u32, response: CallResponse, now: f64) {
        let verdicts = self
            .flow
            .on_call_answered(token, response, now, &mut self.host);
        self.deliver(verdicts);
    }

    pub fn gone(&mut self, ctx: u32) {
        self.flow.on_request_gone(ctx);
        self.waiting.retain(|c| *c != ctx);
    }

    /// The one final verdict request `ctx` got (after a `Wait`, if any).
    pub fn outcome(&self, ctx: u32) -> &Verdict {
        let list = &self.verdicts[&ctx];
        let finals: Vec<_> = list
            .iter()
            .filter(|v| !matches!(v, Verdict::Wait))
            .collect();
        assert_eq!(finals.len(), 1, "request {ctx} got {list:?}");
        finals[0]
    }

    pub fn status(&self, ctx: u32) -> u32 {
        match self.outcome(ctx) {
            Verdict::Allow { .. } | Verdict::Pass { .. } => 200,
            Verdict::Deny { denial, .. } => denial.status(),
            Verdict::Wait => unreachable!(),
        }
    }

    pub fn header(&self, ctx: u32, name: &str) -> Option<String> {
        self.outcome(ctx)
            .headers()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}
