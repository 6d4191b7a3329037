"""Attack suite, exempt-path tricks: dot segments, encodings, separators,
case and absolute-form targets never turn a protected path into an exempt one."""

from __future__ import annotations

from attack_kit import SUMMARY, Record, failures, forged_identity, forged_seen, raw_get
from configs import IDENTITY_HEADERS

# ===================================================== 3. exempt-path tricks ==
#
# Config: exempt_paths ["/healthz", "/public/exact", "/static/*", "/api/v1/open*"].
# No token, forged identity. "deny": 401 (not exempt) or 400 (Envoy refuses the
# request line). "exempt": 200 with no identity. "either": 200 without identity
# or a refusal (encodings the contract does not list; never a crash).

PATH_TRICKS: list[tuple[bytes, str]] = [
    (b"/healthz/../admin", "deny"),
    (b"/healthz/..", "deny"),
    (b"/healthz/./", "deny"),
    (b"/healthz/%2e%2e/admin", "deny"),
    (b"/healthz/%2E%2E/admin", "deny"),
    (b"/healthz%2f..%2fadmin", "deny"),
    (b"/healthz%2F..%2Fadmin", "deny"),
    (b"/healthz%5c..%5cadmin", "deny"),
    (b"/healthz%5C..%5Cadmin", "deny"),
    (b"/static/../admin", "deny"),
    (b"/static/%2e%2e/admin", "deny"),
    (b"/static/.%2e/admin", "deny"),
    (b"/static/%2e./admin", "deny"),
    (b"/static/%2e%2e%2fadmin", "deny"),
    (b"/static/a%2f..%2f..%2fadmin", "deny"),
    (b"/static/..%5cadmin", "deny"),
    (b"/static/..\\admin", "deny"),
    (b"/static/%00/../admin", "deny"),
    (b"/static/.%00./admin", "deny"),
    (b"/static//../admin", "deny"),
    (b"/static/..;/admin", "deny"),
    (b"/static/%2e%2e;/admin", "deny"),
    (b"/healthz;/../admin", "deny"),
    (b"/healthz;jsessionid=1", "deny"),
    (b"/healthz;", "deny"),
    (b"//healthz", "deny"),
    (b"///healthz", "deny"),
    (b"//static/app.js", "deny"),
    (b"/HEALTHZ", "deny"),
    (b"/Healthz", "deny"),
    (b"/STATIC/app.js", "deny"),
    (b"/healthz/", "deny"),
    (b"/healthz%3f", "deny"),
    (b"/healthz%23", "deny"),
    (b"/healthz%00", "deny"),
    (b"/healthz#/../admin", "deny"),
    (b"/healthz#", "deny"),
    (b"/api/v1/open/../../admin", "deny"),
    (b"/api/v1/openx/%2e%2e/%2e%2e/admin", "deny"),
    (b"/static/\xff/app.js", "deny"),
    (b"/healthz\xc0\xae", "deny"),
    (b"/static/\xef\xbc\x8e\xef\xbc\x8e/admin", "deny"),  # fullwidth dots, raw UTF-8
    (b"/healthz?x=/../admin", "exempt"),  # the query is not part of the path
    (b"/healthz?next=%2e%2e%2fadmin", "exempt"),
    (b"/static/a//b.js", "exempt"),  # merge_slashes keeps it under /static/
    (b"/static/%2%65%2%65/admin", "deny"),  # stray '%': '.' after two decodes (found by fuzzing)
    (b"/static/%/admin", "deny"),
    (b"/static/%252e%252e/admin", "either"),  # double-encoded: contains %25
    (b"/static/%c0%ae%c0%ae/admin", "either"),  # overlong UTF-8 '.': see SECURITY.md
    (b"http://attack.test/healthz/../admin", "deny"),  # absolute-form request target
]


def test_exempt_path_tricks(envoy_main, echo):
    recs = []
    forged = [(k.encode(), v.encode()) for k, v in forged_identity()]
    for path, kind in PATH_TRICKS:
        before = echo.total()
        r = raw_get(envoy_main.port, path, forged)
        # the echo server's own counter: a path Envoy rewrote cannot be looked up by name
        hit = echo.total() - before
        case = path.decode("latin-1")
        if kind == "deny":
            ok = r.status in (400, 401) and not hit
        elif kind == "exempt":
            ok = r.status == 200
        else:
            ok = r.status in (200, 400, 401)
        if r.status == 200:
            up = r.upstream
            forged_up = forged_seen(up)
            ident = [n for n in IDENTITY_HEADERS if up.all(n)]
            if forged_up or ident:
                rec = Record("exempt-paths", case, "let_through", 200, f"identity upstream: {forged_up or ident}")
            elif ok:
                rec = Record("exempt-paths", case, "passed_without_identity", 200)
            else:
                rec = Record(
                    "exempt-paths", case, "let_through", 200, "not exempt, but reached the upstream without a token"
                )
        elif hit:
            rec = Record("exempt-paths", case, "let_through", r.status, "upstream saw it")
        elif ok:
            rec = Record("exempt-paths", case, "refused", r.status)
        else:
            rec = Record("exempt-paths", case, "unexpected_status", r.status, f"kind {kind}")
        SUMMARY.add(rec)
        recs.append(rec)
    bad = failures(recs)
    assert not bad, "\n".join(bad)
