//! Tokens in the ALB's `x-amzn-oidc-data` format, and the pieces to build
//! malformed ones.
//!
//! What [`mint`] produces (checked against a real capture published in
//! awslabs/aws-jwt-verify issue #109):
//!
//! - header, compact JSON, in the ALB's field order:
//!   `{"typ":"JWT","kid":"<uuid>","alg":"ES256","iss":"<issuer>","client":"<client id>","signer":"<alb arn>","exp":<seconds>}`
//! - payload: the identity's claims in their given order, then `exp` and `iss`
//!   (any `exp`/`iss` in the claims are replaced by these); no `aud`, no `iat`;
//! - every segment (header, payload **and** signature) is base64url **with `=`
//!   padding**, exactly as the ALB emits them; a 64-byte signature therefore
//!   always ends in `==`;
//! - the signature is ECDSA P-256 / SHA-256 over the padded `header.payload`
//!   text, encoded as raw `r || s` (64 bytes), not DER.
//!
//! [`mint`] uses randomized (hedged RFC 6979) signatures, so two tokens with the
//! same header and payload still differ, like the ALB's; [`Signing::Deterministic`]
//! gives reproducible output for fixtures and fuzz seeds.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::ecdsa::signature::{RandomizedSigner, Signer};
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::common::getrandom::SysRng;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Default token lifetime: the ALB's `exp` is request time + 120 s.
pub const DEFAULT_EXP_IN: i64 = 120;

/// Base64url **with** padding, as the ALB encodes every segment.
pub fn b64(bytes: &[u8]) -> String {
    Padding::Padded.encode(bytes)
}

/// How a segment is base64url-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// With `=` padding: what the ALB sends.
    Padded,
    /// Without padding: what JWT libraries send (the filter accepts both).
    Unpadded,
}

impl Padding {
    /// `bytes` in base64url with this padding.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Padding::Padded => URL_SAFE.encode(bytes),
            Padding::Unpadded => URL_SAFE_NO_PAD.encode(bytes),
        }
    }
}

/// How signatures are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Hedged RFC 6979 (system randomness mixed in): every token differs, like the ALB's.
    Randomized,
    /// Plain RFC 6979: same key and text, same signature (fixtures, fuzz seeds).
    Deterministic,
}

/// How a signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureForm {
    /// Raw `r || s`, 64 bytes: the JWS (and ALB) form.
    #[default]
    Raw,
    /// ASN.1 DER: what a verifier must refuse in a JWS.
    Der,
}

/// The ES256 signature of `text`, in `form`.
pub fn signature(
    text: &[u8],
    key: &SigningKey,
    signing: Signing,
    form: SignatureForm,
) -> Result<Vec<u8>> {
    let signature: Signature = match signing {
        Signing::Randomized => key.try_sign_with_rng(&mut SysRng, text),
        Signing::Deterministic => key.try_sign(text),
    }
    .map_err(|e| Error::Key(format!("signing: {e}")))?;
    Ok(match form {
        SignatureForm::Raw => signature.to_bytes().to_vec(),
        SignatureForm::Der => signature.to_der().as_bytes().to_vec(),
    })
}

/// Signs exactly the text `header_seg.payload_seg` and returns the token.
///
/// The segments are used as given (no re-encoding), so tests can build tokens
/// with unusual encodings; the signature segment is raw `r || s` with
/// `sig_padding`.
pub fn sign_segments(
    header_seg: &str,
    payload_seg: &str,
    key: &SigningKey,
    signing: Signing,
    sig_padding: Padding,
) -> Result<String> {
    let mut token = String::with_capacity(header_seg.len() + payload_seg.len() + 90);
    token.push_str(header_seg);
    token.push('.');
    token.push_str(payload_seg);
    let sig = signature(token.as_bytes(), key, signing, SignatureForm::Raw)?;
    token.push('.');
    token.push_str(&sig_padding.encode(&sig));
    Ok(token)
}

