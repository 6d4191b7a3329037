//! The identity handed to the upstream: which headers, with which values.

use crate::b64;
use crate::claims::CheckedClaims;
use crate::config::{Config, HeaderRole, ALB_IDENTITY_HEADER};
use serde_json::{Map, Value};

/// A verified identity, ready to be injected (and cached).
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub username: String,
    pub claims: CheckedClaims,
    /// The verified payload, for route rules (groups, claim requirements).
    pub payload: Map<String, Value>,
    /// The verified `sub`, which the ALB also sends unsigned as
    /// `x-amzn-oidc-identity`.
    pub sub: Option<String>,
    /// The verified payload JSON, as signed (sent to the user service).
    pub claims_json: String,
    /// Header name and value pairs, in injection order.
    pub headers: Vec<(String, String)>,
}

/// Whether `value` can travel as an HTTP header value unchanged: no control
/// characters (CR/LF would split headers), no leading/trailing whitespace.
pub fn is_safe_header_value(value: &str) -> bool {
    !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) && value.trim() == value
}

/// A claim rendered for a header: strings as-is, numbers and booleans as
/// JSON text, arrays of strings comma-joined. Other shapes (objects, null,
/// mixed arrays) and unsafe values produce no header.
pub fn claim_header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            strings?.join(",")
        }
        _ => return None,
    };
    is_safe_header_value(&text).then_some(text)
}

/// Builds the core identity headers from a verified payload.
pub fn build(
    config: &Config,
    payload: &Map<String, Value>,
    payload_json: &[u8],
    claims: CheckedClaims,
) -> Identity {
    let mut headers = Vec::with_capacity(3 + config.claim_headers.len());
    headers.push((
        config.headers.get(HeaderRole::User).to_owned(),
        claims.username.clone(),
    ));
    headers.push((
        config.headers.get(HeaderRole::Claims).to_owned(),
        b64::encode_unpadded(payload_json),
    ));
    for (claim, header) in &config.claim_headers {
        if let Some(value) = payload.get(claim).and_then(claim_header_value) {
            headers.push((header.clone(), value));
        }
    }
    let sub = payload
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| is_safe_header_value(s))
        .map(str::to_owned);
    // The ALB's unsigned copy of `sub`, made true (the incoming copies are
    // removed by the flow): apps that grew up behind a bare ALB read it.
    if let (false, Some(sub)) = (config.strip_alb_headers, &sub) {
        headers.push((ALB_IDENTITY_HEADER.to_owned(), sub.clone()));
    }
    Identity {
        username: claims.username.clone(),
        claims,
        payload: payload.clone(),
        sub,
        claims_json: String::from_utf8_lossy(payload_json).into_owned(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_values() {
        assert_eq!(claim_header_value(&json!("a@b")), Some("a@b".into()));
        assert_eq!(claim_header_value(&json!(42)), Some("42".into()));
        assert_eq!(claim_header_value(&json!(1.5)), Some("1.5".into()));
        assert_eq!(claim_header_value(&json!(true)), Some("true".into()));
        assert_eq!(claim_header_value(&json!(["a", "b"])), Some("a,b".into()));
        assert_eq!(claim_header_value(&json!([])), Some("".into()));
        assert_eq!(claim_header_value(&json!(["a", 1])), None);
        assert_eq!(claim_header_value(&json!({"a": 1})), None);
        assert_eq!(claim_header_value(&json!(null)), None);
        assert_eq!(claim_header_value(&json!("a\r\nx-auth-user: admin")), None);
        assert_eq!(claim_header_value(&json!(" padded")), None);
    }

    #[test]
    fn builds_headers() {
        let config = crate::config::parse(
            br#"{"region":"us-east-1","alb_arns":"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/a/1","claim_headers":{"email":"x-email","groups":"x-groups","missing":"x-missing"}}"#,
        )
        .unwrap();
        let json = br#"{"sub":"u1","email":"u@x","groups":["a","b"]}"#;
        let payload = crate::json::parse_object(json).unwrap();
        let claims = CheckedClaims {
            username: "u1".into(),
            valid_until: 10.0,
            valid_from: 0.0,
        };
        let id = build(&config, &payload, json, claims);
        assert_eq!(
            id.headers,
            vec![
                ("x-auth-user".into(), "u1".into()),
                ("x-auth-claims".into(), b64::encode_unpadded(json)),
                ("x-email".into(), "u@x".into()),
                ("x-groups".into(), "a,b".into()),
                ("x-amzn-oidc-identity".into(), "u1".into()),
            ]
        );
    }
}
