//! Exempt paths: requests that skip authentication (health checks, static
//! assets). Matching is deliberately conservative: when in doubt a path is
//! *not* exempt, because the cost of a false "not exempt" is a 401 on a
//! health check while the cost of a false "exempt" is an unauthenticated
//! request reaching the application.

/// Exempt path patterns: exact paths and `/prefix/*` prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExemptPaths {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl ExemptPaths {
    /// Validates the patterns. On error: the index of the bad entry and why.
    pub fn new(patterns: &[String]) -> Result<Self, (usize, String)> {
        let mut paths = ExemptPaths::default();
        for (i, pattern) in patterns.iter().enumerate() {
            match PathPattern::parse(pattern).map_err(|msg| (i, msg))? {
                PathPattern::Prefix(body) => paths.prefixes.push(body),
                PathPattern::Exact(body) => paths.exact.push(body),
            }
        }
        Ok(paths)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The patterns, for the leading `anyone` rule they make.
    pub fn patterns(&self) -> Vec<PathPattern> {
        let exact = self.exact.iter().cloned().map(PathPattern::Exact);
        let prefixes = self.prefixes.iter().cloned().map(PathPattern::Prefix);
        exact.chain(prefixes).collect()
    }

    /// Whether the request `:path` (query string included or not) is exempt.
    pub fn is_exempt(&self, request_path: &str) -> bool {
        if self.is_empty() || is_ambiguous(request_path) {
            return false;
        }
        let path = match request_path.find('?') {
            Some(end) => &request_path[..end],
            None => request_path,
        };
        self.exact.iter().any(|e| e == path)
            || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// One path pattern, as `exempt_paths` and a rule's `paths` write it: an
/// exact path, or a prefix (`/static/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    Exact(String),
    /// The prefix without its `*`.
    Prefix(String),
}

impl PathPattern {
    /// Validates one pattern; the error says why it is refused.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if !pattern.starts_with('/') {
            return Err(format!("{pattern:?} must start with '/'"));
        }
        let (body, is_prefix) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        if body.contains('*') {
            return Err(format!("{pattern:?}: '*' is only allowed at the end"));
        }
        if body.contains(['?', '#', '%', '\\']) || body.chars().any(char::is_whitespace) {
            return Err(format!(
                "{pattern:?} must be a plain path (no query, '#', '%', '\\' or spaces)"
            ));
        }
        if !is_normalized(body) {
            return Err(format!("{pattern:?} must not contain '.' or '..' segments"));
        }
        let body = body.to_owned();
        Ok(if is_prefix {
            PathPattern::Prefix(body)
        } else {
            PathPattern::Exact(body)
        })
    }

    /// Whether `path` (no query) matches, byte for byte.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(exact) => exact == path,
            PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }

    /// Whether `path` matches ignoring ASCII case: the case-folded reading,
    /// compared without folding (and so without allocating) a copy.
    pub fn matches_ignoring_case(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(exact) => exact.eq_ignore_ascii_case(path),
            PathPattern::Prefix(prefix) => path
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
        }
    }
}

/// What today's exempt-path check refuses to read: a fragment (never part
/// of a request path; where one appears, someone is playing games), a path
/// not starting with `/`, or one some upstream normalisation could move
/// (see `is_unambiguous`). `request_path` may include the query.
pub fn is_ambiguous(request_path: &str) -> bool {
    if request_path.contains('#') {
        return true;
    }
    let path = match request_path.find('?') {
        Some(end) => &request_path[..end],
        None => request_path,
    };
    !path.starts_with('/') || !is_unambiguous(path)
}

/// A path is unambiguous when no upstream normalisation can move it: no dot
/// segments (including `..;` tricks), no backslashes, no control characters,
/// and percent signs only in well-formed escapes (`%` and two hex digits)
/// that do not encode `.`, `/`, `\`, `;`, `%` or NUL. A stray `%` is refused
/// because servers that decode twice, or leniently, can turn `%2%65` into
/// `%2e` and then `.` (found by fuzzing); so are IIS-style `%u` escapes.
fn is_unambiguous(path: &str) -> bool {
    if path.contains('\\') || path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'%') {
        let at = i + offset;
        let (Some(&hi), Some(&lo)) = (bytes.get(at + 1), bytes.get(at + 2)) else {
            return false;
        };
        let (Some(hi), Some(lo)) = ((hi as char).to_digit(16), (lo as char).to_digit(16)) else {
            return false;
        };
        if matches!(hi * 16 + lo, 0x2e | 0x2f | 0x5c | 0x25 | 0x00 | 0x3b) {
            return false;
        }
        i = at + 3;
    }
    is_normalized(path)
}

fn is_normalized(path: &str) -> bool {
    path.split('/').all(|segment| {
        // Servlet containers treat `..;x` as `..`: strip path parameters.
        let bare = segment.split(';').next().unwrap_or(segment);
        bare != "." && bare != ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> ExemptPaths {
        ExemptPaths::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_and_prefix() {
        let p = paths(&["/healthz", "/static/*"]);
        assert!(p.is_exempt("/healthz"));
        assert!(p.is_exempt("/healthz?verbose=1"));
        assert!(p.is_exempt("/static/app.js"));
        assert!(p.is_exempt("/static/"));
        assert!(p.is_exempt("/static/a/b?x=/../"));
        assert!(!p.is_exempt("/healthz/"));
        assert!(!p.is_exempt("/healthzz"));
        assert!(!p.is_exempt("/Healthz"));
        assert!(!p.is_exempt("/static"));
        assert!(!p.is_exempt("/"));
        assert!(!p.is_exempt(""));
        assert!(!p.is_exempt("healthz"));
    }

    #[test]
    fn traversal_tricks_are_never_exempt() {
        let p = paths(&["/health", "/static/*", "/*"]);
        for bad in [
            "/health/../admin",
            "/static/../admin",
            "/static/./x",
            "/static/%2e%2e/admin",
            "/static/%2E%2E/admin",
            "/static/.%2e/admin",
            "/static/..%2fadmin",
            "/static%2f..%2fadmin",
            "/static/..%5cadmin",
            "/static\\..\\admin",
            "/static/..;/admin",
            "/static/%252e%252e/admin",
            "/static/a%00",
            "/static/..%3b/admin",
            "/static/..%3B/..%3B/admin?x=1",
            "/static/%u002e%u002e/admin",
            "/%2%65",
            "/static/%2%65%2%65/admin",
            "/static/%",
            "/static/%4",
            "/static/%zz",
            "/health#/../admin",
            "/static/x#y",
        ] {
            assert!(!p.is_exempt(bad), "{bad}");
        }
        // Other well-formed escapes are fine.
        assert!(p.is_exempt("/static/a%20b%41"));
        // Double slashes are not dot segments; they stay under the prefix.
        assert!(p.is_exempt("/static//x"));
        assert!(!paths(&["/health"]).is_exempt("//health"));
    }

    #[test]
    fn bad_patterns_refused() {
        for bad in [
            "health", "/a*/b", "/a/../b", "/a?x", "/a%2f", "/ a", "/a/./b*",
        ] {
            assert!(ExemptPaths::new(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(paths(&[]).is_empty());
        assert!(!paths(&[]).is_exempt("/anything"));
    }
}
