//! Claim checks on a token payload: lifetime, required claims, issuer,
//! audience and the username claim (the Django package's rules).

use crate::denial::Denial;
use serde_json::{Map, Value};

/// What the claim checks need from the configuration.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub clock_skew_s: u64,
    pub username_claim: String,
}

/// The facts the checks established.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedClaims {
    pub username: String,
    /// Unix seconds after which the token is expired (skew included).
    pub valid_until: f64,
    /// Unix seconds before which the token is not yet valid (skew included).
    pub valid_from: f64,
}

impl CheckedClaims {
    pub fn is_current(&self, now_s: f64) -> bool {
        now_s < self.valid_until && now_s >= self.valid_from
    }
}

/// A numeric date claim (`exp`, `nbf`): absent, or a finite number (`Err`
/// for anything else). Shared with the access token's claims.
pub(crate) fn numeric_claim(payload: &Map<String, Value>, name: &str) -> Result<Option<f64>, ()> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().filter(|n| n.is_finite()).map(Some).ok_or(()),
    }
}

fn number(payload: &Map<String, Value>, name: &str) -> Result<Option<f64>, Denial> {
    numeric_claim(payload, name).map_err(|()| Denial::BadClaims)
}

/// Checks the payload at time `now_s` (Unix seconds).
pub fn check(
    payload: &Map<String, Value>,
    rules: &ClaimRules,
    now_s: f64,
) -> Result<CheckedClaims, Denial> {
    let skew = rules.clock_skew_s as f64;
    let exp = number(payload, "exp")?.ok_or(Denial::BadClaims)?;
    let valid_until = exp + skew;
    if now_s >= valid_until {
        return Err(Denial::Expired);
    }
    let valid_from = match number(payload, "nbf")? {
        Some(nbf) => nbf - skew,
        None => f64::NEG_INFINITY,
    };
    if now_s < valid_from {
        return Err(Denial::NotYetValid);
    }
    let iss = payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(Denial::BadClaims)?;
    if !payload.get("sub").is_some_and(Value::is_string) {
        return Err(Denial::BadClaims);
    }
    if let Some(expected) = &rules.issuer {
        if iss != expected {
            return Err(Denial::BadIssuer);
        }
    }
    if let Some(expected) = &rules.audience {
        let matches = match payload.get("aud") {
            Some(Value::String(aud)) => aud == expected,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
            _ => false,
        };
        if !matches {
            return Err(Denial::BadAudience);
        }
    }
    let username = match payload.get(&rules.username_claim) {
        // The username travels as a header value: control characters would
        // split headers, so such a username is no username.
        Some(Value::String(u)) if !u.is_empty() && crate::identity::is_safe_header_value(u) => {
            u.clone()
        }
        _ => return Err(Denial::NoUsername),
    };
    Ok(CheckedClaims {
        username,
        valid_until,
        valid_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: None,
            audience: None,
            clock_skew_s: 0,
            username_claim: "sub".into(),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn valid_claims() {
        let p = obj(json!({"sub":"u1","iss":"https://idp","exp":1000}));
        let c = check(&p, &rules(), 999.0).unwrap();
        assert_eq!(c.username, "u1");
        assert!(c.is_current(999.5));
        assert!(!c.is_current(1000.0));
    }

    #[test]
    fn lifetime() {
        let r = rules();
        assert_eq!(
            check(&obj(json!({"sub":"u","iss":"i","exp":1000})), &r, 1000.0),
            Err(Denial::Expired)
        );
        assert_eq!(
            check(&obj(json!({"sub":"u","iss":"i"})), &r, 1.0),
            Err(Denial::BadClaims)
        );
        assert_eq!(
            check(&obj(json!({"sub":"u","iss":"i","exp":"2000"})), &r, 1.0),
            Err(Denial::BadClaims)
        );
        assert_eq!(
            check(&obj(json!({"sub":"u","iss":"i","exp":null})), &r, 1.0),
            Err(Denial::BadClaims)
        );
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":2000,"nbf":500})),
                &r,
                499.0
            ),
            Err(Denial::NotYetValid)
        );
        assert!(check(
            &obj(json!({"sub":"u","iss":"i","exp":2000,"nbf":500})),
            &r,
            500.0
        )
        .is_ok());
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":2000,"nbf":"x"})),
                &r,
                600.0
            ),
            Err(Denial::BadClaims)
        );
        let skewed = ClaimRules {
            clock_skew_s: 30,
            ..rules()
        };
        assert!(check(
            &obj(json!({"sub":"u","iss":"i","exp":1000})),
            &skewed,
            1029.0
        )
        .is_ok());
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":1000})),
                &skewed,
                1030.0
            ),
            Err(Denial::Expired)
        );
        assert!(check(
            &obj(json!({"sub":"u","iss":"i","exp":2000,"nbf":1020})),
            &skewed,
            1000.0
        )
        .is_ok());
    }

    #[test]
    fn required_and_configured_claims() {
        let r = rules();
        assert_eq!(
            check(&obj(json!({"sub":"u","exp":9})), &r, 1.0),
            Err(Denial::BadClaims)
        );
        assert_eq!(
            check(&obj(json!({"iss":"i","exp":9})), &r, 1.0),
            Err(Denial::BadClaims)
        );
        assert_eq!(
            check(&obj(json!({"sub":1,"iss":"i","exp":9})), &r, 1.0),
            Err(Denial::BadClaims)
        );
        let iss = ClaimRules {
            issuer: Some("https://idp".into()),
            ..rules()
        };
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"https://evil","exp":9})),
                &iss,
                1.0
            ),
            Err(Denial::BadIssuer)
        );
        assert!(check(
            &obj(json!({"sub":"u","iss":"https://idp","exp":9})),
            &iss,
            1.0
        )
        .is_ok());
        let aud = ClaimRules {
            audience: Some("app".into()),
            ..rules()
        };
        assert_eq!(
            check(&obj(json!({"sub":"u","iss":"i","exp":9})), &aud, 1.0),
            Err(Denial::BadAudience)
        );
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":9,"aud":"other"})),
                &aud,
                1.0
            ),
            Err(Denial::BadAudience)
        );
        assert!(check(
            &obj(json!({"sub":"u","iss":"i","exp":9,"aud":"app"})),
            &aud,
            1.0
        )
        .is_ok());
        assert!(check(
            &obj(json!({"sub":"u","iss":"i","exp":9,"aud":["x","app"]})),
            &aud,
            1.0
        )
        .is_ok());
        let by_email = ClaimRules {
            username_claim: "email".into(),
            ..rules()
        };
        assert_eq!(
            check(&obj(json!({"sub":"u","iss":"i","exp":9})), &by_email, 1.0),
            Err(Denial::NoUsername)
        );
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":9,"email":""})),
                &by_email,
                1.0
            ),
            Err(Denial::NoUsername)
        );
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":9,"email":["a"]})),
                &by_email,
                1.0
            ),
            Err(Denial::NoUsername)
        );
        assert_eq!(
            check(
                &obj(json!({"sub":"u","iss":"i","exp":9,"email":"a@b"})),
                &by_email,
                1.0
            )
            .unwrap()
            .username,
            "a@b"
        );
        assert_eq!(
            check(&obj(json!({"sub":"u\r\nx: y","iss":"i","exp":9})), &r, 1.0),
            Err(Denial::NoUsername)
        );
    }
}
