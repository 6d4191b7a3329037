"""The ALB's access token (issue 13) through a real Envoy, on both signature
backends: verified against the IdP's key set (served by envoykit's
JwksServer through cluster `idp_jwks`), bound to the data token's `sub`;
its groups join `x-auth-groups`, its scopes become `x-auth-scopes` and the
`scopes_any` / `scopes_all` / `access_claims` requirements; every bad
token refused (`required: true`) or counted and dropped (`required:
false`); key set faults, refetches on unknown kids, rotation, and one fetch
for many first requests.

Each Envoy serves its key set at a path of its own on the shared
JwksServer, so fetch counts are its own. Shared Envoys (one per backend
and `required`) only ever fetch their unchanging key set: tests on them
watch no fetch counters; tests about fetches start their own Envoy."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from access_tokens import (
    ACCESS_HEADER,
    ALL_ALGORITHMS,
    DEFAULT_SCOPE,
    IDP_AUDIENCE,
    IDP_CLIENT_ID,
    IDP_ISSUER,
    INVALID,
    JWKS_AUTHORITY,
    JWKS_CLUSTER,
    MISSING,
    AccessMinter,
    IdpKey,
    KeySet,
    bad_access_tokens,
    jwks,
    standard_key_set,
    valid_access_tokens,
)
from checks import Deltas, assert_allowed, assert_refused, describe, rule_counters, upath
from configs import config
from envoykit.jwksserver import JwksServer
from envoykit.process import envoy_validate
from envoykit.wait import free_port, wait_until
from filter_envoy import FilterEnvoy
from tokens import Minter

BACKENDS = ["host", "rust"]

VERIFIED = "alb_oidc.access_token.verified"
ABSENT = "alb_oidc.access_token.absent"
INVALID_COUNTER = "alb_oidc.access_token.invalid"
FETCH_OK = "alb_oidc.jwks_fetch.ok"
FETCH_FAILED = "alb_oidc.jwks_fetch.failed"
FETCH_INVALID = "alb_oidc.jwks_fetch.invalid"
CACHE_HIT = "alb_oidc.access_token_cache.hit"
CACHE_MISS = "alb_oidc.access_token_cache.miss"
DENIED_MISSING = "alb_oidc.requests.denied." + MISSING
DENIED_INVALID = "alb_oidc.requests.denied." + INVALID
DENIED_JWKS = "alb_oidc.requests.denied.jwks_unavailable"
DENIED_FORBIDDEN = "alb_oidc.requests.denied.forbidden"
OUTCOMES = [VERIFIED, ABSENT, INVALID_COUNTER]
FETCHES = [FETCH_OK, FETCH_FAILED, FETCH_INVALID]
DENIALS = [DENIED_MISSING, DENIED_INVALID, DENIED_JWKS]

RULES: list[dict[str, Any]] = [
    {"name": "catalog", "paths": ["/catalog/*"], "allow": "optional"},
    {"name": "orders", "paths": ["/orders/*"], "require": {"scopes_any": ["orders:read", "orders:admin"]}},
    {"name": "orders_write", "paths": ["/orders-write/*"], "require": {"scopes_all": ["orders:read", "orders:write"]}},
    {"name": "gold", "paths": ["/gold/*"], "require": {"access_claims": {"custom:tier": ["gold"]}}},
    {"name": "admin", "paths": ["/admin/*"], "require": {"groups_any": ["admin"]}},
]

FETCH_TIMEOUT_MS = 500
FAILURE_TTL_S = 2  # configs.BASE_CONFIG's key_failure_ttl_s: also the key set's


def access_block(path: str, *, required: bool, **changes: Any) -> dict:
    block: dict[str, Any] = {
        "required": required,
        "issuer": IDP_ISSUER,
        "jwks_cluster": JWKS_CLUSTER,
        "jwks_authority": JWKS_AUTHORITY,
        "jwks_path": path,
        "audiences": [IDP_AUDIENCE],
        "client_ids": [IDP_CLIENT_ID],
        "algorithms": ALL_ALGORITHMS,
        "groups_claim": "cognito:groups",
        "claim_headers": {"custom:tier": "x-auth-tier"},
        "jwks_fetch_timeout_ms": FETCH_TIMEOUT_MS,
        "jwks_refetch_min_interval_s": 30,
    }
    block.update(changes)
    return block


def access_config(path: str, backend: str, *, required: bool, top: dict | None = None, **changes: Any) -> dict:
    return config(
        signature_backend=backend,
        groups_claim=["custom:groups"],
        rules=RULES,
        key_failure_ttl_s=FAILURE_TTL_S,
        access_token=access_block(path, required=required, **changes),
        **(top or {}),
    )


def new_path() -> str:
    return f"/us-east-1_TEST-{uuid.uuid4().hex[:12]}/.well-known/jwks.json"


@dataclass
class Setup:
    """An Envoy with an access-token configuration and its key set."""

    envoy: FilterEnvoy
    path: str
    keys: KeySet
    backend: str


def start(make: Any, jwks_server: JwksServer, backend: str, *, required: bool, name: str, **kw: Any) -> Setup:
    """An Envoy whose key set (the standard one unless `document`) is at a
    fresh path; `jwks_port` overrides where cluster `idp_jwks` points."""
    path = new_path()
    keys = standard_key_set()
    jwks_server.publish(path, kw.pop("document", None) or keys.document())
    top = kw.pop("top", None)
    jwks_port = kw.pop("jwks_port", jwks_server.port)
    cfg = access_config(path, backend, required=required, top=top, **kw.pop("block", {}))
    e = make(cfg, jwks_port=jwks_port, name=f"{name}-{backend}", **kw)
    return Setup(e, path, keys, backend)


@pytest.fixture(autouse=True)
def _reset_jwks_server(jwks_server: JwksServer) -> Iterator[None]:
    yield
    jwks_server.reset()


@pytest.fixture(scope="module", params=BACKENDS)
def lenient(request: Any, make_envoy_module: Any, jwks_server: JwksServer) -> Setup:
    """`required: false`, per backend."""
    return start(make_envoy_module, jwks_server, request.param, required=False, name="at-lenient")


@pytest.fixture(scope="module", params=BACKENDS)
def strict(request: Any, make_envoy_module: Any, jwks_server: JwksServer) -> Setup:
    """`required: true`, per backend."""
    return start(make_envoy_module, jwks_server, request.param, required=True, name="at-strict")


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return request.param


# ------------------------------------------------------------------ helpers --


def new_sub() -> str:
    return f"user-{uuid.uuid4()}"


def data_token(minter: Minter, sub: str, groups: list[str] | None = None, **claims: Any) -> str:
    return minter.mint(payload={"sub": sub, "custom:groups": groups or [], **claims})


def send(
    s: Setup, data: str | None, access: str | None, path: str | None = None, extra: list | None = None, **kw: Any
) -> Any:
    headers = []
    if data is not None:
        headers.append(("x-amzn-oidc-data", data))
    if access is not None:
        headers.append((ACCESS_HEADER, access))
    return s.envoy.request(path or upath(), headers + (extra or []), **kw)


def allowed(s: Setup, data: str, access: str | None, path: str | None = None, extra: list | None = None) -> Any:
    headers = [(ACCESS_HEADER, access)] if access is not None else []
    return assert_allowed(s.envoy, data, headers=headers + (extra or []), path=path)


def fire(s: Setup, pairs: list[tuple[str, str]], path_prefix: str = "/c/") -> list[int]:
    """One request per (data, access) pair, all at once, each on its own connection."""
    barrier = threading.Barrier(len(pairs))

    def one(pair: tuple[str, str]) -> int:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        return send(s, pair[0], pair[1], path=path_prefix + uuid.uuid4().hex, timeout=20).status

    with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        return list(pool.map(one, pairs))


def warm(s: Setup, minter: Minter) -> None:
    """One verified request, so the Envoy holds its key set."""
    sub = new_sub()
    allowed(s, data_token(minter, sub), AccessMinter(s.keys.rsa).mint(sub))


# ------------------------------------------------------------------- valid --


def test_valid_access_tokens_verify(lenient: Setup, minter: Minter) -> None:
    """Every algorithm with a key that fits it: 200, groups joined, scopes
    injected, the token forwarded as received."""
    sub = new_sub()
    for variant, access in valid_access_tokens(lenient.keys, sub):
        d = Deltas(lenient.envoy, *OUTCOMES, *DENIALS)
        up = allowed(lenient, data_token(minter, sub, ["staff"]), access)
        d.assert_equal({VERIFIED: 1}, variant)
        assert up.get("x-auth-groups") == "readers,staff", variant
        assert up.get("x-auth-scopes") == DEFAULT_SCOPE, variant
        assert up.get(ACCESS_HEADER) == access, variant


def test_groups_union_scopes_and_claim_headers(lenient: Setup, minter: Minter) -> None:
    """x-auth-groups: the sorted, deduplicated union of the data token's and
    the access token's groups; x-auth-scopes: sorted, deduplicated,
    space-joined; claim_headers from the access token; client-sent copies of
    all three gone."""
    sub = new_sub()
    access = AccessMinter(lenient.keys.rsa).mint(
        sub, scope="orders:write openid orders:write", **{"cognito:groups": ["b", "alpha"], "custom:tier": "gold"}
    )
    forged = [("x-auth-scopes", "admin:all"), ("X-Auth-Tier", "platinum"), ("x-auth-groups", "root")]
    up = allowed(lenient, data_token(minter, sub, ["zeta", "b"]), access, extra=forged)
    assert up.all("x-auth-groups") == ["alpha,b,zeta"]
    assert up.all("x-auth-scopes") == ["openid orders:write"]
    assert up.all("x-auth-tier") == ["gold"]


def test_forged_headers_stripped_without_access_token(lenient: Setup, minter: Minter) -> None:
    forged = [("x-auth-scopes", "orders:read"), ("x-auth-tier", "gold")]
    d = Deltas(lenient.envoy, *OUTCOMES, *DENIALS)
    up = allowed(lenient, data_token(minter, new_sub(), ["staff"]), None, extra=forged)
    d.assert_equal({ABSENT: 1})
    assert up.get("x-auth-scopes") is None
    assert up.get("x-auth-tier") is None
    assert up.all("x-auth-groups") == ["staff"]


def test_verified_access_token_cache(lenient: Setup, minter: Minter) -> None:
    """The same access token on one worker: verified once, then hits; a hit
    still checks the binding to the data token's sub."""
    sub = new_sub()
    access = AccessMinter(lenient.keys.rsa).mint(sub)
    conn = lenient.envoy.connection()  # one connection = one worker = one cache
    try:
        d = Deltas(lenient.envoy, CACHE_HIT, CACHE_MISS, *OUTCOMES)
        for _ in range(3):
            r = send(lenient, data_token(minter, sub), access, conn=conn)
            assert r.status == 200 and r.upstream.get("x-auth-scopes") == DEFAULT_SCOPE, describe(r)
        d.assert_equal({CACHE_MISS: 1, CACHE_HIT: 2, VERIFIED: 3}, "one token, three requests")

        d = Deltas(lenient.envoy, *OUTCOMES, *DENIALS)
        r = send(lenient, data_token(minter, new_sub()), access, conn=conn)
        assert r.status == 200, describe(r)
        assert r.upstream.get("x-auth-scopes") is None and r.upstream.get(ACCESS_HEADER) is None
        d.assert_equal({INVALID_COUNTER: 1}, "a cached token under another login's data token")
    finally:
        conn.close()


