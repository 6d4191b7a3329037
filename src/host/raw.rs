//! Header and buffer reads without the SDK's panics.
//!
//! `proxy_wasm::hostcalls::get_map_value` unwraps the value as UTF-8 and
//! panics on any status it does not expect; a client sending one non-UTF-8
//! byte in a header, or Envoy answering `BadArgument` for a call response
//! without headers, would trap the VM and take the worker's traffic down.
//! This reads the bytes and treats every non-OK status as "absent".

use proxy_wasm::types::{BufferType, MapType};
use std::ptr::null_mut;

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    // The status is taken as a plain u32: a value outside the SDK's `Status`
    // enum must not become an invalid enum value.
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

/// The value of header `name` in `map`, as bytes; `None` when absent or on
/// any host error.
pub fn header_bytes(map: MapType, name: &str) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer it allocated through the SDK's
    // exported allocator (`proxy_on_memory_allocate`, i.e. the global
    // allocator) and its length; ownership passes to us, exactly as in the
    // SDK's own `get_map_value_bytes`.
    unsafe {
        let status =
            proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size);
        if status != 0 {
            return None;
        }
        if data.is_null() {
            return Some(Vec::new());
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// Every header of `map`, serialized (see `header_map::parse_pairs`);
/// `None` on any host error.
pub fn header_pairs(map: MapType) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as in `header_bytes`: host-allocated through our allocator,
    // ownership passes to us.
    unsafe {
        if proxy_get_header_map_pairs(map as u32, &mut data, &mut size) != 0 {
            return None;
        }
        if data.is_null() {
            return Some(Vec::new());
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// A header value that must be text (tokens, paths, statuses): non-UTF-8
/// values read as `Err(())` so callers can refuse them.
pub fn header_text(map: MapType, name: &str) -> Option<Result<String, ()>> {
    header_bytes(map, name).map(|bytes| String::from_utf8(bytes).map_err(|_| ()))
}

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
}

/// Up to `max` bytes of a host buffer (call response body, gRPC message,
/// plugin configuration); `None` when absent or on any host error.
pub fn buffer_bytes(buffer: BufferType, max: usize) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as in `header_bytes`: host-allocated through our allocator,
    // ownership passes to us.
    unsafe {
        let status = proxy_get_buffer_bytes(buffer as u32, 0, max, &mut data, &mut size);
        if status != 0 {
            return None;
        }
        if data.is_null() {
            return Some(Vec::new());
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
}

// Host-call audit for the header calls below: names are configured names
// (validated as lower-case HTTP tokens at load) or names read from the request
// itself; values injected are checked by `identity::is_safe_header_value`
// first. Envoy parses neither beyond storing them.

/// Adds a request header; a host refusal is ignored (never a panic).
pub fn add_request_header(name: &str, value: &str) {
    // SAFETY: pointers and lengths of live Rust strings, read by the host
    // during the call only.
    unsafe {
        proxy_add_header_map_value(
            MapType::HttpRequestHeaders as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        );
    }
}

/// Removes every value of a request header named by raw bytes (a name read
/// from the request itself); errors are ignored.
pub fn remove_request_header_bytes(name: &[u8]) {
    // SAFETY: as above.
    unsafe {
        proxy_remove_header_map_value(
            MapType::HttpRequestHeaders as u32,
            name.as_ptr(),
            name.len(),
        );
    }
}

#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// Sets the property `name` of the current stream (Envoy keeps it as
/// filter state `wasm.<name>`, for access logs). The SDK's `set_property`
/// panics on any status but Ok (NotFound when the stream is gone), which
/// would trap the VM; here a refusal is ignored.
pub fn set_stream_property(name: &str, value: &[u8]) {
    // SAFETY: pointers and lengths of live Rust values, read by the host
    // during the call only. A one-part path is the name itself (the SDK
    // joins parts with NUL bytes, which no format string could name).
    unsafe {
        proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len());
    }
}
