//! The standard test ALB, issuer and client, and the standard signing key.
//!
//! Every Rust test, bench, fuzz seed and the end-to-end suite (through
//! `alb-sim mint-batch`) use these values; the committed fuzz seeds
//! (`fuzz/seeds/token/`) are signed with [`standard_key`] for [`KID`].

use p256::ecdsa::SigningKey;

use crate::error::{Error, Result};

/// The region of every test ALB.
pub const REGION: &str = "us-east-1";
/// The trusted ALB (the filter's `alb_arns`).
pub const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/0123456789abcdef";
/// A second trusted ALB of the same account.
pub const ARN2: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/other-alb/0123456789abcdef";
/// An ALB of another account: a valid signature from it proves nothing (ALBeast).
pub const FOREIGN_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/app/attacker/feedfacecafebeef";
/// The IdP's issuer (header and payload `iss`).
pub const ISSUER: &str = "https://idp.example.com";
/// The OIDC client id (header `client`).
pub const CLIENT: &str = "client-1";
/// The kid of [`standard_key`].
pub const KID: &str = "3f8e8b2a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

/// The fixed scalar of [`standard_key`] (so fuzz seeds and fixtures reproduce).
const STANDARD_SCALAR: [u8; 32] = {
    let mut bytes = [0x5au8; 32];
    bytes[0] = 0x1f;
    bytes
};

/// The ALB's signing key in Rust tests: fixed, so everything reproduces.
pub fn standard_key() -> Result<SigningKey> {
    SigningKey::from_slice(&STANDARD_SCALAR)
        .map_err(|e| Error::Key(format!("the standard scalar: {e}")))
}
