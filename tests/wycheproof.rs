//! Google's Wycheproof ECDSA P-256/SHA-256 vectors against every path a JWS
//! signature can take:
//!
//! - the P1363 (raw `r || s`, as in a JWS) vectors through the pure-Rust
//!   verifier (`verify::verify_rust`, the hand-written fixed-base arithmetic)
//!   and through `p256`'s own verifier;
//! - the raw-to-DER conversion that feeds Envoy's native verifier: every valid
//!   signature must come out as exactly the DER the DER vectors list for it,
//!   and what cannot verify must not be sent.
//!
//! The verifier is strict: `acceptable` vectors must be refused like
//! `invalid` ones. Each test prints its counts (`cargo test -- --nocapture`).

// Test code throughout (helpers included): a broken vector file is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::keys::PublicKey;
use alb_oidc::verify::{jws_signature_to_der, verify_rust};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use std::collections::{BTreeMap, HashMap};
use wycheproof::ecdsa::{TestGroup, TestName, TestSet};
use wycheproof::TestResult;

/// Expected answer of a vector for this strict verifier.
fn must_verify(result: TestResult) -> bool {
    match result {
        TestResult::Valid => true,
        TestResult::Invalid | TestResult::Acceptable => false,
    }
}

fn groups(name: TestName) -> Vec<TestGroup> {
    let set = TestSet::load(name).unwrap();
    assert!(
        !set.test_groups.is_empty(),
        "{name:?}: no test groups in the vector set"
    );
    set.test_groups
}

