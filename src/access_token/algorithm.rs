//! The signature algorithms an access token may name (RFC 7518 §3), and
//! which keys each may be checked with (RFC 8725 §3.1: no algorithm
//! confusion).

/// The five algorithms IdPs sign access tokens with. `none`, `HS*` (a
/// shared secret the proxy does not have; with a public key as the secret,
/// the classic confusion attack), `PS*` and `EdDSA` are not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::VariantArray)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Es256,
    Es384,
}

/// The family of key an algorithm needs, as a JWK describes it (`kty`, `crv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
}

impl Algorithm {
    /// The algorithm a JWS `alg` (or JWK `alg`) names, exactly (case-sensitive,
    /// as RFC 7515 says); `None` for every other name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        <Algorithm as strum::VariantArray>::VARIANTS
            .iter()
            .copied()
            .find(|alg| alg.name() == name)
    }

    /// The JWS name (`RS256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
        }
    }

    /// The only kind of key this algorithm may be verified with.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512 => KeyKind::Rsa,
            Algorithm::Es256 => KeyKind::P256,
            Algorithm::Es384 => KeyKind::P384,
        }
    }

    /// The exact length of a JWS signature (raw `r || s`) for the ECDSA
    /// algorithms; `None` for RSA, whose signature is as long as the modulus.
    pub fn ecdsa_signature_len(self) -> Option<usize> {
        match self {
            Algorithm::Es256 => Some(64),
            Algorithm::Es384 => Some(96),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact() {
        for (name, alg) in [
            ("RS256", Algorithm::Rs256),
            ("RS384", Algorithm::Rs384),
            ("RS512", Algorithm::Rs512),
            ("ES256", Algorithm::Es256),
            ("ES384", Algorithm::Es384),
        ] {
            assert_eq!(Algorithm::from_name(name), Some(alg));
            assert_eq!(alg.name(), name);
        }
        for refused in [
            "none", "None", "HS256", "HS384", "HS512", "PS256", "ES512", "EdDSA", "rs256",
            "RS256 ", "",
        ] {
            assert_eq!(Algorithm::from_name(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn each_algorithm_has_one_key_kind() {
        assert_eq!(Algorithm::Rs256.key_kind(), KeyKind::Rsa);
        assert_eq!(Algorithm::Rs384.key_kind(), KeyKind::Rsa);
        assert_eq!(Algorithm::Rs512.key_kind(), KeyKind::Rsa);
        assert_eq!(Algorithm::Es256.key_kind(), KeyKind::P256);
        assert_eq!(Algorithm::Es384.key_kind(), KeyKind::P384);
        assert_eq!(Algorithm::Es256.ecdsa_signature_len(), Some(64));
        assert_eq!(Algorithm::Es384.ecdsa_signature_len(), Some(96));
        assert_eq!(Algorithm::Rs256.ecdsa_signature_len(), None);
    }
}