def test_cached_access_token_still_expires(lenient: Setup, minter: Minter) -> None:
    sub = new_sub()
    exp = int(time.time()) + 4
    access = AccessMinter(lenient.keys.rsa).mint(sub, exp=exp)
    conn = lenient.envoy.connection()
    try:
        r = send(lenient, data_token(minter, sub), access, conn=conn)
        assert r.status == 200 and r.upstream.get("x-auth-scopes") == DEFAULT_SCOPE, describe(r)
        wait_until(lambda: time.time() > exp + 1, timeout=exp + 3 - time.time(), what="the access token's exp passed")
        d = Deltas(lenient.envoy, *OUTCOMES)
        r = send(lenient, data_token(minter, sub), access, conn=conn)
        assert r.status == 200 and r.upstream.get("x-auth-scopes") is None, describe(r)
        d.assert_equal({INVALID_COUNTER: 1})
    finally:
        conn.close()


# --------------------------------------------------------------------- bad --

BAD_IDS = [b.id for b in bad_access_tokens(standard_key_set(), "listing-only")]


def _bad(s: Setup, bad_id: str, sub: str) -> Any:
    (bad,) = [b for b in bad_access_tokens(s.keys, sub) if b.id == bad_id]
    return bad


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_access_token_refused_when_required(strict: Setup, echo: Any, minter: Minter, bad_id: str) -> None:
    sub = new_sub()
    bad = _bad(strict, bad_id, sub)
    d = Deltas(strict.envoy, *DENIALS, VERIFIED)
    assert_refused(strict.envoy, echo, data_token(minter, sub), 401, headers={ACCESS_HEADER: bad.token}, what=bad_id)
    got = d.now()
    moved = [r for r in bad.reasons if got["alb_oidc.requests.denied." + r] == 1]
    assert len(moved) == 1 and sum(got.values()) == 1, f"{bad_id}: counter deltas {got}, expected one of {bad.reasons}"


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_access_token_counts_as_absent(lenient: Setup, minter: Minter, bad_id: str) -> None:
    """`required: false`: the request goes on as if there were no access
    token (data-token groups only, no scopes) and the header is gone."""
    sub = new_sub()
    bad = _bad(lenient, bad_id, sub)
    d = Deltas(lenient.envoy, *OUTCOMES, *DENIALS)
    up = allowed(lenient, data_token(minter, sub, ["staff"]), bad.token)
    got = d.now()
    counters = {INVALID: INVALID_COUNTER, MISSING: ABSENT}
    moved = [r for r in bad.reasons if got[counters[r]] == 1]
    assert len(moved) == 1 and sum(got.values()) == 1, f"{bad_id}: counter deltas {got}"
    assert up.get(ACCESS_HEADER) is None, f"{bad_id}: forwarded"
    assert up.get("x-auth-scopes") is None
    assert up.all("x-auth-groups") == ["staff"]


