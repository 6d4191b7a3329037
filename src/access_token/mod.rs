//! The IdP's access token, as the ALB forwards it in
//! `x-amzn-oidc-accesstoken` (issue 13): a compact JWS verified against the
//! IdP's key set (JWKS), bound to the data token's login by its subject.
//!
//! Pure core, like the data token's: the flow fetches and caches the key
//! set (`jwks`), then for each request calls `inspect` (format, header,
//! claims: no key needed) and `PendingAccessToken::verify` with the key set
//! (key selection, algorithm fit, signature), or
//! `PendingAccessToken::accept_unverified` with `bypass_validation`.

pub mod algorithm;
pub mod checker;
pub mod claims;
mod error;
pub mod jwks;
pub mod jws;
pub mod signature;

pub use algorithm::{Algorithm, KeyKind};
pub use claims::VerifiedAccessToken;
pub use error::AccessTokenError;
pub use jwks::{Jwk, JwkKey, Jwks, JwksError};
pub use jws::AccessJws;
pub use signature::{AccessSignatureVerifier, RustAccessVerifier};

use crate::config::AccessTokenConfig;

/// An access token whose format, header and claims passed, waiting for its
/// key (or, with `bypass_validation`, for nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAccessToken {
    jws: AccessJws,
    checked: VerifiedAccessToken,
}

/// Everything that needs no key, cheapest first: the compact JWS and its
/// header (`AccessJws::parse`), then the claims (`claims::check`) for the
/// login whose data token's `sub` is `data_sub`, at `now_s`. A token that
/// fails here never costs a key-set fetch.
pub fn inspect(
    raw: &str,
    config: &AccessTokenConfig,
    clock_skew_s: u64,
    data_sub: &str,
    now_s: f64,
) -> Result<PendingAccessToken, AccessTokenError> {
    let jws = AccessJws::parse(raw, &config.algorithms)?;
    let checked = claims::check(&jws.payload, config, clock_skew_s, data_sub, now_s)?;
    Ok(PendingAccessToken { jws, checked })
}

impl PendingAccessToken {
    /// The key id the token names: the flow fetches the key set when it has
    /// none, or refetches it (at most once per interval) when it lacks this kid.
    pub fn kid(&self) -> &str {
        &self.jws.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.jws.alg
    }

    /// The token as received (the key of a verified-token cache).
    pub fn raw(&self) -> &str {
        self.jws.raw()
    }

    /// The key checks and the signature: the key `kid` selects must exist
    /// (`UnknownKey`) and fit `alg` (`KeyMismatch`), and the signature must
    /// verify with it.
    pub fn verify(
        &self,
        jwks: &Jwks,
        verifier: &impl AccessSignatureVerifier,
    ) -> Result<VerifiedAccessToken, AccessTokenError> {
        let jwk = jwks
            .get(&self.jws.kid)
            .ok_or(AccessTokenError::UnknownKey)?;
        if !jwk.fits(self.jws.alg) {
            return Err(AccessTokenError::KeyMismatch);
        }
        match verifier.verify(
            &jwk.key,
            self.jws.alg,
            self.jws.signing_input(),
            &self.jws.signature,
        ) {
            Ok(true) => Ok(self.checked.clone()),
            Ok(false) => Err(AccessTokenError::BadSignature),
            Err(_) => Err(AccessTokenError::VerifierUnavailable),
        }
    }

    /// With `bypass_validation`: no key and no signature; everything else
    /// was checked by `inspect`.
    pub fn accept_unverified(self) -> VerifiedAccessToken {
        self.checked
    }
}
