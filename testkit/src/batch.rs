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
//! - `{"op":"access_token","key":IDP_KEY,"header":{..},"payload":{..}, ...}`:
//!   an IdP access token, compact JWS with unpadded segments
//!   ([`AccessTokenSpec`]): header and payload exactly as given, signed as
//!   the header's `alg` says unless told otherwise (another algorithm, DER,
//!   HS256 with a chosen secret, no signature). Answer as for `mint`.
//! - `{"op":"jwks","keys":[{"key":IDP_KEY,"kid":KID,"set":{..},"drop":[..]}]}`:
//!   `{"jwks":TEXT}`, a key set of the keys' public JWKs ([`JwksEntry`]).
//!
//! An ALB key is named by a seed ([`crate::keys::key_from_seed`]), an IdP
//! key ([`idp_key`]) by `rsa-a`, `rsa-b`, `rsa-weak` (the fixed RSA keys,
//! the last of 1024 bits), `p256:SEED` or `p384:SEED`: a caller never
//! handles private keys. A request that cannot be served is answered
//! `{"error":..}`; the next line is served as usual.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::fixtures;
use crate::idp::{self, IdpKey, RsaFixture};
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
    /// An IdP access token.
    AccessToken(Box<AccessTokenSpec>),
    /// An IdP key set.
    Jwks {
        /// The keys, in order.
        keys: Vec<JwksEntry>,
    },
}

/// The IdP key `spec` names (see the module documentation), with `kid`.
pub fn idp_key(spec: &str, kid: &str) -> Result<IdpKey> {
    match spec.split_once(':') {
        Some(("p256", seed)) => IdpKey::p256(seed, kid),
        Some(("p384", seed)) => IdpKey::p384(seed, kid),
        _ => match spec {
            "rsa-a" => IdpKey::rsa(RsaFixture::A, kid),
            "rsa-b" => IdpKey::rsa(RsaFixture::B, kid),
            "rsa-weak" => IdpKey::rsa(RsaFixture::Weak1024, kid),
            _ => Err(Error::Key(format!(
                "IdP key {spec:?}: expected rsa-a, rsa-b, rsa-weak, p256:SEED or p384:SEED"
            ))),
        },
    }
}

/// What an HS256 signature is keyed with.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HmacSecret {
    /// The RSA key's public DER (SubjectPublicKeyInfo).
    PublicDer,
    /// The RSA key's public PEM.
    PublicPem,
    /// These UTF-8 bytes.
    Text(String),
}

/// An access token in the IdP's format, and the knobs that break it.
///
/// The segments are the header and payload JSON texts (`header_text` and
/// `payload_text` when given, byte for byte: duplicate members, odd
/// spacing), unpadded base64url. The signature is, in order of precedence:
/// none (`unsigned`), HMAC-SHA256 under `hs256_secret`, or `key`'s
/// signature with `sign_alg` (default: the header's `alg`) in `form`
/// (`der`: ECDSA in ASN.1 DER).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenSpec {
    /// The signing key ([`idp_key`]).
    pub key: String,
    /// The header object.
    #[serde(default)]
    pub header: Claims,
    /// The header JSON text, instead of `header`.
    #[serde(default)]
    pub header_text: Option<String>,
    /// The payload object.
    #[serde(default)]
    pub payload: Claims,
    /// The payload JSON text, instead of `payload`.
    #[serde(default)]
    pub payload_text: Option<String>,
    /// Sign with this algorithm instead of the header's `alg`.
    #[serde(default)]
    pub sign_alg: Option<String>,
    /// Raw `r || s` (default) or DER, for ECDSA.
    #[serde(default)]
    pub form: SignatureForm,
    /// An HS256 signature keyed with this instead of `key`'s signature.
    #[serde(default)]
    pub hs256_secret: Option<HmacSecret>,
    /// An empty signature segment (`alg: none`).
    #[serde(default)]
    pub unsigned: bool,
}

impl AccessTokenSpec {
    /// The token, with the header and payload JSON it encodes.
    pub fn mint(&self) -> Result<Minted> {
        let header = match &self.header_text {
            Some(text) => text.clone(),
            None => self.header.to_json()?,
        };
        let payload = match &self.payload_text {
            Some(text) => text.clone(),
            None => self.payload.to_json()?,
        };
        let key = idp_key(&self.key, "")?;
        let header_alg = self.header.get("alg").and_then(Value::as_str);
        let token = idp::sign_segments(
            &idp::b64(header.as_bytes()),
            &idp::b64(payload.as_bytes()),
            |text| {
                if self.unsigned {
                    return Ok(Vec::new());
                }
                if let Some(secret) = &self.hs256_secret {
                    let secret = match secret {
                        HmacSecret::PublicDer => key.public_der()?,
                        HmacSecret::PublicPem => key.public_pem()?.into_bytes(),
                        HmacSecret::Text(text) => text.clone().into_bytes(),
                    };
                    return idp::hs256(&secret, text);
                }
                if self.form == SignatureForm::Der {
                    return key.sign_der(text);
                }
                let alg = self.sign_alg.as_deref().or(header_alg).ok_or_else(|| {
                    Error::Key("no `sign_alg` and no string `alg` in `header`".into())
                })?;
                key.sign(alg, text)
            },
        )?;
        Ok(Minted {
            token,
            header,
            payload,
        })
    }
}