/// [`sign_segments`] with a randomized, padded signature (the ALB's way).
pub fn sign_encoded(header_seg: &str, payload_seg: &str, key: &SigningKey) -> Result<String> {
    sign_segments(
        header_seg,
        payload_seg,
        key,
        Signing::Randomized,
        Padding::Padded,
    )
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The header fields the ALB sets (besides the constant `typ` and `alg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFields {
    /// Key id: names the public key at `<key endpoint>/<kid>`.
    pub kid: String,
    /// ARN of the signing load balancer.
    pub signer: String,
    /// The IdP's issuer URL (also put in the payload).
    pub issuer: String,
    /// The OIDC client id.
    pub client: String,
    /// Expiry, seconds since the epoch (also put in the payload).
    pub exp: i64,
}

impl HeaderFields {
    /// The header object in the ALB's field order.
    pub fn to_claims(&self) -> Claims {
        Claims(vec![
            ("typ".into(), Value::from("JWT")),
            ("kid".into(), Value::from(self.kid.clone())),
            ("alg".into(), Value::from("ES256")),
            ("iss".into(), Value::from(self.issuer.clone())),
            ("client".into(), Value::from(self.client.clone())),
            ("signer".into(), Value::from(self.signer.clone())),
            ("exp".into(), Value::from(self.exp)),
        ])
    }

    /// The compact header JSON in the ALB's field order.
    pub fn to_json(&self) -> Result<String> {
        self.to_claims().to_json()
    }
}

/// A JSON object that keeps its keys in order and has no duplicate keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claims(Vec<(String, Value)>);

impl Claims {
    /// No claims.
    pub fn new() -> Self {
        Claims(Vec::new())
    }

    /// Parses a JSON object; duplicate keys and non-objects are errors.
    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, in place if present, else at the end.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    /// Sets every claim of `other` (later wins).
    pub fn merge(&mut self, other: &Claims) {
        for (k, v) in &other.0 {
            self.insert(k.clone(), v.clone());
        }
    }

    /// The claims in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of claims.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no claims.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compact JSON, keys in order.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// The ALB payload object: these claims (minus `exp`/`iss`), then `exp` and `iss`.
    pub fn payload(&self, header: &HeaderFields) -> Claims {
        let mut payload = self.clone();
        payload.remove("exp");
        payload.remove("iss");
        payload.insert("exp", Value::from(header.exp));
        payload.insert("iss", Value::from(header.issuer.clone()));
        payload
    }

    /// [`Claims::payload`] as compact JSON.
    pub fn payload_json(&self, header: &HeaderFields) -> Result<String> {
        self.payload(header).to_json()
    }
}

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Ordered `(key, value)` pairs of a JSON object, rejecting duplicate keys.
pub struct OrderedEntries<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedEntries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = OrderedEntries<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if entries.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                    }
                    entries.push((k, v));
                }
                Ok(OrderedEntries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        OrderedEntries::<Value>::deserialize(deserializer).map(|e| Claims(e.0))
    }
}

/// Encodes raw header and payload bytes (padded base64url) and signs them
/// (randomized).
pub fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> Result<String> {
    sign_encoded(&b64(header), &b64(payload), key)
}

/// Mints an ALB-format token for `claims` (randomized signature).
pub fn mint(claims: &Claims, header: &HeaderFields, key: &SigningKey) -> Result<String> {
    sign_raw(
        header.to_json()?.as_bytes(),
        claims.payload_json(header)?.as_bytes(),
        key,
    )
}

/// Like [`mint`], with a deterministic RFC 6979 signature (same input, same token).
pub fn mint_deterministic(
    claims: &Claims,
    header: &HeaderFields,
    key: &SigningKey,
) -> Result<String> {
    sign_segments(
        &b64(header.to_json()?.as_bytes()),
        &b64(claims.payload_json(header)?.as_bytes()),
        key,
        Signing::Deterministic,
        Padding::Padded,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn claims_keep_order_and_reject_duplicates() {
        let c = Claims::from_json(r#"{"sub":"x","b":1,"a":[1,"2"]}"#).unwrap();
        assert_eq!(c.to_json().unwrap(), r#"{"sub":"x","b":1,"a":[1,"2"]}"#);
        assert!(Claims::from_json(r#"{"sub":"x","sub":"y"}"#).is_err());
        assert!(Claims::from_json("[1]").is_err());
        assert!(Claims::from_json(r#""x""#).is_err());
    }

    #[test]
    fn payload_appends_exp_and_iss() {
        let mut c = Claims::from_json(r#"{"exp":1,"sub":"s","iss":"x","email":"e"}"#).unwrap();
        let h = HeaderFields {
            kid: "k".into(),
            signer: "arn".into(),
            issuer: "https://i".into(),
            client: "c".into(),
            exp: 42,
        };
        assert_eq!(
            c.payload_json(&h).unwrap(),
            r#"{"sub":"s","email":"e","exp":42,"iss":"https://i"}"#
        );
        c.insert("sub", Value::from("t"));
        assert_eq!(c.get("sub"), Some(&Value::from("t")));
        assert_eq!(
            h.to_json().unwrap(),
            r#"{"typ":"JWT","kid":"k","alg":"ES256","iss":"https://i","client":"c","signer":"arn","exp":42}"#
        );
    }

    #[test]
    fn segments_and_signatures() {
        let key = crate::fixtures::standard_key().unwrap();
        let a =
            sign_segments("e30=", "e30", &key, Signing::Deterministic, Padding::Padded).unwrap();
        let b =
            sign_segments("e30=", "e30", &key, Signing::Deterministic, Padding::Padded).unwrap();
        assert_eq!(a, b);
        let sig = a.strip_prefix("e30=.e30.").unwrap();
        assert_eq!(sig.len(), 88);
        assert!(sig.ends_with("=="));
        let c = sign_segments("e30=", "e30", &key, Signing::Randomized, Padding::Unpadded).unwrap();
        assert_eq!(c.rsplit('.').next().unwrap().len(), 86);
        assert_ne!(c.trim_end_matches('='), a.trim_end_matches('='));
        let der = signature(b"x", &key, Signing::Deterministic, SignatureForm::Der).unwrap();
        assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        assert!((70..=72).contains(&der.len()));
    }
}
