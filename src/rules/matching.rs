//! What a rule matches besides the path: methods and hosts, validated at
//! load and compared without allocating.

/// A method name as configured, upper case. `GET` also matches `HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodName(String);

impl MethodName {
    /// A method token (RFC 9110 `token`), stored upper case.
    pub fn parse(name: &str) -> Result<Self, String> {
        let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!("{name:?} is not an HTTP method name"));
        }
        Ok(MethodName(name.to_ascii_uppercase()))
    }

    /// Compared case-insensitively: a lower-case `get` is still a GET to
    /// some upstream.
    pub fn matches(&self, method: &str) -> bool {
        self.0.eq_ignore_ascii_case(method)
            || (self.0 == "GET" && method.eq_ignore_ascii_case("HEAD"))
    }
}

/// A host name as configured, lower case: exact, or `*.suffix` (any depth
/// of subdomain, never the suffix itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let lower = pattern.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let (name, wildcard) = match lower.strip_prefix("*.") {
            Some(suffix) => (suffix, true),
            None => (lower, false),
        };
        let is_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || !name.split('.').all(is_label) {
            return Err(format!(
                "{pattern:?} is not a host name or \"*.\" followed by one (no port, no scheme)"
            ));
        }
        Ok(if wildcard {
            HostPattern::Subdomains(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_owned())
        })
    }

    /// `host` as `request_host` gives it.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => exact.eq_ignore_ascii_case(host),
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len()
                    && host.as_bytes()[host.len() - suffix.len()..]
                        .eq_ignore_ascii_case(suffix.as_bytes())
            }
        }
    }
}

/// The host of an `:authority`, as rules compare it: without the port and
/// without one trailing dot (case is ignored when comparing). A bracketed
/// IPv6 literal keeps its brackets.
pub fn request_host(authority: &str) -> &str {
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        let get = MethodName::parse("get").unwrap();
        assert!(get.matches("GET") && get.matches("get") && get.matches("HEAD"));
        assert!(get.matches("head"));
        assert!(!get.matches("POST") && !get.matches("GETX") && !get.matches(""));
        let head = MethodName::parse("HEAD").unwrap();
        assert!(head.matches("head") && !head.matches("GET"));
        assert!(MethodName::parse("").is_err());
        assert!(MethodName::parse("GE T").is_err());
    }

    #[test]
    fn hosts() {
        let exact = HostPattern::parse("Reports.Example.com.").unwrap();
        assert_eq!(exact, HostPattern::Exact("reports.example.com".into()));
        let any = HostPattern::parse("*.example.com").unwrap();
        for (authority, e, a) in [
            ("reports.example.com", true, true),
            ("REPORTS.example.COM:8443", true, true),
            ("reports.example.com.", true, true),
            ("reports.example.com.:80", true, true),
            ("a.b.example.com", false, true),
            ("example.com", false, false),
            ("badexample.com", false, false),
            ("reports.example.com.evil", false, false),
            ("", false, false),
        ] {
            let host = request_host(authority);
            assert_eq!(exact.matches(host), e, "{authority}");
            assert_eq!(any.matches(host), a, "{authority}");
        }
        assert_eq!(request_host("[::1]:8080"), "[::1]");
        for bad in [
            "", "*", "*.", "a:80", "http://a", "a/b", "a..b", "a.*.b", "*a.b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
