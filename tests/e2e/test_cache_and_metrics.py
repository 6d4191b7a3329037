"""The verified-token cache (per worker, keyed by the whole token, expiring at
exp) and the filter's counters agreeing with the traffic sent."""

from __future__ import annotations

import time

from checks import assert_allowed, upath
from configs import config
from envoykit.wait import wait_until
from tokens import FOREIGN_ARN, Key, Minter, b64u, b64u_decode


def test_repeated_token_hits_cache(envoy_main, minter):
    token = minter.mint()
    before = envoy_main.counters("alb_oidc.token_cache.hit", "alb_oidc.token_cache.miss")
    conn = envoy_main.connection()  # one connection = one worker = one cache
    try:
        for _ in range(10):
            r = envoy_main.request(upath(), [("x-amzn-oidc-data", token)], conn=conn)
            assert r.status == 200
            assert r.upstream.get("x-auth-user")
    finally:
        conn.close()
    after = envoy_main.counters("alb_oidc.token_cache.hit", "alb_oidc.token_cache.miss")
    hits = after["alb_oidc.token_cache.hit"] - before["alb_oidc.token_cache.hit"]
    misses = after["alb_oidc.token_cache.miss"] - before["alb_oidc.token_cache.miss"]
    assert misses == 1 and hits == 9, f"hits {hits}, misses {misses}"


def test_cache_is_keyed_by_whole_token(envoy_main, echo, minter):
    """A cached token with its signature changed is not a hit."""
    token = minter.mint()
    conn = envoy_main.connection()
    try:
        assert envoy_main.request(upath(), [("x-amzn-oidc-data", token)], conn=conn).status == 200
        h, p, _ = token.split(".")
        forged = f"{h}.{p}.{b64u(bytes(64))}"
        pth = upath()
        r = envoy_main.request(pth, [("x-amzn-oidc-data", forged)], conn=conn)
        assert r.status == 401 and echo.hits(pth) == 0
        # same header and payload, validly signed by a key that is not the kid's
        other = Minter(Key.generate(), signer=minter.signer).from_bytes(b64u_decode(h), b64u_decode(p))
        pth = upath()
        r = envoy_main.request(pth, [("x-amzn-oidc-data", other)], conn=conn)
        assert r.status == 401 and echo.hits(pth) == 0
    finally:
        conn.close()


def test_cached_token_still_expires(envoy_main, echo, minter):
    """Cache entries expire at exp: a cached token is refused once expired."""
    exp = int(time.time()) + 5  # 4 to 5 s ahead: the first two requests are well before it
    token = minter.mint(exp=exp)
    conn = envoy_main.connection()  # one connection = one worker = one cache
    try:
        before = envoy_main.counter("alb_oidc.token_cache.hit")
        assert envoy_main.request(upath(), [("x-amzn-oidc-data", token)], conn=conn).status == 200
        assert envoy_main.request(upath(), [("x-amzn-oidc-data", token)], conn=conn).status == 200
        assert envoy_main.counter("alb_oidc.token_cache.hit") - before == 1, "the token was not cached"
        wait_until(lambda: time.time() > exp + 1, timeout=exp + 2 - time.time(), what="the token's exp passed")
        pth = upath()
        r = envoy_main.request(pth, [("x-amzn-oidc-data", token)], conn=conn)
        assert r.status == 401, f"expired cached token accepted: {r.status}"
        assert echo.hits(pth) == 0
    finally:
        conn.close()


