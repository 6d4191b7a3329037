//! Replays every saved fuzz input through the fuzz targets' own code paths
//! (the test kit's `harness`, which the cargo-fuzz targets call), so a crash
//! found once stays fixed: `tests/regressions/<target>/*` (crash inputs) and
//! `fuzz/seeds/<target>/*` (the seed corpora).

// Test code throughout (helpers included, which clippy's test detection
// does not see as such): panicking on a broken invariant is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc_testkit::harness;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every input of `<dir>/<name>/` for each dir; fails
/// naming every input that panicked. Returns how many inputs ran.
fn replay(dirs: &[&str], name: &str, target: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    let mut failed = Vec::new();
    for dir in dirs {
        for file in inputs(&root.join(dir).join(name)) {
            let data = std::fs::read(&file).unwrap();
            ran += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "{name}: panicked on {failed:#?}");
    ran
}

const DIRS: [&str; 2] = ["tests/regressions", "fuzz/seeds"];

#[test]
fn token() {
    assert!(replay(&DIRS, "token", harness::token_target) > 0);
}

#[test]
fn config() {
    assert!(replay(&DIRS, "config", harness::config_target) > 0);
}

#[test]
fn exempt_paths() {
    assert!(replay(&DIRS, "exempt_paths", harness::exempt_paths_target) > 0);
}

#[test]
fn pem_key() {
    assert!(replay(&DIRS, "pem_key", harness::pem_key_target) > 0);
}

#[test]
fn grpc_answer() {
    assert!(replay(&DIRS, "grpc_answer", harness::grpc_answer_target) > 0);
}

#[test]
fn b64() {
    assert!(replay(&DIRS, "b64", harness::b64_target) > 0);
}

#[test]
fn header_pairs() {
    assert!(replay(&DIRS, "header_pairs", harness::header_pairs_target) > 0);
}

/// The token seeds do reach the signature check: the ALB-style seed
/// verifies with the seeded key, so fuzzing explores past it.
#[test]
fn token_seed_verifies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (seed, verified) in [
        ("alb_valid", true),
        ("alb_unpadded", true),
        ("nbf_aud", true),
        ("expired", false),
        ("hs256", false),
    ] {
        let raw = std::fs::read_to_string(root.join("fuzz/seeds/token").join(seed)).unwrap();
        let step = harness::strict_check(&raw);
        assert_eq!(
            matches!(step, alb_oidc::engine::TokenStep::Verified { .. }),
            verified,
            "{seed}: {step:?}"
        );
    }
}

/// Found by fuzzing, fixed: `ExemptPaths::is_exempt` used to let an encoded
/// `;` (`%3B`) and the non-standard `%uXXXX` escapes through, so
/// `/static/..%3b/admin` and `/static/%u002e%u002e/admin` were exempt under
/// `/static/*`; an upstream that percent-decodes before stripping path
/// parameters, or decodes `%u002e` (IIS, old Jetty), resolves them to
/// `/admin`. Inputs: tests/regressions/known/exempt_paths/.
#[test]
fn exempt_paths_known() {
    assert!(
        replay(
            &["tests/regressions/known"],
            "exempt_paths",
            harness::exempt_paths_target
        ) > 0
    );
}

#[test]
fn jwks() {
    assert!(replay(&DIRS, "jwks", harness::jwks_target) > 0);
}

#[test]
fn access_token() {
    assert!(replay(&DIRS, "access_token", harness::access_token_target) > 0);
}

/// The access-token seeds reach as far as they are meant to: the valid ones
/// through the signature, each refusal at its own check.
#[test]
fn access_token_seeds_reach_their_check() {
    use alb_oidc::access_token::AccessTokenError as E;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/access_token");
    let read = |seed: &str| std::fs::read_to_string(root.join(seed)).unwrap();
    for seed in ["rs256", "rs384", "rs512", "es256", "es384", "scp_array"] {
        let t =
            harness::access_token_verify(&read(seed)).unwrap_or_else(|e| panic!("{seed}: {e:?}"));
        assert_eq!(t.subject, harness::ACCESS_SUB, "{seed}");
    }
    for (seed, error) in [
        ("wrong_sub", E::WrongSubject),
        ("unknown_kid", E::UnknownKey),
        ("crit", E::BadHeader),
        ("hs256_public_key", E::UnsupportedAlgorithm),
        ("es256_der", E::BadSignature),
    ] {
        assert_eq!(
            harness::access_token_verify(&read(seed)).err(),
            Some(error),
            "{seed}"
        );
    }
    assert!(harness::access_token_verify(&read("alg_none")).is_err());
}

/// The key-set seeds: the target's own set, and one of each skip and refusal.
#[test]
fn jwks_seeds_parse_as_meant() {
    use alb_oidc::access_token::{Jwks, JwksError};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/jwks");
    let parse = |seed: &str| Jwks::parse(&std::fs::read(root.join(seed)).unwrap());
    let kids = |seed: &str| -> Vec<String> {
        let jwks = parse(seed).unwrap_or_else(|e| panic!("{seed}: {e:?}"));
        jwks.keys().iter().map(|k| k.kid.clone()).collect()
    };
    assert_eq!(kids("fixture"), ["rsa-a", "ec-256", "ec-384"]);
    assert_eq!(kids("enc_use"), ["ec-256"]);
    assert_eq!(kids("no_kid"), ["ec-256"]);
    assert_eq!(kids("oct_key"), Vec::<String>::new());
    assert_eq!(kids("empty"), Vec::<String>::new());
    assert_eq!(
        parse("rsa_alg").unwrap().keys()[0].alg,
        Some(alb_oidc::access_token::Algorithm::Rs256)
    );
    assert_eq!(
        parse("duplicate_kid"),
        Err(JwksError::DuplicateKid { index: 1 })
    );
}
