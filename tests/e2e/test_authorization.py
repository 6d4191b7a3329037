"""Authorization at the proxy (issue 12) through a real Envoy, on both
signature backends: each requirement kind (200, 403, 401), `optional`,
`allow: deny` and every `default_rule`, hosts and methods, the paths that
could be read two ways, unreadable paths, groups from the claims, the
per-rule and refusal counters, and the access-log fields.

Config under test: configs.AUTHZ_CONFIG (RULES after BASE_CONFIG's
exempt_paths, groups from `custom:groups` (array) and `custom:roles`
(comma-separated string), default rule `authenticated`). Expected answers
come from the issue and tests/.../CONTRACT: 401 `unauthorized\\n` without a
valid token, 403 `forbidden\\n` when a requirement fails or a rule denies,
400 `bad request\\n` for an unreadable path."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from attack_kit import raw_get
from checks import (
    ANONYMOUS,
    ANSWER_COUNTERS,
    BAD_REQUEST,
    DENIED_BY_RULE,
    DENIED_FORBIDDEN,
    DENIED_UNREADABLE,
    EXEMPT,
    FORBIDDEN,
    UNAUTHORIZED,
    Deltas,
    Moved,
    alb_spellings,
    assert_allowed,
    assert_refused,
    describe,
    headers_named,
    rule_counters,
)
from configs import ALB_HEADERS, IDENTITY_HEADERS, RULE_NAMES, RULES, authz_config
from filter_envoy import AccessLogEnvoy
from tokens import Key

BACKENDS = ["host", "rust"]

# Envoy's HTTP/1 codec refuses a method it does not know (`get`, `Delete`)
# with its own 400 unless told to pass custom methods: the rules Envoy does,
# so the filter sees lower- and mixed-case methods.
CUSTOM_METHODS = {"http_protocol_options": {"allow_custom_methods": True}}

# The first path prefix of each rule: "/admin/*" -> "/admin/".
PREFIX = {r["name"]: r["paths"][0].rstrip("*") for r in RULES if "paths" in r}


def rpath(rule: str) -> str:
    """A unique path under `rule`'s prefix."""
    return PREFIX[rule] + uuid.uuid4().hex


def unmatched() -> str:
    """A unique path no rule matches (the default rule applies)."""
    return f"/nowhere/{uuid.uuid4().hex}"


def new_sub() -> str:
    return f"authz-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module", params=BACKENDS)
def envoy_rules(request: Any, make_envoy_module: Any) -> AccessLogEnvoy:
    """The rules config on one forced signature backend, with an access log."""
    e = make_envoy_module(
        authz_config(signature_backend=request.param),
        name=f"rules-{request.param}",
        envoy_cls=AccessLogEnvoy,
        hcm_options=CUSTOM_METHODS,
    )
    e.backend = request.param  # type: ignore[attr-defined]
    return e


def watch(envoy: Any, *rules: str) -> Deltas:
    """Exact deltas of `rules`' counters and of every answer counter."""
    return Deltas(envoy, *rule_counters(*rules), *ANSWER_COUNTERS)


def invalid_tokens(minter: Any) -> dict[str, str]:
    """Tokens that must never verify (each refused for its own reason)."""
    return {
        "garbage": "not.a.token",
        "bad_signature": minter.mint(key=Key.generate()),
        "expired": minter.mint(exp=minter.now() - 600),
    }


# ------------------------------------------------ each requirement kind ----

