//! One worker's state, shared by its root and HTTP contexts: the flow and
//! the host services it runs with.

use super::metrics::HostMetrics;
use super::store::HostStore;
use super::verifier::{EnvoyForeignFunction, HostVerifier};
use crate::access_token::AccessSignatureVerifier;
use crate::denial::Denial;
use crate::engine::SignatureVerifier;
use crate::flow::host::Metrics;
use crate::flow::{CallRequest, Counter, DispatchFailed, Flow, Host};
use crate::rules::RuleId;
use crate::shared_cache::SharedStore;
use proxy_wasm::hostcalls;
use std::time::Duration;

pub struct Worker {
    /// `None` until a configuration is accepted.
    pub flow: Option<Flow>,
    pub services: Services,
    tick: Duration,
}

/// What the flow reaches through the [`Host`] trait.
pub struct Services {
    pub metrics: HostMetrics,
    verifier: HostVerifier,
}

impl Worker {
    pub fn new() -> Worker {
        Worker {
            flow: None,
            services: Services {
                metrics: HostMetrics::define(),
                verifier: HostVerifier::new(Default::default(), EnvoyForeignFunction),
            },
            tick: Duration::ZERO,
        }
    }

    pub fn configure(&mut self, next: Flow) {
        next.prepare(&self.services);
        self.services.metrics.define_rules(next.rule_names());
        self.services.verifier = HostVerifier::new(next.signature_backend(), EnvoyForeignFunction);
        match &mut self.flow {
            Some(flow) => flow.reconfigure(next),
            None => self.flow = Some(next),
        }
    }

    /// Sets the root's tick to what the flow wants (the tick always belongs
    /// to the root, whichever context asks).
    pub fn update_tick(&mut self) {
        let Some(flow) = &self.flow else { return };
        let wanted = flow.tick_period();
        if wanted != self.tick && hostcalls::set_tick_period(wanted).is_ok() {
            self.tick = wanted;
        }
    }
}

impl Metrics for Services {
    fn count(&self, counter: Counter) {
        self.metrics.count(counter);
    }

    fn denied(&self, denial: Denial) {
        self.metrics.denied(denial);
    }

    fn ruled(&self, rule: RuleId, allowed: bool) {
        self.metrics.ruled(rule, allowed);
    }
}

impl Host for Services {
    fn store(&self) -> &dyn SharedStore {
        &HostStore
    }

    fn verifier(&self) -> &dyn SignatureVerifier {
        &self.verifier
    }

    fn access_verifier(&self) -> &dyn AccessSignatureVerifier {
        &self.verifier
    }

    fn dispatch(&mut self, call: &CallRequest) -> Result<u32, DispatchFailed> {
        let failed = |status| DispatchFailed(format!("{status:?}"));
        match call {
            // Host-call audit: Envoy looks the cluster up by name and parses
            // nothing else here; `:path` is prefix + a kid that matched
            // `^[A-Za-z0-9_-]{1,64}$`, `:authority` is validated at load.
            CallRequest::Http {
                cluster,
                path,
                authority,
                timeout,
            } => hostcalls::dispatch_http_call(
                cluster,
                vec![
                    (":method", "GET"),
                    (":path", path),
                    (":authority", authority),
                    ("accept", "*/*"),
                ],
                None,
                vec![],
                *timeout,
            )
            .map_err(failed),
            // Host-call audit: `upstream` is parsed by Envoy as a serialized
            // GrpcService before any fallback to a cluster name, so it is one
            // (encoded at load, `grpc_upstream`); service and method are
            // plain names; the message is our prost encoding.
            CallRequest::Grpc {
                upstream,
                service,
                method,
                message,
                timeout,
            } => hostcalls::dispatch_grpc_call(
                upstream,
                service,
                method,
                vec![],
                Some(message),
                *timeout,
            )
            .map_err(failed),
        }
    }
}
