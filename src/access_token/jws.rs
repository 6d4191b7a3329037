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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::{encode_padded, encode_unpadded};
    use serde_json::json;

    const ALL: [Algorithm; 5] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Es256,
        Algorithm::Es384,
    ];

    fn seg(value: &Value) -> String {
        encode_unpadded(value.to_string().as_bytes())
    }

    /// A token of `header` with a fixed payload and a signature of `sig_len`
    /// bytes (parsing never looks at what they are).
    fn token(header: Value, sig_len: usize) -> String {
        format!(
            "{}.{}.{}",
            seg(&header),
            seg(&json!({"sub":"u"})),
            encode_unpadded(&vec![7u8; sig_len])
        )
    }

    fn parse(raw: &str) -> Result<AccessJws, AccessTokenError> {
        AccessJws::parse(raw, &ALL)
    }

    #[test]
    fn a_compact_jws_parses() {
        let raw = token(json!({"alg":"RS256","kid":"k1","typ":"JWT"}), 256);
        let jws = parse(&raw).unwrap();
        assert_eq!(jws.alg, Algorithm::Rs256);
        assert_eq!(jws.kid, "k1");
        assert_eq!(jws.payload["sub"], "u");
        assert_eq!(jws.signature, vec![7u8; 256]);
        assert_eq!(
            jws.signing_input(),
            &raw.as_bytes()[..raw.rfind('.').unwrap()]
        );
        assert_eq!(jws.raw(), raw);
        let es384 = token(json!({"alg":"ES384","kid":"k1"}), 96);
        assert_eq!(parse(&es384).unwrap().alg, Algorithm::Es384);
    }

    #[test]
    fn not_three_segments_is_opaque() {
        let good = token(json!({"alg":"RS256","kid":"k"}), 256);
        for raw in [
            String::new(),
            "ya29.a0AfH6SMBx".to_owned(),
            "2YotnFZFEjr1zCsicMWpAA".to_owned(),
            format!("{good}.x"),
            format!("{good}.x.y"),
        ] {
            assert_eq!(parse(&raw), Err(AccessTokenError::Opaque), "{raw:.60}");
        }
    }

    #[test]
    fn strict_format() {
        let header = json!({"alg":"RS256","kid":"k"});
        let good = token(header.clone(), 256);
        let parts: Vec<&str> = good.split('.').collect();
        let padded = format!(
            "{}.{}.{}",
            encode_padded(header.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        assert!(padded.contains('='), "the padded form differs");
        let dup_header = encode_unpadded(br#"{"alg":"RS256","kid":"k","alg":"none"}"#);
        let dup_payload = encode_unpadded(br#"{"sub":"a","sub":"b"}"#);
        for raw in [
            padded,
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!("{}..{}", parts[0], parts[2]),
            format!(".{}.{}", parts[1], parts[2]),
            format!("{}.{}.", parts[0], parts[1]),
            format!("{} .{}.{}", parts[0], parts[1], parts[2]),
            good.replace('-', "+").replace('_', "/") + "+",
            format!("{dup_header}.{}.{}", parts[1], parts[2]),
            format!("{}.{dup_payload}.{}", parts[0], parts[2]),
            format!("{}.{}.{}", encode_unpadded(b"[1]"), parts[1], parts[2]),
            format!("{}.{}.{}", parts[0], encode_unpadded(b"\"x\""), parts[2]),
            format!("{}.{}.{}", parts[0], encode_unpadded(b"{} {}"), parts[2]),
        ] {
            assert_eq!(parse(&raw), Err(AccessTokenError::Malformed), "{raw:.80}");
        }
    }

    #[test]
    fn at_most_16_kib() {
        let header = seg(&json!({"alg":"RS256","kid":"k"}));
        let sig = encode_unpadded(&[7u8; 256]);
        let sized = |len: usize| {
            // `{"p":"xx..."}` base64url-encoded: pick the filler to hit `len`.
            let fixed = header.len() + 2 + sig.len();
            let mut filler = 0;
            loop {
                let payload =
                    encode_unpadded(format!(r#"{{"p":"{}"}}"#, "x".repeat(filler)).as_bytes());
                let raw = format!("{header}.{payload}.{sig}");
                if fixed + payload.len() >= len {
                    return raw;
                }
                filler += 1;
            }
        };
        let at_limit = sized(MAX_ACCESS_TOKEN_LEN);
        assert_eq!(at_limit.len(), MAX_ACCESS_TOKEN_LEN);
        assert!(parse(&at_limit).is_ok());
        let over = sized(MAX_ACCESS_TOKEN_LEN + 1);
        assert_eq!(over.len(), MAX_ACCESS_TOKEN_LEN + 1);
        assert_eq!(parse(&over), Err(AccessTokenError::Malformed));
    }

    #[test]
    fn header_checks() {
        let cases = [
            (
                json!({"alg":"RS256","kid":"k","crit":["exp"]}),
                256,
                Err(AccessTokenError::BadHeader),
            ),
            (
                json!({"alg":"RS256","kid":"k","crit":[]}),
                256,
                Err(AccessTokenError::BadHeader),
            ),
            (
                json!({"alg":"RS256","kid":"k","b64":false}),
                256,
                Err(AccessTokenError::BadHeader),
            ),
            (
                json!({"alg":"RS256","kid":"k","b64":"false"}),
                256,
                Err(AccessTokenError::BadHeader),
            ),
            (json!({"alg":"RS256","kid":"k","b64":true}), 256, Ok(())),
            (
                json!({"alg":"none","kid":"k"}),
                256,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"alg":"HS256","kid":"k"}),
                32,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"alg":"HS512","kid":"k"}),
                64,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"alg":"PS256","kid":"k"}),
                256,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"alg":"rs256","kid":"k"}),
                256,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"alg":["RS256"],"kid":"k"}),
                256,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"kid":"k"}),
                256,
                Err(AccessTokenError::UnsupportedAlgorithm),
            ),
            (
                json!({"alg":"RS256"}),
                256,
                Err(AccessTokenError::MissingKid),
            ),
            (
                json!({"alg":"RS256","kid":""}),
                256,
                Err(AccessTokenError::MissingKid),
            ),
            (
                json!({"alg":"RS256","kid":7}),
                256,
                Err(AccessTokenError::MissingKid),
            ),
            (
                json!({"alg":"RS256","kid":"a\nb"}),
                256,
                Err(AccessTokenError::MissingKid),
            ),
            // Cognito's kids are base64 text.
            (json!({"alg":"RS256","kid":"abcd+/1234="}), 256, Ok(())),
            (json!({"alg":"ES256","kid":"k"}), 64, Ok(())),
            (
                json!({"alg":"ES256","kid":"k"}),
                63,
                Err(AccessTokenError::BadSignature),
            ),
            (
                json!({"alg":"ES256","kid":"k"}),
                65,
                Err(AccessTokenError::BadSignature),
            ),
            // A DER ECDSA signature is 70 to 72 bytes for P-256, ~102 for P-384.
            (
                json!({"alg":"ES256","kid":"k"}),
                71,
                Err(AccessTokenError::BadSignature),
            ),
            (
                json!({"alg":"ES256","kid":"k"}),
                96,
                Err(AccessTokenError::BadSignature),
            ),
            (json!({"alg":"ES384","kid":"k"}), 96, Ok(())),
            (
                json!({"alg":"ES384","kid":"k"}),
                64,
                Err(AccessTokenError::BadSignature),
            ),
            (
                json!({"alg":"ES384","kid":"k"}),
                102,
                Err(AccessTokenError::BadSignature),
            ),
            // Keys named in the header are never read: the token parses the same.
            (
                json!({"alg":"RS256","kid":"k","jku":"https://evil.example/jwks","x5u":"https://evil.example/c","jwk":{"kty":"RSA"},"x5c":["MII"]}),
                256,
                Ok(()),
            ),
        ];
        for (header, sig_len, expected) in cases {
            assert_eq!(
                parse(&token(header.clone(), sig_len)).map(|_| ()),
                expected,
                "{header} with {sig_len} signature bytes"
            );
        }
    }

    #[test]
    fn only_configured_algorithms() {
        let rs384 = token(json!({"alg":"RS384","kid":"k"}), 256);
        assert_eq!(
            AccessJws::parse(&rs384, &[Algorithm::Rs256]),
            Err(AccessTokenError::AlgorithmNotAllowed)
        );
        assert!(AccessJws::parse(&rs384, &[Algorithm::Rs256, Algorithm::Rs384]).is_ok());
        let es256 = token(json!({"alg":"ES256","kid":"k"}), 64);
        assert_eq!(
            AccessJws::parse(&es256, &[Algorithm::Rs256]),
            Err(AccessTokenError::AlgorithmNotAllowed)
        );
    }
}