def test_missing_access_token_when_required(strict: Setup, echo: Any, minter: Minter) -> None:
    d = Deltas(strict.envoy, *DENIALS, VERIFIED)
    assert_refused(strict.envoy, echo, data_token(minter, new_sub()), 401)
    d.assert_equal({DENIED_MISSING: 1})


def test_missing_access_token_when_not_required(lenient: Setup, minter: Minter) -> None:
    d = Deltas(lenient.envoy, *OUTCOMES, *DENIALS)
    up = allowed(lenient, data_token(minter, new_sub(), ["staff"]), None)
    d.assert_equal({ABSENT: 1})
    assert up.all("x-auth-groups") == ["staff"] and up.get("x-auth-scopes") is None


def test_invalid_access_token_forwarded_when_asked(
    make_envoy: Any, jwks_server: JwksServer, minter: Minter, backend: str
) -> None:
    s = start(
        make_envoy,
        jwks_server,
        backend,
        required=False,
        name="at-forward",
        top={"forward_unverified_alb_headers": True},
    )
    sub = new_sub()
    bad = AccessMinter(s.keys.rsa).mint(sub + "-other")
    up = allowed(s, data_token(minter, sub), bad)
    assert up.get(ACCESS_HEADER) == bad
    assert up.get("x-auth-scopes") is None


