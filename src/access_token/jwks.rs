//! The IdP's key set (RFC 7517 JWKS): parsed strictly once per fetch into
//! the keys a token may select by `kid`.
//!
//! A key that is meant for something else (`use` other than `sig`, a key
//! type, curve or `alg` this filter does not verify with) or too weak or
//! too large to trust (RSA outside 2048..=8192 bits) is skipped: the other
//! keys stay usable, and a token naming it finds no key. A document that is
//! broken (not strict JSON, too large, too many keys, a duplicate `kid`, key
//! material that does not decode) is refused as a whole.

use super::algorithm::{Algorithm, KeyKind};
use crate::{b64, json};
use rsa::BoxedUint;
use serde_json::{Map, Value};

/// A key set larger than this is refused before parsing.
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// A key set with more entries than this is refused (real ones hold 2 to 10).
pub const MAX_JWKS_KEYS: usize = 100;
/// Longer key ids are refused, in key sets and token headers alike.
pub const MAX_KID_LEN: usize = 256;
/// RSA moduli shorter than this are too weak (RFC 7518 §3.3), longer ones
/// too costly to verify with: such keys are skipped.
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// Why a key set was refused as a whole. `index` is the position in `keys`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("key set larger than {MAX_JWKS_LEN} bytes")]
    TooLarge,
    #[error("key set is not a strict JSON object (or has duplicate keys)")]
    NotJson,
    #[error("key set has no `keys` array")]
    NoKeys,
    #[error("key set has more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    #[error("keys[{index}]: not an object")]
    NotAnObject { index: usize },
    #[error("keys[{index}]: `kid` is not a string of 1 to {MAX_KID_LEN} bytes")]
    BadKid { index: usize },
    #[error("keys[{index}]: `kid` is used by another key too")]
    DuplicateKid { index: usize },
    #[error("keys[{index}]: {reason}")]
    BadKey { index: usize, reason: &'static str },
}

/// A public key, ready to verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwkKey {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl JwkKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            JwkKey::Rsa(_) => KeyKind::Rsa,
            JwkKey::P256(_) => KeyKind::P256,
            JwkKey::P384(_) => KeyKind::P384,
        }
    }
}

/// One usable key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    /// The JWK's own `alg`, when it names one: a token must then use exactly it.
    pub alg: Option<Algorithm>,
    pub key: JwkKey,
}

impl Jwk {
    /// Whether a token signed with `alg` may be checked with this key: the
    /// key's type and curve are the algorithm's, and the JWK's `alg`, if
    /// any, is `alg` (RFC 8725 §3.1).
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.kind() == alg.key_kind() && self.alg.is_none_or(|own| own == alg)
    }
}

/// A parsed key set: its usable keys, each `kid` once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: usize,
}

impl Jwks {
    /// Parses a JWKS document (the body of the `jwks_path` answer).
    pub fn parse(body: &[u8]) -> Result<Jwks, JwksError> {
        if body.len() > MAX_JWKS_LEN {
            return Err(JwksError::TooLarge);
        }
        let doc = json::parse_object(body).ok_or(JwksError::NotJson)?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeys)?;
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut jwks = Jwks::default();
        let mut kids: Vec<&str> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.as_object().ok_or(JwksError::NotAnObject { index })?;
            let kid = match entry.get("kid") {
                // A key without a kid can never be selected: tokens must name one.
                None => {
                    jwks.skipped += 1;
                    continue;
                }
                Some(Value::String(kid)) if is_valid_kid(kid) => kid.as_str(),
                Some(_) => return Err(JwksError::BadKid { index }),
            };
            if kids.contains(&kid) {
                return Err(JwksError::DuplicateKid { index });
            }
            kids.push(kid);
            match key(entry).map_err(|reason| JwksError::BadKey { index, reason })? {
                Some((alg, key)) => jwks.keys.push(Jwk {
                    kid: kid.to_owned(),
                    alg,
                    key,
                }),
                None => jwks.skipped += 1,
            }
        }
        Ok(jwks)
    }

    /// The key a token's `kid` selects.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The usable keys, in the document's order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// How many entries were skipped (no kid, not for signatures, a key
    /// type, curve, algorithm or size this filter does not verify with).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

