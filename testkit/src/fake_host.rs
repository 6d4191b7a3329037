//! A fake proxy-wasm host for the request flow (`alb_oidc::flow`): in-memory
//! shared data, counted metrics, recorded calls, and request headers in
//! proxy-wasm's serialization. The flow's tests and the micro-benchmarks
//! drive `Flow` through it.

use crate::store::MemoryStore;
use alb_oidc::access_token::{AccessSignatureVerifier, RustAccessVerifier};
use alb_oidc::denial::Denial;
use alb_oidc::engine::{RustVerifier, SignatureVerifier};
use alb_oidc::flow::host::Metrics;
use alb_oidc::flow::{CallRequest, Counter, DispatchFailed, Host, RequestHeaders};
use alb_oidc::rules::RuleId;
use alb_oidc::shared_cache::SharedStore;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Default)]
pub struct FakeHost {
    pub store: Rc<MemoryStore>,
    pub counters: RefCell<HashMap<Counter, u64>>,
    pub denials: RefCell<HashMap<Denial, u64>>,
    /// Per-rule counts: (rule, allowed).
    pub rules: RefCell<HashMap<(RuleId, bool), u64>>,
    /// Every call made, with the token it got.
    pub calls: Vec<(u32, CallRequest)>,
    pub next_token: u32,
    pub refuse_dispatch: bool,
}

impl FakeHost {
    pub fn sharing(store: &Rc<MemoryStore>) -> FakeHost {
        FakeHost {
            store: store.clone(),
            ..FakeHost::default()
        }
    }

    pub fn count_of(&self, counter: Counter) -> u64 {
        self.counters.borrow().get(&counter).copied().unwrap_or(0)
    }

    pub fn denied_of(&self, denial: Denial) -> u64 {
        self.denials.borrow().get(&denial).copied().unwrap_or(0)
    }

    pub fn ruled_of(&self, rule: RuleId, allowed: bool) -> u64 {
        self.rules
            .borrow()
            .get(&(rule, allowed))
            .copied()
            .unwrap_or(0)
    }

    pub fn key_calls(&self) -> Vec<u32> {
        self.calls
            .iter()
            .filter(|(_, c)| matches!(c, CallRequest::Http { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    pub fn user_calls(&self) -> Vec<u32> {
        self.calls
            .iter()
            .filter(|(_, c)| matches!(c, CallRequest::Grpc { .. }))
            .map(|(t, _)| *t)
            .collect()
    }
}

impl Metrics for FakeHost {
    fn count(&self, counter: Counter) {
        *self.counters.borrow_mut().entry(counter).or_default() += 1;
    }

    fn denied(&self, denial: Denial) {
        *self.denials.borrow_mut().entry(denial).or_default() += 1;
    }

    fn ruled(&self, rule: RuleId, allowed: bool) {
        *self.rules.borrow_mut().entry((rule, allowed)).or_default() += 1;
    }
}

impl Host for FakeHost {
    fn store(&self) -> &dyn SharedStore {
        self.store.as_ref()
    }

    fn verifier(&self) -> &dyn SignatureVerifier {
        &RustVerifier
    }

    fn access_verifier(&self) -> &dyn AccessSignatureVerifier {
        &RustAccessVerifier
    }

    fn dispatch(&mut self, call: &CallRequest) -> Result<u32, DispatchFailed> {
        if self.refuse_dispatch {
            return Err(DispatchFailed("BadArgument".to_owned()));
        }
        self.next_token += 1;
        self.calls.push((self.next_token, call.clone()));
        Ok(self.next_token)
    }
}

/// A request's headers in proxy-wasm's serialization.
#[derive(Clone)]
pub struct FakeHeaders {
    pub pairs: Vec<(String, String)>,
    pub removed: Vec<Vec<u8>>,
}

impl FakeHeaders {
    pub fn new(pairs: &[(&str, &str)]) -> FakeHeaders {
        FakeHeaders {
            pairs: pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            removed: Vec::new(),
        }
    }
}

impl RequestHeaders for FakeHeaders {
    fn listing(&self) -> Option<Vec<u8>> {
        let mut out = (self.pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in &self.pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in &self.pairs {
            out.extend(n.as_bytes());
            out.push(0);
            out.extend(v.as_bytes());
            out.push(0);
        }
        Some(out)
    }

    fn value(&self, name: &str) -> Option<Vec<u8>> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_bytes().to_vec())
    }

    fn remove(&mut self, name: &[u8]) {
        self.removed.push(name.to_vec());
    }
}
