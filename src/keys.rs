//! The ALB key endpoint's answer: a PEM P-256 SubjectPublicKeyInfo.

use crate::fixed_base::FixedBaseTable;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use std::cell::OnceCell;

/// A key body larger than this is not an ALB key (a real one is ~180 bytes).
pub const MAX_KEY_BODY: usize = 8 * 1024;

/// A parsed ALB public key, in the forms the verifiers want.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// DER SubjectPublicKeyInfo, for Envoy's `verify_signature`.
    pub spki_der: Vec<u8>,
    /// The curve point, for the pure-Rust verifier.
    pub verifying_key: VerifyingKey,
    /// The pure-Rust verifier's table for this key, built on its first use
    /// (never, with Envoy's native verifier).
    table: OnceCell<FixedBaseTable>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key body larger than {MAX_KEY_BODY} bytes")]
    TooLarge,
    #[error("key body is not a PEM P-256 public key")]
    NotP256Pem,
}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` on P-256; anything else (other curves, RSA,
    /// certificates, garbage) is an error.
    pub fn from_pem(body: &[u8]) -> Result<PublicKey, KeyError> {
        if body.len() > MAX_KEY_BODY {
            return Err(KeyError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| KeyError::NotP256Pem)?;
        let key =
            p256::PublicKey::from_public_key_pem(text.trim()).map_err(|_| KeyError::NotP256Pem)?;
        Self::from_public_key(key)
    }

    /// Parses a DER SubjectPublicKeyInfo (as stored in shared data).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let key = p256::PublicKey::from_public_key_der(der).map_err(|_| KeyError::NotP256Pem)?;
        Self::from_public_key(key)
    }

    fn from_public_key(key: p256::PublicKey) -> Result<PublicKey, KeyError> {
        let spki_der = key
            .to_public_key_der()
            .map_err(|_| KeyError::NotP256Pem)?
            .as_bytes()
            .to_vec();
        Ok(PublicKey {
            spki_der,
            verifying_key: VerifyingKey::from(key),
            table: OnceCell::new(),
        })
    }

    /// The key's fixed-base table (see `fixed_base`), built once.
    pub fn table(&self) -> &FixedBaseTable {
        self.table
            .get_or_init(|| FixedBaseTable::new(self.verifying_key.as_affine().into()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::LineEnding;

    pub fn signing_key(seed: u8) -> SigningKey {
        let mut bytes = [0u8; 32];
        bytes[31] = seed.max(1);
        bytes[0] = 0x11;
        SigningKey::from_slice(&bytes).unwrap()
    }

    pub fn pem_of(key: &SigningKey) -> String {
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    #[test]
    fn parses_pem_and_round_trips_der() {
        let sk = signing_key(1);
        let k = PublicKey::from_pem(pem_of(&sk).as_bytes()).unwrap();
        assert_eq!(&k.verifying_key, sk.verifying_key());
        assert_eq!(PublicKey::from_spki_der(&k.spki_der).unwrap(), k);
        // Surrounding whitespace (a trailing newline from a web server) is fine.
        assert!(PublicKey::from_pem(format!("\n{}\n\n", pem_of(&sk)).as_bytes()).is_ok());
    }

    #[test]
    fn refuses_non_keys() {
        assert_eq!(PublicKey::from_pem(b"hello"), Err(KeyError::NotP256Pem));
        assert_eq!(
            PublicKey::from_pem(&[0xff, 0xfe]),
            Err(KeyError::NotP256Pem)
        );
        assert_eq!(
            PublicKey::from_pem(&vec![b'a'; MAX_KEY_BODY + 1]),
            Err(KeyError::TooLarge)
        );
        // A P-384 SubjectPublicKeyInfo: right shape, wrong curve.
        let p384 = "-----BEGIN PUBLIC KEY-----\n\
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEPKdR7ch8yoUkQrXVnm3yFxSsB0bAXxdt\n\
dOgB2aiHNFCoNY1FSfcwiHKnWtd29wkz3JxNBdA6r6yMY6yHrrq9ui1tIxeaOqde\n\
BpEMfmpp4+dWjH8TOoNeZxIaBF4Uo0Ib\n\
-----END PUBLIC KEY-----\n";
        assert_eq!(
            PublicKey::from_pem(p384.as_bytes()),
            Err(KeyError::NotP256Pem)
        );
        let pem = pem_of(&signing_key(2));
        assert_eq!(
            PublicKey::from_pem(pem.replace("PUBLIC KEY", "CERTIFICATE").as_bytes()),
            Err(KeyError::NotP256Pem)
        );
    }
}
