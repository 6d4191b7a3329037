//! Benchmark variant (b): a proxy-wasm HTTP filter that does nothing.
//!
//! Every request still crosses into the wasm VM (context creation, the
//! request-headers callback, context teardown), so the difference between
//! this filter and Envoy alone is the floor any Rust proxy-wasm filter pays.
//! Built with the workspace's release profile, like the real filter.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // The bench harness looks for this line to know the filter is loaded.
        log::info!("alb-oidc-bench-noop: configured");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Noop;

impl Context for Noop {}

// Every callback keeps its default: continue, touch nothing.
impl HttpContext for Noop {}
