//! ES256 verification with a precomputed table for the public key.
//!
//! Why: an ALB region signs with a handful of keys, each used for millions of
//! verifications, yet a generic verifier treats every key as new: it computes
//! `u1·G + u2·Q` with a joint wNAF (about 256 doublings plus additions). With
//! a fixed-base table for `Q`, built once per key and worker (the same radix-16
//! comb `p256` uses for `G`: 33 windows of `[1..8]·2^(8i)·Q`), the product
//! needs no doublings beyond four, only ~130 additions; measured in
//! `make bench` as about 2.5× faster inside Envoy's V8 than
//! `p256::ecdsa::VerifyingKey::verify`.
//!
//! Only public data is involved (key, message, signature), so variable-time
//! arithmetic is sound. The checks are exactly ECDSA's (SEC 1 §4.1.4): `r` and
//! `s` in `[1, n-1]`, `z` the SHA-256 digest reduced mod `n`, `R ≠ O`, and
//! `x(R) mod n == r`. High `s` is accepted, as `p256` and BoringSSL accept it.
//! Property tests compare every answer with `p256`'s own verifier; the
//! Wycheproof vectors (`tests/wycheproof.rs`) hold the edge cases random
//! signatures never reach (such as `x(R) ≥ n`).

use p256::ecdsa::Signature;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::{FieldBytes, NistP256, ProjectivePoint, Scalar};
use primeorder::{LookupTable, Radix16Decomposition, Radix16Digits};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Windows: one per scalar byte, plus one for the carry digit.
const WINDOWS: usize = 33;

/// `[1..8]·2^(8i)·P` for `i` in `0..33`: any 256-bit multiple of `P` in
/// at most 66 additions and 4 doublings.
#[derive(Clone)]
pub struct FixedBaseTable {
    windows: Box<[LookupTable<ProjectivePoint>; WINDOWS]>,
}

impl std::fmt::Debug for FixedBaseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedBaseTable")
    }
}

impl FixedBaseTable {
    /// Costs about one scalar multiplication; about 25 KB.
    pub fn new(point: ProjectivePoint) -> Self {
        let mut windows = Box::new([LookupTable::<ProjectivePoint>::default(); WINDOWS]);
        let mut base = point;
        for window in windows.iter_mut() {
            *window = LookupTable::new(base);
            for _ in 0..8 {
                base = base.double();
            }
        }
        FixedBaseTable { windows }
    }
}

/// The generator's table, built on first use in each VM.
static GENERATOR: LazyLock<FixedBaseTable> =
    LazyLock::new(|| FixedBaseTable::new(ProjectivePoint::GENERATOR));

type Digits = Radix16Decomposition<Radix16Digits<NistP256>>;

/// `a·G + b·Q` in variable time, both from tables, sharing the final doublings.
fn lincomb(a: &Scalar, q_table: &FixedBaseTable, b: &Scalar) -> ProjectivePoint {
    let pairs: [(&FixedBaseTable, Digits); 2] =
        [(&GENERATOR, Digits::new(a)), (q_table, Digits::new(b))];
    let last = WINDOWS - 1;
    // `even` collects digits 0, 2, 4, ... (weights 2^(8i)); `odd` digits 1, 3,
    // 5, ... (weights 2^(8i+4)), doubled four times at the end.
    let mut even = ProjectivePoint::IDENTITY;
    let mut odd = ProjectivePoint::IDENTITY;
    for (table, digits) in &pairs {
        add_digit(&mut even, &table.windows[last], digits[2 * last]);
    }
    for i in (0..last).rev() {
        for (table, digits) in &pairs {
            add_digit(&mut odd, &table.windows[i], digits[2 * i + 1]);
            add_digit(&mut even, &table.windows[i], digits[2 * i]);
        }
    }
    for _ in 0..4 {
        odd = odd.double();
    }
    even + odd
}

