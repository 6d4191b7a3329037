//! The test kit of alb-oidc: one home for what every test, bench and fuzz
//! target needs to make ALB tokens (and the IdP's access tokens).
//!
//! - [`fixtures`]: the standard test ALBs, issuer, client and signing key;
//! - [`keys`]: random keys with UUID kids, and keys derived from a seed;
//! - [`token`]: minting in the ALB's `x-amzn-oidc-data` format (padded
//!   base64url segments, raw `r || s` signature), and the pieces to build
//!   malformed tokens (any segment text, padding, DER signatures);
//! - [`idp`]: the IdP's side of the access token: RSA, P-256 and P-384
//!   keys with their JWKs, key sets, compact JWS minting (HS256 too, for
//!   algorithm-confusion tokens);
//! - [`batch`]: the JSON-lines protocol of `alb-sim mint-batch`, through
//!   which the end-to-end tests (Python) mint;
//! - with feature `filter` (links the filter crate): [`store::MemoryStore`],
//!   an in-memory shared-data store, and [`harness`], the fuzz targets'
//!   code paths and invariants.
//!
//! ```
//! use alb_oidc_testkit::fixtures::{ARN, CLIENT, ISSUER};
//! use alb_oidc_testkit::keys::KeyPair;
//! use alb_oidc_testkit::token::{mint, now_unix, Claims, HeaderFields};
//!
//! let pair = KeyPair::generate()?;
//! let claims = Claims::from_json(r#"{"sub":"u1","email":"u1@example.com"}"#)?;
//! let header = HeaderFields {
//!     kid: pair.kid.clone(),
//!     signer: ARN.into(),
//!     issuer: ISSUER.into(),
//!     client: CLIENT.into(),
//!     exp: now_unix() + 120,
//! };
//! let token = mint(&claims, &header, &pair.key)?;
//! assert_eq!(token.split('.').count(), 3);
//! # Ok::<(), alb_oidc_testkit::Error>(())
//! ```

pub mod batch;
pub mod error;
#[cfg(feature = "filter")]
pub mod fake_host;
pub mod fixtures;
#[cfg(feature = "filter")]
pub mod flow_worker;
#[cfg(feature = "filter")]
pub mod harness;
#[cfg(feature = "filter")]
pub mod hot_flow;
pub mod idp;
pub mod keys;
#[cfg(feature = "filter")]
pub mod store;
pub mod token;

pub use error::{Error, Result};