def test_access_token_only_after_the_data_token(strict: Setup, echo: Any, jwks_server: JwksServer) -> None:
    """No data token (or a bad one): 401 for it, and the access token is
    never looked at: no key set fetch, no access-token outcome."""
    before = jwks_server.fetches(strict.path)
    access = AccessMinter(strict.keys.rsa).mint(new_sub())
    d = Deltas(strict.envoy, *OUTCOMES, DENIED_MISSING, DENIED_INVALID, DENIED_JWKS)
    assert_refused(strict.envoy, echo, None, 401, headers={ACCESS_HEADER: access})
    assert_refused(strict.envoy, echo, "not.a.token", 401, headers={ACCESS_HEADER: access})
    d.assert_equal({})
    assert jwks_server.fetches(strict.path) == before


def test_optional_route_without_data_token_drops_access_token(lenient: Setup) -> None:
    access = AccessMinter(lenient.keys.rsa).mint(new_sub())
    r = send(lenient, None, access, path=upath("catalog"), extra=[("x-auth-scopes", "orders:read")])
    assert r.status == 200, describe(r)
    assert r.upstream.get(ACCESS_HEADER) is None
    assert r.upstream.get("x-auth-scopes") is None


# ------------------------------------------------------------------- rules --


@pytest.mark.parametrize(
    "path,claims,status",
    [
        ("/orders/1", {"scope": "openid orders:read"}, 200),
        ("/orders/1", {"scope": ["orders:admin"]}, 200),
        ("/orders/1", {"scope": "openid"}, 403),
        ("/orders/1", {"scope": None}, 403),
        ("/orders-write/1", {"scope": "orders:write orders:read"}, 200),
        ("/orders-write/1", {"scope": "orders:write"}, 403),
        ("/gold/1", {"custom:tier": "gold"}, 200),
        ("/gold/1", {"custom:tier": "silver"}, 403),
        ("/gold/1", {}, 403),
        ("/admin/1", {"cognito:groups": ["admin"]}, 200),
        ("/admin/1", {"cognito:groups": ["readers"]}, 403),
    ],
)
def test_access_token_requirements(
    lenient: Setup, echo: Any, minter: Minter, path: str, claims: dict, status: int
) -> None:
    sub = new_sub()
    access = AccessMinter(lenient.keys.rsa).mint(sub, **claims)
    rule = {"orders": "orders", "orders-write": "orders_write", "gold": "gold", "admin": "admin"}[path.split("/")[1]]
    d = Deltas(lenient.envoy, *rule_counters(rule), DENIED_FORBIDDEN, *DENIALS)
    p = path + "/" + uuid.uuid4().hex
    if status == 200:
        allowed(lenient, data_token(minter, sub), access, path=p)
        d.assert_equal({f"alb_oidc.rule.{rule}.allowed": 1})
    else:
        assert_refused(lenient.envoy, echo, data_token(minter, sub), status, headers={ACCESS_HEADER: access}, path=p)
        d.assert_equal({f"alb_oidc.rule.{rule}.denied": 1, DENIED_FORBIDDEN: 1})


