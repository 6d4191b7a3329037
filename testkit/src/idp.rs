//! The IdP's side of the access token (issue 13): signing keys (RSA,
//! P-256, P-384) with their public JWKs, key sets, and compact JWS minting
//! in the IdPs' format (unpadded base64url), with the pieces to build
//! malformed and algorithm-confusion tokens (any header, HS256).
//!
//! The RSA keys of tests are fixed (`keys/idp-rsa-*.pem`, made with
//! `openssl genpkey`): generating RSA keys in unoptimised test builds takes
//! seconds, and fixed keys make every run reproduce. One is 1024 bits, too
//! weak for a key set to be trusted with. alb-sim, which plays the IdP,
//! generates its own ([`IdpKey::generate_rsa`]) and keeps them as PKCS#8 PEM.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::Pkcs1v15Sign;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::error::{Error, Result};

/// The IdP's issuer in access-token tests.
pub const IDP_ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST";
/// The app client the access tokens are issued to.
pub const IDP_CLIENT_ID: &str = "testclientid";

const RSA_A: &str = include_str!("../keys/idp-rsa-2048-a.pem");
const RSA_B: &str = include_str!("../keys/idp-rsa-2048-b.pem");
const RSA_WEAK: &str = include_str!("../keys/idp-rsa-1024-weak.pem");

/// The modulus size of the RSA keys alb-sim generates.
pub const GENERATED_RSA_BITS: usize = 2048;

/// Which fixed RSA test key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaFixture {
    A,
    B,
    /// 1024 bits: below what a verifier may accept (RFC 7518 §3.3).
    Weak1024,
}

/// A private key of one of the kinds an IdP signs access tokens with.
#[derive(Clone)]
pub enum IdpSecret {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A signing key with its kid.
#[derive(Clone)]
pub struct IdpKey {
    pub kid: String,
    pub secret: IdpSecret,
}

impl std::fmt::Debug for IdpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl IdpKey {
    /// One of the two fixed 2048-bit RSA keys.
    pub fn rsa(fixture: RsaFixture, kid: impl Into<String>) -> Result<Self> {
        let pem = match fixture {
            RsaFixture::A => RSA_A,
            RsaFixture::B => RSA_B,
            RsaFixture::Weak1024 => RSA_WEAK,
        };
        Self::rsa_from_pem(pem, kid)
            .map_err(|e| Error::Key(format!("RSA fixture {fixture:?}: {e}")))
    }