/// Counts of vectors per expected result, for the report.
#[derive(Default, Debug)]
struct Counts(BTreeMap<&'static str, usize>);

impl Counts {
    fn add(&mut self, result: TestResult) {
        let name = match result {
            TestResult::Valid => "valid",
            TestResult::Invalid => "invalid",
            TestResult::Acceptable => "acceptable",
        };
        *self.0.entry(name).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.0.values().sum()
    }
}

/// Runs `verify` on every P1363 vector; returns the failures and the counts.
fn run_p1363(verify: impl Fn(&TestGroup, &[u8], &[u8]) -> bool) -> (Vec<String>, Counts) {
    let mut wrong = Vec::new();
    let mut counts = Counts::default();
    for group in groups(TestName::EcdsaSecp256r1Sha256P1363) {
        for test in &group.tests {
            counts.add(test.result);
            let expected = must_verify(test.result);
            let got = verify(&group, &test.msg, &test.sig);
            if got != expected {
                wrong.push(format!(
                    "tcId {} ({:?}, {}): verified {got}, expected {expected}",
                    test.tc_id, test.result, test.comment
                ));
            }
        }
    }
    (wrong, counts)
}

/// The P1363 set of wycheproof 0.7.0, by expected result: a changed count
/// means the vectors changed (or were not all run), and is worth a look.
const P1363_COUNTS: [(&str, usize); 2] = [("invalid", 89), ("valid", 173)];
/// Likewise for the DER set.
const DER_COUNTS: [(&str, usize); 2] = [("invalid", 310), ("valid", 174)];

fn report(path: &str, wrong: &[String], counts: &Counts) {
    println!("wycheproof P-256/SHA-256 {path}: {:?}", counts.0);
    assert_eq!(
        counts.0,
        BTreeMap::from(P1363_COUNTS),
        "{path}: vector counts"
    );
    assert!(
        wrong.is_empty(),
        "{path}: {} of {} vectors wrong:\n{}",
        wrong.len(),
        counts.total(),
        wrong.join("\n")
    );
}

#[test]
fn p1363_vectors_through_the_fixed_base_verifier() {
    let (wrong, counts) = run_p1363(|group, msg, sig| {
        // A key the filter cannot parse cannot verify anything.
        PublicKey::from_spki_der(&group.der).is_ok_and(|key| verify_rust(&key, msg, sig))
    });
    report("fixed-base (verify_rust)", &wrong, &counts);
}

#[test]
fn p1363_vectors_through_p256() {
    let (wrong, counts) = run_p1363(|group, msg, sig| {
        let Ok(key) = VerifyingKey::from_sec1_bytes(&group.key.key) else {
            return false;
        };
        Signature::from_slice(sig).is_ok_and(|sig| key.verify(msg, &sig).is_ok())
    });
    report("p256", &wrong, &counts);
}

/// `(r, s)` of a DER vector the set calls valid, read with nothing but the
/// DER rules (a valid vector is canonical): 32-byte big-endian each.
fn canonical_der_scalars(der: &[u8]) -> ([u8; 32], [u8; 32]) {
    fn integer(bytes: &[u8]) -> ([u8; 32], &[u8]) {
        assert_eq!(bytes[0], 0x02, "INTEGER tag");
        let len = usize::from(bytes[1]);
        let value = &bytes[2..2 + len];
        let value = value.strip_prefix(&[0]).unwrap_or(value);
        let mut out = [0u8; 32];
        out[32 - value.len()..].copy_from_slice(value);
        (out, &bytes[2 + len..])
    }
    assert_eq!(der[0], 0x30, "SEQUENCE tag");
    assert_eq!(usize::from(der[1]), der.len() - 2, "SEQUENCE length");
    let (r, rest) = integer(&der[2..]);
    let (s, rest) = integer(rest);
    assert!(rest.is_empty());
    (r, s)
}

/// Public key (SPKI DER), message and raw `r || s` of one signature.
type SignatureOf = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The DER vector set's valid signatures, by key, message and `r || s`.
fn valid_der_signatures() -> (HashMap<SignatureOf, Vec<u8>>, Counts) {
    let mut by_raw = HashMap::new();
    let mut counts = Counts::default();
    for group in groups(TestName::EcdsaSecp256r1Sha256) {
        for test in &group.tests {
            counts.add(test.result);
            if test.result == TestResult::Valid {
                let (r, s) = canonical_der_scalars(&test.sig);
                let raw = [r, s].concat();
                by_raw.insert(
                    (group.der.to_vec(), test.msg.to_vec(), raw),
                    test.sig.to_vec(),
                );
            }
        }
    }
    (by_raw, counts)
}

#[test]
fn der_conversion_gives_the_vectors_der() {
    let (der_of, der_counts) = valid_der_signatures();
    println!("wycheproof P-256/SHA-256 DER set: {:?}", der_counts.0);
    assert_eq!(der_counts.0, BTreeMap::from(DER_COUNTS));
    let mut wrong = Vec::new();
    // Every valid DER vector, taken to r || s and back.
    for ((_, _, raw), der) in &der_of {
        if jws_signature_to_der(raw).as_deref() != Some(der.as_slice()) {
            wrong.push(format!("DER vector {}: not reproduced", hex(der)));
        }
    }
    // Every valid P1363 vector: the DER sent to Envoy is the DER set's own
    // encoding of that signature.
    let mut matched = 0;
    let mut counts = Counts::default();
    for group in groups(TestName::EcdsaSecp256r1Sha256P1363) {
        for test in &group.tests {
            if test.result != TestResult::Valid {
                continue;
            }
            counts.add(test.result);
            let produced = jws_signature_to_der(&test.sig);
            let listed = der_of.get(&(group.der.to_vec(), test.msg.to_vec(), test.sig.to_vec()));
            match (produced, listed) {
                (None, _) => wrong.push(format!("tcId {}: valid, not converted", test.tc_id)),
                (Some(der), Some(listed)) if der != *listed => wrong.push(format!(
                    "tcId {}: DER {} differs from the DER set's {}",
                    test.tc_id,
                    hex(&der),
                    hex(listed)
                )),
                (Some(_), Some(_)) => matched += 1,
                // Not in the DER set: the encoding must still be what the
                // DER rules alone give.
                (Some(der), None) => {
                    let (r, s) = canonical_der_scalars(&der);
                    if [r, s].concat() != test.sig.as_slice() {
                        wrong.push(format!(
                            "tcId {}: DER {} is not r || s",
                            test.tc_id,
                            hex(&der)
                        ));
                    }
                }
            }
        }
    }
    println!(
        "valid P1363 vectors converted: {}, of which found in the DER set: {matched}",
        counts.total()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every valid P1363 signature of this vector set is also in the DER set.
    assert_eq!((counts.total(), matched), (173, 173));
}

/// What the conversion must refuse: anything that is not 64 bytes of two
/// scalars in `[1, n-1]`. What it lets through must still fail under a DER
/// verifier (p256's, standing in for Envoy's), so nothing that should be
/// refused is refused only thanks to the conversion's caller.
#[test]
fn der_conversion_refuses_what_cannot_verify() {
    let n_minus_1 = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550");
    let in_range = |x: &[u8]| x.iter().any(|&b| b != 0) && x <= n_minus_1.as_slice();
    let mut wrong = Vec::new();
    let (mut refused, mut sent) = (0, 0);
    for group in groups(TestName::EcdsaSecp256r1Sha256P1363) {
        let Ok(key) = VerifyingKey::from_sec1_bytes(&group.key.key) else {
            continue;
        };
        for test in &group.tests {
            let sig = test.sig.as_slice();
            let shaped = sig.len() == 64 && in_range(&sig[..32]) && in_range(&sig[32..]);
            match jws_signature_to_der(sig) {
                None if shaped => wrong.push(format!("tcId {}: well-formed, refused", test.tc_id)),
                None => refused += 1,
                Some(_) if !shaped => wrong.push(format!(
                    "tcId {} ({}): converted a signature that is not two scalars",
                    test.tc_id, test.comment
                )),
                Some(der) => {
                    sent += 1;
                    let verified =
                        Signature::from_der(&der).is_ok_and(|s| key.verify(&test.msg, &s).is_ok());
                    if verified != must_verify(test.result) {
                        wrong.push(format!(
                            "tcId {} ({:?}): DER verified {verified}",
                            test.tc_id, test.result
                        ));
                    }
                }
            }
        }
    }
    println!("P1363 vectors refused by the conversion: {refused}, sent on as DER: {sent}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // 71 are not two in-range scalars (wrong size, 0, n, p, ...); of the 191
    // sent, the 173 valid ones verify and the 18 others do not.
    assert_eq!((refused, sent), (71, 191));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
