//! alb-oidc: AWS ALB OIDC authentication as a proxy-wasm filter.