# (rule, extra claims, answer): the answer the contract gives a verified user
# with those claims on a path under the rule.
REQUIREMENT_CASES: list[tuple[str, dict[str, Any], int]] = [
    # groups_any ["admin"], groups from either claim
    ("admin", {"custom:groups": ["admin"]}, 200),
    ("admin", {"custom:roles": "staff, admin"}, 200),
    ("admin", {"custom:groups": "viewer,admin"}, 200),  # a string is comma-separated in any groups claim
    ("admin", {"custom:groups": ["staff"], "custom:roles": "viewer"}, 403),
    ("admin", {"custom:groups": ["Admin"]}, 403),  # group names are compared exactly
    ("admin", {"custom:groups": ["admins"]}, 403),
    ("admin", {}, 403),  # no groups at all
    # groups_all ["staff", "oncall"], across the two claims
    ("oncall", {"custom:groups": ["staff"], "custom:roles": "oncall"}, 200),
    ("oncall", {"custom:roles": " staff ,oncall "}, 200),
    ("oncall", {"custom:groups": ["staff"]}, 403),
    ("oncall", {"custom:groups": ["oncall", "admin"]}, 403),
    # claims {"custom:tenant": ["acme", "globex"]}: string and array claim values
    ("tenant", {"custom:tenant": "acme"}, 200),
    ("tenant", {"custom:tenant": "globex"}, 200),
    ("tenant", {"custom:tenant": "initech"}, 403),
    ("tenant", {"custom:tenant": "ACME"}, 403),
    ("tenant", {"custom:tenant": "acme,globex"}, 403),  # strings are never split in `claims`
    ("tenant", {"custom:tenant": ["initech", "globex"]}, 200),  # an array must contain one
    ("tenant", {"custom:tenant": ["initech"]}, 403),
    ("tenant", {"custom:tenant": []}, 403),
    ("tenant", {}, 403),  # claim absent
    # claims {"custom:tier": [3]}: numbers compared as JSON text
    ("tier", {"custom:tier": 3}, 200),
    ("tier", {"custom:tier": [1, 3]}, 200),
    ("tier", {"custom:tier": 4}, 403),
    ("tier", {"custom:tier": 30}, 403),
    # claims {"custom:beta": [true]}: booleans compared as JSON text
    ("beta", {"custom:beta": True}, 200),
    ("beta", {"custom:beta": False}, 403),
    ("beta", {}, 403),
    # any_of [{groups_all [staff, oncall]}, {groups_any [admin]}]
    ("ops", {"custom:groups": ["admin"]}, 200),
    ("ops", {"custom:groups": ["staff", "oncall"]}, 200),
    ("ops", {"custom:groups": ["staff"]}, 403),
    ("ops", {"custom:roles": "oncall"}, 403),
    # groups_any and claims together: both must hold
    ("finance", {"custom:groups": ["finance"], "custom:tenant": "acme"}, 200),
    ("finance", {"custom:groups": ["finance"], "custom:tenant": "globex"}, 403),
    ("finance", {"custom:groups": ["admin"], "custom:tenant": "acme"}, 403),
]


@pytest.mark.parametrize(
    "rule,claims,answer",
    REQUIREMENT_CASES,
    ids=[f"{r}-{i}-{a}" for i, (r, _, a) in enumerate(REQUIREMENT_CASES)],
)
def test_requirement_verified_user(envoy_rules, echo, minter, rule, claims, answer):
    sub = new_sub()
    token = minter.mint(payload={"sub": sub, **claims})
    d = watch(envoy_rules, rule)
    what = f"{rule} with {claims}"
    if answer == 200:
        up = assert_allowed(envoy_rules, token, path=rpath(rule), what=what)
        assert up.get("x-auth-user") == sub
        d.assert_equal({f"alb_oidc.rule.{rule}.allowed": 1}, what)
    else:
        assert_refused(envoy_rules, echo, token, 403, path=rpath(rule), body=FORBIDDEN, what=what)
        d.assert_equal({f"alb_oidc.rule.{rule}.denied": 1, DENIED_FORBIDDEN: 1}, what)


# The rules with a requirement that match on the path alone (docs_write,
# which needs a write method, is in the methods tests).
REQUIRE_RULES = [r["name"] for r in RULES if "require" in r and "methods" not in r and "hosts" not in r]


