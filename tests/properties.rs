//! Property tests (proptest) for the invariants the filter's security rests
//! on. Tokens are signed with a real P-256 key (the test kit's standard key,
//! so the fuzz harness's fixtures serve both).

// Test code throughout (helpers included, which clippy's test detection
// does not see as such): panicking on a broken invariant is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::b64;
use alb_oidc::claims::{self, ClaimRules};
use alb_oidc::denial::Denial;
use alb_oidc::engine::TokenStep;
use alb_oidc::json;
use alb_oidc::paths::ExemptPaths;
use alb_oidc::token::Token;
use alb_oidc_testkit::fixtures::{ARN, CLIENT, ISSUER, KID};
use alb_oidc_testkit::harness::{self, sign_segments};
use proptest::prelude::*;
use serde_json::{Map, Value};

// ------------------------------------------------- base64url strictness ----

/// A valid ALB token with claims of varying lengths (so every segment
/// length residue, padded and unpadded, occurs).
fn valid_token() -> impl Strategy<Value = (String, bool)> {
    (
        "[a-zA-Z0-9@._-]{1,24}",
        "[ -~]{0,40}",
        "[a-z]{0,7}",
        any::<bool>(),
    )
        .prop_map(|(sub, filler, kid_tail, padded)| {
            let header = format!(
                r#"{{"typ":"JWT","kid":"{KID}","alg":"ES256","iss":"{ISSUER}","client":"{CLIENT}","signer":"{ARN}","x":"{kid_tail}"}}"#
            );
            let payload = serde_json::json!({
                "sub": sub,
                "note": filler,
                "exp": 4_000_000_000u64,
                "iss": ISSUER,
            })
            .to_string();
            let encode = if padded {
                b64::encode_padded
            } else {
                b64::encode_unpadded
            };
            (
                sign_segments(&encode(header.as_bytes()), &encode(payload.as_bytes())),
                padded,
            )
        })
}

#[derive(Debug, Clone)]
enum Recode {
    /// Drop one `=` of the padding (partial padding).
    DropOnePad,
    /// More `=`s than the segment's padding needs.
    ExtraPad(usize),
    /// A `=` inside the segment.
    MiddlePad(usize),
    /// The standard alphabet's twin of a `-` or `_`.
    StdAlphabet(usize),
    /// Whitespace somewhere in the segment.
    Whitespace(usize, char),
    /// Non-zero bits after the last byte (the last character changed so
    /// that it decodes to the same bytes under a lax decoder).
    TrailingBits(u8),
    /// Padding where the segment needs none, or one `=` too many.
    PadUnpaddable,
}

