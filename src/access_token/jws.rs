//! The access token's compact JWS (RFC 7515 §7.1), split, decoded and its
//! header checked: nothing here trusts it yet.
//!
//! Stricter than the data token's format on purpose: IdPs never pad, so
//! padding is refused, which leaves each token exactly one spelling.
//! Header members that point at keys (`jku`, `jwk`, `x5u`, `x5c`) are never
//! read: keys come only from the configured key set.

use super::algorithm::Algorithm;
use super::error::AccessTokenError;
use super::jwks::is_valid_kid;
use crate::{b64, json};
use serde_json::{Map, Value};

/// Longer tokens are refused before any decoding (the ALB's own limit on
/// the headers it forwards is about 16 KiB).
pub const MAX_ACCESS_TOKEN_LEN: usize = 16 * 1024;

/// An access token split and decoded, its header checked, not yet verified.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessJws {
    /// The token as received.
    raw: String,
    /// `raw[..signing_input_len]` is `header.payload`: the signed text.
    signing_input_len: usize,
    pub alg: Algorithm,
    pub kid: String,
    pub payload: Map<String, Value>,
    /// Raw signature bytes (for ES*, `r || s` of the checked length).
    pub signature: Vec<u8>,
}

impl AccessJws {
    /// Parses `raw` and checks its header against the configured
    /// `algorithms`, cheapest first: shape, encoding, JSON, `crit`/`b64`,
    /// `alg`, `kid`, the ECDSA signature's length.
    pub fn parse(raw: &str, algorithms: &[Algorithm]) -> Result<AccessJws, AccessTokenError> {
        if raw.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(AccessTokenError::Malformed);
        }
        let mut parts = raw.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AccessTokenError::Opaque);
        };
        let segment = |text: &str| b64::decode_unpadded(text).ok_or(AccessTokenError::Malformed);
        let header = json::parse_object(&segment(h)?).ok_or(AccessTokenError::Malformed)?;
        let payload = json::parse_object(&segment(p)?).ok_or(AccessTokenError::Malformed)?;
        let signature = segment(s)?;

        // RFC 7515 §4.1.11: a recipient that does not implement every listed
        // extension must refuse; this one implements none. RFC 7797's
        // unencoded payload (`b64: false`) would sign other bytes than sent.
        if header.contains_key("crit")
            || header
                .get("b64")
                .is_some_and(|b64| b64 != &Value::Bool(true))
        {
            return Err(AccessTokenError::BadHeader);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .ok_or(AccessTokenError::UnsupportedAlgorithm)?;
        if !algorithms.contains(&alg) {
            return Err(AccessTokenError::AlgorithmNotAllowed);
        }
        let kid = match header.get("kid") {
            Some(Value::String(kid)) if is_valid_kid(kid) => kid.clone(),
            _ => return Err(AccessTokenError::MissingKid),
        };
        // A JWS ECDSA signature is raw `r || s`; DER (70-ish bytes for
        // ES256, 100-ish for ES384) or any other length never verifies.
        if alg
            .ecdsa_signature_len()
            .is_some_and(|len| signature.len() != len)
        {
            return Err(AccessTokenError::BadSignature);
        }
        Ok(AccessJws {
            raw: raw.to_owned(),
            signing_input_len: h.len() + 1 + p.len(),
            alg,
            kid,
            payload,
            signature,
        })
    }

    /// The signed text: `header.payload` exactly as received.
    pub fn signing_input(&self) -> &[u8] {
        &self.raw.as_bytes()[..self.signing_input_len]
    }

    /// The token as received (the key of a verified-token cache).
    pub fn raw(&self) -> &str {
        &self.raw
    }
}