def test_requirements_without_access_token_are_not_met(lenient: Setup, echo: Any, minter: Minter) -> None:
    """No access token, or an invalid one: scopes and access claims are
    absent, so those rules answer 403 (the key set is fine: not 503)."""
    sub = new_sub()
    bad = AccessMinter(lenient.keys.rsa).mint(sub, exp=int(time.time()) - 60, scope="orders:read")
    for access in (None, bad):
        d = Deltas(lenient.envoy, *rule_counters("orders"), DENIED_FORBIDDEN, DENIED_JWKS)
        headers = {ACCESS_HEADER: access} if access else None
        assert_refused(lenient.envoy, echo, data_token(minter, sub), 403, headers=headers, path=upath("orders"))
        d.assert_equal({"alb_oidc.rule.orders.denied": 1, DENIED_FORBIDDEN: 1})


@pytest.mark.parametrize("bound", [{}, {"client_ids": []}, {"audiences": []}, {"client_ids": [], "audiences": []}])
def test_scope_rules_need_client_ids_or_audiences(tmp_path: Any, wasm: Any, bound: dict) -> None:
    """Without `client_ids` or `audiences`, a token of another app client of
    the same pool (same issuer, keys and user) could bring broader scopes:
    rules on scopes or access claims are refused then (`envoy --mode
    validate` runs the filter's on_configure)."""
    cfg = access_config(new_path(), "rust", required=False, **bound)
    path = FilterEnvoy(cfg, key_port=1, echo_port=1, jwks_port=1, wasm_path=wasm, workdir=tmp_path).write_config()
    out = envoy_validate(path)
    unbound = bound.get("client_ids") == [] and bound.get("audiences") == []
    assert (out.returncode != 0) == unbound, out.stdout[-3000:]
    if unbound:
        assert "access_token" in out.stdout, out.stdout[-3000:]


# ------------------------------------------------------------ key set fetch --


def test_one_fetch_with_the_configured_authority_and_path(
    make_envoy: Any, jwks_server: JwksServer, minter: Minter, backend: str
) -> None:
    s = start(make_envoy, jwks_server, backend, required=True, name="at-fetch")
    d = Deltas(s.envoy, *FETCHES, *OUTCOMES)
    sub = new_sub()
    for _ in range(3):
        allowed(s, data_token(minter, sub), AccessMinter(s.keys.rsa).mint(sub))
    d.assert_equal({FETCH_OK: 1, VERIFIED: 3})
    assert jwks_server.hosts(s.path) == [JWKS_AUTHORITY]