/// A key id as accepted in key sets and token headers: 1 to 256 bytes, no
/// control characters (Cognito's kids are base64 with `+`, `/` and `=`).
pub fn is_valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len()) && !kid.chars().any(char::is_control)
}

type KeyResult = Result<Option<(Option<Algorithm>, JwkKey)>, &'static str>;

/// One entry's key: `Ok(None)` when it is to be skipped, `Err` when it is broken.
fn key(entry: &Map<String, Value>) -> KeyResult {
    match entry.get("use") {
        None => {}
        Some(Value::String(use_)) if use_ == "sig" => {}
        Some(Value::String(_)) => return Ok(None),
        Some(_) => return Err("`use` is not a string"),
    }
    let alg = match entry.get("alg") {
        None => None,
        Some(Value::String(name)) => match Algorithm::from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(None),
        },
        Some(_) => return Err("`alg` is not a string"),
    };
    let kty = entry.get("kty").and_then(Value::as_str);
    let key = match kty.ok_or("`kty` is not a string")? {
        "RSA" => match rsa_key(entry)? {
            Some(key) => JwkKey::Rsa(key),
            None => return Ok(None),
        },
        "EC" => match entry
            .get("crv")
            .and_then(Value::as_str)
            .ok_or("`crv` is not a string")?
        {
            "P-256" => JwkKey::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point(entry, 32)?)
                    .map_err(|_| "`x`, `y` are not a P-256 point")?,
            ),
            "P-384" => JwkKey::P384(
                p384::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point(entry, 48)?)
                    .map_err(|_| "`x`, `y` are not a P-384 point")?,
            ),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    if alg.is_some_and(|alg| alg.key_kind() != key.kind()) {
        return Err("`alg` does not fit `kty` and `crv`");
    }
    Ok(Some((alg, key)))
}

/// A big-endian unsigned integer member (`n`, `e`), leading zeros dropped.
fn uint_member(entry: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    let bytes = b64::decode_unpadded(entry.get(name)?.as_str()?)?;
    let first = bytes.iter().position(|&b| b != 0)?;
    Some(bytes[first..].to_vec())
}

/// An RSA key, or `None` when its modulus is outside `RSA_BITS`.
fn rsa_key(entry: &Map<String, Value>) -> Result<Option<rsa::PublicKey>, &'static str> {
    let n = uint_member(entry, "n").ok_or("`n` is not a positive base64url integer")?;
    let e = uint_member(entry, "e").ok_or("`e` is not a positive base64url integer")?;
    // n has no leading zero byte, so its first byte's leading zeros are the
    // only ones.
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if !RSA_BITS.contains(&bits) {
        return Ok(None);
    }
    if e.len() > 8 {
        return Err("`e` is too large");
    }
    rsa::PublicKey::new_with_size_limits(
        BoxedUint::from_be_slice_vartime(&n),
        BoxedUint::from_be_slice_vartime(&e),
        RSA_BITS,
    )
    .map(Some)
    .map_err(|_| "`n`, `e` are not an RSA public key")
}

/// The uncompressed SEC1 point (`04 || x || y`) of an EC key whose
/// coordinates are `len` bytes each, as RFC 7518 §6.2.1 fixes them.
fn ec_point(entry: &Map<String, Value>, len: usize) -> Result<Vec<u8>, &'static str> {
    let coordinate = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .and_then(b64::decode_unpadded)
            .filter(|c| c.len() == len)
            .ok_or("`x` or `y` is not a base64url coordinate of the curve's size")
    };
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend(coordinate("x")?);
    point.extend(coordinate("y")?);
    Ok(point)
}
