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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::encode_unpadded;
    use serde_json::json;

    /// The generators of P-256 and P-384 (SEC 2): valid points, no key needed.
    const P256_X: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
    const P256_Y: &str = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    const P384_X: &str = "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7";
    const P384_Y: &str = "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// An odd modulus of exactly `bits` bits (not a real key: parsing only).
    fn modulus(bits: usize) -> String {
        let mut n = vec![0xffu8; bits.div_ceil(8)];
        let top = bits % 8;
        if top != 0 {
            n[0] = (1u8 << top) - 1;
        }
        encode_unpadded(&n)
    }

    fn rsa(kid: &str, bits: usize) -> Value {
        json!({"kty":"RSA","kid":kid,"use":"sig","n":modulus(bits),"e":"AQAB"})
    }

    fn ec256(kid: &str) -> Value {
        json!({"kty":"EC","crv":"P-256","kid":kid,"x":encode_unpadded(&hex(P256_X)),"y":encode_unpadded(&hex(P256_Y))})
    }

    fn ec384(kid: &str) -> Value {
        json!({"kty":"EC","crv":"P-384","kid":kid,"x":encode_unpadded(&hex(P384_X)),"y":encode_unpadded(&hex(P384_Y))})
    }

    fn parse(keys: Vec<Value>) -> Result<Jwks, JwksError> {
        Jwks::parse(json!({ "keys": keys }).to_string().as_bytes())
    }

    fn with(mut key: Value, member: &str, value: Value) -> Value {
        key[member] = value;
        key
    }

    fn without(mut key: Value, member: &str) -> Value {
        key.as_object_mut().unwrap().remove(member);
        key
    }

    #[test]
    fn rsa_and_ec_keys_parse() {
        let jwks = parse(vec![rsa("r", 2048), ec256("e1"), ec384("e2")]).unwrap();
        let kinds: Vec<(&str, KeyKind)> = jwks
            .keys()
            .iter()
            .map(|k| (k.kid.as_str(), k.key.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("r", KeyKind::Rsa),
                ("e1", KeyKind::P256),
                ("e2", KeyKind::P384)
            ]
        );
        assert_eq!(jwks.skipped(), 0);
        assert_eq!(jwks.get("e1").unwrap().kid, "e1");
        assert!(jwks.get("E1").is_none());
        // Unknown members (x5c, key_ops, ...) are ignored.
        let extra = with(rsa("r", 2048), "x5c", json!(["MIIB"]));
        assert_eq!(parse(vec![extra]).unwrap().keys().len(), 1);
    }

    #[test]
    fn rsa_modulus_sizes() {
        for (bits, usable) in [
            (1024, false),
            (2047, false),
            (2048, true),
            (3072, true),
            (4096, true),
            (8192, true),
            (8193, false),
        ] {
            let jwks = parse(vec![rsa("r", bits)]).unwrap();
            assert_eq!(jwks.keys().len(), usize::from(usable), "{bits} bits");
            assert_eq!(jwks.skipped(), usize::from(!usable), "{bits} bits");
        }
        // Leading zero bytes do not make a short modulus long.
        let mut padded = vec![0u8; 200];
        padded.extend(vec![0xffu8; 128]);
        let key = with(rsa("r", 2048), "n", json!(encode_unpadded(&padded)));
        assert_eq!(parse(vec![key]).unwrap().keys().len(), 0);
    }

    #[test]
    fn keys_for_something_else_are_skipped() {
        for key in [
            with(rsa("r", 2048), "use", json!("enc")),
            with(rsa("r", 2048), "alg", json!("RSA-OAEP")),
            with(rsa("r", 2048), "alg", json!("PS256")),
            with(rsa("r", 2048), "alg", json!("HS256")),
            with(ec256("e"), "crv", json!("P-521")),
            with(ec256("e"), "crv", json!("secp256k1")),
            json!({"kty":"OKP","crv":"Ed25519","kid":"o","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            json!({"kty":"oct","kid":"s","k":"c2VjcmV0"}),
            without(rsa("r", 2048), "kid"),
        ] {
            let jwks = parse(vec![key.clone(), ec384("kept")]).unwrap();
            assert_eq!(jwks.keys().len(), 1, "{key}");
            assert_eq!(jwks.keys()[0].kid, "kept");
            assert_eq!(jwks.skipped(), 1, "{key}");
        }
        let sig = parse(vec![with(rsa("r", 2048), "use", json!("sig"))]).unwrap();
        assert_eq!(sig.keys().len(), 1);
    }

    #[test]
    fn broken_documents_are_refused() {
        let cases: Vec<(Vec<u8>, JwksError)> = vec![
            (b"not json".to_vec(), JwksError::NotJson),
            (b"[]".to_vec(), JwksError::NotJson),
            (br#"{"keys":[],"keys":[]}"#.to_vec(), JwksError::NotJson),
            (
                br#"{"keys":[{"kid":"a","kid":"b"}]}"#.to_vec(),
                JwksError::NotJson,
            ),
            (br#"{"keys":[]} x"#.to_vec(), JwksError::NotJson),
            (br#"{}"#.to_vec(), JwksError::NoKeys),
            (br#"{"keys":{}}"#.to_vec(), JwksError::NoKeys),
            (
                br#"{"keys":[1]}"#.to_vec(),
                JwksError::NotAnObject { index: 0 },
            ),
            (vec![b' '; MAX_JWKS_LEN + 1], JwksError::TooLarge),
        ];
        for (body, error) in cases {
            assert_eq!(
                Jwks::parse(&body),
                Err(error),
                "{:.80}",
                String::from_utf8_lossy(&body)
            );
        }
        let many: Vec<Value> = (0..=MAX_JWKS_KEYS)
            .map(|i| ec256(&format!("k{i}")))
            .collect();
        assert_eq!(parse(many), Err(JwksError::TooManyKeys));
        let hundred: Vec<Value> = (0..MAX_JWKS_KEYS)
            .map(|i| ec256(&format!("k{i}")))
            .collect();
        assert_eq!(parse(hundred).unwrap().keys().len(), MAX_JWKS_KEYS);
    }

    #[test]
    fn a_duplicate_kid_refuses_the_set() {
        assert_eq!(
            parse(vec![rsa("k", 2048), ec256("k")]),
            Err(JwksError::DuplicateKid { index: 1 })
        );
        // Even when one of the two would be skipped.
        assert_eq!(
            parse(vec![with(rsa("k", 2048), "use", json!("enc")), ec256("k")]),
            Err(JwksError::DuplicateKid { index: 1 })
        );
    }

    #[test]
    fn broken_keys_refuse_the_set() {
        let bad = |key: Value| match parse(vec![ec256("ok"), key.clone()]) {
            Err(JwksError::BadKey { index: 1, .. }) => {}
            other => panic!("{key}: {other:?}"),
        };
        bad(without(rsa("r", 2048), "n"));
        bad(without(rsa("r", 2048), "e"));
        bad(with(
            rsa("r", 2048),
            "n",
            json!(format!("{}=", modulus(2048))),
        ));
        bad(with(rsa("r", 2048), "n", json!("AAAA")));
        bad(with(rsa("r", 2048), "e", json!("AA")));
        bad(with(rsa("r", 2048), "e", json!(7)));
        // An even modulus is no RSA modulus.
        let mut even = vec![0xffu8; 256];
        even[255] = 0xfe;
        bad(with(rsa("r", 2048), "n", json!(encode_unpadded(&even))));
        bad(with(rsa("r", 2048), "alg", json!("ES256")));
        bad(with(ec256("e"), "alg", json!("ES384")));
        bad(with(ec384("e"), "alg", json!("RS256")));
        bad(with(ec256("e"), "x", json!(encode_unpadded(&[1u8; 32]))));
        bad(with(ec256("e"), "x", json!(encode_unpadded(&hex(P384_X)))));
        bad(with(
            ec256("e"),
            "x",
            json!(encode_unpadded(&hex(&format!("00{P256_X}")))),
        ));
        bad(without(ec384("e"), "y"));
        bad(without(ec256("e"), "crv"));
        bad(without(rsa("r", 2048), "kty"));
        bad(with(rsa("r", 2048), "use", json!(true)));
        bad(with(rsa("r", 2048), "alg", json!(1)));
        assert!(matches!(
            parse(vec![with(rsa("r", 2048), "kid", json!(5))]),
            Err(JwksError::BadKid { index: 0 })
        ));
        assert!(matches!(
            parse(vec![with(rsa("r", 2048), "kid", json!(""))]),
            Err(JwksError::BadKid { index: 0 })
        ));
        assert!(matches!(
            parse(vec![with(
                rsa("r", 2048),
                "kid",
                json!("a".repeat(MAX_KID_LEN + 1))
            )]),
            Err(JwksError::BadKid { index: 0 })
        ));
    }

    #[test]
    fn a_key_fits_its_algorithms_only() {
        let jwks = parse(vec![
            rsa("r", 2048),
            with(rsa("r256", 2048), "alg", json!("RS256")),
            ec256("e256"),
            ec384("e384"),
        ])
        .unwrap();
        let fits = |kid: &str, alg: Algorithm| jwks.get(kid).unwrap().fits(alg);
        for alg in [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512] {
            assert!(fits("r", alg));
            assert!(!fits("e256", alg) && !fits("e384", alg));
        }
        assert!(fits("r256", Algorithm::Rs256));
        assert!(!fits("r256", Algorithm::Rs384) && !fits("r256", Algorithm::Rs512));
        assert!(fits("e256", Algorithm::Es256) && !fits("e256", Algorithm::Es384));
        assert!(fits("e384", Algorithm::Es384) && !fits("e384", Algorithm::Es256));
        assert!(!fits("r", Algorithm::Es256) && !fits("r", Algorithm::Es384));
    }
}