@pytest.mark.parametrize("rule", REQUIRE_RULES)
def test_requirement_without_valid_token_401(envoy_rules, echo, minter, rule):
    """No token, or one that does not verify: 401, counted on the rule."""
    d = watch(envoy_rules, rule)
    assert_refused(envoy_rules, echo, None, 401, path=rpath(rule), body=UNAUTHORIZED, what=f"{rule}: no token")
    # a token whose claims would satisfy the rule, but whose signature does not verify
    good_claims = {"custom:groups": ["admin", "finance", "staff", "oncall", "editor"], "custom:tenant": "acme"}
    bad = minter.mint(payload=good_claims, key=Key.generate())
    assert_refused(envoy_rules, echo, bad, 401, path=rpath(rule), body=UNAUTHORIZED, what=f"{rule}: bad signature")
    d.assert_equal({f"alb_oidc.rule.{rule}.denied": 2}, rule)


# ------------------------------------------------------------ optional ----


def test_optional_with_token_gets_identity(envoy_rules, minter):
    sub = new_sub()
    d = watch(envoy_rules, "catalog")
    up = assert_allowed(
        envoy_rules,
        minter.mint(payload={"sub": sub, "custom:groups": ["staff"]}),
        path=rpath("catalog"),
        headers=[(n, "forged") for n in IDENTITY_HEADERS],
    )
    assert up.get("x-auth-user") == sub
    assert up.get("x-auth-groups") == "staff"
    assert up.get("x-amzn-oidc-identity") == sub
    d.assert_equal({"alb_oidc.rule.catalog.allowed": 1})


def test_optional_without_token_is_anonymous(envoy_rules):
    d = watch(envoy_rules, "catalog")
    forged = [(n, "forged") for n in IDENTITY_HEADERS] + alb_spellings(with_token=False)
    up = assert_allowed(envoy_rules, None, path=rpath("catalog"), headers=forged)
    for n in IDENTITY_HEADERS:
        assert up.all(n) == [], f"{n} reached the upstream of an anonymous request: {up.all(n)}"
    assert headers_named(up, ALB_HEADERS) == []
    d.assert_equal({"alb_oidc.rule.catalog.allowed": 1, ANONYMOUS: 1})


def test_optional_with_invalid_token_401(envoy_rules, echo, minter):
    """A token that is present must be valid: never ignored."""
    tokens = invalid_tokens(minter)
    d = watch(envoy_rules, "catalog")
    for kind, token in tokens.items():
        assert_refused(envoy_rules, echo, token, 401, path=rpath("catalog"), body=UNAUTHORIZED, what=kind)
    d.assert_equal({"alb_oidc.rule.catalog.denied": len(tokens)})


# ---------------------------------------------------------- anyone, deny ----


def test_anyone_rule_skips_authentication(envoy_rules, minter):
    """`allow: anyone` is an exempt path: no token needed, an invalid one is
    not looked at, a valid one gives no identity."""
    valid = minter.mint(payload={"sub": new_sub()})
    m = Moved(envoy_rules)
    for token in (None, "not.a.token", valid):
        up = assert_allowed(
            envoy_rules,
            token,
            path=rpath("public"),
            headers=alb_spellings(with_token=False),
            what=f"public with {token!r:.20}",
        )
        for n in IDENTITY_HEADERS:
            assert up.all(n) == [], n
        assert headers_named(up, ALB_HEADERS) == [], "the ALB's headers of a request nobody verified"
    # no token was looked at (exempt passes are not counted as `allowed`, as today)
    m.assert_moved({"alb_oidc.rule.public.allowed": 3, EXEMPT: 3})


def test_exempt_paths_are_the_leading_anyone_rule(envoy_rules):
    d = Deltas(envoy_rules, *rule_counters("exempt_paths"), *ANSWER_COUNTERS)
    assert_allowed(envoy_rules, None, path="/healthz")
    assert_allowed(envoy_rules, None, path="/static/" + uuid.uuid4().hex)
    d.assert_equal({"alb_oidc.rule.exempt_paths.allowed": 2, EXEMPT: 2})


