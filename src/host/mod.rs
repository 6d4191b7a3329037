//! The proxy-wasm host layer: Envoy callbacks in, core decisions out.
//!
//! Threading model: Envoy runs one VM per worker; each VM has one root
//! context (configuration, fetches, timers) and one HTTP context per request.
//! Both share the worker's [`worker::Worker`] through `Rc<RefCell<_>>`.
//!
//! Outbound calls (key fetches, user-service calls) are always dispatched
//! from the root context, on its next tick: the SDK routes a call's response
//! to the context that made it, and an HTTP context can vanish (client gone)
//! while its fetch is still in flight, taking the response, and every other
//! request waiting on it, with it. The root lives as long as the VM.

mod http;
mod metrics;
mod raw;
mod root;
mod store;
mod verifier;
mod worker;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::AuthRoot::new(context_id))
    });
}}