/// One key of a key set: `key`'s public JWK with `kid`, then the `set`
/// members set (in place when present, else appended) and `drop` removed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksEntry {
    /// The key ([`idp_key`]).
    pub key: String,
    /// Its `kid`.
    pub kid: String,
    /// Members set after the JWK's own (`alg`, `use`, a wrong `kty`...).
    #[serde(default)]
    pub set: Claims,
    /// Members removed.
    #[serde(default)]
    pub drop: Vec<String>,
}

impl JwksEntry {
    /// The JWK this entry describes.
    pub fn jwk(&self) -> Result<Value> {
        let jwk = idp_key(&self.key, &self.kid)?.jwk();
        let mut members = Claims::from_json(&jwk.to_string())?;
        members.merge(&self.set);
        for name in &self.drop {
            members.remove(name);
        }
        Ok(serde_json::from_str(&members.to_json()?)?)
    }
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
            Request::AccessToken(spec) => {
                let minted = spec.mint()?;
                json!({"token": minted.token, "header": minted.header, "payload": minted.payload})
            }
            Request::Jwks { keys } => {
                let jwks = keys
                    .iter()
                    .map(JwksEntry::jwk)
                    .collect::<Result<Vec<_>>>()?;
                json!({"jwks": idp::jwks(&jwks)})
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

    #[test]
    fn access_tokens_sign_as_told() {
        let a = answer(
            r#"{"op":"access_token","key":"rsa-a","header":{"kid":"k","alg":"RS256"},"payload":{"sub":"u","scope":"a b"}}"#,
        );
        assert_eq!(a["header"], r#"{"kid":"k","alg":"RS256"}"#);
        assert_eq!(a["payload"], r#"{"sub":"u","scope":"a b"}"#);
        let token = a["token"].as_str().unwrap();
        let (text, sig) = token.rsplit_once('.').unwrap();
        let key = idp::IdpKey::rsa(RsaFixture::A, "k").unwrap();
        // PKCS#1 v1.5 is deterministic: the same text gives the same signature.
        assert_eq!(sig, idp::b64(&key.sign("RS256", text.as_bytes()).unwrap()));
        assert!(!token.contains('='));

        let hs = answer(
            r#"{"op":"access_token","key":"rsa-a","header_text":"{\"alg\":\"HS256\",\"alg\":\"RS256\"}","hs256_secret":"public_der"}"#,
        );
        let (text, sig) = hs["token"].as_str().unwrap().rsplit_once('.').unwrap();
        let mac = idp::hs256(&key.public_der().unwrap(), text.as_bytes()).unwrap();
        assert_eq!(sig, idp::b64(&mac));
        assert_eq!(hs["header"], r#"{"alg":"HS256","alg":"RS256"}"#);

        let none = answer(
            r#"{"op":"access_token","key":"rsa-a","header":{"alg":"none"},"unsigned":true}"#,
        );
        assert!(none["token"].as_str().unwrap().ends_with('.'));
        let der =
            answer(r#"{"op":"access_token","key":"p256:s","header":{"alg":"ES256"},"form":"der"}"#);
        let sig = der["token"].as_str().unwrap().rsplit_once('.').unwrap().1;
        assert_ne!(sig.len(), idp::b64(&[0u8; 64]).len(), "{der}");
        let es = answer(
            r#"{"op":"access_token","key":"p384:s","header":{"alg":"RS256"},"sign_alg":"ES384"}"#,
        );
        let sig = es["token"].as_str().unwrap().rsplit_once('.').unwrap().1;
        assert_eq!(sig.len(), idp::b64(&[0u8; 96]).len(), "{es}");
        for bad in [
            r#"{"op":"access_token","key":"rsa-c","header":{"alg":"RS256"}}"#,
            r#"{"op":"access_token","key":"rsa-a","header":{"alg":"ES256"}}"#,
            r#"{"op":"access_token","key":"rsa-a"}"#,
        ] {
            assert!(answer(bad)["error"].is_string(), "{bad:?}");
        }
    }

    #[test]
    fn jwks_entries_set_and_drop() {
        let a = answer(
            r#"{"op":"jwks","keys":[{"key":"rsa-b","kid":"r","set":{"alg":"RS256"},"drop":["use"]},
                {"key":"p256:s","kid":"r"}]}"#,
        );
        let doc: Value = serde_json::from_str(a["jwks"].as_str().unwrap()).unwrap();
        let keys = doc["keys"].as_array().unwrap();
        let mut rsa = idp::IdpKey::rsa(RsaFixture::B, "r").unwrap().jwk();
        rsa["alg"] = json!("RS256");
        rsa.as_object_mut().unwrap().remove("use");
        assert_eq!(keys[0], rsa);
        assert_eq!(keys[1], idp::IdpKey::p256("s", "r").unwrap().jwk());
        let weak = answer(r#"{"op":"jwks","keys":[{"key":"rsa-weak","kid":"w"}]}"#);
        let doc: Value = serde_json::from_str(weak["jwks"].as_str().unwrap()).unwrap();
        // 1024 bits: 128 bytes of modulus, 171 base64url characters.
        assert_eq!(doc["keys"][0]["n"].as_str().unwrap().len(), 171);
    }
}