    /// An RSA key from its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn rsa_from_pem(pem: &str, kid: impl Into<String>) -> Result<Self> {
        let key = rsa::PrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::Key(format!("RSA private key PEM: {e}")))?;
        Ok(IdpKey {
            kid: kid.into(),
            secret: IdpSecret::Rsa(Box::new(key)),
        })
    }

    /// A fresh random 2048-bit RSA key (what alb-sim signs access tokens
    /// with; about a second in an unoptimised build).
    pub fn generate_rsa(kid: impl Into<String>) -> Result<Self> {
        use p256::elliptic_curve::common::getrandom::SysRng;
        let key = rsa::PrivateKey::new(&mut SysRng, GENERATED_RSA_BITS)
            .map_err(|e| Error::Key(format!("generating an RSA key: {e}")))?;
        Ok(IdpKey {
            kid: kid.into(),
            secret: IdpSecret::Rsa(Box::new(key)),
        })
    }

    /// The private key as PKCS#8 PEM (RSA keys only: alb-sim stores them).
    pub fn private_pem(&self) -> Result<String> {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        match &self.secret {
            IdpSecret::Rsa(key) => key
                .to_pkcs8_pem(LineEnding::LF)
                .map(|pem| pem.as_str().to_owned())
                .map_err(|e| Error::Key(format!("encoding RSA key {}: {e}", self.kid))),
            _ => Err(Error::Key("only RSA IdP keys are stored".into())),
        }
    }

    /// The P-256 key [`crate::keys::key_from_seed`] derives from `seed`.
    pub fn p256(seed: &str, kid: impl Into<String>) -> Result<Self> {
        Ok(IdpKey {
            kid: kid.into(),
            secret: IdpSecret::P256(crate::keys::key_from_seed(seed)?),
        })
    }

    /// A P-384 key that depends only on `seed` (the first SHA-384 of
    /// `seed || counter` that is a valid scalar).
    pub fn p384(seed: &str, kid: impl Into<String>) -> Result<Self> {
        for counter in 0u8..=255 {
            let digest = Sha384::new()
                .chain_update(b"alb-oidc-testkit p384 key\0")
                .chain_update(seed.as_bytes())
                .chain_update([counter])
                .finalize();
            if let Ok(key) = p384::ecdsa::SigningKey::from_slice(digest.as_slice()) {
                return Ok(IdpKey {
                    kid: kid.into(),
                    secret: IdpSecret::P384(key),
                });
            }
        }
        Err(Error::Key(format!(
            "no valid P-384 scalar for seed {seed:?}"
        )))
    }

    /// The public key as a JWK with `kid` and `use: sig` (no `alg`).
    pub fn jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match &self.secret {
            IdpSecret::Rsa(key) => json!({
                "kty": "RSA",
                "kid": self.kid,
                "use": "sig",
                "n": b64(&key.n().to_be_bytes_trimmed_vartime()),
                "e": b64(&key.e().to_be_bytes_trimmed_vartime()),
            }),
            IdpSecret::P256(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "kid": self.kid,
                    "use": "sig",
                    "x": b64(&point.as_bytes()[1..33]),
                    "y": b64(&point.as_bytes()[33..65]),
                })
            }
            IdpSecret::P384(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-384",
                    "kid": self.kid,
                    "use": "sig",
                    "x": b64(&point.as_bytes()[1..49]),
                    "y": b64(&point.as_bytes()[49..97]),
                })
            }
        }
    }

    /// The JWS signature of `text` with `alg` (RS256/384/512 with an RSA
    /// key, ES256 with P-256, ES384 with P-384; ECDSA as raw `r || s`).
    pub fn sign(&self, alg: &str, text: &[u8]) -> Result<Vec<u8>> {
        let rsa = |key: &rsa::PrivateKey, scheme: Pkcs1v15Sign, digest: &[u8]| {
            key.sign(scheme, digest)
                .map_err(|e| Error::Key(format!("RSA signing: {e}")))
        };
        match (&self.secret, alg) {
            (IdpSecret::Rsa(key), "RS256") => {
                rsa(key, Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(text))
            }
            (IdpSecret::Rsa(key), "RS384") => {
                rsa(key, Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(text))
            }
            (IdpSecret::Rsa(key), "RS512") => {
                rsa(key, Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(text))
            }
            (IdpSecret::P256(key), "ES256") => {
                let signature: p256::ecdsa::Signature = key.sign(text);
                Ok(signature.to_bytes().to_vec())
            }
            (IdpSecret::P384(key), "ES384") => {
                let signature: p384::ecdsa::Signature = key.sign(text);
                Ok(signature.to_bytes().to_vec())
            }
            _ => Err(Error::Key(format!("key {} cannot sign {alg}", self.kid))),
        }
    }

    /// The ECDSA signature of `text` in ASN.1 DER, which a JWS must not carry.
    pub fn sign_der(&self, text: &[u8]) -> Result<Vec<u8>> {
        match &self.secret {
            IdpSecret::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(text);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            IdpSecret::P384(key) => {
                let signature: p384::ecdsa::Signature = key.sign(text);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            IdpSecret::Rsa(_) => Err(Error::Key("RSA signatures have no DER form".into())),
        }
    }

    /// The RSA public key as DER SubjectPublicKeyInfo: the bytes an
    /// algorithm-confusion attacker uses as an HS256 secret.
    pub fn public_der(&self) -> Result<Vec<u8>> {
        use rsa::pkcs8::EncodePublicKey;
        match &self.secret {
            IdpSecret::Rsa(key) => key
                .to_public_key()
                .to_public_key_der()
                .map(|der| der.as_bytes().to_vec())
                .map_err(|e| Error::Key(format!("RSA public key DER: {e}"))),
            _ => Err(Error::Key("only RSA keys are used as HS256 secrets".into())),
        }
    }

    /// The RSA public key as PEM SubjectPublicKeyInfo: the other spelling an
    /// algorithm-confusion attacker tries as an HS256 secret.
    pub fn public_pem(&self) -> Result<String> {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        match &self.secret {
            IdpSecret::Rsa(key) => key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| Error::Key(format!("RSA public key PEM: {e}"))),
            _ => Err(Error::Key("only RSA keys are used as HS256 secrets".into())),
        }
    }
}

/// A key set document: `{"keys":[...]}`.
pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Base64url without padding, as IdPs encode JWS segments.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 of `text` under `secret`: an HS256 signature.
pub fn hs256(secret: &[u8], text: &[u8]) -> Result<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|e| Error::Key(format!("HMAC key: {e}")))?;
    mac.update(text);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// `header.payload` (unpadded segments of the JSON texts as given) signed
/// with `key` under the header's `alg`.
pub fn access_token(header: &Value, payload: &Value, key: &IdpKey) -> Result<String> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Key("the header names no alg".into()))?;
    sign_segments(
        &b64(header.to_string().as_bytes()),
        &b64(payload.to_string().as_bytes()),
        |text| key.sign(alg, text),
    )
}

/// Signs exactly the text `header_seg.payload_seg` with `sign` and returns
/// the token (signature unpadded), for tokens with unusual segments.
pub fn sign_segments(
    header_seg: &str,
    payload_seg: &str,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<String> {
    let text = format!("{header_seg}.{payload_seg}");
    let signature = sign(text.as_bytes())?;
    Ok(format!("{text}.{}", b64(&signature)))
}