def test_counters_agree_with_traffic(make_envoy, key_server, new_minter):
    e = make_envoy(config(), name="metrics")
    m = new_minter()
    unknown = new_minter(register=False)
    broken = new_minter()
    key_server.set_mode(broken.kid, "500")

    # 5 distinct valid tokens (5 verifications, one key fetch)
    for _ in range(5):
        assert_allowed(e, m.mint())
    # 3 without a token, 2 exempt, 2 malformed, 1 foreign signer, 1 expired,
    # 1 bad signature, 1 unknown kid, 1 key unavailable, 1 bad issuer
    for _ in range(3):
        assert e.request(upath()).status == 401
    assert e.request("/healthz").status == 200
    assert e.request("/static/x.css").status == 200
    for t in ("a.b", "!!.!!.!!"):
        assert e.request(upath(), [("x-amzn-oidc-data", t)]).status == 401
    assert e.request(upath(), [("x-amzn-oidc-data", Minter(m.key, signer=FOREIGN_ARN).mint())]).status == 401
    assert e.request(upath(), [("x-amzn-oidc-data", m.mint(exp=m.now() - 100))]).status == 401
    assert e.request(upath(), [("x-amzn-oidc-data", m.mint(key=Key.generate()))]).status == 401
    assert e.request(upath(), [("x-amzn-oidc-data", unknown.mint())]).status == 401
    assert e.request(upath(), [("x-amzn-oidc-data", broken.mint())]).status == 503
    assert e.request(upath(), [("x-amzn-oidc-data", m.mint(payload={"iss": "https://evil"}))]).status == 401

    c = e.counters(
        "alb_oidc.requests.allowed",
        "alb_oidc.requests.exempt",
        "alb_oidc.requests.anonymous",
        "alb_oidc.requests.denied.missing_token",
        "alb_oidc.requests.denied.malformed",
        "alb_oidc.requests.denied.untrusted_signer",
        "alb_oidc.requests.denied.expired",
        "alb_oidc.requests.denied.bad_signature",
        "alb_oidc.requests.denied.unknown_key",
        "alb_oidc.requests.denied.key_unavailable",
        "alb_oidc.requests.denied.bad_issuer",
        "alb_oidc.key_fetch.ok",
        "alb_oidc.key_fetch.not_found",
        "alb_oidc.key_fetch.failed",
        "alb_oidc.key_fetch.invalid",
        "alb_oidc.token_cache.hit",
    )
    expected = {
        "alb_oidc.requests.allowed": 5,
        "alb_oidc.requests.exempt": 2,
        "alb_oidc.requests.anonymous": 0,
        "alb_oidc.requests.denied.missing_token": 3,
        "alb_oidc.requests.denied.malformed": 2,
        "alb_oidc.requests.denied.untrusted_signer": 1,
        "alb_oidc.requests.denied.expired": 1,
        "alb_oidc.requests.denied.bad_signature": 1,
        "alb_oidc.requests.denied.unknown_key": 1,
        "alb_oidc.requests.denied.key_unavailable": 1,
        "alb_oidc.requests.denied.bad_issuer": 1,
        "alb_oidc.key_fetch.ok": 1,
        "alb_oidc.key_fetch.not_found": 1,
        "alb_oidc.key_fetch.failed": 1,
        "alb_oidc.key_fetch.invalid": 0,
        "alb_oidc.token_cache.hit": 0,
    }
    assert c == expected, "counters disagree with traffic:\n" + "\n".join(
        f"  {k}: got {c[k]}, expected {expected[k]}" for k in expected if c[k] != expected[k]
    )
    # the Prometheus exposition parses and carries the same values
    prom = prometheus_counters(e, list(expected))
    assert prom == expected, "Prometheus exposition disagrees with the traffic:\n" + "\n".join(
        f"  {k}: got {prom[k]}, expected {expected[k]}" for k in expected if prom[k] != expected[k]
    )


def prometheus_counters(e, names: list[str]) -> dict[str, int]:
    """Per stat name (e.g. `alb_oidc.requests.allowed`), the value of its one
    counter in Envoy's Prometheus exposition, parsed by the Prometheus client
    library (so a malformed exposition fails here): `alb_oidc_requests_allowed`,
    which the parser reports as the sample `alb_oidc_requests_allowed_total`."""
    samples = e.process.admin.prometheus()
    out = {}
    for name in names:
        sample_name = name.replace(".", "_") + "_total"
        found = [s for s in samples if s.name == sample_name]
        assert len(found) == 1, f"{name}: expected one Prometheus sample {sample_name}, found {found}"
        out[name] = int(found[0].value)
    return out


def test_metrics_exist_before_traffic_or_after_first(make_envoy):
    """Counters show up in /stats (either defined at start or after first use)."""
    e = make_envoy(config(), name="metrics-names")
    e.request("/healthz")
    wait_until(lambda: e.counter("alb_oidc.requests.exempt") == 1, timeout=5, what="exempt counter")


def test_verified_token_cache_is_bounded(make_envoy, minter):
    e = make_envoy(config(verified_token_cache_max=1), name="tokcache-bound")
    tokens = [minter.mint() for _ in range(10)]
    conn = e.connection()
    try:
        for _ in range(2):
            for t in tokens:
                assert e.request(upath(), [("x-amzn-oidc-data", t)], conn=conn).status == 200
    finally:
        conn.close()
    c = e.counters("alb_oidc.token_cache.hit", "alb_oidc.token_cache.miss")
    # one slot: every token evicts the one before, and no token follows itself
    assert c == {"alb_oidc.token_cache.hit": 0, "alb_oidc.token_cache.miss": 20}, c
