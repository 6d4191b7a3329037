//! Route rules, table-driven: the configuration of issue 12 plus public and
//! static areas, every tricky path of the issue, methods, hosts, case, the
//! default rule, and the requirements checked against users. Expected
//! answers are written out by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::config::{self, Config};
use alb_oidc::rules::{Access, AccessRules, Subject, Unmet, UnreadablePath};
use serde_json::{json, Map, Value};

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188";
const HOST: &str = "app.example.com";

fn config(extra: Value) -> Config {
    let mut json = json!({"region": "us-east-1", "alb_arns": ARN});
    if let (Value::Object(base), Value::Object(extra)) = (&mut json, extra) {
        base.extend(extra);
    }
    config::parse(json.to_string().as_bytes()).unwrap()
}

fn issue_config() -> Config {
    config(json!({
        "groups_claim": ["custom:groups", "custom:roles"],
        "exempt_paths": ["/healthz"],
        "rules": [
            {"name": "public", "paths": ["/public/*"], "allow": "anyone"},
            {"name": "static", "paths": ["/static/*"], "allow": "anyone"},
            {"name": "catalog", "paths": ["/catalog/*"], "allow": "optional"},
            {"name": "admin", "paths": ["/admin", "/admin/*"], "require": {"groups_any": ["admin"]}},
            {"name": "reports", "hosts": ["reports.example.com"], "paths": ["/*"],
             "require": {"claims": {"custom:tenant": ["acme", "globex"]}}},
            {"name": "ops", "paths": ["/ops/*"], "methods": ["GET"],
             "require": {"any_of": [{"groups_all": ["staff", "oncall"]}, {"groups_any": ["admin"]}]}},
            {"name": "legacy", "paths": ["/old/*"], "allow": "deny"},
            {"name": "upload", "paths": ["/upload"], "methods": ["post", "PUT"],
             "require": {"groups_any": ["uploader"]}},
            {"name": "partners", "hosts": ["*.partners.example.com"], "allow": "deny"},
            {"name": "docs", "paths": ["/docs/*"], "ignore_case": true,
             "require": {"groups_any": ["writers"]}}
        ]
    }))
}

/// The access and the deciding rules' names, or `None` for an unreadable path.
fn route(
    rules: &AccessRules,
    method: &str,
    authority: &str,
    path: &str,
) -> Option<(Access, Vec<String>)> {
    match rules.route(method, authority, Some(path)) {
        Ok(d) => Some((
            d.access(),
            d.rule_names(rules).into_iter().map(str::to_owned).collect(),
        )),
        Err(UnreadablePath) => None,
    }
}

/// (method, authority, path, expected access and deciding rules; `None`: unreadable)
type Case<'a> = (&'a str, &'a str, &'a str, Option<(Access, &'a [&'a str])>);

