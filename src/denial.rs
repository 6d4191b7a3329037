//! Why a request was refused, and what the client is told.
//!
//! The client only ever sees the status and a generic body; the reason goes
//! to the debug log and to a per-reason counter.

/// The reasons a request is refused. Each has a counter
/// `alb_oidc.requests.denied.<metric_suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// A request arrived before any configuration was accepted.
    NotConfigured,
}

impl Denial {
    pub const ALL: [Denial; 18] = [
        Denial::MissingToken,
        Denial::Malformed,
        Denial::BadHeader,
        Denial::UntrustedSigner,
        Denial::BadClient,
        Denial::UnknownKey,
        Denial::KeyUnavailable,
        Denial::BadSignature,
        Denial::Expired,
        Denial::NotYetValid,
        Denial::BadClaims,
        Denial::BadIssuer,
        Denial::BadAudience,
        Denial::NoUsername,
        Denial::UserRefused,
        Denial::UserServiceUnavailable,
        Denial::VerifierUnavailable,
        Denial::NotConfigured,
    ];

    /// 401: no valid identity; 403: a valid identity that is refused;
    /// 503: the filter could not decide (fail closed).
    pub fn status(self) -> u32 {
        match self {
            Denial::UserRefused => 403,
            Denial::KeyUnavailable
            | Denial::UserServiceUnavailable
            | Denial::VerifierUnavailable
            | Denial::NotConfigured => 503,
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
        }
    }

    /// The response body: generic on purpose, the reason is only logged.
    pub fn body(self) -> &'static str {
        match self.status() {
            403 => "forbidden\n",
            503 => "authentication temporarily unavailable\n",
            _ => "unauthorized\n",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(Denial::MissingToken.status(), 401);
        assert_eq!(Denial::UnknownKey.status(), 401);
        assert_eq!(Denial::KeyUnavailable.status(), 503);
        assert_eq!(Denial::UserServiceUnavailable.status(), 503);
        assert_eq!(Denial::UserRefused.status(), 403);
        let mut names: Vec<_> = Denial::ALL.iter().map(|d| d.metric_suffix()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Denial::ALL.len());
    }
}