fn add_digit(acc: &mut ProjectivePoint, window: &LookupTable<ProjectivePoint>, digit: i8) {
    if digit != 0 {
        *acc += window.select_vartime(digit);
    }
}

/// Verifies a raw `r || s` ES256 signature over `message` with the key whose
/// table is `q_table`.
pub fn verify(q_table: &FixedBaseTable, message: &[u8], signature: &[u8]) -> bool {
    // from_slice refuses r or s outside [1, n-1].
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    let (r, s) = signature.split_scalars();
    let digest: FieldBytes = Sha256::digest(message);
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&digest);
    let Some(s_inv) = Option::<Scalar>::from(s.invert_vartime()) else {
        return false;
    };
    let u1 = z * s_inv;
    let u2 = *r * s_inv;
    let point = lincomb(&u1, q_table, &u2);
    if bool::from(point.is_identity()) {
        return false;
    }
    let x = point.to_affine().x();
    <Scalar as Reduce<FieldBytes>>::reduce(&x) == *r
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{SigningKey, VerifyingKey};
    use proptest::prelude::*;

    fn key(seed: u64) -> SigningKey {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.wrapping_add(1).to_be_bytes());
        bytes[31] = 1;
        SigningKey::from_slice(&bytes).unwrap()
    }

    fn table_of(vk: &VerifyingKey) -> FixedBaseTable {
        FixedBaseTable::new(vk.as_affine().into())
    }

    #[test]
    fn table_multiplies_like_the_curve() {
        let vk = *key(7).verifying_key();
        let q: ProjectivePoint = vk.as_affine().into();
        let table = table_of(&vk);
        for k in [1u64, 2, 15, 16, 255, 256, 0xdead_beef] {
            let k = Scalar::from(k);
            let expected = ProjectivePoint::GENERATOR * k + q * Scalar::from(3u64);
            assert_eq!(lincomb(&k, &table, &Scalar::from(3u64)), expected);
        }
        let minus_one = -Scalar::ONE;
        assert_eq!(
            lincomb(&minus_one, &table, &minus_one),
            -(ProjectivePoint::GENERATOR + q)
        );
        assert!(bool::from(
            lincomb(&Scalar::ZERO, &table, &Scalar::ZERO).is_identity()
        ));
    }

    #[test]
    fn refuses_what_p256_refuses() {
        let sk = key(1);
        let table = table_of(sk.verifying_key());
        let sig: Signature = sk.sign(b"header.payload");
        let raw = sig.to_bytes();
        assert!(verify(&table, b"header.payload", &raw));
        assert!(!verify(&table, b"header.payloaD", &raw));
        assert!(!verify(&table, b"header.payload", &raw[..63]));
        assert!(!verify(&table, b"header.payload", &[0u8; 64]));
        assert!(!verify(&table, b"header.payload", &[0xffu8; 64]));
        let other = table_of(key(2).verifying_key());
        assert!(!verify(&other, b"header.payload", &raw));
        // High s (n - s) verifies, as it does with p256 and BoringSSL.
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(*r, -*s).unwrap();
        assert!(sk.verifying_key().verify(b"header.payload", &high).is_ok());
        assert!(verify(&table, b"header.payload", &high.to_bytes()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn agrees_with_p256(seed in any::<u64>(), msg in proptest::collection::vec(any::<u8>(), 0..64),
                            flip in any::<Option<(u8, u8)>>()) {
            let sk = key(seed);
            let vk = *sk.verifying_key();
            let table = table_of(&vk);
            let sig: Signature = sk.sign(&msg);
            let mut raw = sig.to_bytes().to_vec();
            if let Some((at, bit)) = flip {
                raw[usize::from(at) % 64] ^= 1 << (bit % 8);
            }
            let expected = Signature::from_slice(&raw).is_ok_and(|s| vk.verify(&msg, &s).is_ok());
            prop_assert_eq!(verify(&table, &msg, &raw), expected);
        }
    }
}