def test_allow_deny_rule(envoy_rules, echo, minter):
    """`allow: deny`: 403 without looking at any token (none, invalid, valid, admin)."""
    tokens = [
        None,
        "not.a.token",
        minter.mint(payload={"sub": new_sub()}),
        minter.mint(payload={"custom:groups": ["admin"]}),
    ]
    m = Moved(envoy_rules)
    for token in tokens:
        assert_refused(envoy_rules, echo, token, 403, path=rpath("legacy"), body=FORBIDDEN, what=f"{token!r:.20}")
    # no token was looked at: no cache, key or token-refusal counter moved
    m.assert_moved({"alb_oidc.rule.legacy.denied": len(tokens), DENIED_BY_RULE: len(tokens)})


# --------------------------------------------------------- default_rule ----

# default_rule -> (no token, invalid token, valid token): the answers, and
# whether the valid token's identity reaches the upstream.
DEFAULT_RULE_ANSWERS = {
    "anyone": (200, 200, 200, False),
    "optional": (200, 401, 200, True),
    "authenticated": (401, 401, 200, True),
    "deny": (403, 403, 403, False),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("default_rule", list(DEFAULT_RULE_ANSWERS))
def test_default_rule(make_envoy, echo, minter, backend, default_rule):
    e = make_envoy(
        authz_config(default_rule=default_rule, signature_backend=backend), name=f"default-{default_rule}-{backend}"
    )
    no_token, invalid, valid, identity = DEFAULT_RULE_ANSWERS[default_rule]
    sub = new_sub()
    d = watch(e, "default")
    allowed = denied = 0
    for token, answer in ((None, no_token), ("not.a.token", invalid), (minter.mint(payload={"sub": sub}), valid)):
        what = f"default_rule {default_rule}, token {token!r:.20}"
        if answer == 200:
            up = assert_allowed(e, token, path=unmatched(), what=what)
            assert up.all("x-auth-user") == ([sub] if identity and token and token != "not.a.token" else []), what
            allowed += 1
        else:
            body = {401: UNAUTHORIZED, 403: FORBIDDEN}[answer]
            assert_refused(e, echo, token, answer, path=unmatched(), body=body, what=what)
            denied += 1
    expected = {"alb_oidc.rule.default.allowed": allowed, "alb_oidc.rule.default.denied": denied}
    if default_rule == "anyone":
        expected[EXEMPT] = 3
    if default_rule == "optional":
        expected[ANONYMOUS] = 1
    if default_rule == "deny":
        expected[DENIED_BY_RULE] = 3
    d.assert_equal({k: v for k, v in expected.items() if v}, default_rule)
    # the rules that matched still decide: an admin path stays an admin path
    assert_refused(e, echo, None, 401, path=rpath("admin"), body=UNAUTHORIZED, what=f"{default_rule}: /admin")


def test_rule_counters_defined_before_traffic(make_envoy):
    """Every rule's counters exist (as 0) from configuration on."""
    e = make_envoy(authz_config(), name="rule-counters")
    stats = e.stats()
    for name in rule_counters(*RULE_NAMES, "exempt_paths", "default"):
        found = {k: v for k, v in stats.items() if k == name or k.endswith("." + name)}
        assert list(found.values()) == [0], f"{name}: {found}"


# -------------------------------------------------------------- hosts ----

# The `reports` rule (hosts ["reports.example.com"], /h/*) denies; `corp`
# (hosts ["*.corp.example"], /h/*) lets anyone in; other hosts fall to the
# default rule (authenticated).
REPORTS_HOSTS = [
    "reports.example.com",
    "REPORTS.Example.COM",
    "reports.example.com:8443",
    "reports.example.com.",
    "Reports.Example.Com.:443",
]
CORP_HOSTS = ["a.corp.example", "A.B.CORP.EXAMPLE", "a.corp.example:80", "a.corp.example.", "x.Corp.Example.:8080"]
OTHER_HOSTS = [
    "127.0.0.1",
    "x.reports.example.com",
    "reports.example.com.evil",
    "reportsXexample.com",
    "acorp.example",
    "a.corp.example.evil",
    "a.corp.examplex",
]


@pytest.mark.parametrize("host", REPORTS_HOSTS)
def test_host_exact_rule(envoy_rules, echo, minter, host):
    d = watch(envoy_rules, "reports")
    assert_refused(
        envoy_rules,
        echo,
        minter.mint(),
        403,
        path=PREFIX["reports"] + uuid.uuid4().hex,
        headers={"host": host},
        body=FORBIDDEN,
        what=host,
    )
    d.assert_equal({"alb_oidc.rule.reports.denied": 1, DENIED_BY_RULE: 1}, host)


@pytest.mark.parametrize("host", CORP_HOSTS)
def test_host_suffix_rule(envoy_rules, host):
    d = watch(envoy_rules, "corp")
    assert_allowed(envoy_rules, None, path=PREFIX["corp"] + uuid.uuid4().hex, headers={"host": host}, what=host)
    d.assert_equal({"alb_oidc.rule.corp.allowed": 1, EXEMPT: 1}, host)


@pytest.mark.parametrize("host", OTHER_HOSTS)
def test_host_matching_neither(envoy_rules, echo, minter, host):
    d = watch(envoy_rules, "reports", "corp", "default")
    assert_refused(envoy_rules, echo, None, 401, path="/h/" + uuid.uuid4().hex, headers={"host": host}, what=host)
    assert_allowed(envoy_rules, minter.mint(), path="/h/" + uuid.uuid4().hex, headers={"host": host}, what=host)
    d.assert_equal({"alb_oidc.rule.default.denied": 1, "alb_oidc.rule.default.allowed": 1}, host)


# ------------------------------------------------------------ methods ----

# `docs-read` (methods ["GET"]) lets anyone read /docs/*; `docs_write`
# (methods ["post", "Delete"]) needs `editor`; other methods fall to the default.


@pytest.mark.parametrize("method", ["GET", "get", "Get", "head"])
def test_method_get_rule(envoy_rules, method):
    """Methods compare case-insensitively; `GET` also matches HEAD (here
    `head`, which Envoy passes on as a custom method, so the echo answers
    with a body)."""
    d = watch(envoy_rules, "docs-read")
    up = assert_allowed(envoy_rules, None, path=rpath("docs-read"), method=method, what=method)
    assert up.doc["method"] == method
    d.assert_equal({"alb_oidc.rule.docs-read.allowed": 1, EXEMPT: 1}, method)


def test_method_head_matched_by_get(envoy_rules, echo):
    d = watch(envoy_rules, "docs-read")
    p = rpath("docs-read")
    r = envoy_rules.request(p, method="HEAD")
    assert r.status == 200, describe(r)
    assert echo.hits(p) == 1
    d.assert_equal({"alb_oidc.rule.docs-read.allowed": 1, EXEMPT: 1})


@pytest.mark.parametrize("method", ["POST", "post", "DELETE", "delete", "Delete"])
def test_method_write_rule(envoy_rules, echo, minter, method):
    d = watch(envoy_rules, "docs_write")
    hdrs = {"content-length": "0"}
    assert_refused(envoy_rules, echo, None, 401, path=rpath("docs_write"), method=method, headers=hdrs, what=method)
    staff = minter.mint(payload={"custom:groups": ["staff"]})
    assert_refused(
        envoy_rules,
        echo,
        staff,
        403,
        path=rpath("docs_write"),
        method=method,
        headers=hdrs,
        body=FORBIDDEN,
        what=method,
    )
    editor = minter.mint(payload={"custom:groups": ["editor"]})
    up = assert_allowed(envoy_rules, editor, path=rpath("docs_write"), method=method, headers=hdrs, what=method)
    assert up.doc["method"] == method
    d.assert_equal(
        {"alb_oidc.rule.docs_write.denied": 2, "alb_oidc.rule.docs_write.allowed": 1, DENIED_FORBIDDEN: 1}, method
    )


@pytest.mark.parametrize("method", ["PUT", "OPTIONS", "patch"])
def test_method_matching_no_rule(envoy_rules, echo, minter, method):
    d = watch(envoy_rules, "docs-read", "docs_write", "default")
    hdrs = {"content-length": "0"}
    assert_refused(envoy_rules, echo, None, 401, path=rpath("docs-read"), method=method, headers=hdrs, what=method)
    staff = minter.mint(payload={"custom:groups": ["staff"]})
    assert_allowed(envoy_rules, staff, path=rpath("docs-read"), method=method, headers=hdrs, what=method)
    d.assert_equal({"alb_oidc.rule.default.denied": 1, "alb_oidc.rule.default.allowed": 1}, method)


# ------------------------------------------- paths that read two ways ----

# Each path must not escape the `/admin/*` requirement (groups_any admin).
# Sent byte for byte. (no token, staff, admin): the answers observed, and
# the layer that gives them:
#   filter: the filter reads the path as the issue's readings do, one of
#     which is under /admin/, so the admin requirement applies: 401 without a
#     token, 403 for staff, 200 for an admin (forwarded unchanged);
#   envoy: Envoy's HTTP/1 codec or connection manager answers before any
#     filter runs (the filter never sees the request).
TWO_WAY_PATHS: list[tuple[str, tuple[int, int, int], str]] = [
    # the anyone rule /public/* matches the raw path; dot segments removed read /admin/x
    ("/public/../admin/x", (401, 403, 200), "filter"),
    # %2f decoded reads /admin/x
    ("/admin%2fx", (401, 403, 200), "filter"),
    # %61 is an unreserved `a`: decoded, /admin/x
    ("/%61dmin/x", (401, 403, 200), "filter"),
    # slashes merged: /admin/x (the raw reading falls to the default rule)
    ("//admin/x", (401, 403, 200), "filter"),
    # `;x=1` cut: /admin/y
    ("/admin;x=1/y", (401, 403, 200), "filter"),
    # a request target that does not start with `/`: Envoy's HTTP/1 codec
    # refuses the request line (400 `Bad Request`) before any filter
    ("\\admin\\x", (400, 400, 400), "envoy"),
    # the raw path is already under /admin/
    ("/admin/./x", (401, 403, 200), "filter"),
    # exempt /static/* on the raw path; %2e%2e decoded and removed reads /admin/x
    ("/static/%2e%2e/admin/x", (401, 403, 200), "filter"),
    # one extra round for %25: %252e -> %2e -> `.`, then as above
    ("/static/%252e%252e/admin/x", (401, 403, 200), "filter"),
    # backslashes after the leading slash: read as slashes, /admin/x
    ("/\\admin\\x", (401, 403, 200), "filter"),
    # %5c decoded and read as a slash: /public/../admin/x, then /admin/x
    ("/public/..%5cadmin/x", (401, 403, 200), "filter"),
    # the optional rule /catalog/* on the raw path: never anonymous
    ("/catalog/../admin/x", (401, 403, 200), "filter"),
    ("/catalog/%2E%2E/admin/x", (401, 403, 200), "filter"),
]


@pytest.mark.parametrize("path,answers,layer", TWO_WAY_PATHS, ids=[p for p, _, _ in TWO_WAY_PATHS])
def test_two_way_path_never_escapes_admin(envoy_rules, echo, minter, path, answers, layer):
    tokens = [
        ("no token", None),
        ("staff", minter.mint(payload={"custom:groups": ["staff"]})),
        ("admin", minter.mint(payload={"custom:groups": ["admin"]})),
    ]
    d = watch(envoy_rules, "admin")
    for (who, token), answer in zip(tokens, answers, strict=True):
        before = echo.total()
        hdrs = [(b"x-amzn-oidc-data", token.encode())] if token else []
        r = raw_get(envoy_rules.port, path.encode(), hdrs)
        hit = echo.total() - before
        assert r.status == answer, f"{path!r} ({layer}), {who}: expected {answer}, got {describe(r)}"
        if answer == 200:
            assert hit == 1 and r.upstream.raw_path == path, f"{path!r}: upstream saw {r.upstream.raw_path!r}"
        else:
            assert hit == 0, f"{path!r}, {who}: refused but the upstream was hit"
        if layer == "filter" and answer != 200:
            assert r.body == {401: UNAUTHORIZED, 403: FORBIDDEN}[answer], f"{path!r}, {who}: {describe(r)}"
        if layer == "envoy":
            assert r.body == b"Bad Request", f"{path!r}, {who}: not Envoy's own answer: {describe(r)}"
    if layer == "filter":
        d.assert_equal({"alb_oidc.rule.admin.denied": 2, "alb_oidc.rule.admin.allowed": 1, DENIED_FORBIDDEN: 1}, path)
    else:
        d.assert_equal({}, path)


# --------------------------------------------------------- ignore_case ----


@pytest.mark.parametrize("path", ["/BILLING/", "/Billing/", "/billing/", "/bIlLiNg/"])
def test_ignore_case_rule_matches_folded_path(envoy_rules, echo, minter, path):
    p = path + uuid.uuid4().hex
    d = watch(envoy_rules, "billing")
    staff = minter.mint(payload={"custom:groups": ["staff"]})
    assert_refused(envoy_rules, echo, staff, 403, path=p, body=FORBIDDEN, what=path)
    assert_allowed(envoy_rules, minter.mint(payload={"custom:groups": ["finance"]}), path=p + "-ok", what=path)
    d.assert_equal({"alb_oidc.rule.billing.denied": 1, "alb_oidc.rule.billing.allowed": 1, DENIED_FORBIDDEN: 1})


def test_without_ignore_case_paths_are_case_sensitive(envoy_rules, minter):
    """`/ADMIN/x` is not under the admin rule's `/admin/*` (no ignore_case):
    the default rule (authenticated) decides."""
    d = watch(envoy_rules, "admin", "default")
    assert_allowed(envoy_rules, minter.mint(payload={"custom:groups": ["staff"]}), path="/ADMIN/" + uuid.uuid4().hex)
    d.assert_equal({"alb_oidc.rule.default.allowed": 1})


# ---------------------------------------------------------- unreadable ----

# Malformed percent-encoding and an encoded NUL.
UNREADABLE = ["/%zz", "/a%00b", "/admin/%zz", "/static/%00/x", "/public/%", "/catalog/%4"]


def unique(path: str) -> str:
    """`path` with a unique query (not part of the path the rules read), so
    the echo's per-path count belongs to this request alone."""
    return f"{path}?u={uuid.uuid4().hex}"


@pytest.mark.parametrize("path", UNREADABLE)
def test_unreadable_path_400_with_rules(envoy_rules, echo, minter, path):
    path = unique(path)
    d = watch(envoy_rules)
    for who, token in (("no token", None), ("admin", minter.mint(payload={"custom:groups": ["admin"]}))):
        before = echo.total()
        r = envoy_rules.request(path, [("x-amzn-oidc-data", token)] if token else [])
        assert (r.status, r.body) == (400, BAD_REQUEST), f"{path!r}, {who}: {describe(r)}"
        assert echo.total() == before
    d.assert_equal({DENIED_UNREADABLE: 2}, path)


@pytest.mark.parametrize("path", UNREADABLE)
def test_unreadable_path_with_exempt_paths_only(envoy_backend, echo, minter, path):
    """Only exempt_paths configured: today's behaviour, the path is simply
    never exempt (401 without a token, served to a valid one)."""
    path = unique(path)
    d = Deltas(envoy_backend, DENIED_UNREADABLE)
    assert_refused(envoy_backend, echo, None, 401, path=path, body=UNAUTHORIZED, what=path)
    assert_allowed(envoy_backend, minter.mint(), path=path, what=path)
    d.assert_equal({}, path)


# --------------------------------------------------- groups from claims ----


def test_groups_header_is_sorted_dedup_union(envoy_rules, minter):
    token = minter.mint(
        payload={
            "custom:groups": ["staff", "admin", "staff"],
            "custom:roles": " oncall ,admin, Domain Admins ,staff",
        }
    )
    up = assert_allowed(envoy_rules, token, path=rpath("catalog"), headers={"x-auth-groups": "forged"})
    assert up.all("x-auth-groups") == ["Domain Admins,admin,oncall,staff"]


def test_groups_with_comma_or_control_character_dropped(envoy_rules, echo, minter):
    token = minter.mint(payload={"custom:groups": ["ok", "admin,x", "admin\u0001", "a\nb"]})
    up = assert_allowed(envoy_rules, token, path=rpath("catalog"))
    assert up.all("x-auth-groups") == ["ok"]
    # and neither dropped name opens /admin
    assert_refused(envoy_rules, echo, token, 403, path=rpath("admin"), body=FORBIDDEN)


def test_no_groups_no_header(envoy_rules, minter):
    up = assert_allowed(
        envoy_rules,
        minter.mint(payload={"custom:groups": [], "custom:roles": " , "}),
        path=rpath("catalog"),
        headers={"x-auth-groups": "forged"},
    )
    assert up.all("x-auth-groups") == []


def test_groups_claim_single_string_name(make_envoy, echo, minter):
    """`groups_claim` as one claim name (not a list)."""
    e = make_envoy(authz_config(groups_claim="custom:roles"), name="groups-claim-one")
    ok = minter.mint(payload={"custom:roles": "viewer, admin"})
    up = assert_allowed(e, ok, path=rpath("admin"))
    assert up.get("x-auth-groups") == "admin,viewer"
    # custom:groups is not a groups claim in this configuration
    assert_refused(e, echo, minter.mint(payload={"custom:groups": ["admin"]}), 403, path=rpath("admin"))


# ---------------------------------------------------------- access log ----


def test_access_log_on_200_401_403(envoy_rules, echo, minter):
    sub = new_sub()
    admin = minter.mint(payload={"sub": sub, "custom:groups": ["admin"]})
    staff_sub = new_sub()
    staff = minter.mint(payload={"sub": staff_sub, "custom:groups": ["staff"]})
    ok, no_token, forbidden = rpath("admin"), rpath("admin"), rpath("admin")
    assert_allowed(envoy_rules, admin, path=ok)
    assert_refused(envoy_rules, echo, None, 401, path=no_token)
    assert_refused(envoy_rules, echo, staff, 403, path=forbidden)
    assert envoy_rules.access_log_entry(ok) == {"path": ok, "status": "200", "user": sub, "rule": "admin"}
    assert envoy_rules.access_log_entry(no_token) == {"path": no_token, "status": "401", "user": "-", "rule": "admin"}
    assert envoy_rules.access_log_entry(forbidden) == {
        "path": forbidden,
        "status": "403",
        "user": staff_sub,
        "rule": "admin",
    }


def test_access_log_names_exempt_default_and_deny_rules(envoy_rules, echo, minter):
    sub = new_sub()
    token = minter.mint(payload={"sub": sub})
    exempt, default, legacy, anon = "/static/" + uuid.uuid4().hex, unmatched(), rpath("legacy"), rpath("catalog")
    assert_allowed(envoy_rules, token, path=exempt)  # anyone: the token is not looked at
    assert_allowed(envoy_rules, token, path=default)
    assert_refused(envoy_rules, echo, token, 403, path=legacy)  # deny: the token is not looked at
    assert_allowed(envoy_rules, None, path=anon)
    want = {
        exempt: ("200", "-", "exempt_paths"),
        default: ("200", sub, "default"),
        legacy: ("403", "-", "legacy"),
        anon: ("200", "-", "catalog"),
    }
    for p, (status, user, rule) in want.items():
        assert envoy_rules.access_log_entry(p) == {"path": p, "status": status, "user": user, "rule": rule}
