//! Property tests of route rules: for random paths and random rule sets,
//! adding a reading never loosens a decision. The decision over all
//! readings is at least as strict as the decision of each single reading,
//! of the raw path, and of the path read with every step on (computed here
//! by an implementation of its own, not the filter's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::config;
use alb_oidc::paths;
use alb_oidc::rules::{readings, Access, AccessRules};
use proptest::prelude::*;
use serde_json::{json, Value};

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188";

fn rule() -> impl Strategy<Value = Value> {
    let pattern = prop::sample::select(vec![
        "/a",
        "/a/*",
        "/admin",
        "/admin/*",
        "/static/*",
        "/public/*",
        "/*",
        "/a/b",
        "/A/*",
        "/x/admin/*",
    ]);
    let action = prop::sample::select(vec![
        json!({"allow": "anyone"}),
        json!({"allow": "optional"}),
        json!({"allow": "authenticated"}),
        json!({"allow": "deny"}),
        json!({"require": {"groups_any": ["g1"]}}),
        json!({"require": {"claims": {"t": ["x"]}}}),
    ]);
    (
        prop::collection::vec(pattern, 0..3),
        prop::option::of(prop::sample::select(vec!["GET", "post"])),
        prop::option::of(prop::sample::select(vec!["a.example.com", "*.example.com"])),
        any::<bool>(),
        action,
    )
        .prop_map(|(paths, method, host, ignore_case, action)| {
            let mut rule = json!({"ignore_case": ignore_case});
            if !paths.is_empty() {
                rule["paths"] = json!(paths);
            }
            if let Some(m) = method {
                rule["methods"] = json!([m]);
            }
            if let Some(h) = host {
                rule["hosts"] = json!([h]);
            }
            if let (Value::Object(r), Value::Object(a)) = (&mut rule, action) {
                r.extend(a);
            }
            rule
        })
}

fn rules() -> impl Strategy<Value = AccessRules> {
    (
        prop::collection::vec(rule(), 0..8),
        prop::option::of(prop::sample::select(vec![
            "anyone",
            "optional",
            "authenticated",
            "deny",
        ])),
        prop::collection::vec(
            prop::sample::select(vec!["/static/*", "/a", "/public/*"]),
            0..2,
        ),
    )
        .prop_map(|(rules, default_rule, exempt)| {
            let mut c = json!({"region": "us-east-1", "alb_arns": ARN, "groups_claim": "g",
                               "exempt_paths": exempt});
            let rules: Vec<Value> = rules
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    r["name"] = json!(format!("r{i}"));
                    r
                })
                .collect();
            if !rules.is_empty() {
                c["rules"] = json!(rules);
            }
            if let Some(d) = default_rule {
                c["default_rule"] = json!(d);
            }
            config::parse(c.to_string().as_bytes()).unwrap().access
        })
}

fn segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "A",
        "b",
        "admin",
        "Admin",
        "%61dmin",
        "%2561dmin",
        "static",
        "public",
        "x",
        "..",
        ".",
        "%2e",
        "%2E%2e",
        "%252e%252e",
        ".%2e",
        "..;",
        "..;x",
        "a;x=1",
        ";",
        "%2f",
        "%2F",
        "%5c",
        "\\",
        "..\\",
        "%25",
        "%41",
        "",
        "%3b",
        "...",
        "",
        "..",
        "admin",
    ])
    .prop_map(str::to_owned)
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..6),
        prop::sample::select(vec!["", "?x=/../admin", "?"]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segs, query, trailing, backslash_lead)| {
            let lead = if backslash_lead { "\\" } else { "/" };
            let mut p = format!("{lead}{}", segs.join("/"));
            if trailing {
                p.push('/');
            }
            p.push_str(query);
            p
        })
}

/// The path read with every step on, written independently of the filter:
/// unreserved characters and `%` decoded in two rounds, then `%2F`/`%5C`,
/// `\` as `/`, `;` parameters cut, dot segments removed, slashes merged
/// (with `merge_first`, slashes merged before dot segments go, as nginx does).
fn every_step(path: &str, merge_first: bool) -> String {
    fn decode(bytes: &[u8], wanted: &dyn Fn(u8) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let escape = bytes.get(i + 1..i + 3).and_then(|h| {
                u8::from_str_radix(std::str::from_utf8(h).ok()?, 16)
                    .ok()
                    .filter(|b| wanted(*b))
            });
            match (bytes[i], escape) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~%".contains(&b);
    let once = decode(path.as_bytes(), &unreserved);
    let twice = decode(&once, &unreserved);
    let slashes = decode(&twice, &|b| b == b'/' || b == b'\\');
    let text = String::from_utf8(slashes).unwrap().replace('\\', "/");
    let mut stack: Vec<&str> = Vec::new();
    let segments: Vec<&str> = text.split('/').skip(1).collect();
    let mut directory = false;
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        let bare = segment.split(';').next().unwrap();
        directory = bare == "." || bare == "..";
        if bare == ".." {
            stack.pop();
        } else if bare != "." && !(merge_first && bare.is_empty() && i != last) {
            stack.push(bare);
        }
    }
    let mut out: String = stack.iter().map(|s| format!("/{s}")).collect();
    if directory || out.is_empty() {
        out.push('/');
    }
    while out.contains("//") {
        out = out.replace("//", "/");
    }
    out
}

const METHODS: [&str; 3] = ["GET", "HEAD", "POST"];
const AUTHORITIES: [&str; 3] = ["a.example.com", "B.Example.com:8080", "other.org"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn adding_a_reading_never_loosens_the_decision(
        rules in rules(),
        request in request_path(),
        method in prop::sample::select(METHODS.to_vec()),
        authority in prop::sample::select(AUTHORITIES.to_vec()),
    ) {
        let path = &request[..request.find(['?', '#']).unwrap_or(request.len())];
        let decision = match rules.route(method, authority, Some(&request)) {
            Ok(d) => d,
            Err(_) => {
                prop_assert!(!readings::is_readable(path));
                return Ok(());
            }
        };
        let mut single: Vec<String> = vec![
            path.to_owned(),
            every_step(path, false),
            every_step(path, true),
        ];
        if readings::is_readable(path) {
            single.extend(readings::readings(path));
        }
        for reading in &single {
            for folded in [false, true] {
                let (alone, _) = rules.decide_reading(method, authority, &request, reading, folded);
                prop_assert!(
                    alone <= decision.access(),
                    "{:?} reading {:?} (folded {}) alone is {:?}, all readings {:?}",
                    request, reading, folded, alone, decision.access()
                );
            }
        }
        // Ambiguous paths are never let through by a loose rule.
        if paths::is_ambiguous(&request) && decision.access() <= Access::Optional {
            prop_assert_eq!(decision.rule_name(&rules), "default");
        }
    }

    #[test]
    fn single_reading_paths_read_one_way(request in request_path()) {
        let path = &request[..request.find(['?', '#']).unwrap_or(request.len())];
        if readings::is_single_reading(path) {
            prop_assert_eq!(every_step(path, false), path);
            prop_assert_eq!(readings::readings(path), vec![path.to_owned()]);
        }
    }
}
