//! Fuzzing harness for alb-oidc: see `harness.rs` (also replayed by the
//! root crate's `tests/fuzz_regressions.rs`).

pub mod harness;
