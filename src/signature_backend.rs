//! Which verifier checks a signature: Envoy's native `verify_signature`
//! (BoringSSL, >10x faster than p256 in V8) or the pure-Rust one, as
//! `signature_backend` says, falling back from a host that lacks the native
//! function. The host supplies only the foreign-function call.

use crate::access_token::{signature, AccessSignatureVerifier, Algorithm, JwkKey};
use crate::config::SignatureBackend;
use crate::engine::{SignatureVerifier, VerifierUnavailable};
use crate::keys::PublicKey;
use crate::verify;
use std::cell::Cell;

/// The host's foreign-function call: the answer's bytes, or why the call
/// itself failed (the host's status, for the log).
pub trait ForeignFunction {
    fn call(&self, name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, String>;
}

pub struct BackendVerifier<F> {
    backend: SignatureBackend,
    native: F,
    /// Set once the host has shown it has no `verify_signature`.
    native_missing: Cell<bool>,
}

impl<F: ForeignFunction> BackendVerifier<F> {
    pub fn new(backend: SignatureBackend, native: F) -> Self {
        BackendVerifier {
            backend,
            native,
            native_missing: Cell::new(false),
        }
    }
}

impl<F: ForeignFunction> BackendVerifier<F> {
    /// The native verifier with `args` (`None`: the signature cannot be
    /// valid), or `rust` where the backend or the host says so.
    fn run(
        &self,
        rust: impl FnOnce() -> bool,
        args: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<bool, VerifierUnavailable> {
        let use_native = match self.backend {
            SignatureBackend::Rust => false,
            SignatureBackend::Host => true,
            SignatureBackend::Auto => !self.native_missing.get(),
        };
        if !use_native {
            return Ok(rust());
        }
        let Some(args) = args() else {
            return Ok(false);
        };
        match self.native.call(verify::HOST_VERIFY_FUNCTION, &args) {
            Ok(result) => Ok(verify::host_verify_response(result.as_deref())),
            Err(status) if self.backend == SignatureBackend::Host => {
                log::error!(
                    "alb-oidc: signature_backend is \"host\" but the host's verify_signature failed ({status}); refusing"
                );
                Err(VerifierUnavailable)
            }
            Err(status) => {
                log::warn!(
                    "alb-oidc: host has no usable verify_signature ({status}); using the pure-Rust verifier from now on"
                );
                self.native_missing.set(true);
                Ok(rust())
            }
        }
    }
}

impl<F: ForeignFunction> SignatureVerifier for BackendVerifier<F> {
    fn verify(
        &self,
        key: &PublicKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifierUnavailable> {
        self.run(
            || verify::verify_rust(key, signing_input, signature),
            || verify::host_verify_request(key, signing_input, signature),
        )
    }
}

impl<F: ForeignFunction> AccessSignatureVerifier for BackendVerifier<F> {
    fn verify(
        &self,
        key: &JwkKey,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifierUnavailable> {
        self.run(
            || signature::verify_rust(key, alg, signing_input, signature),
            || signature::host_request(key, alg, signing_input, signature),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::{pem_of, signing_key};
    use p256::ecdsa::signature::Signer;
    use std::cell::RefCell;

    /// A host whose native verifier answers from a script, recording calls.
    struct Scripted {
        answer: Result<Option<Vec<u8>>, String>,
        calls: RefCell<u32>,
    }

    impl ForeignFunction for &Scripted {
        fn call(&self, name: &str, _args: &[u8]) -> Result<Option<Vec<u8>>, String> {
            assert_eq!(name, "verify_signature");
            *self.calls.borrow_mut() += 1;
            self.answer.clone()
        }
    }

    fn signed() -> (PublicKey, Vec<u8>, Vec<u8>) {
        let key = signing_key(3);
        let input = b"header.payload".to_vec();
        let signature: p256::ecdsa::Signature = key.sign(&input);
        let public = PublicKey::from_pem(pem_of(&key).as_bytes()).unwrap();
        (public, input, signature.to_bytes().to_vec())
    }

    fn missing() -> Scripted {
        Scripted {
            answer: Err("NotFound".to_owned()),
            calls: RefCell::new(0),
        }
    }

    #[test]
    fn auto_falls_back_to_rust_once_the_host_has_no_native_verifier() {
        let (key, input, sig) = signed();
        let host = missing();
        let v = BackendVerifier::new(SignatureBackend::Auto, &host);
        assert_eq!(SignatureVerifier::verify(&v, &key, &input, &sig), Ok(true));
        assert_eq!(SignatureVerifier::verify(&v, &key, &input, &sig), Ok(true));
        assert_eq!(
            SignatureVerifier::verify(&v, &key, b"tampered", &sig),
            Ok(false)
        );
        assert_eq!(*host.calls.borrow(), 1, "the host is asked once");
    }

    #[test]
    fn host_backend_without_a_native_verifier_is_unavailable() {
        let (key, input, sig) = signed();
        let host = missing();
        let v = BackendVerifier::new(SignatureBackend::Host, &host);
        assert_eq!(
            SignatureVerifier::verify(&v, &key, &input, &sig),
            Err(VerifierUnavailable)
        );
        assert_eq!(
            SignatureVerifier::verify(&v, &key, &input, &sig),
            Err(VerifierUnavailable)
        );
    }

    #[test]
    fn the_native_answer_decides_and_rust_is_never_asked() {
        let (key, input, sig) = signed();
        // VerifySignatureResult { result: true } is 0x08 0x01.
        let yes = Scripted {
            answer: Ok(Some(vec![0x08, 0x01])),
            calls: RefCell::new(0),
        };
        let no = Scripted {
            answer: Ok(Some(vec![])),
            calls: RefCell::new(0),
        };
        let v = BackendVerifier::new(SignatureBackend::Auto, &yes);
        assert_eq!(
            SignatureVerifier::verify(&v, &key, b"tampered", &sig),
            Ok(true)
        );
        let v = BackendVerifier::new(SignatureBackend::Host, &no);
        assert_eq!(SignatureVerifier::verify(&v, &key, &input, &sig), Ok(false));
    }

    #[test]
    fn rust_backend_never_calls_the_host() {
        let (key, input, sig) = signed();
        let host = missing();
        let v = BackendVerifier::new(SignatureBackend::Rust, &host);
        assert_eq!(SignatureVerifier::verify(&v, &key, &input, &sig), Ok(true));
        assert_eq!(*host.calls.borrow(), 0);
    }
}
