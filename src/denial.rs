//! Why a request was refused, and what the client is told.
//!
//! The client only ever sees the status and a generic body; the reason goes
//! to the debug log and to a per-reason counter.

/// The reasons a request is refused. Each has a counter
/// `alb_oidc.requests.denied.<metric_suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::VariantArray)]
pub enum Denial {
    MissingToken,
    Malformed,
    BadHeader,
    UntrustedSigner,
    BadClient,
    UnknownKey,
    KeyUnavailable,
    BadSignature,
    Expired,
    NotYetValid,
    BadClaims,
    BadIssuer,
    BadAudience,
    NoUsername,
    UserRefused,
    UserServiceUnavailable,
    VerifierUnavailable,
    /// The request came before any configuration was accepted (Envoy sent
    /// none yet, or only refused ones): nothing to check it against.
    NotConfigured,
    /// A verified user who does not meet a rule's requirement.
    Forbidden,
    /// An `allow: deny` rule (or `default_rule: deny`) decided the request.
    DeniedByRule,
    /// A path that cannot be read (malformed percent-encoding, an encoded
    /// NUL, not UTF-8) while route rules are configured.
    UnreadablePath,
    /// `access_token.required` and no access token came.
    AccessTokenMissing,
    /// `access_token.required` and the access token did not verify.
    AccessTokenInvalid,
    /// The IdP's key set could not be fetched, and the request needed it:
    /// `access_token.required`, or a rule that fails without the token.
    JwksUnavailable,
}

impl Denial {
    /// Every reason, in declaration order (derived, so never out of date).
    pub const ALL: &'static [Denial] = <Denial as strum::VariantArray>::VARIANTS;

    /// 400: a path no rule can be applied to; 401: no valid identity;
    /// 403: a refused identity, or a route nobody may take;
    /// 503: the filter could not decide (fail closed).
    pub fn status(self) -> u32 {
        match self {
            Denial::UnreadablePath => 400,
            Denial::UserRefused | Denial::Forbidden | Denial::DeniedByRule => 403,
            Denial::KeyUnavailable
            | Denial::UserServiceUnavailable
            | Denial::VerifierUnavailable
            | Denial::NotConfigured
            | Denial::JwksUnavailable => 503,
            _ => 401,
        }
    }

    pub fn metric_suffix(self) -> &'static str {
        match self {
            Denial::MissingToken => "missing_token",
            Denial::Malformed => "malformed",
            Denial::BadHeader => "bad_header",
            Denial::UntrustedSigner => "untrusted_signer",
            Denial::BadClient => "bad_client",
            Denial::UnknownKey => "unknown_key",
            Denial::KeyUnavailable => "key_unavailable",
            Denial::BadSignature => "bad_signature",
            Denial::Expired => "expired",
            Denial::NotYetValid => "not_yet_valid",
            Denial::BadClaims => "bad_claims",
            Denial::BadIssuer => "bad_issuer",
            Denial::BadAudience => "bad_audience",
            Denial::NoUsername => "no_username",
            Denial::UserRefused => "user_refused",
            Denial::UserServiceUnavailable => "user_service_unavailable",
            Denial::VerifierUnavailable => "verifier_unavailable",
            Denial::NotConfigured => "not_configured",
            Denial::Forbidden => "forbidden",
            Denial::DeniedByRule => "denied_by_rule",
            Denial::UnreadablePath => "unreadable_path",
            Denial::AccessTokenMissing => "access_token_missing",
            Denial::AccessTokenInvalid => "access_token_invalid",
            Denial::JwksUnavailable => "jwks_unavailable",
        }
    }

    /// The response body: generic on purpose, the reason is only logged.
    pub fn body(self) -> &'static str {
        match self.status() {
            400 => "bad request\n",
            403 => "forbidden\n",
            503 => "authentication temporarily unavailable\n",
            _ => "unauthorized\n",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason's status and counter name, written out: the contract
    /// with dashboards (docs/filter-contract.md).
    const EXPECTED: [(Denial, u32, &str); 24] = [
        (Denial::MissingToken, 401, "missing_token"),
        (Denial::Malformed, 401, "malformed"),
        (Denial::BadHeader, 401, "bad_header"),
        (Denial::UntrustedSigner, 401, "untrusted_signer"),
        (Denial::BadClient, 401, "bad_client"),
        (Denial::UnknownKey, 401, "unknown_key"),
        (Denial::KeyUnavailable, 503, "key_unavailable"),
        (Denial::BadSignature, 401, "bad_signature"),
        (Denial::Expired, 401, "expired"),
        (Denial::NotYetValid, 401, "not_yet_valid"),
        (Denial::BadClaims, 401, "bad_claims"),
        (Denial::BadIssuer, 401, "bad_issuer"),
        (Denial::BadAudience, 401, "bad_audience"),
        (Denial::NoUsername, 401, "no_username"),
        (Denial::UserRefused, 403, "user_refused"),
        (
            Denial::UserServiceUnavailable,
            503,
            "user_service_unavailable",
        ),
        (Denial::VerifierUnavailable, 503, "verifier_unavailable"),
        (Denial::NotConfigured, 503, "not_configured"),
        (Denial::Forbidden, 403, "forbidden"),
        (Denial::DeniedByRule, 403, "denied_by_rule"),
        (Denial::UnreadablePath, 400, "unreadable_path"),
        (Denial::AccessTokenMissing, 401, "access_token_missing"),
        (Denial::AccessTokenInvalid, 401, "access_token_invalid"),
        (Denial::JwksUnavailable, 503, "jwks_unavailable"),
    ];

    #[test]
    fn statuses_and_metric_names() {
        assert_eq!(Denial::ALL, EXPECTED.map(|(d, _, _)| d));
        for (i, denial) in Denial::ALL.iter().enumerate() {
            // The host indexes its counter ids by discriminant.
            assert_eq!(*denial as usize, i, "{denial:?}");
        }
        for (denial, status, suffix) in EXPECTED {
            assert_eq!(denial.status(), status, "{denial:?}");
            assert_eq!(denial.metric_suffix(), suffix, "{denial:?}");
        }
    }

    #[test]
    fn bodies_say_nothing_of_the_reason() {
        assert_eq!(Denial::Expired.body(), "unauthorized\n");
        assert_eq!(Denial::UserRefused.body(), "forbidden\n");
        assert_eq!(Denial::Forbidden.body(), "forbidden\n");
        assert_eq!(Denial::UnreadablePath.body(), "bad request\n");
        assert_eq!(
            Denial::NotConfigured.body(),
            "authentication temporarily unavailable\n"
        );
    }
}
