//! `bench-mint`: the tokens the benchmarks send must be what the ALB sends,
//! signed by the key directory's current key, each one distinct (a repeated
//! token would turn a cold variant into a hot one). Also the reason `cargo
//! test` builds the binary that `make test`'s bench smoke run uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use alb_oidc_testkit::keys::verifying_key_from_pem;
use alb_sim::keys::KeyDir;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;

const BIN: &str = env!("CARGO_BIN_EXE_bench-mint");

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bench-mint-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mint(dir: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let status = Command::new(BIN)
        .args([
            "--dir",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--count", "5", "--threads", "2"])
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success(), "bench-mint {extra:?}: {status}");
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn decode(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .unwrap()
}

/// Header `kid` and a signature over `header.payload` as written, by `kid`'s key.
fn check_signed(token: &str, keys: &KeyDir, kid: &str) {
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&decode(token.split('.').next().unwrap())).unwrap();
    assert_eq!(header["kid"], kid, "{token}");
    assert_eq!(header["alg"], "ES256", "{token}");
    let key = verifying_key_from_pem(&keys.public_pem(kid).unwrap().unwrap()).unwrap();
    let sig = Signature::from_slice(&decode(sig)).unwrap();
    key.verify(signed.as_bytes(), &sig).unwrap();
}

#[test]
fn padded_tokens_are_distinct_and_signed_by_the_current_key() {
    let tmp = TempDir::new("padded");
    let keys = KeyDir::new(tmp.0.join("keys"));
    let kid = keys.generate(1).unwrap().remove(0);
    let tokens = mint(keys.path(), &tmp.0.join("tokens"), &[]);
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 5);
    for t in &tokens {
        assert!(t.split('.').all(|s| s.len() % 4 == 0), "ALB padding: {t}");
        check_signed(t, &keys, &kid);
    }
}

#[test]
fn unpadded_tokens_carry_no_padding_and_are_signed_as_written() {
    let tmp = TempDir::new("unpadded");
    let keys = KeyDir::new(tmp.0.join("keys"));
    let kid = keys.generate(1).unwrap().remove(0);
    let tokens = mint(keys.path(), &tmp.0.join("tokens"), &["--unpadded"]);
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 5);
    for t in &tokens {
        assert!(!t.contains('='), "{t}");
        check_signed(t, &keys, &kid);
    }
}
