"""Assertion helpers shared by the test modules."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from configs import alb_header_spellings
from envoykit.client import Response
from envoykit.echo import EchoServer, Upstream
from filter_envoy import FilterEnvoy

TOKEN_HEADER = "x-amzn-oidc-data"

# The filter's terse refusal bodies (contract of issue 12, "Answers").
BAD_REQUEST = b"bad request\n"
UNAUTHORIZED = b"unauthorized\n"
FORBIDDEN = b"forbidden\n"

# Words a refusal body must not contain (the reason goes to logs and metrics only).
LEAKY = ["signer", "expired", "kid", "alg", "signature", "issuer", "claim", "pem", "key", "exp "]


def upath(tag: str = "t") -> str:
    """A unique request path, so a test can tell whether the upstream saw it."""
    return f"/{tag}/{uuid.uuid4().hex}"


def b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def token_headers(
    token: str | None, extra: dict[str, str] | None = None, header: str = TOKEN_HEADER
) -> list[tuple[str, str]]:
    h: list[tuple[str, str]] = []
    if token is not None:
        h.append((header, token))
    h.extend((extra or {}).items())
    return h


def describe(r: Response) -> str:
    return f"status {r.status}, body {r.body[:300]!r}"


def assert_refused(
    envoy: FilterEnvoy,
    echo: EchoServer,
    token: str | None,
    status: int = 401,
    *,
    headers: Any = None,
    path: str | None = None,
    what: str = "",
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """Send `token`; expect `status` with a short plain body (exactly `body`
    when given), and the upstream never hit."""
    p = path or upath("deny")
    hdrs = token_headers(token) + list((headers or {}).items() if isinstance(headers, dict) else (headers or []))
    r = envoy.request(p, hdrs, method=method)
    assert r.status == status, f"{what}: expected {status}, got {describe(r)}"
    assert echo.hits(p) == 0, f"{what}: upstream was hit for a refused request"
    if body is not None:
        assert r.body == body, f"{what}: expected body {body!r}, got {describe(r)}"
    assert len(r.body) <= 200, f"{what}: refusal body too long: {r.body[:300]!r}"
    low = r.body.decode(errors="replace").lower()
    for w in LEAKY:
        assert w not in low, f"{what}: refusal body leaks a reason ({w!r}): {r.body!r}"
    return r


def assert_allowed(
    envoy: FilterEnvoy,
    token: str | None,
    *,
    headers: Any = None,
    path: str | None = None,
    token_header: str = TOKEN_HEADER,
    what: str = "",
    method: str = "GET",
) -> Upstream:
    """Send `token`; expect 200 from the echo upstream; return what the upstream saw."""
    p = path or upath("ok")
    hdrs = token_headers(token, header=token_header) + list(
        (headers or {}).items() if isinstance(headers, dict) else (headers or [])
    )
    r = envoy.request(p, hdrs, method=method)
    assert r.status == 200, f"{what}: expected 200, got {describe(r)}"
    up = r.upstream
    assert up.path == p, f"{what}: upstream saw path {up.path!r}, sent {p!r}"
    return up


class Deltas:
    """Exact counter deltas: `d = Deltas(envoy, "a", "b")`, traffic, then
    `d.assert_equal({"a": 1})`: every watched counter not named must not
    have moved."""

    def __init__(self, envoy: FilterEnvoy, *suffixes: str) -> None:
        self.envoy = envoy
        self.before = envoy.counters(*suffixes)

    def now(self) -> dict[str, int]:
        after = self.envoy.counters(*self.before)
        return {k: after[k] - v for k, v in self.before.items()}

    def assert_equal(self, expected: dict[str, int], what: str = "") -> None:
        unknown = set(expected) - set(self.before)
        assert not unknown, f"not watched: {sorted(unknown)}"
        want = {k: expected.get(k, 0) for k in self.before}
        got = self.now()
        assert got == want, f"{what}: counter deltas {got} != expected {want}"


class Moved:
    """Every filter counter at once: `m = Moved(envoy)`, traffic, then
    `m.assert_moved({...})`: exactly the named counters moved, by exactly
    that much (names from `alb_oidc.` on, whatever prefix Envoy adds)."""

    def __init__(self, envoy: FilterEnvoy) -> None:
        self.envoy = envoy
        self.before = self._snapshot()

    def _snapshot(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, value in self.envoy.stats().items():
            short = name[name.index("alb_oidc.") :] if "alb_oidc." in name else name
            out[short] = out.get(short, 0) + value
        return out

    def assert_moved(self, expected: dict[str, int], what: str = "") -> None:
        after = self._snapshot()
        moved = {k: v - self.before.get(k, 0) for k, v in after.items() if v != self.before.get(k, 0)}
        assert moved == expected, f"{what}: counters moved {moved} != expected {expected}"


def rule_counters(*names: str) -> list[str]:
    """The per-rule counters of `names`: alb_oidc.rule.<name>.allowed/denied."""
    return [f"alb_oidc.rule.{n}.{outcome}" for n in names for outcome in ("allowed", "denied")]


# The refusal counters the authorization answers move (contract of issue 12).
DENIED_FORBIDDEN = "alb_oidc.requests.denied.forbidden"
DENIED_BY_RULE = "alb_oidc.requests.denied.denied_by_rule"
DENIED_UNREADABLE = "alb_oidc.requests.denied.unreadable_path"
ANONYMOUS = "alb_oidc.requests.anonymous"
EXEMPT = "alb_oidc.requests.exempt"
IDENTITY_MISMATCH = "alb_oidc.alb_identity_mismatch"
ANSWER_COUNTERS = [DENIED_FORBIDDEN, DENIED_BY_RULE, DENIED_UNREADABLE, ANONYMOUS, EXEMPT]


def headers_named(up: Upstream, names: list[str]) -> list[tuple[str, str]]:
    """The headers the upstream saw whose name, lowercased and with `_` read
    as `-`, is one of `names`."""
    want = {n.lower().replace("_", "-") for n in names}
    return [(k, v) for k, v in up.doc["headers"] if k.lower().replace("_", "-") in want]


def alb_spellings(
    value: str = "unverified", token_header: str = "x-amzn-oidc-data", with_token: bool = True
) -> list[tuple[str, str]]:
    """Every ALB header in every spelling, each copy with its own value.
    Without `with_token`, no copy that Envoy reads as the token header itself
    (which would make a request carry a token): its `_` spellings stay."""
    names = [token_header, "x-amzn-oidc-identity", "x-amzn-oidc-accesstoken"]
    out = [(n, f"{value}-{i}") for h in names for i, n in enumerate(alb_header_spellings(h))]
    return [(n, v) for n, v in out if with_token or n.lower() != token_header]
