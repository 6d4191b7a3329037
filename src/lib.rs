//! alb-oidc: AWS ALB OIDC authentication as a proxy-wasm filter.
//!
//! The crate is a pure core that knows nothing of proxy-wasm (token parsing
//! and verification, configuration, caches with an injected clock, path
//! matching, header policy) and a thin host layer (`host`, wasm only) that
//! turns Envoy's callbacks into core inputs and core outputs into host calls.

pub mod access_token;
pub mod aws;
pub mod b64;
pub mod claims;
pub mod config;
pub mod denial;
pub mod engine;
pub mod fixed_base;
pub mod flow;
pub mod grpc_upstream;
pub mod header_map;
pub mod identity;
pub mod json;
pub mod keys;
pub mod paths;
pub mod rules;
pub mod shared_cache;
pub mod signature_backend;
pub mod token;
pub mod ttl_cache;
pub mod users;
pub mod verify;

#[cfg(target_arch = "wasm32")]
mod host;
