//! `alb-sim`: a local stand-in for an AWS Application Load Balancer's OIDC
//! authentication, so local runs exercise the same token verification as
//! production.
//!
//! - [`keys`]: ES256 (P-256) keys with UUID kids in a directory;
//! - minting `x-amzn-oidc-data` tokens in the ALB's exact format (padded
//!   base64url segments, raw `r || s` signature) is the test kit's
//!   (`alb_oidc_testkit::token`), shared with the filter's tests; `alb-sim
//!   mint-batch` serves it to other languages' tests;
//! - [`keyserver`]: the public key endpoint (`GET /<kid>` -> PEM) and the
//!   IdP's key set (`GET /idp/jwks.json`);
//! - [`idp`]: the IdP: RSA keys, their key set, Cognito-style access tokens;
//! - [`proxy`]: a reverse proxy injecting freshly minted tokens;
//! - [`login`]: the browser login in front of it (sign-in page, session cookie, logout);
//! - [`identities`]: named claim sets for the proxy and `mint --user`.

pub mod error;
pub mod identities;
pub mod idp;
pub mod keys;
pub mod keyserver;
pub mod login;
pub mod proxy;
pub mod server;

pub use error::{Error, Result};
