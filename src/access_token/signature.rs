//! Access-token signatures: RSASSA-PKCS1-v1_5 (RS256/384/512) and ECDSA
//! (ES256/ES384) in pure Rust (RustCrypto's `rsa`, `p256`, `p384`).

use super::algorithm::Algorithm;
use super::jwks::JwkKey;
use crate::engine::VerifierUnavailable;
use p256::ecdsa::signature::Verifier;
use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Verifies an access token's signature with a key the algorithm fits;
/// `Err` when the verifier itself is missing (a host backend).
pub trait AccessSignatureVerifier {
    fn verify(
        &self,
        key: &JwkKey,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifierUnavailable>;
}

/// The pure-Rust verifier (always available).
pub struct RustAccessVerifier;

impl AccessSignatureVerifier for RustAccessVerifier {
    fn verify(
        &self,
        key: &JwkKey,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifierUnavailable> {
        Ok(verify_rust(key, alg, signing_input, signature))
    }
}

/// Whether `signature` is `alg`'s signature of `signing_input` under `key`.
/// A key of another kind than `alg`'s never verifies; ECDSA signatures are
/// raw `r || s` only (a DER one is refused).
pub fn verify_rust(key: &JwkKey, alg: Algorithm, signing_input: &[u8], signature: &[u8]) -> bool {
    match (key, alg) {
        (JwkKey::Rsa(key), Algorithm::Rs256) => rsa_verify::<Sha256>(key, signing_input, signature),
        (JwkKey::Rsa(key), Algorithm::Rs384) => rsa_verify::<Sha384>(key, signing_input, signature),
        (JwkKey::Rsa(key), Algorithm::Rs512) => rsa_verify::<Sha512>(key, signing_input, signature),
        (JwkKey::P256(key), Algorithm::Es256) => p256::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|signature| key.verify(signing_input, &signature).is_ok()),
        (JwkKey::P384(key), Algorithm::Es384) => p384::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|signature| key.verify(signing_input, &signature).is_ok()),
        _ => false,
    }
}

/// RSASSA-PKCS1-v1_5 with the digest `D` names.
fn rsa_verify<D>(key: &rsa::PublicKey, signing_input: &[u8], signature: &[u8]) -> bool
where
    D: Digest + sha2::digest::const_oid::AssociatedOid,
{
    key.verify(
        Pkcs1v15Sign::new::<D>(),
        &D::digest(signing_input),
        signature,
    )
    .is_ok()
}

/// The host's `verify_signature` argument for this key, algorithm and
/// signature; `None` when the signature cannot be one (an ECDSA signature
/// that is not a valid raw `r || s`) or the key and algorithm do not fit.
pub fn host_request(
    key: &JwkKey,
    alg: Algorithm,
    signing_input: &[u8],
    signature: &[u8],
) -> Option<Vec<u8>> {
    use p256::pkcs8::EncodePublicKey;
    let (hash, spki, signature) = match (key, alg) {
        (JwkKey::Rsa(key), Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512) => {
            let spki = rsa::pkcs8::EncodePublicKey::to_public_key_der(key).ok()?;
            (rsa_hash(alg), spki.into_vec(), signature.to_vec())
        }
        (JwkKey::P256(key), Algorithm::Es256) => {
            let signature = p256::ecdsa::Signature::from_slice(signature).ok()?;
            let spki = key.to_public_key_der().ok()?;
            (
                "sha256",
                spki.into_vec(),
                signature.to_der().as_bytes().to_vec(),
            )
        }
        (JwkKey::P384(key), Algorithm::Es384) => {
            let signature = p384::ecdsa::Signature::from_slice(signature).ok()?;
            let spki = key.to_public_key_der().ok()?;
            (
                "sha384",
                spki.into_vec(),
                signature.to_der().as_bytes().to_vec(),
            )
        }
        _ => return None,
    };
    Some(crate::verify::host_verify_arguments(
        hash,
        spki,
        signature,
        signing_input,
    ))
}

fn rsa_hash(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Rs384 => "sha384",
        Algorithm::Rs512 => "sha512",
        _ => "sha256",
    }
}
