#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alb_oidc_testkit::harness::pem_key_target(data));
