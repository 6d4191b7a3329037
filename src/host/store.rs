//! proxy-wasm shared data as the core's [`SharedStore`].

use crate::shared_cache::SharedStore;
use proxy_wasm::hostcalls;

pub struct HostStore;

// Host-call audit: shared-data keys are opaque map keys to Envoy (nothing
// parses them); values are our own record encoding.
impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas.unwrap_or(0))),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> bool {
        let cas = if cas == 0 { None } else { Some(cas) };
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}
