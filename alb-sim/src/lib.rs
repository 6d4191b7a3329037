//! `alb-sim`: a local stand-in for an AWS Application Load Balancer's OIDC
//! authentication, so local runs exercise the same token verification as
//! production.
//!
//! - [`keys`]: ES256 (P-256) keys with UUID kids in a directory;
//! - [`token`]: minting `x-amzn-oidc-data` tokens in the ALB's exact format
//!   (padded base64url segments, raw `r || s` signature);
//! - [`keyserver`]: the public key endpoint (`GET /<kid>` -> PEM);
//! - [`proxy`]: a reverse proxy injecting freshly minted tokens;
//! - [`login`]: the browser login in front of it (sign-in page, session cookie, logout);
//! - [`identities`]: named claim sets for the proxy and `mint --user`.
//!
//! Other crates (benches, end-to-end tests) can mint tokens directly:
//!
//! ```
//! use alb_sim::keys::KeyPair;
//! use alb_sim::token::{mint, now_unix, Claims, HeaderFields};
//!
//! let pair = KeyPair::generate()?;
//! let claims = Claims::from_json(r#"{"sub":"u1","email":"u1@example.com"}"#)?;
//! let header = HeaderFields {
//!     kid: pair.kid.clone(),
//!     signer: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/0123456789abcdef".into(),
//!     issuer: "https://idp.alb-sim.local".into(),
//!     client: "alb-sim".into(),
//!     exp: now_unix() + 120,
//! };
//! let token = mint(&claims, &header, &pair.key)?;
//! assert_eq!(token.split('.').count(), 3);
//! # Ok::<(), alb_sim::Error>(())
//! ```

pub mod error;
pub mod identities;
pub mod keys;
pub mod keyserver;
pub mod login;
pub mod proxy;
pub mod server;
pub mod token;

pub use error::{Error, Result};
