//! The per-request HTTP context: strip, exempt, read the token, and either
//! decide at once or pause until the root delivers the verdict.

use super::metrics::Counter;
use super::raw::{add_request_header, remove_request_header, remove_request_header_bytes};
use super::worker::{Verdict, Worker};
use crate::denial::Denial;
use crate::header_map;
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

/// What the filter reads from the request headers, and the removal of every
/// header whose name folds to a managed one.
struct RequestView {
    /// `Some(Err)` for a non-UTF-8 or repeated token.
    token: Option<Result<String, ()>>,
    /// `None` when not asked for or not UTF-8 (then never exempt).
    path: Option<String>,
}

/// One host call lists the headers (the token and `:path` come from it, and
/// removals happen only for names present, usually none). Should the host's
/// list be unreadable, each value is read and each managed name removed as
/// spelled, which still covers every spelling Envoy forwards with dashes.
fn read_and_strip(token_header: &str, want_path: bool, strip: &[String]) -> RequestView {
    let listed = super::raw::header_pairs(MapType::HttpRequestHeaders);
    let Some(pairs) = listed.as_deref().and_then(header_map::parse_pairs) else {
        let view = RequestView {
            token: request_header(token_header),
            path: want_path
                .then(|| request_header(":path").and_then(Result::ok))
                .flatten(),
        };
        for name in strip {
            remove_request_header(name);
        }
        return view;
    };
    let text = |v: &[u8]| String::from_utf8(v.to_vec()).map_err(|_| ());
    let token = match header_map::value_of(&pairs, token_header) {
        header_map::Value::Absent => None,
        header_map::Value::One(v) => Some(text(v)),
        header_map::Value::Repeated(_) => Some(Err(())),
    };
    let path = match header_map::value_of(&pairs, ":path") {
        header_map::Value::One(v) | header_map::Value::Repeated(v) if want_path => text(v).ok(),
        _ => None,
    };
    for name in header_map::names_to_strip(&pairs, strip) {
        remove_request_header_bytes(name);
    }
    RequestView { token, path }
}

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

// Host-call audit: a status code, two fixed headers and a fixed body; Envoy
// parses none of them beyond their HTTP meaning.
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
        // Identity headers are only ever set by this filter: every client
        // copy goes, in any case and with `_` for `-` (see header_map).
        let want_path = !config.exempt_paths.is_empty();
        let view = read_and_strip(&config.token_header, want_path, &config.strip_names);
        // A path that is not UTF-8 is never exempt.
        if want_path
            && config
                .exempt_paths
                .is_exempt(view.path.as_deref().unwrap_or_default())
        {
            w.metrics.count(Counter::Exempt);
            return Verdict::Pass;
        }
        match view.token {
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