fn recode() -> impl Strategy<Value = Recode> {
    prop_oneof![
        Just(Recode::DropOnePad),
        (1usize..4).prop_map(Recode::ExtraPad),
        any::<usize>().prop_map(Recode::MiddlePad),
        any::<usize>().prop_map(Recode::StdAlphabet),
        (
            any::<usize>(),
            prop::sample::select(vec![' ', '\t', '\n', '\r', '\u{a0}', '\u{2028}'])
        )
            .prop_map(|(i, c)| Recode::Whitespace(i, c)),
        (1u8..16).prop_map(Recode::TrailingBits),
        Just(Recode::PadUnpaddable),
    ]
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A non-canonical spelling of `segment`, or `None` when this recoding
/// does not apply to it.
fn apply(segment: &str, how: &Recode) -> Option<String> {
    let body = segment.trim_end_matches('=');
    let pads = segment.len() - body.len();
    let needed = (4 - body.len() % 4) % 4;
    let boundary = |s: &str, i: usize| {
        let mut i = i % (s.len() + 1);
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    Some(match how {
        Recode::DropOnePad => {
            // Only `==` has a partial form (`xxx=` minus one is canonical).
            if pads != 2 {
                return None;
            }
            segment[..segment.len() - 1].to_owned()
        }
        Recode::ExtraPad(n) => format!("{body}{}", "=".repeat(needed + n)),
        Recode::MiddlePad(i) => {
            if body.len() < 2 {
                return None;
            }
            let i = 1 + i % (body.len() - 1);
            format!("{}={}", &body[..i], &segment[i..])
        }
        Recode::StdAlphabet(i) => {
            let positions: Vec<usize> = segment
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'-' || *b == b'_')
                .map(|(p, _)| p)
                .collect();
            let p = *positions.get(i % positions.len().max(1))?;
            let twin = if segment.as_bytes()[p] == b'-' {
                "+"
            } else {
                "/"
            };
            format!("{}{twin}{}", &segment[..p], &segment[p + 1..])
        }
        Recode::Whitespace(i, c) => {
            let i = boundary(segment, *i);
            format!("{}{c}{}", &segment[..i], &segment[i..])
        }
        Recode::TrailingBits(bits) => {
            // Unused low bits in the last character: 4 when the byte count
            // is 1 mod 3, 2 when it is 2 mod 3, none otherwise.
            let unused = match body.len() % 4 {
                2 => 4,
                3 => 2,
                _ => return None,
            };
            let last = *body.as_bytes().last()?;
            let value = ALPHABET.iter().position(|&c| c == last)? as u8;
            let mask = (1u8 << unused) - 1;
            let changed = value | (bits & mask).max(1);
            format!(
                "{}{}{}",
                &body[..body.len() - 1],
                ALPHABET[usize::from(changed)] as char,
                "=".repeat(pads)
            )
        }
        Recode::PadUnpaddable => {
            if needed == 0 {
                format!("{body}=")
            } else if pads == needed {
                format!("{segment}=")
            } else {
                format!("{body}{}", "=".repeat(needed + 1))
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A valid token re-encoded in any non-canonical way (in any of its
    /// three segments) never parses, let alone verifies.
    #[test]
    fn non_canonical_base64url_never_verifies(
        (token, _padded) in valid_token(),
        which in 0usize..3,
        how in recode(),
    ) {
        prop_assert!(
            matches!(harness::strict_check(&token), TokenStep::Verified { .. }),
            "the unmodified token must verify"
        );
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        // One recoding at a time: two could cancel out (drop a `=`, add it
        // back) into the canonical spelling.
        let recoded = apply(&segments[which], &how);
        prop_assume!(recoded.is_some());
        segments[which] = recoded.unwrap();
        let bad = segments.join(".");
        prop_assert_ne!(&bad, &token);
        prop_assert_eq!(b64::decode_segment(&segments[which]), None, "{:?}", segments[which]);
        prop_assert_eq!(Token::parse(&bad).err(), Some(Denial::Malformed));
        let step = harness::strict_check(&bad);
        prop_assert!(matches!(step, TokenStep::Denied(Denial::Malformed)), "{:?}", step);
    }

    /// The other canonical spelling (padding added or removed) parses, but
    /// the signature covers the text as sent, so it never verifies.
    #[test]
    fn toggled_padding_never_verifies((token, padded) in valid_token(), which in 0usize..2) {
        let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
        let bytes = b64::decode_segment(&segments[which]).unwrap();
        segments[which] = if padded { b64::encode_unpadded(&bytes) } else { b64::encode_padded(&bytes) };
        let other = segments.join(".");
        prop_assume!(other != token);
        prop_assert!(Token::parse(&other).is_ok());
        let step = harness::strict_check(&other);
        prop_assert!(matches!(step, TokenStep::Denied(Denial::BadSignature)), "{:?}", step);
    }

    /// Canonical round trip for arbitrary bytes, and a decoded segment is
    /// always the canonical encoding of its bytes.
    #[test]
    fn segment_decoding_is_canonical(data in prop::collection::vec(any::<u8>(), 1..64), s in "[A-Za-z0-9+/_=-]{1,12}") {
        prop_assert_eq!(b64::decode_segment(&b64::encode_padded(&data)), Some(data.clone()));
        prop_assert_eq!(b64::decode_segment(&b64::encode_unpadded(&data)), Some(data));
        if let Some(bytes) = b64::decode_segment(&s) {
            prop_assert!(b64::encode_padded(&bytes) == s || b64::encode_unpadded(&bytes) == s);
        }
    }
}

// --------------------------------------------------------- exempt paths ----

/// RFC 3986 path resolution as the most lenient upstream would do it:
/// `%XX` decoded (repeatedly), `\` as `/`, `;params` dropped, dot segments
/// removed.
fn normalize(path: &str) -> Vec<u8> {
    let mut bytes = path.as_bytes().to_vec();
    loop {
        let decoded = harness::percent_decode(&bytes);
        if decoded == bytes {
            break;
        }
        bytes = decoded;
    }
    let mut out: Vec<&[u8]> = Vec::new();
    let replaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect();
    let segments: Vec<&[u8]> = replaced.split(|&b| b == b'/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        let bare = seg.split(|&b| b == b';').next().unwrap_or(seg);
        match bare {
            b"." => trailing_slash = i == last,
            b".." => {
                out.pop();
                trailing_slash = i == last;
            }
            _ => {
                out.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut result = Vec::new();
    for seg in &out {
        result.push(b'/');
        result.extend_from_slice(seg);
    }
    if trailing_slash || result.is_empty() {
        result.push(b'/');
    }
    result
}

fn path_segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "static", "health", "admin", "api", "public", "x.js", "..", ".", "%2e", "%2E",
        "%2e%2e", ".%2e", "%2e.", "..;", "..;x", ".;", "%2f", "%2F", "%5c", "%5C", "\\", "..\\",
        "%252e", "%25", "%00", "%41", "", ";", "..%00", "...", ".a", "a.",
    ])
    .prop_map(str::to_owned)
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(path_segment(), 0..7),
        prop::sample::select(vec!["", "?", "?x=/../", "#/../", "?a=%2e%2e"]),
        any::<bool>(),
    )
        .prop_map(|(segs, tail, trailing)| {
            let mut p = format!("/{}", segs.join("/"));
            if trailing {
                p.push('/');
            }
            p.push_str(tail);
            p
        })
}

fn pattern() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "static", "health", "api", "public"]),
            0..3,
        ),
        prop::sample::select(vec!["", "/", "*", "/*"]),
    )
        .prop_map(|(segs, end)| format!("/{}{end}", segs.join("/")))
        .prop_filter("\"/\" plus an end is fine; \"//\" is not", |p| {
            !p.starts_with("//")
        })
}

