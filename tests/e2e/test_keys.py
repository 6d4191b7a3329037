"""Public-key fetching: request shape, caching across workers, coalescing of
concurrent fetches, negative caching, key-endpoint faults (401 vs 503, always
within the fetch timeout plus a margin) and recovery."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from checks import assert_allowed, assert_refused, upath
from configs import FAULT_CONFIG, config
from envoykit.wait import wait_until
from tokens import FOREIGN_ARN

MAIN_TTL = config()["key_failure_ttl_s"]
# Negative entries of the long-TTL Envoy outlive any test, so exact fetch
# counts hold however slow the machine is.
LONG_TTL = 600
FAULT_TTL = FAULT_CONFIG["key_failure_ttl_s"]
FAULT_TIMEOUT_S = FAULT_CONFIG["key_fetch_timeout_ms"] / 1000
# A request that needs a failing key fetch must finish within the fetch timeout
# plus this margin (generous: a loaded 2-core CI box).
MARGIN_S = 8.0


def fire(envoy, tokens, paths=None, workers=None, timeout=20.0):
    """Send one request per token concurrently, each on its own connection.
    Returns the list of status codes (in token order)."""
    n = len(tokens)
    barrier = threading.Barrier(min(n, workers or n))

    def one(i):
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        r = envoy.request(paths[i] if paths else upath("c"), [("x-amzn-oidc-data", tokens[i])], timeout=timeout)
        return r.status

    with ThreadPoolExecutor(max_workers=workers or n) as pool:
        return list(pool.map(one, range(n)))


# ------------------------------------------------------------ request shape --


def test_key_request_shape_default_region(envoy_main, key_server, minter):
    assert_allowed(envoy_main, minter.mint())
    reqs = key_server.requests_for(minter.kid)
    assert reqs == [("/" + minter.kid, "public-keys.auth.elb.us-east-1.amazonaws.com")], reqs


def test_key_cached_across_requests_and_workers(envoy_main, key_server, minter):
    # distinct tokens (no verified-token cache hits), each on a new connection so
    # both workers get some: the key is fetched once per Envoy, not per worker.
    for _ in range(20):
        assert_allowed(envoy_main, minter.mint())
    assert key_server.count_kid(minter.kid) == 1


def test_key_request_shape_govcloud_defaults(make_envoy, key_server, minter):
    e = make_envoy(config(region="us-gov-west-1"), name="gov")
    assert_allowed(e, minter.mint())
    reqs = key_server.requests_for(minter.kid)
    assert reqs == [(f"/aws-elb-public-keys-prod-us-gov-west-1/{minter.kid}", "s3-us-gov-west-1.amazonaws.com")], reqs


def test_key_request_overrides_and_cache_ttl(make_envoy, key_server, minter):
    cfg = config(
        region="cn-north-1",
        key_cluster="my_key_cluster",
        key_authority="keys.internal.test",
        key_path_prefix="/keys/v1/",
        key_cache_ttl_s=1,
    )
    e = make_envoy(cfg, key_cluster="my_key_cluster", name="overrides")
    assert_allowed(e, minter.mint())
    assert key_server.requests_for(minter.kid) == [(f"/keys/v1/{minter.kid}", "keys.internal.test")]

    # key_cache_ttl_s=1: the key is fetched again once it expired
    def refetched():
        assert_allowed(e, minter.mint())
        return key_server.count_kid(minter.kid) == 2

    wait_until(refetched, timeout=6, interval=0.3, what="key re-fetch after key_cache_ttl_s")


# ------------------------------------------------------ signer before fetch --


def test_foreign_signer_flood_costs_no_fetch(envoy_main, echo, key_server, new_minter):
    m = new_minter(signer=FOREIGN_ARN)  # the key exists; only the signer is wrong
    before = key_server.total()
    statuses = fire(envoy_main, [m.mint() for _ in range(50)], workers=25)
    assert statuses == [401] * 50
    assert key_server.total() == before, "a key was fetched for a token from a foreign ALB"


# ---------------------------------------------------------------- coalescing --


@pytest.mark.parametrize("concurrency", [1, 2])
def test_coalescing_new_kid(make_envoy, key_server, minter, concurrency):
    """200 concurrent requests with a kid nobody has fetched yet: the key server
    sees exactly one request per Envoy process; every request is answered 200."""
    e = make_envoy(config(), concurrency=concurrency, name=f"coalesce-c{concurrency}")
    key_server.set_delay(minter.kid, 1.0)  # keep the fetch in flight while requests pile up
    tokens = [minter.mint() for _ in range(200)]
    statuses = fire(e, tokens, workers=200)
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
    assert key_server.count_kid(minter.kid) == 1, (
        f"--concurrency {concurrency}: {key_server.count_kid(minter.kid)} key fetches for one kid"
    )
    assert e.counter("alb_oidc.key_fetch.ok") == 1


@pytest.mark.parametrize("mode,status", [("404", 401), ("500", 503)])
def test_coalescing_failing_kid(envoy_main, key_server, new_minter, mode, status):
    m = new_minter()
    key_server.set_mode(m.kid, mode)
    key_server.set_delay(m.kid, 0.7)
    statuses = fire(envoy_main, [m.mint() for _ in range(100)], workers=100)
    assert statuses == [status] * 100, {s: statuses.count(s) for s in set(statuses)}
    assert key_server.count_kid(m.kid) == 1


# ---------------------------------------------------------- negative caching --


@pytest.fixture(scope="module")
def envoy_long_ttl(make_envoy_module):
    """Failed fetches remembered for LONG_TTL; short fetch timeout (stalls)."""
    return make_envoy_module(
        config(key_failure_ttl_s=LONG_TTL, key_fetch_timeout_ms=FAULT_CONFIG["key_fetch_timeout_ms"]),
        name="long-failure-ttl",
    )


def test_negative_cache_unknown_kid(envoy_long_ttl, echo, key_server, new_minter):
    m = new_minter(register=False)
    for _ in range(5):
        assert_refused(envoy_long_ttl, echo, m.mint(), 401)
    assert key_server.count_kid(m.kid) == 1, "unknown kid fetched again within key_failure_ttl_s"


def test_unknown_kid_fetched_again_after_failure_ttl(envoy_main, echo, key_server, new_minter):
    m = new_minter(register=False)
    assert_refused(envoy_main, echo, m.mint(), 401)
    assert key_server.count_kid(m.kid) == 1

    def refetched():
        assert_refused(envoy_main, echo, m.mint(), 401)
        return key_server.count_kid(m.kid) == 2

    wait_until(refetched, timeout=MAIN_TTL + 4, interval=0.3, what="re-fetch after key_failure_ttl_s")


def test_random_kid_flood_one_fetch_each(envoy_long_ttl, echo, key_server, new_minter):
    minters = [new_minter(register=False) for _ in range(30)]
    statuses = fire(envoy_long_ttl, [m.mint() for m in minters] * 2, workers=30)
    assert statuses == [401] * 60
    counts = [key_server.count_kid(m.kid) for m in minters]
    assert counts == [1] * 30, counts


def test_failing_kid_does_not_block_other_kids(envoy_main, echo, key_server, new_minter):
    bad, good = new_minter(), new_minter()
    key_server.set_mode(bad.kid, "500")
    assert_refused(envoy_main, echo, bad.mint(), 503)
    assert_allowed(envoy_main, good.mint())


# ------------------------------------------------------------ endpoint faults --

FAULTS = [
    # mode, status, acceptable key_fetch.<result> counters
    ("404", 401, ("not_found",)),
    ("403", 401, ("not_found",)),
    ("500", 503, ("failed",)),
    ("503", 503, ("failed",)),
    ("429", 503, ("failed", "invalid")),
    ("302", 503, ("failed", "invalid")),
    ("stall", 503, ("failed",)),
    ("drip", 503, ("failed", "invalid")),
    ("reset", 503, ("failed",)),
    ("close", 503, ("failed",)),
    ("garbage", 503, ("invalid", "failed")),
    ("empty", 503, ("invalid", "failed")),
    ("huge", 503, ("invalid", "failed")),
    ("nonpem", 503, ("invalid", "failed")),
    ("der", 503, ("invalid", "failed")),
    ("p384", 503, ("invalid", "failed")),
    ("rsa", 503, ("invalid", "failed")),
    ("private", 503, ("invalid", "failed")),
]

FETCH_RESULTS = ("ok", "not_found", "failed", "invalid")


@pytest.mark.parametrize("mode,status,results", FAULTS, ids=[f[0] for f in FAULTS])
def test_key_endpoint_fault(envoy_fault, echo, key_server, new_minter, mode, status, results):
    m = new_minter()
    key_server.set_mode(m.kid, mode)
    before = envoy_fault.counters(*[f"alb_oidc.key_fetch.{r}" for r in FETCH_RESULTS])
    t0 = time.monotonic()
    p = upath("fault")
    r = envoy_fault.request(p, [("x-amzn-oidc-data", m.mint())], timeout=FAULT_TIMEOUT_S + MARGIN_S)
    assert time.monotonic() - t0 < FAULT_TIMEOUT_S + MARGIN_S
    assert r.status == status, f"key endpoint {mode}: expected {status}, got {r.status} {r.body[:200]!r}"
    assert echo.hits(p) == 0
    after = envoy_fault.counters(*[f"alb_oidc.key_fetch.{r}" for r in FETCH_RESULTS])
    delta = {k.rsplit(".", 1)[-1]: after[k] - before[k] for k in after if after[k] != before[k]}
    assert sum(delta.values()) == 1 and set(delta) <= set(results), f"{mode}: key_fetch counters moved {delta}"
    # recovery: once the fault is gone and the negative entry expired, 200
    key_server.clear_mode(m.kid)

    def recovered():
        return (
            envoy_fault.request(
                upath("rec"), [("x-amzn-oidc-data", m.mint())], timeout=FAULT_TIMEOUT_S + MARGIN_S
            ).status
            == 200
        )

    wait_until(recovered, timeout=FAULT_TTL + 6, interval=0.25, what=f"recovery after {mode}")


@pytest.mark.parametrize("mode,status,results", FAULTS, ids=[f[0] for f in FAULTS])
def test_key_endpoint_fault_negative_cached(envoy_long_ttl, echo, key_server, new_minter, mode, status, results):
    """While the failure is remembered, a repeat gives the same answer without a new fetch."""
    m = new_minter()
    key_server.set_mode(m.kid, mode)
    for _ in range(3):
        assert_refused(envoy_long_ttl, echo, m.mint(), status, what=f"key endpoint {mode}")
    assert key_server.count_kid(m.kid) == 1


def test_global_outage_and_recovery(envoy_fault, echo, key_server, new_minter):
    key_server.set_mode(None, "500")
    minters = [new_minter() for _ in range(3)]
    for m in minters:
        assert_refused(envoy_fault, echo, m.mint(), 503)
    key_server.clear_mode(None)
    for m in minters:
        wait_until(
            lambda m=m: envoy_fault.request(upath(), [("x-amzn-oidc-data", m.mint())]).status == 200,
            timeout=FAULT_TTL + 6,
            interval=0.25,
            what="recovery after global outage",
        )


def test_stalled_fetch_coalesced_and_bounded(envoy_fault, key_server, new_minter):
    """Requests waiting on a stalled fetch are all answered 503 by the timeout."""
    m = new_minter()
    key_server.set_mode(m.kid, "stall")
    t0 = time.monotonic()
    statuses = fire(envoy_fault, [m.mint() for _ in range(40)], workers=40, timeout=FAULT_TIMEOUT_S + MARGIN_S)
    assert time.monotonic() - t0 < FAULT_TIMEOUT_S + MARGIN_S + 5
    assert statuses == [503] * 40, {s: statuses.count(s) for s in set(statuses)}
    assert key_server.count_kid(m.kid) == 1


def test_wrong_key_served_is_bad_signature(envoy_fault, echo, key_server, new_minter):
    """The endpoint serves a valid P-256 key, but not the one that signed: 401."""
    m, other = new_minter(), new_minter()
    key_server.add_key(m.kid, other.key.pem)
    before = envoy_fault.counter("alb_oidc.requests.denied.bad_signature")
    assert_refused(envoy_fault, echo, m.mint(), 401)
    assert envoy_fault.counter("alb_oidc.requests.denied.bad_signature") == before + 1


# ------------------------------------------------- paused requests, bounds --


def test_client_gone_while_waiting_for_key(envoy_main, key_server, minter):
    """Clients that disconnect while their request waits for a key fetch must not
    break the filter when the fetch completes (no trap; later requests fine)."""
    import socket

    key_server.set_delay(minter.kid, 1.0)
    fetched_before = envoy_main.counter("alb_oidc.key_fetch.ok")
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", envoy_main.port), timeout=5)
        s.sendall(f"GET {upath('gone')} HTTP/1.1\r\nHost: x\r\nx-amzn-oidc-data: {minter.mint()}\r\n\r\n".encode())
        socks.append(s)
    wait_until(lambda: key_server.count_kid(minter.kid) >= 1, timeout=5, what="key fetch started")
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, __import__("struct").pack("ii", 1, 0))
        s.close()
    # the fetch completes and the filter resumes (or skips) the dead streams
    wait_until(
        lambda: envoy_main.counter("alb_oidc.key_fetch.ok") == fetched_before + 1, timeout=10, what="key fetch done"
    )
    for _ in range(5):
        assert_allowed(envoy_main, minter.mint())
    assert key_server.count_kid(minter.kid) == 1


def test_request_body_survives_key_wait(envoy_main, key_server, minter):
    """A POST whose headers wait for a key fetch reaches the upstream with its body intact."""
    key_server.set_delay(minter.kid, 0.5)
    body = b"x" * 200_000
    conn = envoy_main.connection()
    try:
        p = upath("post")
        conn.request(
            "POST",
            p,
            body=body,
            headers={"x-amzn-oidc-data": minter.mint(), "content-type": "application/octet-stream"},
        )
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data[:200])
        import json as _json

        doc = _json.loads(data)
        assert doc["path"] == p and doc["body_len"] == len(body)
    finally:
        conn.close()


def test_key_cache_is_bounded(make_envoy, key_server, new_minter):
    """6 kids through a key cache of 4 (one worker, so one local cache): going
    over them twice must re-fetch some, or the cache is not bounded."""
    e = make_envoy(config(key_cache_max=4), concurrency=1, name="keycache-bound")
    minters = [new_minter() for _ in range(6)]
    for _ in range(2):
        for m in minters:
            assert_allowed(e, m.mint())
    total = sum(key_server.count_kid(m.kid) for m in minters)
    assert total > 6, "6 kids with key_cache_max=4 but no key was ever fetched again: the cache is not bounded"
