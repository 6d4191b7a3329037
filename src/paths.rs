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
            if !pattern.starts_with('/') {
                return Err((i, format!("{pattern:?} must start with '/'")));
            }
            let (body, is_prefix) = match pattern.strip_suffix('*') {
                Some(body) => (body, true),
                None => (pattern.as_str(), false),
            };
            if body.contains('*') {
                return Err((i, format!("{pattern:?}: '*' is only allowed at the end")));
            }
            if body.contains(['?', '#', '%', '\\']) || body.chars().any(char::is_whitespace) {
                return Err((
                    i,
                    format!(
                        "{pattern:?} must be a plain path (no query, '#', '%', '\\' or spaces)"
                    ),
                ));
            }
            if !is_normalized(body) {
                return Err((
                    i,
                    format!("{pattern:?} must not contain '.' or '..' segments"),
                ));
            }
            if is_prefix {
                paths.prefixes.push(body.to_owned());
            } else {
                paths.exact.push(body.to_owned());
            }
        }
        Ok(paths)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Whether the request `:path` (query string included or not) is exempt.
    pub fn is_exempt(&self, request_path: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        // A fragment never belongs in a request path; where one appears,
        // someone is playing games.
        if request_path.contains('#') {
            return false;
        }
        let path = match request_path.find('?') {
            Some(end) => &request_path[..end],
            None => request_path,
        };
        if !path.starts_with('/') || !is_unambiguous(path) {
            return false;
        }
        self.exact.iter().any(|e| e == path)
            || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
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