fn is_under(normalized: &[u8], patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => normalized.starts_with(prefix.as_bytes()),
        None => normalized == p.as_bytes(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The matcher never exempts a path that normalizes (percent-decoding
    /// %2e/%2f/%5c, backslashes, path parameters, dot segments) to
    /// somewhere outside every exempt pattern, and never one with a dot
    /// segment in any decoding.
    #[test]
    fn exempt_paths_never_escape_their_prefix(
        patterns in prop::collection::vec(pattern(), 1..4),
        request in request_path(),
    ) {
        let exempt = ExemptPaths::new(&patterns).unwrap();
        if exempt.is_exempt(&request) {
            let path = &request[..request.find(['?', '#']).unwrap_or(request.len())];
            let normalized = normalize(path);
            prop_assert!(
                is_under(&normalized, &patterns),
                "{:?} is exempt under {:?} but normalizes to {:?}",
                request, patterns, String::from_utf8_lossy(&normalized)
            );
            prop_assert!(!harness::has_dot_segment(path.as_bytes()));
        }
    }

    /// Anything with a traversal segment in raw or encoded form is never
    /// exempt, whatever the patterns.
    #[test]
    fn traversal_is_never_exempt(
        patterns in prop::collection::vec(pattern(), 1..4),
        before in prop::collection::vec(path_segment(), 0..3),
        dots in prop::sample::select(vec!["..", ".", "%2e%2e", "%2E%2e", ".%2e", "%2e", "..;", "..;a", ".;"]),
        after in prop::collection::vec(path_segment(), 0..3),
    ) {
        let mut segs = before;
        segs.push(dots.to_owned());
        segs.extend(after);
        let request = format!("/{}", segs.join("/"));
        let exempt = ExemptPaths::new(&patterns).unwrap();
        prop_assert!(!exempt.is_exempt(&request), "{:?} exempt under {:?}", request, patterns);
    }
}

// ------------------------------------------------------ duplicate keys ----

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Another spelling of the same JSON key: some characters `\u`-escaped.
fn spell(key: &str, escape_mask: u32) -> String {
    let mut out = String::from("\"");
    for (i, c) in key.chars().enumerate() {
        if escape_mask & (1 << (i % 32)) != 0 {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Renders `value` as JSON text; the `target`-th non-empty object (in
/// document order, modulo how many there are) gets its first key repeated
/// (with another value, spelled per `mask`) at position `at`.
fn render_with_duplicate(value: &Value, target: usize, mask: u32, at: usize) -> String {
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => usize::from(!m.is_empty()) + m.values().map(count).sum::<usize>(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    fn render(v: &Value, n: &mut usize, target: usize, mask: u32, at: usize, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mine = !m.is_empty() && {
                    let hit = *n == target;
                    *n += 1;
                    hit
                };
                let mut entries: Vec<String> = Vec::new();
                for (k, val) in m {
                    let mut s = serde_json::to_string(k).unwrap();
                    s.push(':');
                    render(val, n, target, mask, at, &mut s);
                    entries.push(s);
                }
                if mine {
                    let (k, _) = m.iter().next().unwrap();
                    let dup = format!("{}:\"dup\"", spell(k, mask));
                    entries.insert(1 + at % entries.len(), dup);
                }
                out.push('{');
                out.push_str(&entries.join(","));
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render(item, n, target, mask, at, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let total = count(value);
    let mut out = String::new();
    render(value, &mut 0, target % total.max(1), mask, at, &mut out);
    out
}

fn payload_object() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::btree_map("[a-z]{1,3}", json_value(), 0..5),
        "[a-z]{1,8}",
    )
        .prop_map(|(extra, sub)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("sub".into(), Value::String(sub));
            m.insert("iss".into(), Value::String(ISSUER.into()));
            m.insert("exp".into(), Value::from(4_000_000_000u64));
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Without duplicates the strict parser agrees with serde_json; with a
    /// key repeated at any depth (in any spelling) it refuses, and so does
    /// the token parser, in the header or the payload.
    #[test]
    fn duplicate_json_keys_never_accepted(
        payload in payload_object(),
        target in any::<usize>(),
        mask in any::<u32>(),
        at in any::<usize>(),
        in_header in any::<bool>(),
    ) {
        let object = Value::Object(payload.clone());
        let clean = object.to_string();
        prop_assert_eq!(json::parse_object(clean.as_bytes()), Some(payload));
        let dup = render_with_duplicate(&object, target, mask, at);
        prop_assert!(json::parse_object(dup.as_bytes()).is_none(), "{}", dup);

        let header = format!(
            r#"{{"kid":"{KID}","alg":"ES256","client":"{CLIENT}","signer":"{ARN}"}}"#
        );
        let (h, p) = if in_header {
            let mut hv: Value = serde_json::from_str(&header).unwrap();
            hv["x"] = object.clone();
            (render_with_duplicate(&hv, target, mask, at), clean.clone())
        } else {
            (header, dup.clone())
        };
        let token = sign_segments(&b64::encode_padded(h.as_bytes()), &b64::encode_padded(p.as_bytes()));
        prop_assert_eq!(Token::parse(&token).err(), Some(Denial::Malformed));
    }
}

// ---------------------------------------------------- claims over time ----

fn rules(skew: u64) -> ClaimRules {
    ClaimRules {
        issuer: Some(ISSUER.into()),
        audience: None,
        clock_skew_s: skew,
        username_claim: "sub".into(),
    }
}

fn time() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0i64..5_000_000_000).prop_map(|t| t as f64),
        (0.0f64..5e9),
        (-1e12f64..1e12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A token valid at `t` is valid at every `t'` in `[nbf, exp)`
    /// (skew included), expired from `exp` on and not yet valid before
    /// `nbf`; and the cached identity's `is_current` agrees with `check`.
    #[test]
    fn claims_valid_on_exactly_their_window(
        exp in time(),
        nbf in prop::option::of(time()),
        skew in prop_oneof![Just(0u64), 0u64..=3600],
        t in time(),
        frac in 0.0f64..1.0,
        probe in time(),
    ) {
        let mut payload = Map::new();
        payload.insert("sub".into(), Value::from("u"));
        payload.insert("iss".into(), Value::from(ISSUER));
        payload.insert("exp".into(), Value::from(exp));
        if let Some(nbf) = nbf {
            payload.insert("nbf".into(), Value::from(nbf));
        }
        let r = rules(skew);
        let Ok(c) = claims::check(&payload, &r, t) else {
            // Not valid at t: then t is outside the window.
            let until = exp + skew as f64;
            let from = nbf.map_or(f64::NEG_INFINITY, |n| n - skew as f64);
            prop_assert!(t >= until || t < from);
            return Ok(());
        };
        prop_assert!(c.valid_from <= t && t < c.valid_until);
        // Any t' in [valid_from, valid_until).
        let lo = if c.valid_from.is_finite() { c.valid_from } else { t - 1e9 };
        let t2 = lo + (c.valid_until - lo) * frac;
        if t2 >= c.valid_from && t2 < c.valid_until {
            let c2 = claims::check(&payload, &r, t2);
            prop_assert!(c2.is_ok(), "valid at {} but not at {}: {:?}", t, t2, c2);
            prop_assert_eq!(c2.unwrap(), c.clone());
        }
        prop_assert!(claims::check(&payload, &r, c.valid_until.next_down()).is_ok());
        prop_assert_eq!(claims::check(&payload, &r, c.valid_until), Err(Denial::Expired));
        if c.valid_from.is_finite() {
            prop_assert!(claims::check(&payload, &r, c.valid_from).is_ok());
            prop_assert_eq!(
                claims::check(&payload, &r, c.valid_from.next_down()),
                Err(Denial::NotYetValid)
            );
        }
        // The token cache serves an identity while `is_current`: it must
        // agree with a fresh check at any time.
        prop_assert_eq!(c.is_current(probe), claims::check(&payload, &r, probe).is_ok());
    }
}

// ------------------------------------------------------ config parsing ----

const CONFIG_FIELDS: &[&str] = &[
    "region",
    "alb_arns",
    "issuer",
    "audience",
    "client_id",
    "exempt_paths",
    "username_claim",
    "bypass_validation",
    "allow_missing",
    "clock_skew_s",
    "token_header",
    "key_cluster",
    "key_authority",
    "key_path_prefix",
    "key_fetch_timeout_ms",
    "key_cache_ttl_s",
    "key_failure_ttl_s",
    "key_cache_max",
    "verified_token_cache_max",
    "headers",
    "claim_headers",
    "strip_alb_headers",
    "signature_backend",
    "user_service",
    "forward_unverified_alb_headers",
    "groups_claim",
    "default_rule",
    "rules",
    "access_token",
];

fn config_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "us-east-1",
            "cn-north-1",
            "us-gov-west-1",
            "x",
            "",
            "/",
            "/*",
            "/a/../b",
            "x-auth-user",
            "x-amzn-oidc-data",
            "Host",
            "auto",
            "rust",
            "deny",
            "allow",
            "anyone",
            "optional",
            "authenticated",
            "GET",
            "*.example.com",
            "RS256",
            "ES384",
            "HS256",
            "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    let keys = prop::sample::select(
        CONFIG_FIELDS
            .iter()
            .chain(
                [
                    "user",
                    "claims",
                    "email",
                    "groups",
                    "name",
                    "cluster",
                    "timeout_ms",
                    "cache_max",
                    "failure_mode",
                    "revalidate_s",
                    "paths",
                    "methods",
                    "hosts",
                    "ignore_case",
                    "allow",
                    "require",
                    "groups_any",
                    "groups_all",
                    "any_of",
                    // access_token's fields (those not named like top-level ones).
                    "header",
                    "required",
                    "jwks_cluster",
                    "jwks_authority",
                    "jwks_path",
                    "audiences",
                    "client_ids",
                    "algorithms",
                    "client_id_claim",
                    "subject_claim",
                    "scopes_claim",
                    "jwks_cache_ttl_s",
                    "jwks_fetch_timeout_ms",
                    "jwks_refetch_min_interval_s",
                    "bogus",
                ]
                .iter(),
            )
            .copied()
            .collect::<Vec<_>>(),
    );
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `config::parse` returns (never panics) on arbitrary JSON, mostly
    /// shaped like a configuration, and names a field when it refuses one
    /// it was given.
    #[test]
    fn config_parse_never_panics(value in config_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = value.to_string();
        match alb_oidc::config::parse(text.as_bytes()) {
            Ok(c) => prop_assert!(c.bypass_validation || !c.alb_arns.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = alb_oidc::config::parse(&bytes);
        // Through the fuzz harness too (engine construction included).
        harness::config_target(text.as_bytes());
    }
}
