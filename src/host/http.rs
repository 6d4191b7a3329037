//! The per-request HTTP context: strip, exempt, read the token, and either
//! decide at once or pause until the root delivers the verdict.

use super::metrics::Counter;
use super::worker::{Verdict, Worker};
use crate::config::ALB_HEADERS;
use crate::denial::Denial;
use crate::users::UserAnswer;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

pub struct AuthHttp {
    pub id: u32,
    /// `None` only if Envoy created a request before a configuration was
    /// accepted; such requests are refused (fail closed).
    pub worker: Option<Rc<RefCell<Worker>>>,
}

pub fn now_s() -> f64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A request header as text; a non-UTF-8 value reads as `Some(Err(()))`.
fn request_header(name: &str) -> Option<Result<String, ()>> {
    super::raw::header_text(MapType::HttpRequestHeaders, name)
}

use super::raw::{add_request_header, remove_request_header};

/// Carries out a verdict on the request of the current (effective) context.
/// Returns the action for a context deciding its own request.
pub fn apply(worker: &Rc<RefCell<Worker>>, ctx: u32, verdict: Verdict) -> Action {
    match verdict {
        Verdict::Pass => Action::Continue,
        Verdict::Allow { identity, user } => {
            let user_headers = match user.as_deref() {
                Some(UserAnswer::Allowed(headers)) => headers.as_slice(),
                _ => &[],
            };
            // The incoming copies were removed first: these are the only ones.
            for (name, value) in identity.headers.iter().chain(user_headers) {
                add_request_header(name, value);
            }
            worker.borrow().metrics.count(Counter::Allowed);
            Action::Continue
        }
        Verdict::Deny(denial) => {
            worker.borrow().metrics.denied(denial);
            log::debug!("alb-oidc: request {ctx} denied: {}", denial.metric_suffix());
            send_denial(denial);
            Action::Pause
        }
        Verdict::Wait => Action::Pause,
    }
}

pub fn send_denial(denial: Denial) {
    let _ = hostcalls::send_http_response(
        denial.status(),
        vec![
            ("content-type", "text/plain"),
            ("cache-control", "no-store"),
        ],
        Some(denial.body().as_bytes()),
    );
}

impl AuthHttp {
    fn decide(&self, worker: &Rc<RefCell<Worker>>) -> Verdict {
        let mut w = worker.borrow_mut();
        let config = w.engine.config.clone();
        // Identity headers are only ever set by this filter.
        for name in &config.managed_headers {
            remove_request_header(name);
        }
        let token = request_header(&config.token_header);
        if config.strip_alb_headers {
            for name in ALB_HEADERS
                .iter()
                .chain(std::iter::once(&config.token_header.as_str()))
            {
                remove_request_header(name);
            }
        }
        if !config.exempt_paths.is_empty() {
            // A path that is not UTF-8 is never exempt.
            let path = request_header(":path")
                .and_then(Result::ok)
                .unwrap_or_default();
            if config.exempt_paths.is_exempt(&path) {
                w.metrics.count(Counter::Exempt);
                return Verdict::Pass;
            }
        }
        match token {
            Some(Ok(token)) => w.start(self.id, &token, now_s()),
            Some(Err(())) => Verdict::Deny(Denial::Malformed),
            None if config.allow_missing => {
                w.metrics.count(Counter::Anonymous);
                Verdict::Pass
            }
            None => Verdict::Deny(Denial::MissingToken),
        }
    }
}

impl Context for AuthHttp {}

impl HttpContext for AuthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            send_denial(Denial::KeyUnavailable);
            return Action::Pause;
        };
        let verdict = self.decide(&worker);
        match verdict {
            Verdict::Wait => {
                worker.borrow_mut().update_tick();
                Action::Pause
            }
            verdict => apply(&worker, self.id, verdict),
        }
    }

    fn on_log(&mut self) {
        if let Some(worker) = &self.worker {
            worker.borrow_mut().forget(self.id);
        }
    }
}

impl Drop for AuthHttp {
    fn drop(&mut self) {
        if let Some(worker) = &self.worker {
            if let Ok(mut w) = worker.try_borrow_mut() {
                w.forget(self.id);
            }
        }
    }
}
