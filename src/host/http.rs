//! The per-request HTTP context: hands the request to the flow and carries
//! out its verdict.

use super::raw::{
    add_request_header, header_bytes, header_pairs, remove_request_header_bytes,
    set_stream_property,
};
use super::worker::Worker;
use crate::denial::Denial;
use crate::flow::host::Metrics;
use crate::flow::{RequestHeaders, Verdict};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

pub struct AuthHttp {
    pub id: u32,
    pub worker: Rc<RefCell<Worker>>,
}

pub fn now_s() -> f64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The current request's headers, through our panic-free bindings.
struct HostRequestHeaders;

impl RequestHeaders for HostRequestHeaders {
    fn listing(&self) -> Option<Vec<u8>> {
        header_pairs(MapType::HttpRequestHeaders)
    }

    fn value(&self, name: &str) -> Option<Vec<u8>> {
        header_bytes(MapType::HttpRequestHeaders, name)
    }

    fn remove(&mut self, name: &[u8]) {
        remove_request_header_bytes(name);
    }
}

/// Filter state for access logs: Envoy stores a property set by a filter
/// under `wasm.<name>`, readable as `%FILTER_STATE(wasm.alb_oidc.user:PLAIN)%`.
const LOG_USER: &str = "alb_oidc.user";
const LOG_RULE: &str = "alb_oidc.rule";

/// Carries out a verdict on the request of the current (effective) context;
/// the action is for a context deciding its own request. `rule_name` is
/// the name of the verdict's rule, for the access log.
pub fn apply(verdict: &Verdict, rule_name: Option<&str>) -> Action {
    if !matches!(verdict, Verdict::Wait) {
        // Host-call audit: the path is one fixed name (Envoy prefixes
        // `wasm.`); the values are a rule name (`[A-Za-z0-9_-]`) and a
        // verified username, stored as bytes, never parsed.
        if let Some(rule) = rule_name {
            set_stream_property(LOG_RULE, rule.as_bytes());
        }
        if let Some(user) = verdict.username() {
            set_stream_property(LOG_USER, user.as_bytes());
        }
    }
    match verdict {
        Verdict::Pass { .. } | Verdict::Allow { .. } => {
            // The incoming copies were removed first: these are the only ones.
            for (name, value) in verdict.headers() {
                add_request_header(name, value);
            }
            Action::Continue
        }
        Verdict::Deny { denial, .. } => {
            send_denial(*denial);
            Action::Pause
        }
        Verdict::Wait => Action::Pause,
    }
}

// Host-call audit: a status code, two fixed headers and a fixed body; Envoy
// parses none of them beyond their HTTP meaning.
fn send_denial(denial: Denial) {
    let _ = hostcalls::send_http_response(
        denial.status(),
        vec![
            ("content-type", "text/plain"),
            ("cache-control", "no-store"),
        ],
        Some(denial.body().as_bytes()),
    );
}

impl Context for AuthHttp {}

impl HttpContext for AuthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mut worker = self.worker.borrow_mut();
        let Worker { flow, services, .. } = &mut *worker;
        let Some(flow) = flow else {
            // A request before any configuration was accepted: fail closed.
            services.denied(Denial::NotConfigured);
            send_denial(Denial::NotConfigured);
            return Action::Pause;
        };
        let verdict = flow.on_request(self.id, &mut HostRequestHeaders, now_s(), services);
        let action = apply(&verdict, verdict.rule().map(|r| flow.rule_name(r)));
        if matches!(verdict, Verdict::Wait) {
            worker.update_tick();
        }
        action
    }

    fn on_log(&mut self) {
        if let Some(flow) = &mut self.worker.borrow_mut().flow {
            flow.on_request_gone(self.id);
        }
    }
}

impl Drop for AuthHttp {
    fn drop(&mut self) {
        if let Ok(mut worker) = self.worker.try_borrow_mut() {
            if let Some(flow) = &mut worker.flow {
                flow.on_request_gone(self.id);
            }
        }
    }
}
