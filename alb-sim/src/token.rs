//! Minting tokens in the ALB's `x-amzn-oidc-data` format.
//!
//! What is produced (checked against a real capture published in
//! awslabs/aws-jwt-verify issue #109 and `/work/shared/reference/alb-tokens.md`):
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
//! same header and payload still differ, like the ALB's; [`mint_deterministic`]
//! gives reproducible output for fixtures.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE;
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
    URL_SAFE.encode(bytes)
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

#[derive(Serialize)]
struct HeaderJson<'a> {
    typ: &'a str,
    kid: &'a str,
    alg: &'a str,
    iss: &'a str,
    client: &'a str,
    signer: &'a str,
    exp: i64,
}

impl HeaderFields {
    /// The compact header JSON in the ALB's field order.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(&HeaderJson {
            typ: "JWT",
            kid: &self.kid,
            alg: "ES256",
            iss: &self.issuer,
            client: &self.client,
            signer: &self.signer,
            exp: self.exp,
        })?)
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
        let mut out = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k)?);
            out.push(':');
            out.push_str(&serde_json::to_string(v)?);
        }
        out.push('}');
        Ok(out)
    }

    /// The ALB payload: these claims (minus `exp`/`iss`), then `exp` and `iss`.
    pub fn payload_json(&self, header: &HeaderFields) -> Result<String> {
        let mut payload = self.clone();
        payload.remove("exp");
        payload.remove("iss");
        payload.insert("exp", Value::from(header.exp));
        payload.insert("iss", Value::from(header.issuer.clone()));
        payload.to_json()
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
pub(crate) struct OrderedEntries<V>(pub(crate) Vec<(String, V)>);

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

/// Signs exactly the text `header_b64.payload_b64` and returns the full token.
///
/// The segments are used as given (no re-encoding), so tests can build tokens
/// with unusual encodings. The signature segment is padded base64url of `r || s`.
pub fn sign_encoded(header_b64: &str, payload_b64: &str, key: &SigningKey) -> Result<String> {
    let mut token = String::with_capacity(header_b64.len() + payload_b64.len() + 90);
    token.push_str(header_b64);
    token.push('.');
    token.push_str(payload_b64);
    let signature: Signature = key
        .try_sign_with_rng(&mut SysRng, token.as_bytes())
        .map_err(|e| Error::Key(format!("signing: {e}")))?;
    token.push('.');
    token.push_str(&b64(&signature.to_bytes()));
    Ok(token)
}

/// Encodes raw header and payload bytes (padded base64url) and signs them.
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
    let input = format!(
        "{}.{}",
        b64(header.to_json()?.as_bytes()),
        b64(claims.payload_json(header)?.as_bytes())
    );
    let signature: Signature = key
        .try_sign(input.as_bytes())
        .map_err(|e| Error::Key(format!("signing: {e}")))?;
    Ok(format!("{input}.{}", b64(&signature.to_bytes())))
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
}
