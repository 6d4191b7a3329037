//! The request's header names, as the host serializes them, and which of them
//! the filter must remove before anything reaches the upstream.
//!
//! Removing the managed names exactly is not enough: many servers fold `_`
//! into `-` when they map headers to CGI-style variables (Django under ASGI
//! and WSGI, PHP-FPM, Rack), so a client-sent `x_auth_user` would be read as
//! `X-Auth-User` on exempt and anonymous requests. Every incoming name that
//! equals a managed one after ASCII case folding and `_` → `-` is removed.

/// Header pairs in proxy-wasm's serialization: a little-endian u32 count,
/// then a (u32 name length, u32 value length) per pair, then each name and
/// value followed by a NUL byte. `None` for anything malformed.
pub fn parse_pairs(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let count = read_u32(buf, 0)? as usize;
    // Each pair needs at least 8 length bytes and 2 NULs: bounds `count`
    // before it sizes an allocation.
    if count > buf.len() / 10 {
        return None;
    }
    let mut lengths = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4 + i * 8;
        lengths.push((read_u32(buf, at)? as usize, read_u32(buf, at + 4)? as usize));
    }
    let mut at = 4 + count * 8;
    let mut pairs = Vec::with_capacity(count);
    for (name_len, value_len) in lengths {
        let name = take(buf, &mut at, name_len)?;
        let value = take(buf, &mut at, value_len)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// `len` bytes at `*at`, which must be followed by a NUL; advances past it.
fn take<'a>(buf: &'a [u8], at: &mut usize, len: usize) -> Option<&'a [u8]> {
    let end = at.checked_add(len)?;
    let field = buf.get(*at..end)?;
    if *buf.get(end)? != 0 {
        return None;
    }
    *at = end + 1;
    Some(field)
}

/// True when `incoming` names the same header as `managed` (lower case) for
/// a server that ignores case and treats `_` and `-` alike.
pub fn folds_to(incoming: &[u8], managed: &str) -> bool {
    incoming.len() == managed.len()
        && incoming.iter().zip(managed.bytes()).all(|(&c, m)| {
            let c = if c == b'_' {
                b'-'
            } else {
                c.to_ascii_lowercase()
            };
            c == m
        })
}

/// The distinct incoming names (as sent, so the host can remove them) that
/// fold to one of `managed`.
pub fn names_to_strip<'a>(pairs: &[(&'a [u8], &[u8])], managed: &[String]) -> Vec<&'a [u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for (name, _) in pairs {
        if managed.iter().any(|m| folds_to(name, m)) && !out.contains(name) {
            out.push(name);
        }
    }
    out
}

/// A header's value(s) in the listed pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Absent,
    One(&'a [u8]),
    /// Sent more than once: for the token, ambiguous, so refused.
    Repeated(&'a [u8]),
}

/// The value of header `name` (lower case; the host lists names in lower
/// case, compared ignoring ASCII case all the same).
pub fn value_of<'a>(pairs: &[(&[u8], &'a [u8])], name: &str) -> Value<'a> {
    let mut found = Value::Absent;
    for (n, v) in pairs {
        if n.eq_ignore_ascii_case(name.as_bytes()) {
            found = match found {
                Value::Absent => Value::One(v),
                Value::One(first) | Value::Repeated(first) => Value::Repeated(first),
            };
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialize(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(k.as_bytes());
            out.push(0);
            out.extend(v.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_what_the_host_sends() {
        let buf = serialize(&[(":path", "/a"), ("x-auth-user", ""), ("k", "v\u{e9}")]);
        let pairs = parse_pairs(&buf).unwrap();
        assert_eq!(
            pairs,
            vec![
                (&b":path"[..], &b"/a"[..]),
                (&b"x-auth-user"[..], &b""[..]),
                (&b"k"[..], "v\u{e9}".as_bytes())
            ]
        );
        assert_eq!(parse_pairs(&serialize(&[])).unwrap(), vec![]);
    }

    #[test]
    fn refuses_malformed_maps() {
        let good = serialize(&[("a", "b")]);
        for cut in 0..good.len() {
            assert_eq!(parse_pairs(&good[..cut]), None, "cut at {cut}");
        }
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert_eq!(parse_pairs(&no_nul), None);
        assert_eq!(parse_pairs(&u32::MAX.to_le_bytes()), None);
        let mut huge_len = good;
        huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_pairs(&huge_len), None);
    }

    #[test]
    fn folds_case_and_underscores_only() {
        assert!(folds_to(b"x-auth-user", "x-auth-user"));
        assert!(folds_to(b"x_auth_user", "x-auth-user"));
        assert!(folds_to(b"X_Auth-USER", "x-auth-user"));
        assert!(!folds_to(b"x-auth-users", "x-auth-user"));
        assert!(!folds_to(b"x-auth-use", "x-auth-user"));
        assert!(!folds_to(b"x.auth.user", "x-auth-user"));
        assert!(!folds_to(b"x-auth_user\0", "x-auth-user"));
    }

    #[test]
    fn finds_values() {
        let buf = serialize(&[(":path", "/a"), ("t", "1"), ("T", "2"), ("x_t", "3")]);
        let pairs = parse_pairs(&buf).unwrap();
        assert_eq!(value_of(&pairs, ":path"), Value::One(b"/a"));
        assert_eq!(value_of(&pairs, "t"), Value::Repeated(b"1"));
        assert_eq!(value_of(&pairs, "x-t"), Value::Absent);
    }

    #[test]
    fn strips_each_spelling_once() {
        let buf = serialize(&[
            ("x-auth-user", "a"),
            ("x_auth_user", "b"),
            ("x_auth_user", "c"),
            ("x-auth-email", "d"),
            ("x-other", "e"),
        ]);
        let pairs = parse_pairs(&buf).unwrap();
        let managed = vec!["x-auth-user".to_string(), "x-auth-groups".to_string()];
        assert_eq!(
            names_to_strip(&pairs, &managed),
            vec![&b"x-auth-user"[..], &b"x_auth_user"[..]]
        );
    }
}
