//! Envoy's `verify_signature` foreign function, for the core's
//! [`BackendVerifier`](crate::signature_backend::BackendVerifier).

use crate::signature_backend::ForeignFunction;
use proxy_wasm::hostcalls;

pub struct EnvoyForeignFunction;

impl ForeignFunction for EnvoyForeignFunction {
    // Host-call audit: Envoy parses `args` as its VerifySignatureArguments
    // message, which is exactly what `verify::host_verify_request` encodes.
    fn call(&self, name: &str, args: &[u8]) -> Result<Option<Vec<u8>>, String> {
        hostcalls::call_foreign_function(name, Some(args)).map_err(|status| format!("{status:?}"))
    }
}

pub type HostVerifier = crate::signature_backend::BackendVerifier<EnvoyForeignFunction>;
