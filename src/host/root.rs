//! The root context: configuration, metrics, and every outbound call.

use super::http::{apply, now_s, AuthHttp};
use super::metrics::Metrics;
use super::store::HostStore;
use super::worker::{Verdict, Worker};
use crate::config;
use crate::engine::{Engine, KeyResponse};
use crate::keys::MAX_KEY_BODY;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};
use std::cell::RefCell;
use std::rc::Rc;

pub struct AuthRoot {
    id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
}

impl AuthRoot {
    pub fn new(id: u32) -> Self {
        AuthRoot { id, worker: None }
    }

    /// Delivers verdicts to the paused requests they belong to.
    fn deliver(&self, verdicts: Vec<(u32, Verdict)>) {
        let Some(worker) = &self.worker else { return };
        for (ctx, verdict) in verdicts {
            // The request may have ended meanwhile: then there is nothing to do.
            if hostcalls::set_effective_context(ctx).is_err() {
                continue;
            }
            if matches!(
                apply(worker, ctx, verdict),
                proxy_wasm::types::Action::Continue
            ) {
                let _ = hostcalls::resume_http_request();
            }
        }
        let _ = hostcalls::set_effective_context(self.id);
        worker.borrow_mut().update_tick();
    }

    fn with_worker<T>(&self, f: impl FnOnce(&mut Worker, f64) -> T) -> Option<T> {
        let worker = self.worker.as_ref()?;
        let mut w = worker.borrow_mut();
        Some(f(&mut w, now_s()))
    }
}

impl Context for AuthRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(is_key) = self.with_worker(|w, _| w.is_key_call(token)) else {
            return;
        };
        if !is_key {
            return;
        }
        // No headers: the call failed, was reset or timed out.
        let status = super::raw::header_text(MapType::HttpCallResponseHeaders, ":status")
            .and_then(Result::ok);
        let response = match (num_headers, status) {
            (0, _) | (_, None) => KeyResponse::NoResponse,
            (_, Some(status)) => {
                let status = status.parse().unwrap_or(0);
                // One byte past the cap is enough to know it is too large.
                let body = if body_size > 0 {
                    super::raw::buffer_bytes(
                        BufferType::HttpCallResponseBody,
                        body_size.min(MAX_KEY_BODY + 1),
                    )
                    .unwrap_or_default()
                } else {
                    Vec::new()
                };
                KeyResponse::Response { status, body }
            }
        };
        let verdicts = self
            .with_worker(|w, now| w.on_key_response(token, response, now))
            .unwrap_or_default();
        self.deliver(verdicts);
    }

    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        // A user answer is small; anything near this size is not one.
        const MAX_USER_ANSWER: usize = 64 * 1024;
        let body = if status_code == 0 && response_size <= MAX_USER_ANSWER {
            super::raw::buffer_bytes(BufferType::GrpcReceiveBuffer, response_size)
        } else {
            None
        };
        let status = if response_size > MAX_USER_ANSWER {
            13
        } else {
            status_code
        };
        let verdicts = self
            .with_worker(|w, now| w.on_user_response(token, status, body.as_deref(), now))
            .unwrap_or_default();
        self.deliver(verdicts);
    }
}

impl RootContext for AuthRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes = super::raw::buffer_bytes(BufferType::PluginConfiguration, usize::MAX)
            .unwrap_or_default();
        let config = match config::parse(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log::error!("{e}");
                return false;
            }
        };
        if config.bypass_validation {
            log::warn!(
                "alb-oidc: bypass_validation is ON: token signatures are NOT checked. For local development only; never in production."
            );
        }
        let engine = Engine::new(Rc::new(config));
        engine.prepare(&HostStore);
        match &self.worker {
            Some(worker) => worker.borrow_mut().reconfigure(engine),
            None => {
                self.worker = Some(Rc::new(RefCell::new(Worker::new(
                    engine,
                    Metrics::define(),
                ))));
            }
        }
        if let Some(worker) = &self.worker {
            worker.borrow_mut().update_tick();
        }
        log::info!("alb-oidc: configuration accepted");
        true
    }

    fn on_tick(&mut self) {
        let verdicts = self
            .with_worker(|w, now| {
                let mut verdicts = w.dispatch_queued(now);
                verdicts.extend(w.poll_remote(now));
                // Polling may have claimed fetches: dispatch them now.
                verdicts.extend(w.dispatch_queued(now));
                verdicts.extend(w.sweep(now));
                verdicts
            })
            .unwrap_or_default();
        self.deliver(verdicts);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthHttp {
            id: context_id,
            worker: self.worker.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
