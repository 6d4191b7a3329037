//! The request/answer protocol of `alb-sim mint-batch`: one JSON request a
//! line in, one JSON answer a line out, in order. Other languages' tests
//! (the end-to-end suite in Python) mint through it, so there is one minting
//! implementation.
//!
//! Requests (`op` names the kind):
//!
//! - `{"op":"mint","key":SEED,"kid":KID, ...knobs}`: an ALB-format token
//!   ([`MintSpec`]). Answer: `{"token":..,"header":..,"payload":..}`, the
//!   header and payload as the exact JSON text that was encoded.
//! - `{"op":"sign","key":SEED,"text":TEXT,"form":"raw"|"der"}`: an ES256
//!   signature over exactly `TEXT` ([`SignSpec`]). Answer: `{"signature":
//!   base64url}` (padded).
//! - `{"op":"public_key","key":SEED}`: `{"pem":..}`, the key endpoint's PEM.
//! - `{"op":"fixtures"}`: the standard region, ALBs, issuer and client.
//!
//! A key is named by a seed ([`crate::keys::key_from_seed`]): a caller never
//! handles private keys. A request that cannot be served is answered
//! `{"error":..}`; the next line is served as usual.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::Result;
use crate::fixtures;
use crate::keys::key_from_seed;
use crate::token::{
    now_unix, sign_segments, signature, Claims, HeaderFields, Padding, SignatureForm, Signing,
    DEFAULT_EXP_IN,
};

/// One request line.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// An ALB-format token.
    Mint(Box<MintSpec>),
    /// A signature over given text.
    Sign(SignSpec),
    /// The public key of a seed.
    PublicKey {
        /// The key's seed.
        key: String,
    },
    /// The standard test values.
    Fixtures,
}

fn default_signer() -> String {
    fixtures::ARN.to_owned()
}
fn default_issuer() -> String {
    fixtures::ISSUER.to_owned()
}
fn default_client() -> String {
    fixtures::CLIENT.to_owned()
}
fn yes() -> bool {
    true
}

/// An ALB-format token and the knobs that break it on purpose.
///
/// Built as the ALB builds it ([`crate::token::mint`]): header fields from
/// `kid`, `signer`, `issuer`, `client`, `exp`; payload `claims` then `exp`
/// and `iss`. Then `header` and `payload` set fields (any JSON value, in
/// place when present, else appended), and `drop_header` / `drop_payload`
/// remove fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintSpec {
    /// Seed of the signing key.
    pub key: String,
    /// Header `kid`.
    pub kid: String,
    /// Header `signer` (default [`fixtures::ARN`]).
    #[serde(default = "default_signer")]
    pub signer: String,
    /// Header and payload `iss` (default [`fixtures::ISSUER`]).
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Header `client` (default [`fixtures::CLIENT`]).
    #[serde(default = "default_client")]
    pub client: String,
    /// Header and payload `exp` (default: now + 120 s).
    #[serde(default)]
    pub exp: Option<i64>,
    /// The identity's claims.
    #[serde(default)]
    pub claims: Claims,
    /// Header fields set after the ALB's.
    #[serde(default)]
    pub header: Claims,
    /// Header fields removed.
    #[serde(default)]
    pub drop_header: Vec<String>,
    /// Payload fields set after the ALB's.
    #[serde(default)]
    pub payload: Claims,
    /// Payload fields removed.
    #[serde(default)]
    pub drop_payload: Vec<String>,
    /// `=` padding on all three segments (the ALB's); `false`: none.
    #[serde(default = "yes")]
    pub pad: bool,
    /// RFC 6979 signatures (same spec, same token).
    #[serde(default)]
    pub deterministic: bool,
}

impl MintSpec {
    /// The header and payload objects this spec describes.
    pub fn objects(&self) -> (Claims, Claims) {
        let fields = HeaderFields {
            kid: self.kid.clone(),
            signer: self.signer.clone(),
            issuer: self.issuer.clone(),
            client: self.client.clone(),
            exp: self
                .exp
                .unwrap_or_else(|| now_unix().saturating_add(DEFAULT_EXP_IN)),
        };
        let mut header = fields.to_claims();
        header.merge(&self.header);
        for name in &self.drop_header {
            header.remove(name);
        }
        let mut payload = self.claims.payload(&fields);
        payload.merge(&self.payload);
        for name in &self.drop_payload {
            payload.remove(name);
        }
        (header, payload)
    }

    /// The token, with the header and payload JSON it encodes.
    pub fn mint(&self) -> Result<Minted> {
        let (header, payload) = self.objects();
        let (header, payload) = (header.to_json()?, payload.to_json()?);
        let padding = if self.pad {
            Padding::Padded
        } else {
            Padding::Unpadded
        };
        let signing = if self.deterministic {
            Signing::Deterministic
        } else {
            Signing::Randomized
        };
        let token = sign_segments(
            &padding.encode(header.as_bytes()),
            &padding.encode(payload.as_bytes()),
            &key_from_seed(&self.key)?,
            signing,
            padding,
        )?;
        Ok(Minted {
            token,
            header,
            payload,
        })
    }
}

/// A minted token and the JSON texts in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// `header.payload.signature`.
    pub token: String,
    /// The header JSON that was encoded.
    pub header: String,
    /// The payload JSON that was encoded.
    pub payload: String,
}

/// A signature over exactly `text`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignSpec {
    /// Seed of the signing key.
    pub key: String,
    /// What is signed (as UTF-8).
    pub text: String,
    /// Raw `r || s` (default) or DER.
    #[serde(default)]
    pub form: SignatureForm,
    /// RFC 6979 signatures (same spec, same signature).
    #[serde(default)]
    pub deterministic: bool,
}

