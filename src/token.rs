//! Parsing and structural checks of the ALB's `x-amzn-oidc-data` JWT.
//!
//! Nothing here trusts the token: it only establishes that the token is
//! well-formed, names an acceptable algorithm, key and signer, so that the
//! expensive steps (key fetch, signature check) run only for tokens that could
//! possibly be valid.

use crate::b64;
use crate::denial::Denial;
use crate::json;
use serde_json::{Map, Value};

/// Well above the ALB's ~11 KB limit on claims plus access token.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
const MAX_KID_LEN: usize = 64;

/// A token split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token exactly as received.
    pub raw: String,
    /// `raw[..signing_input_len]` is `header.payload` as received: the signed text.
    signing_input_len: usize,
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    /// The payload's JSON bytes exactly as signed.
    pub payload_json: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Token {
    /// Splits, decodes and parses; refuses anything not strictly a JWS
    /// compact serialisation with JSON-object header and payload.
    pub fn parse(raw: &str) -> Result<Token, Denial> {
        if raw.is_empty() || raw.len() > MAX_TOKEN_LEN {
            return Err(Denial::Malformed);
        }
        let mut parts = raw.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Denial::Malformed);
        };
        let header_json = b64::decode_segment(h).ok_or(Denial::Malformed)?;
        let payload_json = b64::decode_segment(p).ok_or(Denial::Malformed)?;
        let signature = b64::decode_segment(s).ok_or(Denial::Malformed)?;
        let header = json::parse_object(&header_json).ok_or(Denial::Malformed)?;
        let payload = json::parse_object(&payload_json).ok_or(Denial::Malformed)?;
        Ok(Token {
            raw: raw.to_owned(),
            signing_input_len: h.len() + 1 + p.len(),
            header,
            payload,
            payload_json,
            signature,
        })
    }

    /// The signed text: `header.payload` exactly as received (padding kept).
    pub fn signing_input(&self) -> &[u8] {
        &self.raw.as_bytes()[..self.signing_input_len]
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// Header checks for a real (non-bypass) verification, cheapest first:
    /// algorithm, key id, signer, client, signature shape. Returns the kid.
    pub fn check_header(
        &self,
        alb_arns: &[String],
        client_id: Option<&str>,
    ) -> Result<&str, Denial> {
        if self.header_str("alg") != Some("ES256") {
            return Err(Denial::BadHeader);
        }
        let kid = self.header_str("kid").ok_or(Denial::BadHeader)?;
        if !is_valid_kid(kid) {
            return Err(Denial::BadHeader);
        }
        // ALBeast: every ALB in the region signs with the same keys, so a
        // valid signature alone proves nothing. Exact match, before any fetch.
        match self.header_str("signer") {
            Some(signer) if alb_arns.iter().any(|arn| arn == signer) => {}
            _ => return Err(Denial::UntrustedSigner),
        }
        if let Some(expected) = client_id {
            if self.header_str("client") != Some(expected) {
                return Err(Denial::BadClient);
            }
        }
        if self.signature.len() != 64 {
            return Err(Denial::BadSignature);
        }
        Ok(kid)
    }
}

/// `^[A-Za-z0-9_-]{1,64}$`: the kid becomes part of a URL path, so nothing
/// that could change the URL's meaning gets through.
pub fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::{encode_padded, encode_unpadded};

    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1";

    fn tok(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            encode_padded(header.as_bytes()),
            encode_padded(payload.as_bytes()),
            encode_padded(sig)
        )
    }

    fn header(extra: &str) -> String {
        format!(r#"{{"alg":"ES256","kid":"k-1","signer":"{ARN}","client":"c"{extra}}}"#)
    }

    #[test]
    fn parses_padded_alb_token() {
        let raw = tok(&header(""), r#"{"sub":"a","exp":1}"#, &[7u8; 64]);
        let t = Token::parse(&raw).unwrap();
        assert_eq!(t.payload["sub"], "a");
        assert_eq!(t.signature.len(), 64);
        let dot2 = raw.rfind('.').unwrap();
        assert_eq!(t.signing_input(), &raw.as_bytes()[..dot2]);
        assert_eq!(t.check_header(&[ARN.into()], Some("c")).unwrap(), "k-1");
    }

    #[test]
    fn unpadded_parses_too() {
        let raw = format!(
            "{}.{}.{}",
            encode_unpadded(header("").as_bytes()),
            encode_unpadded(b"{\"sub\":\"a\"}"),
            encode_unpadded(&[1u8; 64])
        );
        assert!(Token::parse(&raw).is_ok());
    }

    #[test]
    fn structural_garbage_is_malformed() {
        let good = tok(&header(""), "{}", &[1u8; 64]);
        let parts: Vec<&str> = good.split('.').collect();
        let cases = vec![
            String::new(),
            "a.b".into(),
            format!("{good}.x"),
            format!("{}..{}", parts[0], parts[2]),
            format!(".{}.{}", parts[1], parts[2]),
            format!("{}.{}.", parts[0], parts[1]),
            good.replace('.', " ."),
            format!("{} ", good),
            tok("[1]", "{}", &[1; 64]),
            tok(&header(""), "1", &[1; 64]),
            tok(r#"{"alg":"ES256","alg":"none"}"#, "{}", &[1; 64]),
            tok(&header(""), r#"{"sub":"a","sub":"b"}"#, &[1; 64]),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ];
        for c in cases {
            assert_eq!(Token::parse(&c).unwrap_err(), Denial::Malformed, "{c:.80}");
        }
    }

    #[test]
    fn header_checks() {
        let arns = [ARN.to_owned()];
        let check = |h: &str, sig: usize| {
            Token::parse(&tok(h, "{}", &vec![1; sig]))
                .unwrap()
                .check_header(&arns, Some("c"))
                .map(str::to_owned)
        };
        assert!(check(&header(""), 64).is_ok());
        assert_eq!(
            check(&header("").replace("ES256", "none"), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace("ES256", "HS256"), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace("ES256", "es256"), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace("k-1", "../x"), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace("k-1", "a%2f"), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace("\"k-1\"", "7"), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace("k-1", &"a".repeat(65)), 64),
            Err(Denial::BadHeader)
        );
        assert_eq!(
            check(&header("").replace(ARN, &format!("{ARN}x")), 64),
            Err(Denial::UntrustedSigner)
        );
        assert_eq!(
            check(&header("").replace(ARN, &ARN[..ARN.len() - 1]), 64),
            Err(Denial::UntrustedSigner)
        );
        assert_eq!(
            check(
                &header("").replace(&format!("\"{ARN}\""), &format!("[\"{ARN}\"]")),
                64
            ),
            Err(Denial::UntrustedSigner)
        );
        assert_eq!(
            check(&header("").replace("\"c\"", "\"d\""), 64),
            Err(Denial::BadClient)
        );
        assert_eq!(check(&header(""), 70), Err(Denial::BadSignature));
        assert_eq!(check(&header(""), 63), Err(Denial::BadSignature));
    }

    #[test]
    fn kid_rule() {
        assert!(is_valid_kid("3f8e8b2a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(is_valid_kid(&"a".repeat(64)));
        for bad in [
            "",
            "a/b",
            "a.b",
            "a%2fb",
            "a?b",
            "a b",
            "ü",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_kid(bad), "{bad}");
        }
    }
}
