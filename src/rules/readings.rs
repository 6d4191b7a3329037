//! The readings of a request path: every way some upstream might read it,
//! so that a rule cannot be escaped through a spelling the filter reads one
//! way and the application another (`/public/../admin`, `/admin%2fx`, ...).
//!
//! The readings are every combination of these steps, applied in this
//! order (each one on or off):
//! 1. percent-decode unreserved characters, once, or twice for `%25`-encoded
//!    escapes (a round decodes `%25` as well, so `%252e` reads `%2e`, then `.`);
//! 2. decode `%2F` and `%5C`;
//! 3. read `\` as `/`;
//! 4. cut `;` parameters from every segment;
//! 5. remove dot segments;
//! 6. merge repeated slashes.
//!
//! One addition to issue 12's list: slashes are also merged before dot
//! segments are removed, as nginx reads paths.
//!
//! Case folding (for rules with `ignore_case`) is applied while matching,
//! not here: see `PathPattern::matches_ignoring_case`.

use std::collections::HashSet;

/// Whether a path (without query) has exactly one reading, itself: it
/// contains none of `%`, `\`, `;`, `//`, `/.`, and starts with `/`. The hot
/// path: one scan, no allocation.
pub fn is_single_reading(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut previous = 0u8;
    for &b in bytes {
        if matches!(b, b'%' | b'\\' | b';') || (previous == b'/' && matches!(b, b'/' | b'.')) {
            return false;
        }
        previous = b;
    }
    true
}

/// Whether a path can be read at all: every `%` starts a well-formed escape,
/// and no NUL hides in it, raw or encoded (`%00`, `%2500`, `%25%30%30`).
pub fn is_readable(path: &str) -> bool {
    if !escapes_well_formed(path) || has_nul(path) {
        return false;
    }
    // One decoding round turns `%2500` and `%25%30%30` into `%00`.
    !path.contains('%') || !has_nul(&decode_round(path))
}

fn has_nul(path: &str) -> bool {
    path.contains('\0') || path.contains("%00")
}

fn escapes_well_formed(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Every reading of a readable path (without query), the path itself first,
/// each once. Readings stay valid UTF-8: only ASCII escapes are decoded.
pub fn readings(path: &str) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut all: Vec<String> = Vec::new();
    let mut add = |reading: String, all: &mut Vec<String>| {
        if seen.insert(reading.clone()) {
            all.push(reading);
        }
    };
    add(path.to_owned(), &mut all);
    if path.contains('%') {
        let once = decode_round(path);
        let twice = decode_round(&once);
        add(once, &mut all);
        add(twice, &mut all);
    }
    // Merging slashes also before dot segments are removed: nginx does
    // (`/public//../admin` is `/admin` to it, `/public/admin` in the
    // issue's order). More readings can only make a decision stricter.
    let steps: [fn(&str) -> String; 6] = [
        decode_slashes,
        backslash_as_slash,
        cut_parameters,
        merge_slashes,
        remove_dot_segments,
        merge_slashes,
    ];
    for step in steps {
        for i in 0..all.len() {
            let next = step(&all[i]);
            add(next, &mut all);
        }
    }
    all
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Decodes `%hh` escapes whose byte `keep` accepts; the rest stay as they are.
fn decode_escapes(path: &str, keep: impl Fn(u8) -> bool) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                let decoded = hi << 4 | lo;
                if keep(decoded) {
                    out.push(decoded);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII bytes were decoded into a valid UTF-8 string, so this
    // cannot fail; the fallback keeps the code panic-free regardless.
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

/// Step 1, one round: RFC 3986 unreserved characters, and `%` itself.
fn decode_round(path: &str) -> String {
    decode_escapes(path, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')
    })
}

/// Step 2.
fn decode_slashes(path: &str) -> String {
    decode_escapes(path, |b| matches!(b, b'/' | b'\\'))
}

/// Step 3.
fn backslash_as_slash(path: &str) -> String {
    path.replace('\\', "/")
}

/// Step 4: `/admin;x=1/y` reads `/admin/y`, `..;` reads `..`.
fn cut_parameters(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.split(';').next().unwrap_or(segment))
        .collect::<Vec<_>>()
        .join("/")
}

/// Step 5 (RFC 3986 section 5.2.4): `.` segments go, `..` takes the segment
/// before it along (never above the root). Empty segments (`//`) are kept:
/// merging them is step 6.
fn remove_dot_segments(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_owned();
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut ends_in_directory = false;
    for segment in rest.split('/') {
        ends_in_directory = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if ends_in_directory || out.is_empty() {
        out.push('/');
    }
    out
}

/// Step 6.
fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_reading_paths() {
        for path in ["/", "/a/b", "/admin/x.js", "/a.b/c.", "/a-b_c~d"] {
            assert!(is_single_reading(path), "{path}");
            assert_eq!(readings(path), vec![path.to_owned()]);
        }
        for path in [
            "", "a/b", "/a%41", "/a\\b", "/a;b", "//a", "/a/.b", "/a/./b",
        ] {
            assert!(!is_single_reading(path), "{path}");
        }
    }

    #[test]
    fn each_step() {
        assert_eq!(decode_round("/%61%2e%252e%2f%zz"), "/a.%2e%2f%zz");
        assert_eq!(decode_slashes("/a%2fb%5Cc%2e"), "/a/b\\c%2e");
        assert_eq!(backslash_as_slash("\\a\\b"), "/a/b");
        assert_eq!(cut_parameters("/a;x=1/..;/b;"), "/a/../b");
        assert_eq!(remove_dot_segments("/a/b/../c/./d"), "/a/c/d");
        assert_eq!(remove_dot_segments("/../../a"), "/a");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/a/b/."), "/a/b/");
        assert_eq!(remove_dot_segments("//../a"), "/a");
        assert_eq!(merge_slashes("//a///b/"), "/a/b/");
    }

    #[test]
    fn readings_combine_the_steps_in_order() {
        let all = readings("/static/%252e%252e/admin/x");
        for expected in [
            "/static/%252e%252e/admin/x",
            "/static/%2e%2e/admin/x",
            "/static/../admin/x",
            "/admin/x",
        ] {
            assert!(all.iter().any(|r| r == expected), "{expected} in {all:?}");
        }
        // Backslashes become slashes before dot segments are removed.
        assert!(readings("\\a\\..\\admin").contains(&"/admin".to_owned()));
        // Decoding `%2f` happens before dot segments are removed.
        assert!(readings("/a/..%2fadmin").contains(&"/admin".to_owned()));
        // Slashes merged before and after dot segments are removed.
        let both = readings("/public//../admin");
        assert!(both.contains(&"/admin".to_owned()), "{both:?}");
        assert!(both.contains(&"/public/admin".to_owned()), "{both:?}");
    }

    #[test]
    fn unreadable_paths() {
        for path in [
            "/a%",
            "/a%4",
            "/a%zz",
            "/%u002e",
            "/a%00",
            "/a%2500",
            "/a%25%30%30",
            "/a\0",
        ] {
            assert!(!is_readable(path), "{path:?}");
        }
        for path in ["/a", "/a%41", "/a%2f", "/a%25", "/a%2541"] {
            assert!(is_readable(path), "{path:?}");
        }
    }
}