impl Request {
    /// Parses one request line. Claims may nest deeper than serde_json's
    /// default limit (tests send 500 levels on purpose).
    pub fn parse(line: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_str(line);
        de.disable_recursion_limit();
        let request = Request::deserialize(&mut de)?;
        de.end()?;
        Ok(request)
    }

    /// The answer object.
    pub fn answer(&self) -> Result<Value> {
        Ok(match self {
            Request::Mint(spec) => {
                let minted = spec.mint()?;
                json!({"token": minted.token, "header": minted.header, "payload": minted.payload})
            }
            Request::Sign(spec) => {
                let signing = if spec.deterministic {
                    Signing::Deterministic
                } else {
                    Signing::Randomized
                };
                let sig = signature(
                    spec.text.as_bytes(),
                    &key_from_seed(&spec.key)?,
                    signing,
                    spec.form,
                )?;
                json!({"signature": Padding::Padded.encode(&sig)})
            }
            Request::PublicKey { key } => {
                let pem = crate::keys::public_key_pem(key_from_seed(key)?.verifying_key())?;
                json!({"pem": pem})
            }
            Request::Fixtures => json!({
                "region": fixtures::REGION,
                "arn": fixtures::ARN,
                "arn2": fixtures::ARN2,
                "foreign_arn": fixtures::FOREIGN_ARN,
                "issuer": fixtures::ISSUER,
                "client": fixtures::CLIENT,
            }),
        })
    }
}

/// The answer line (without the newline) for one request line: the answer,
/// or `{"error": reason}`.
pub fn answer_line(line: &str) -> String {
    let answer = Request::parse(line)
        .and_then(|request| request.answer())
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    // Serializing a Value to a String cannot fail; the fallback is never used.
    serde_json::to_string(&answer).unwrap_or_else(|_| String::from(r#"{"error":"encoding"}"#))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::token::{b64, mint_deterministic};

    fn answer(line: &str) -> Value {
        serde_json::from_str(&answer_line(line)).unwrap()
    }

    #[test]
    fn mint_is_the_alb_format() {
        let a = answer(
            r#"{"op":"mint","key":"s","kid":"k1","exp":4000000000,"claims":{"sub":"u","exp":1},"deterministic":true}"#,
        );
        let fields = HeaderFields {
            kid: "k1".into(),
            signer: fixtures::ARN.into(),
            issuer: fixtures::ISSUER.into(),
            client: fixtures::CLIENT.into(),
            exp: 4_000_000_000,
        };
        let claims = Claims::from_json(r#"{"sub":"u"}"#).unwrap();
        let expected = mint_deterministic(&claims, &fields, &key_from_seed("s").unwrap()).unwrap();
        assert_eq!(a["token"], expected.as_str());
        assert_eq!(a["header"], fields.to_json().unwrap().as_str());
        assert_eq!(
            a["payload"],
            format!(
                r#"{{"sub":"u","exp":4000000000,"iss":"{}"}}"#,
                fixtures::ISSUER
            )
            .as_str()
        );
    }

    #[test]
    fn knobs_set_drop_and_unpad() {
        let a = answer(
            r#"{"op":"mint","key":"s","kid":"k","exp":5,"header":{"alg":"none","x":[1]},"drop_header":["typ"],
                "payload":{"exp":"soon","aud":null},"drop_payload":["iss"],"pad":false}"#,
        );
        assert_eq!(
            a["header"],
            format!(
                r#"{{"kid":"k","alg":"none","iss":"{}","client":"{}","signer":"{}","exp":5,"x":[1]}}"#,
                fixtures::ISSUER,
                fixtures::CLIENT,
                fixtures::ARN
            )
            .as_str()
        );
        assert_eq!(a["payload"], r#"{"exp":"soon","aud":null}"#);
        assert!(!a["token"].as_str().unwrap().contains('='));
    }

    #[test]
    fn deep_claims_are_served() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let a = answer(&format!(
            r#"{{"op":"mint","key":"s","kid":"k","header":{{"x":{deep}}}}}"#
        ));
        assert!(a["header"].as_str().unwrap().contains(&deep), "{a}");
    }

    #[test]
    fn sign_public_key_fixtures_and_errors() {
        let a = answer(r#"{"op":"sign","key":"s","text":"a.b","deterministic":true}"#);
        let key = key_from_seed("s").unwrap();
        let raw = signature(b"a.b", &key, Signing::Deterministic, SignatureForm::Raw).unwrap();
        assert_eq!(a["signature"], b64(&raw).as_str());
        let der = answer(r#"{"op":"sign","key":"s","text":"a.b","form":"der"}"#);
        assert_eq!(der["signature"].as_str().unwrap().len(), 96, "{der}");
        let pem = answer(r#"{"op":"public_key","key":"s"}"#);
        assert_eq!(
            pem["pem"],
            crate::keys::public_key_pem(key.verifying_key())
                .unwrap()
                .as_str()
        );
        assert_eq!(answer(r#"{"op":"fixtures"}"#)["arn"], fixtures::ARN);
        for bad in [
            "",
            "{}",
            r#"{"op":"mint","key":"s"}"#,
            r#"{"op":"mint","key":"s","kid":"k","claims":[1]}"#,
            r#"{"op":"mint","key":"s","kid":"k","bogus":1}"#,
            r#"{"op":"sign","key":"s","text":"x"} x"#,
        ] {
            assert!(answer(bad)["error"].is_string(), "{bad:?}");
        }
    }
}