def test_unknown_kid_refetches_once(make_envoy: Any, jwks_server: JwksServer, minter: Minter, backend: str) -> None:
    """After the refetch interval, an unknown kid costs exactly one refetch;
    more unknown kids within the interval cost none (and are invalid)."""
    interval = 2
    s = start(make_envoy, jwks_server, backend, required=True, name="at-unknown-kid",
              block={"jwks_refetch_min_interval_s": interval})  # fmt: skip
    warm(s, minter)
    fetched_at = time.time()
    assert jwks_server.fetches(s.path) == 1
    wait_until(lambda: time.time() > fetched_at + interval + 0.3, timeout=interval + 2, what="the refetch interval")
    d = Deltas(s.envoy, *FETCHES, *DENIALS)
    sub = new_sub()
    for _ in range(3):
        stranger = AccessMinter(IdpKey("rsa-b", f"unknown-{uuid.uuid4().hex}")).mint(sub)
        r = send(s, data_token(minter, sub), stranger)
        assert r.status == 401, describe(r)
    d.assert_equal({FETCH_OK: 1, DENIED_INVALID: 3})
    assert jwks_server.fetches(s.path) == 2


def test_key_rotation(make_envoy: Any, jwks_server: JwksServer, minter: Minter, backend: str) -> None:
    """The IdP publishes a new key and signs with it: the first token naming
    it refetches the key set and verifies; tokens of the old key still do
    while it is published."""
    interval = 1
    s = start(make_envoy, jwks_server, backend, required=True, name="at-rotation",
              block={"jwks_refetch_min_interval_s": interval})  # fmt: skip
    old = s.keys.rsa
    new = IdpKey("rsa-b", f"rotated-{uuid.uuid4().hex[:8]}")
    warm(s, minter)
    fetched_at = time.time()
    jwks_server.publish(s.path, jwks(old, new))
    wait_until(lambda: time.time() > fetched_at + interval + 0.3, timeout=interval + 2, what="the refetch interval")
    d = Deltas(s.envoy, *FETCHES, *OUTCOMES, *DENIALS)
    sub = new_sub()
    for key in (new, old, new):
        up = allowed(s, data_token(minter, sub), AccessMinter(key).mint(sub))
        assert up.get("x-auth-scopes") == DEFAULT_SCOPE
    d.assert_equal({FETCH_OK: 1, VERIFIED: 3})
    assert jwks_server.fetches(s.path) == 2


def test_random_kid_flood_one_refetch_per_interval(
    make_envoy: Any, jwks_server: JwksServer, minter: Minter, backend: str
) -> None:
    interval = 4
    s = start(make_envoy, jwks_server, backend, required=True, name="at-flood",
              block={"jwks_refetch_min_interval_s": interval})  # fmt: skip
    warm(s, minter)
    fetched_at = time.time()
    wait_until(lambda: time.time() > fetched_at + interval + 0.3, timeout=interval + 2, what="the refetch interval")
    sub = new_sub()
    data = data_token(minter, sub)
    pairs = [(data, AccessMinter(IdpKey("rsa-b", f"flood-{i}-{uuid.uuid4().hex}")).mint(sub)) for i in range(100)]
    d = Deltas(s.envoy, *FETCHES, DENIED_INVALID)
    began = time.monotonic()
    statuses = fire(s, pairs)
    took = time.monotonic() - began
    assert took < interval, f"the flood took {took:.1f} s, longer than one refetch interval: no definite answer"
    assert statuses == [401] * 100, {x: statuses.count(x) for x in set(statuses)}
    d.assert_equal({FETCH_OK: 1, DENIED_INVALID: 100})
    assert jwks_server.fetches(s.path) == 2


def test_concurrent_first_requests_one_fetch(
    make_envoy: Any, jwks_server: JwksServer, minter: Minter, backend: str
) -> None:
    s = start(make_envoy, jwks_server, backend, required=True, name="at-coalesce",
              block={"jwks_fetch_timeout_ms": 5000})  # fmt: skip
    jwks_server.set_delay(s.path, 1.0)  # keep the fetch in flight while requests pile up
    sub = new_sub()
    data = data_token(minter, sub)
    rsa = AccessMinter(s.keys.rsa)
    d = Deltas(s.envoy, *FETCHES, VERIFIED)
    statuses = fire(s, [(data, rsa.mint(sub)) for _ in range(50)])
    assert statuses == [200] * 50, {x: statuses.count(x) for x in set(statuses)}
    d.assert_equal({FETCH_OK: 1, VERIFIED: 50})
    assert jwks_server.fetches(s.path) == 1


