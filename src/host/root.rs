//! The root context: configuration, ticks, and every outbound call's answer.

use super::http::{apply, now_s, AuthHttp};
use super::raw::{buffer_bytes, header_text};
use super::worker::Worker;
use crate::flow::{self, CallKind, CallResponse, Flow, Verdict};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};
use std::cell::RefCell;
use std::rc::Rc;

pub struct AuthRoot {
    id: u32,
    worker: Rc<RefCell<Worker>>,
}

impl AuthRoot {
    pub fn new(id: u32) -> Self {
        AuthRoot {
            id,
            worker: Rc::new(RefCell::new(Worker::new())),
        }
    }

    /// Runs a flow event with the host services, then delivers the verdicts
    /// it returns to the paused requests they belong to.
    fn run(
        &self,
        event: impl FnOnce(&mut Flow, &mut super::worker::Services) -> Vec<(u32, Verdict)>,
    ) {
        let verdicts = {
            let mut worker = self.worker.borrow_mut();
            let Worker { flow, services, .. } = &mut *worker;
            match flow {
                Some(flow) => event(flow, services),
                None => return,
            }
        };
        for (ctx, verdict) in verdicts {
            // The request may have ended meanwhile: then there is nothing to do.
            if hostcalls::set_effective_context(ctx).is_err() {
                continue;
            }
            // The worker is not borrowed while Envoy acts on the verdict.
            let rule_name = verdict.rule().and_then(|rule| {
                let worker = self.worker.borrow();
                worker.flow.as_ref().map(|f| f.rule_name(rule).to_owned())
            });
            if matches!(apply(&verdict, rule_name.as_deref()), Action::Continue) {
                let _ = hostcalls::resume_http_request();
            }
        }
        let _ = hostcalls::set_effective_context(self.id);
        self.worker.borrow_mut().update_tick();
    }

    fn answer_limit(&self, kind: CallKind, token: u32) -> Option<usize> {
        self.worker
            .borrow()
            .flow
            .as_ref()?
            .answer_limit(kind, token)
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
        let Some(limit) = self.answer_limit(CallKind::Http, token) else {
            return;
        };
        // No headers: the call failed, was reset or timed out.
        let status = match num_headers {
            0 => None,
            _ => header_text(MapType::HttpCallResponseHeaders, ":status")
                .and_then(Result::ok)
                .map(|s| s.parse().unwrap_or(0)),
        };
        let body = match (status, body_size) {
            (Some(_), 1..) => buffer_bytes(BufferType::HttpCallResponseBody, body_size.min(limit))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let response = CallResponse::Http { status, body };
        self.run(|flow, host| flow.on_call_answered(token, response, now_s(), host));
    }

    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let Some(limit) = self.answer_limit(CallKind::Grpc, token) else {
            return;
        };
        let body = match status == 0 && size <= limit {
            true => buffer_bytes(BufferType::GrpcReceiveBuffer, size),
            false => None,
        };
        let response = CallResponse::Grpc { status, size, body };
        self.run(|flow, host| flow.on_call_answered(token, response, now_s(), host));
    }
}

impl RootContext for AuthRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes = buffer_bytes(BufferType::PluginConfiguration, usize::MAX).unwrap_or_default();
        match flow::load_config(&bytes) {
            Ok(config) => {
                let mut worker = self.worker.borrow_mut();
                worker.configure(Flow::new(config));
                worker.update_tick();
                log::info!("alb-oidc: configuration accepted");
                true
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.run(|flow, host| flow.on_tick(now_s(), host));
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