fn expect(rules: &AccessRules, cases: &[Case<'_>]) {
    let mut wrong = Vec::new();
    for &(method, authority, path, ref expected) in cases {
        let got = route(rules, method, authority, path);
        let expected = expected
            .as_ref()
            .map(|(a, names)| (*a, names.iter().map(|n| n.to_string()).collect::<Vec<_>>()));
        if got != expected {
            wrong.push(format!(
                "{method} {authority} {path:?}: got {got:?}, expected {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

use Access::*;

/// Every path of the issue's list is at least as strict as the admin rule,
/// and the admin rule is among those that decide it.
#[test]
fn paths_read_two_ways_never_escape_the_admin_rule() {
    let c = issue_config();
    for path in [
        "/admin/x",
        "/public/../admin/x",
        "/admin%2fx",
        "/admin%2Fx",
        "/%61dmin/x",
        "//admin/x",
        "/admin;x=1/y",
        "\\admin\\x",
        "/admin/./x",
        "/static/%2e%2e/admin/x",
        "/static/%252e%252e/admin/x",
        // and a few more spellings of the same trick
        "/static/..%2fadmin/x",
        "/static/..%5cadmin/x",
        "/static\\..\\admin\\x",
        "/static/..;/admin/x",
        "/public/%2E%2E/admin",
        "/healthz/../admin",
        "/%2561dmin/x",
        "/admin%2f..%2fadmin/x?y=1",
        // nginx merges slashes before it resolves dot segments
        "/public//../admin/x",
        "/static/x//..%2f../admin/x",
    ] {
        let decision = c.access.route("GET", HOST, Some(path)).unwrap();
        assert!(
            decision.access() >= Require,
            "{path}: {:?}",
            decision.access()
        );
        assert!(
            decision.rule_names(&c.access).contains(&"admin"),
            "{path}: decided by {:?}",
            decision.rule_names(&c.access)
        );
        let claims = Map::new();
        let groups = c.access.groups(&claims, ["staff"]);
        assert_eq!(
            decision.check(&c.access, &Subject::new(&groups, &claims)),
            Err(Unmet {
                rule: "admin",
                requirement: "require.groups_any".into()
            }),
            "{path}"
        );
    }
}

#[test]
fn first_matching_rule_per_reading_strictest_wins() {
    let c = issue_config();
    let reports = "Reports.Example.com.:443";
    expect(
        &c.access,
        &[
            ("GET", HOST, "/healthz", Some((Anyone, &["exempt_paths"]))),
            (
                "GET",
                HOST,
                "/healthz?probe=1",
                Some((Anyone, &["exempt_paths"])),
            ),
            (
                "GET",
                HOST,
                "/healthz/",
                Some((Authenticated, &["default"])),
            ),
            ("GET", HOST, "/public/app.js", Some((Anyone, &["public"]))),
            (
                "GET",
                HOST,
                "/public/a?x=/../admin",
                Some((Anyone, &["public"])),
            ),
            ("GET", HOST, "/public//app.js", Some((Anyone, &["public"]))),
            ("GET", HOST, "/static/a%20b", Some((Anyone, &["static"]))),
            ("GET", HOST, "/static/%41", Some((Anyone, &["static"]))),
            // Encoded so that only a decoding upstream sees /static: the
            // raw reading is the default's, and a looser reading never wins.
            (
                "GET",
                HOST,
                "/%73tatic/x",
                Some((Authenticated, &["default"])),
            ),
            ("GET", HOST, "/catalog/x", Some((Optional, &["catalog"]))),
            // Ambiguous: never anyone or optional.
            (
                "GET",
                HOST,
                "/catalog/../public/x",
                Some((Authenticated, &["default"])),
            ),
            (
                "GET",
                HOST,
                "/public/./x",
                Some((Authenticated, &["default"])),
            ),
            (
                "GET",
                HOST,
                "/public/x#frag",
                Some((Authenticated, &["default"])),
            ),
            ("GET", HOST, "/old/x", Some((Deny, &["legacy"]))),
            ("GET", HOST, "/old/../public/x", Some((Deny, &["legacy"]))),
            ("GET", HOST, "/public/..%2fold/x", Some((Deny, &["legacy"]))),
            ("GET", HOST, "/other", Some((Authenticated, &["default"]))),
            ("GET", HOST, "/", Some((Authenticated, &["default"]))),
            ("GET", HOST, "/admin", Some((Require, &["admin"]))),
            ("GET", HOST, "/admin/", Some((Require, &["admin"]))),
            // Case-sensitive rule: another path to the filter and to most upstreams.
            ("GET", HOST, "/ADMIN/x", Some((Authenticated, &["default"]))),
            ("GET", HOST, "/adminx", Some((Authenticated, &["default"]))),
            // ignore_case: the folded reading counts too.
            ("GET", HOST, "/docs/a", Some((Require, &["docs"]))),
            ("GET", HOST, "/Docs/a", Some((Require, &["docs"]))),
            ("GET", HOST, "/DOCS/A", Some((Require, &["docs"]))),
            ("GET", HOST, "/%44ocs/a", Some((Require, &["docs"]))),
            // Methods: case-insensitive, GET also matches HEAD.
            ("GET", HOST, "/ops/x", Some((Require, &["ops"]))),
            ("get", HOST, "/ops/x", Some((Require, &["ops"]))),
            ("HEAD", HOST, "/ops/x", Some((Require, &["ops"]))),
            ("head", HOST, "/ops/x", Some((Require, &["ops"]))),
            ("POST", HOST, "/ops/x", Some((Authenticated, &["default"]))),
            ("POST", HOST, "/upload", Some((Require, &["upload"]))),
            ("post", HOST, "/upload", Some((Require, &["upload"]))),
            ("PUT", HOST, "/upload", Some((Require, &["upload"]))),
            ("GET", HOST, "/upload", Some((Authenticated, &["default"]))),
            ("HEAD", HOST, "/upload", Some((Authenticated, &["default"]))),
            // Hosts: lower-cased, port and trailing dot removed.
            ("GET", reports, "/anything", Some((Require, &["reports"]))),
            (
                "GET",
                "reports.example.com",
                "/",
                Some((Require, &["reports"])),
            ),
            ("GET", reports, "/public/x", Some((Anyone, &["public"]))),
            ("GET", reports, "/admin/x", Some((Require, &["admin"]))),
            (
                "GET",
                "reports.example.com.evil",
                "/x",
                Some((Authenticated, &["default"])),
            ),
            // Two readings, two requirements: both apply.
            (
                "GET",
                reports,
                "/admin%2fx",
                Some((Require, &["reports", "admin"])),
            ),
            (
                "GET",
                "a.partners.example.com",
                "/public/x",
                Some((Anyone, &["public"])),
            ),
            (
                "GET",
                "a.b.partners.example.com:80",
                "/x",
                Some((Deny, &["partners"])),
            ),
            (
                "GET",
                "partners.example.com",
                "/x",
                Some((Authenticated, &["default"])),
            ),
            // Unreadable: refused (400) once rules are configured.
            ("GET", HOST, "/admin%zz", None),
            ("GET", HOST, "/public/%", None),
            ("GET", HOST, "/public/%4", None),
            ("GET", HOST, "/public/x%00", None),
            ("GET", HOST, "/public/x%2500", None),
            ("GET", HOST, "/public/%u002e%u002e/admin", None),
            ("GET", HOST, "/healthz%zz", None),
        ],
    );
    assert_eq!(c.access.route("GET", HOST, None), Err(UnreadablePath));
    assert_eq!(
        c.access.names().collect::<Vec<_>>(),
        [
            "exempt_paths",
            "public",
            "static",
            "catalog",
            "admin",
            "reports",
            "ops",
            "legacy",
            "upload",
            "partners",
            "docs",
            "default"
        ]
    );
}

#[test]
fn default_rule_and_its_shorthands() {
    let only_exempt = config(json!({"exempt_paths": ["/healthz", "/static/*"]}));
    expect(
        &only_exempt.access,
        &[
            ("GET", HOST, "/healthz", Some((Anyone, &["exempt_paths"]))),
            ("GET", HOST, "/static/x", Some((Anyone, &["exempt_paths"]))),
            ("GET", HOST, "/other", Some((Authenticated, &["default"]))),
            // Only exempt paths: an unreadable path is simply never exempt.
            (
                "GET",
                HOST,
                "/healthz%zz",
                Some((Authenticated, &["default"])),
            ),
            (
                "GET",
                HOST,
                "/static/x%00",
                Some((Authenticated, &["default"])),
            ),
            (
                "GET",
                HOST,
                "/static/../x",
                Some((Authenticated, &["default"])),
            ),
        ],
    );
    assert_eq!(
        only_exempt
            .access
            .route("GET", HOST, None)
            .unwrap()
            .access(),
        Authenticated
    );
    let allow_missing = config(json!({"exempt_paths": ["/static/*"], "allow_missing": true}));
    expect(
        &allow_missing.access,
        &[
            ("GET", HOST, "/static/x", Some((Anyone, &["exempt_paths"]))),
            ("GET", HOST, "/other", Some((Optional, &["default"]))),
            ("GET", HOST, "/static/../x", Some((Optional, &["default"]))),
            ("GET", HOST, "/static/%zz", Some((Optional, &["default"]))),
        ],
    );
    let none = config(json!({}));
    expect(
        &none.access,
        &[
            ("GET", HOST, "/x", Some((Authenticated, &["default"]))),
            ("GET", HOST, "/x%zz", Some((Authenticated, &["default"]))),
        ],
    );
    for (default, access) in [
        ("anyone", Anyone),
        ("optional", Optional),
        ("authenticated", Authenticated),
        ("deny", Deny),
    ] {
        let c = config(json!({"default_rule": default}));
        expect(
            &c.access,
            &[
                ("GET", HOST, "/x", Some((access, &["default"]))),
                ("POST", HOST, "/a/../b", Some((access, &["default"]))),
                // An explicit default_rule: unreadable paths are refused.
                ("GET", HOST, "/x%zz", None),
            ],
        );
    }
    // An ambiguous path skips the optional rule, but is never decided more
    // loosely than it would have been: the looser default is raised.
    let open = config(json!({
        "default_rule": "anyone",
        "rules": [{"name": "cat", "paths": ["/cat/*"], "allow": "optional"}]
    }));
    expect(
        &open.access,
        &[
            ("GET", HOST, "/cat/x", Some((Optional, &["cat"]))),
            ("GET", HOST, "/cat/./x", Some((Optional, &["default"]))),
            ("GET", HOST, "/dog", Some((Anyone, &["default"]))),
        ],
    );
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

#[test]
fn requirements_against_users() {
    let c = issue_config();
    let reports = "reports.example.com";
    // (method, authority, path, token claims, user-service groups, result)
    type UserCase<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Value,
        &'a [&'a str],
        Result<(), (&'a str, &'a str)>,
    );
    let cases: &[UserCase<'_>] = &[
        (
            "GET",
            HOST,
            "/admin/x",
            json!({"custom:groups": "admin"}),
            &[],
            Ok(()),
        ),
        (
            "GET",
            HOST,
            "/admin/x",
            json!({"custom:roles": ["x", "admin"]}),
            &[],
            Ok(()),
        ),
        ("GET", HOST, "/admin/x", json!({}), &["admin"], Ok(())),
        (
            "GET",
            HOST,
            "/admin/x",
            json!({"custom:groups": "admins, staff"}),
            &[],
            Err(("admin", "require.groups_any")),
        ),
        (
            "GET",
            HOST,
            "/admin/x",
            json!({"groups": ["admin"]}),
            &[],
            Err(("admin", "require.groups_any")),
        ),
        (
            "GET",
            HOST,
            "/ops/x",
            json!({"custom:groups": "staff,oncall"}),
            &[],
            Ok(()),
        ),
        (
            "GET",
            HOST,
            "/ops/x",
            json!({"custom:groups": "staff"}),
            &["oncall"],
            Ok(()),
        ),
        (
            "GET",
            HOST,
            "/ops/x",
            json!({"custom:groups": "admin"}),
            &[],
            Ok(()),
        ),
        (
            "GET",
            HOST,
            "/ops/x",
            json!({"custom:groups": "staff"}),
            &[],
            Err(("ops", "require.any_of")),
        ),
        (
            "GET",
            reports,
            "/x",
            json!({"custom:tenant": "acme"}),
            &[],
            Ok(()),
        ),
        (
            "GET",
            reports,
            "/x",
            json!({"custom:tenant": ["initech", "globex"]}),
            &[],
            Ok(()),
        ),
        (
            "GET",
            reports,
            "/x",
            json!({"custom:tenant": "acme,globex"}),
            &[],
            Err(("reports", "require.claims.custom:tenant")),
        ),
        (
            "GET",
            reports,
            "/x",
            json!({}),
            &[],
            Err(("reports", "require.claims.custom:tenant")),
        ),
        // Two rules decide: both requirements must hold.
        (
            "GET",
            reports,
            "/admin%2fx",
            json!({"custom:tenant": "acme"}),
            &["admin"],
            Ok(()),
        ),
        (
            "GET",
            reports,
            "/admin%2fx",
            json!({"custom:tenant": "acme"}),
            &[],
            Err(("admin", "require.groups_any")),
        ),
        (
            "GET",
            reports,
            "/admin%2fx",
            json!({"custom:tenant": "x"}),
            &["admin"],
            Err(("reports", "require.claims.custom:tenant")),
        ),
        // Nothing to check below Require; deny never passes.
        ("GET", HOST, "/other", json!({}), &[], Ok(())),
        (
            "GET",
            HOST,
            "/old/x",
            json!({}),
            &["admin"],
            Err(("legacy", "allow: deny")),
        ),
    ];
    for (method, authority, path, token, user, expected) in cases {
        let token = claims(token.clone());
        let decision = c.access.route(method, authority, Some(path)).unwrap();
        let groups = c.access.groups(&token, user.iter().copied());
        let got = decision.check(&c.access, &Subject::new(&groups, &token));
        let expected = expected.map_err(|(rule, requirement)| Unmet {
            rule,
            requirement: requirement.to_owned(),
        });
        assert_eq!(
            got, expected,
            "{method} {authority} {path} {token:?} {user:?}"
        );
    }
}

#[test]
fn groups_header_value() {
    let c = issue_config();
    let token = claims(json!({
        "custom:groups": "Domain Admins, staff ,admin",
        "custom:roles": ["admin", "ops,dev", "zeta\n"],
    }));
    let user = ["staff".to_owned(), "billing".to_owned()];
    let groups = c.access.groups(&token, user.iter().map(String::as_str));
    assert_eq!(
        groups.header_value().as_deref(),
        Some("Domain Admins,admin,billing,staff")
    );
    assert_eq!(groups.dropped(), 2);
}