# ------------------------------------------------------------ key set faults --

# mode, the fetch counter it moves. `down`: nothing listens on the cluster's port.
FAULTS = [
    ("down", FETCH_FAILED),
    ("reset", FETCH_FAILED),
    ("slow", FETCH_FAILED),
    ("500", FETCH_FAILED),
    ("404", FETCH_FAILED),
    ("garbage", FETCH_INVALID),
    ("not_jwks", FETCH_INVALID),
    ("oversized", FETCH_INVALID),
    ("duplicate_kid", FETCH_INVALID),
]


def _faulty(make_envoy: Any, jwks_server: JwksServer, backend: str, mode: str, required: bool) -> Setup:
    kw: dict[str, Any] = {}
    if mode == "down":
        kw["jwks_port"] = free_port()
    if mode == "duplicate_kid":
        ks = standard_key_set()
        kw["document"] = jwks(ks.rsa, IdpKey("rsa-b", ks.rsa.kid))
    s = start(make_envoy, jwks_server, backend, required=required, name=f"at-{mode}", **kw)
    if mode not in ("down", "duplicate_kid"):
        jwks_server.set_mode(s.path, mode)
    return s


@pytest.mark.parametrize("mode,counter", FAULTS, ids=[f[0] for f in FAULTS])
def test_key_set_fault_when_required(
    make_envoy: Any, jwks_server: JwksServer, echo: Any, minter: Minter, backend: str, mode: str, counter: str
) -> None:
    """503 (within the fetch timeout plus a margin), one fetch remembered
    for key_failure_ttl_s; then the key set comes back and verifies."""
    s = _faulty(make_envoy, jwks_server, backend, mode, required=True)
    sub = new_sub()
    rsa = AccessMinter(s.keys.rsa)
    d = Deltas(s.envoy, *FETCHES, *DENIALS, VERIFIED)
    for _ in range(2):
        began = time.monotonic()
        assert_refused(s.envoy, echo, data_token(minter, sub), 503, headers={ACCESS_HEADER: rsa.mint(sub)}, what=mode)
        assert time.monotonic() - began < FETCH_TIMEOUT_MS / 1000 + 2
    d.assert_equal({counter: 1, DENIED_JWKS: 2}, mode)
    if mode == "down":
        return
    jwks_server.reset()
    jwks_server.publish(s.path, s.keys.document())

    def recovered() -> bool:
        return send(s, data_token(minter, sub), rsa.mint(sub)).status == 200

    wait_until(recovered, timeout=FAILURE_TTL_S + 4, interval=0.3, what="the key set fetched again after the TTL")


@pytest.mark.parametrize("mode,counter", FAULTS, ids=[f[0] for f in FAULTS])
def test_key_set_fault_when_not_required(
    make_envoy: Any, jwks_server: JwksServer, echo: Any, minter: Minter, backend: str, mode: str, counter: str
) -> None:
    """The request is decided without the access token: a rule that holds
    without it passes (its groups and scopes left out), a rule that needs it
    gets 503."""
    s = _faulty(make_envoy, jwks_server, backend, mode, required=False)
    sub = new_sub()
    rsa = AccessMinter(s.keys.rsa)
    d = Deltas(s.envoy, *FETCHES, DENIALS[2], VERIFIED)
    up = allowed(s, data_token(minter, sub, ["staff"]), rsa.mint(sub))
    assert up.get("x-auth-scopes") is None and up.all("x-auth-groups") == ["staff"]
    assert up.get(ACCESS_HEADER) is None
    up = allowed(s, data_token(minter, sub, ["admin"]), rsa.mint(sub, **{"cognito:groups": []}), path=upath("admin"))
    assert up.all("x-auth-groups") == ["admin"]
    assert_refused(s.envoy, echo, data_token(minter, sub), 503, headers={ACCESS_HEADER: rsa.mint(sub)},
                   path=upath("orders"), what=mode)  # fmt: skip
    d.assert_equal({counter: 1, DENIED_JWKS: 1}, mode)
