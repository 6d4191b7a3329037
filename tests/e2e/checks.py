"""Assertion helpers shared by the test modules."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from envoykit.client import Response
from envoykit.echo import EchoServer, Upstream
from filter_envoy import FilterEnvoy

TOKEN_HEADER = "x-amzn-oidc-data"

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
) -> Response:
    """Send `token`; expect `status` with a short plain body, and the upstream never hit."""
    p = path or upath("deny")
    hdrs = token_headers(token) + list((headers or {}).items() if isinstance(headers, dict) else (headers or []))
    r = envoy.request(p, hdrs)
    assert r.status == status, f"{what}: expected {status}, got {describe(r)}"
    assert echo.hits(p) == 0, f"{what}: upstream was hit for a refused request"
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
) -> Upstream:
    """Send `token`; expect 200 from the echo upstream; return what the upstream saw."""
    p = path or upath("ok")
    hdrs = token_headers(token, header=token_header) + list(
        (headers or {}).items() if isinstance(headers, dict) else (headers or [])
    )
    r = envoy.request(p, hdrs)
    assert r.status == 200, f"{what}: expected 200, got {describe(r)}"
    up = r.upstream
    assert up.path == p, f"{what}: upstream saw path {up.path!r}, sent {p!r}"
    return up
