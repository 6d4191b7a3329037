#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alb_oidc_testkit::harness::access_token_target(data));
