//! Why an access token was not accepted. The flow counts every one as
//! `access_token.invalid` (401 when `required`, otherwise the token counts
//! as absent); the reason goes to the debug log and to a per-reason counter.

/// The reasons an access token is refused. Each has a counter suffix
/// (`access_token.invalid.<metric_suffix>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::VariantArray, thiserror::Error)]
pub enum AccessTokenError {
    /// Not a JWT at all: not three dot-separated segments (Google's and
    /// some other IdPs' access tokens are opaque strings).
    #[error("not a JWT (opaque access token)")]
    Opaque,
    /// Three segments, but not a strict compact JWS: too long, padded or
    /// non-canonical base64url, not JSON objects, duplicate keys.
    #[error("malformed JWS")]
    Malformed,
    /// A header the verifier must not accept: `crit`, `b64` other than true.
    #[error("refused JWS header (crit or b64)")]
    BadHeader,
    /// `alg` is not one of RS256, RS384, RS512, ES256, ES384 (`none`, `HS*`, ...).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// `alg` is supported but not in `access_token.algorithms`.
    #[error("algorithm not allowed by the configuration")]
    AlgorithmNotAllowed,
    /// No `kid` (or not a usable one) in the header.
    #[error("no key id")]
    MissingKid,
    /// No key with this `kid` in the key set.
    #[error("unknown key id")]
    UnknownKey,
    /// The key `kid` selects does not fit `alg`: another key type or curve,
    /// or the JWK's own `alg` differs (algorithm confusion).
    #[error("key does not fit the algorithm")]
    KeyMismatch,
    /// Wrong length (a DER-encoded ECDSA signature), or it does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The configured signature backend is not available on this host.
    #[error("signature verifier unavailable")]
    VerifierUnavailable,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    /// `exp` missing, or `exp`/`nbf` not numbers.
    #[error("bad lifetime claims")]
    BadClaims,
    #[error("wrong issuer")]
    BadIssuer,
    /// `token_use` present and not `access` (a Cognito ID token).
    #[error("not an access token")]
    BadTokenUse,
    #[error("wrong audience")]
    BadAudience,
    /// The `client_id_claim` claim is not one of `client_ids`.
    #[error("wrong client")]
    BadClient,
    /// `subject_claim` does not equal the data token's `sub`: not the same login.
    #[error("subject differs from the data token's")]
    WrongSubject,
}

impl AccessTokenError {
    /// Every reason, in declaration order (derived, so never out of date).
    pub const ALL: &'static [AccessTokenError] =
        <AccessTokenError as strum::VariantArray>::VARIANTS;

    pub fn metric_suffix(self) -> &'static str {
        match self {
            AccessTokenError::Opaque => "opaque",
            AccessTokenError::Malformed => "malformed",
            AccessTokenError::BadHeader => "bad_header",
            AccessTokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            AccessTokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
            AccessTokenError::MissingKid => "missing_kid",
            AccessTokenError::UnknownKey => "unknown_key",
            AccessTokenError::KeyMismatch => "key_mismatch",
            AccessTokenError::BadSignature => "bad_signature",
            AccessTokenError::VerifierUnavailable => "verifier_unavailable",
            AccessTokenError::Expired => "expired",
            AccessTokenError::NotYetValid => "not_yet_valid",
            AccessTokenError::BadClaims => "bad_claims",
            AccessTokenError::BadIssuer => "bad_issuer",
            AccessTokenError::BadTokenUse => "bad_token_use",
            AccessTokenError::BadAudience => "bad_audience",
            AccessTokenError::BadClient => "bad_client",
            AccessTokenError::WrongSubject => "wrong_subject",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason's counter name, written out: the contract with dashboards.
    const EXPECTED: [(AccessTokenError, &str); 18] = [
        (AccessTokenError::Opaque, "opaque"),
        (AccessTokenError::Malformed, "malformed"),
        (AccessTokenError::BadHeader, "bad_header"),
        (
            AccessTokenError::UnsupportedAlgorithm,
            "unsupported_algorithm",
        ),
        (
            AccessTokenError::AlgorithmNotAllowed,
            "algorithm_not_allowed",
        ),
        (AccessTokenError::MissingKid, "missing_kid"),
        (AccessTokenError::UnknownKey, "unknown_key"),
        (AccessTokenError::KeyMismatch, "key_mismatch"),
        (AccessTokenError::BadSignature, "bad_signature"),
        (
            AccessTokenError::VerifierUnavailable,
            "verifier_unavailable",
        ),
        (AccessTokenError::Expired, "expired"),
        (AccessTokenError::NotYetValid, "not_yet_valid"),
        (AccessTokenError::BadClaims, "bad_claims"),
        (AccessTokenError::BadIssuer, "bad_issuer"),
        (AccessTokenError::BadTokenUse, "bad_token_use"),
        (AccessTokenError::BadAudience, "bad_audience"),
        (AccessTokenError::BadClient, "bad_client"),
        (AccessTokenError::WrongSubject, "wrong_subject"),
    ];

    #[test]
    fn metric_names() {
        assert_eq!(AccessTokenError::ALL, EXPECTED.map(|(e, _)| e));
        for (i, error) in AccessTokenError::ALL.iter().enumerate() {
            // A host can index counter ids by discriminant, as for Denial.
            assert_eq!(*error as usize, i, "{error:?}");
        }
        for (error, suffix) in EXPECTED {
            assert_eq!(error.metric_suffix(), suffix, "{error:?}");
        }
    }
}
