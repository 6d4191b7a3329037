//! ES256 signature verification: the pure-Rust path, and the encoding of
//! calls to Envoy's native `verify_signature` foreign function.

use crate::fixed_base;
use crate::keys::PublicKey;
use p256::ecdsa::Signature;

/// Verifies an ES256 JWS signature (raw `r || s`) in pure Rust, with the
/// key's precomputed table (`fixed_base`: same answers as p256's verifier).
pub fn verify_rust(key: &PublicKey, signing_input: &[u8], signature: &[u8]) -> bool {
    fixed_base::verify(key.table(), signing_input, signature)
}

/// The name Envoy registers its native verifier under.
pub const HOST_VERIFY_FUNCTION: &str = "verify_signature";

/// Envoy's `verify_signature` messages, generated from
/// `proto/verify_signature.proto`.
mod pb {
    #![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    include!(concat!(
        env!("OUT_DIR"),
        "/envoy.source.extensions.common.wasm.rs"
    ));
}

use pb::{VerifySignatureArguments, VerifySignatureResult};

/// A JWS ES256 signature (raw `r || s`, 64 bytes) in the ASN.1 DER form
/// Envoy's verifier wants. `None` unless it is 64 bytes with `r` and `s` in
/// `[1, n-1]`: such a signature can never verify, so it is not sent.
pub fn jws_signature_to_der(signature: &[u8]) -> Option<Vec<u8>> {
    let sig = Signature::from_slice(signature).ok()?;
    Some(sig.to_der().as_bytes().to_vec())
}

/// Encodes the foreign-function argument. Envoy wants ECDSA signatures in
/// ASN.1 DER while a JWS carries raw `r || s`; `None` if the signature is not
/// a valid P-256 scalar pair (then it cannot verify anyway).
pub fn host_verify_request(
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
) -> Option<Vec<u8>> {
    Some(host_verify_arguments(
        "sha256",
        key.spki_der.clone(),
        jws_signature_to_der(signature)?,
        signing_input,
    ))
}

/// The foreign function's argument for any key Envoy can import: `spki_der`
/// a SubjectPublicKeyInfo (RSA or EC), `signature` as BoringSSL's
/// `EVP_DigestVerify` takes it (DER for ECDSA, raw for RSA PKCS#1 v1.5),
/// `hash` one of Envoy's names (`sha256`, `sha384`, `sha512`).
pub fn host_verify_arguments(
    hash: &str,
    spki_der: Vec<u8>,
    signature: Vec<u8>,
    signing_input: &[u8],
) -> Vec<u8> {
    let args = VerifySignatureArguments {
        hash_function: hash.to_owned(),
        public_key: spki_der,
        signature,
        text: signing_input.to_vec(),
        public_key_pem: String::new(),
    };
    prost::Message::encode_to_vec(&args)
}

/// Decodes the foreign function's answer: `true` only for an explicit
/// `result = true`; anything unreadable is a failed verification.
pub fn host_verify_response(bytes: Option<&[u8]>) -> bool {
    bytes
        .and_then(|b| <VerifySignatureResult as prost::Message>::decode(b).ok())
        .is_some_and(|r| r.result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{pem_of, signing_key};
    use p256::ecdsa::signature::Signer;

    #[test]
    fn rust_verifier() {
        let sk = signing_key(3);
        let key = PublicKey::from_pem(pem_of(&sk).as_bytes()).unwrap();
        let sig: Signature = sk.sign(b"header.payload");
        let raw = sig.to_bytes();
        assert!(verify_rust(&key, b"header.payload", &raw));
        assert!(!verify_rust(&key, b"header.payloaD", &raw));
        assert!(!verify_rust(&key, b"header.payload", &raw[..63]));
        assert!(!verify_rust(&key, b"header.payload", &[0u8; 64]));
        let other = PublicKey::from_pem(pem_of(&signing_key(4)).as_bytes()).unwrap();
        assert!(!verify_rust(&other, b"header.payload", &raw));
        // A DER signature is not a JWS signature.
        assert!(!verify_rust(
            &key,
            b"header.payload",
            sig.to_der().as_bytes()
        ));
    }

    #[test]
    fn host_encoding() {
        let sk = signing_key(5);
        let key = PublicKey::from_pem(pem_of(&sk).as_bytes()).unwrap();
        let sig: Signature = sk.sign(b"t");
        let req = host_verify_request(&key, b"t", &sig.to_bytes()).unwrap();
        let args = <VerifySignatureArguments as prost::Message>::decode(req.as_slice()).unwrap();
        assert_eq!(args.hash_function, "sha256");
        assert_eq!(args.public_key, key.spki_der);
        assert_eq!(Signature::from_der(&args.signature).unwrap(), sig);
        assert_eq!(args.text, b"t");
        assert!(host_verify_request(&key, b"t", &[0u8; 64]).is_none());

        let ok = prost::Message::encode_to_vec(&VerifySignatureResult {
            result: true,
            error: String::new(),
        });
        let bad = prost::Message::encode_to_vec(&VerifySignatureResult {
            result: false,
            error: "x".into(),
        });
        assert!(host_verify_response(Some(&ok)));
        assert!(!host_verify_response(Some(&bad)));
        assert!(!host_verify_response(Some(b"\xff\xff")));
        assert!(!host_verify_response(None));
    }
}
