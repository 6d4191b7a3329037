//! ES256 (P-256) signing keys: random ones (fresh UUID kids, like the ALB's)
//! and ones derived from a seed, so a test can name a key by a short string
//! and every process derives the same key from it.

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A signing key together with its kid.
#[derive(Clone)]
pub struct KeyPair {
    /// The key id put in the token header and used in the key URL.
    pub kid: String,
    /// The P-256 private key.
    pub key: SigningKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh random P-256 key with a UUID v4 kid.
    pub fn generate() -> Result<Self> {
        let key = SigningKey::try_generate()
            .map_err(|e| Error::Key(format!("system random number generator: {e}")))?;
        Ok(KeyPair {
            kid: uuid::Uuid::new_v4().to_string(),
            key,
        })
    }

    /// The key [`key_from_seed`] derives from `seed`, with the given kid.
    pub fn from_seed(seed: &str, kid: impl Into<String>) -> Result<Self> {
        Ok(KeyPair {
            kid: kid.into(),
            key: key_from_seed(seed)?,
        })
    }

    /// The public key as the ALB key endpoint serves it (PEM SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> Result<String> {
        public_key_pem(self.key.verifying_key())
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> Result<String> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.as_str().to_owned())
            .map_err(|e| Error::Key(format!("encoding private key {}: {e}", self.kid)))
    }
}

/// A P-256 key that depends only on `seed`: the first SHA-256 of
/// `seed || counter` that is a valid scalar (the first one, but for a
/// chance of about 2^-32).
pub fn key_from_seed(seed: &str) -> Result<SigningKey> {
    for counter in 0u8..=255 {
        let digest = Sha256::new()
            .chain_update(b"alb-oidc-testkit key\0")
            .chain_update(seed.as_bytes())
            .chain_update([counter])
            .finalize();
        if let Ok(key) = SigningKey::from_slice(digest.as_slice()) {
            return Ok(key);
        }
    }
    Err(Error::Key(format!("no valid scalar for seed {seed:?}")))
}

/// `-----BEGIN PUBLIC KEY-----` PEM (P-256 SubjectPublicKeyInfo) of a verifying key.
pub fn public_key_pem(key: &VerifyingKey) -> Result<String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::Key(format!("encoding public key: {e}")))
}

/// Parses a `-----BEGIN PUBLIC KEY-----` PEM into a P-256 verifying key.
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|e| Error::Key(format!("parsing public key PEM: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn seeds_name_keys() {
        let a = key_from_seed("a").unwrap();
        assert_eq!(a, key_from_seed("a").unwrap());
        assert_ne!(a, key_from_seed("b").unwrap());
        let pair = KeyPair::from_seed("a", "kid-a").unwrap();
        let pem = pair.public_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(verifying_key_from_pem(&pem).unwrap(), *a.verifying_key());
    }

    #[test]
    fn generated_keys_differ_and_have_uuid_kids() {
        let (a, b) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        assert_ne!(a.key, b.key);
        assert!(uuid::Uuid::parse_str(&a.kid).is_ok());
        assert!(a
            .private_pem()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n"));
    }
}
