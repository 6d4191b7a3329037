"""The filter with the real user service (SQLite) behind a real Envoy.

Proves: first login creates the user and the upstream sees its id, email,
groups and name; a deactivated user is refused (403) once the revalidation
period has passed; the answer cache holds gRPC traffic to one call per user
per period, including for a burst of concurrent first requests across two
workers; the service stopped (or answering garbage) gives 503 with
failure_mode deny and claims-only identity with failure_mode allow; a local
account is not taken over by an OIDC login.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from checks import assert_allowed, assert_refused, upath
from envoykit.wait import free_port, wait_until
from filter_envoy import FilterEnvoy
from userservice import (
    REVALIDATE_S,
    UserService,
    new_sub,
    payload,
    running_envoy,
    running_service,
    start_envoy,
    users_config,
)


@pytest.fixture(scope="module")
def users() -> Iterator[UserService]:
    yield from running_service("alb-oidc-users-")


@pytest.fixture(scope="module")
def envoy_users(wasm: Path, key_server: Any, echo: Any, users: UserService) -> Iterator[FilterEnvoy]:
    yield from running_envoy(wasm, key_server, echo, users.port, users_config(), "users")


def test_first_login_creates_user_and_upstream_sees_it(envoy_users, users, minter):
    sub = new_sub()
    calls_before = envoy_users.counter("alb_oidc.user_service.calls")
    up = assert_allowed(
        envoy_users, minter.mint(payload=payload(sub)), headers={"x-auth-user-id": "1", "x-auth-groups": "root"}
    )
    shown = users.admin("users", "show", sub)
    user = shown.get("user", shown) if isinstance(shown, dict) else shown
    assert up.get("x-auth-user") == sub
    assert up.get("x-auth-user-id") == str(user["id"])
    assert up.get("x-auth-email") == f"{sub}@example.com"
    assert up.get("x-auth-groups") == "admin,staff"
    assert up.get("x-auth-name") == "Ada Lovelace"
    assert envoy_users.counter("alb_oidc.user_service.calls") - calls_before == 1


def test_one_call_per_user_per_period(envoy_users, minter):
    sub = new_sub()
    before = envoy_users.counter("alb_oidc.user_service.calls")
    for _ in range(20):
        assert_allowed(envoy_users, minter.mint(payload=payload(sub)))
    assert envoy_users.counter("alb_oidc.user_service.calls") - before == 1


def test_concurrent_first_requests_make_one_call(envoy_users, minter):
    sub = new_sub()
    tokens = [minter.mint(payload=payload(sub)) for _ in range(60)]
    before = envoy_users.counter("alb_oidc.user_service.calls")

    def one(tok: str) -> int:
        return envoy_users.request(upath("burst"), [("x-amzn-oidc-data", tok)], timeout=20).status

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(one, tokens))
    assert statuses == [200] * len(tokens)
    assert envoy_users.counter("alb_oidc.user_service.calls") - before == 1


def test_deactivated_user_refused_after_revalidation(envoy_users, users, echo, minter):
    sub = new_sub()
    assert_allowed(envoy_users, minter.mint(payload=payload(sub)))
    refused_before = envoy_users.counter("alb_oidc.requests.denied.user_refused")
    users.admin("users", "deactivate", sub)

    def status() -> int:
        return envoy_users.request(upath("reval"), [("x-amzn-oidc-data", minter.mint(payload=payload(sub)))]).status

    # The cached answer allows until revalidate_s has passed; then the service is asked again.
    wait_until(lambda: status() == 403, timeout=REVALIDATE_S + 3, interval=0.2, what="403 after revalidation")
    assert_refused(envoy_users, echo, minter.mint(payload=payload(sub)), 403)
    assert envoy_users.counter("alb_oidc.requests.denied.user_refused") - refused_before == 2
    users.admin("users", "activate", sub)
    wait_until(lambda: status() == 200, timeout=REVALIDATE_S + 3, interval=0.2, what="200 after reactivation")
    assert_allowed(envoy_users, minter.mint(payload=payload(sub)))


def test_local_account_not_taken_over(envoy_users, users, echo, minter):
    sub = new_sub()
    users.admin("users", "create-local", sub)
    assert_refused(envoy_users, echo, minter.mint(payload=payload(sub)), 403)


def test_service_down_denies_then_recovers(wasm, key_server, echo, minter):
    svc = UserService(Path(tempfile.mkdtemp(prefix="alb-oidc-users-down-")))
    svc.port = free_port()  # nothing listens yet
    e = start_envoy(wasm, key_server, echo, svc.port, users_config(), "users-down")
    try:
        sub = new_sub()
        t0 = time.monotonic()
        assert_refused(e, echo, minter.mint(payload=payload(sub)), 503)
        assert time.monotonic() - t0 < 1.0 + 3.0  # timeout_ms plus margin
        assert e.counter("alb_oidc.requests.denied.user_service_unavailable") == 1  # a fresh Envoy: its one request
        svc.start()

        # Failures are remembered for at most a second; then the service is asked again.
        def ok() -> bool:
            return e.request(upath("rec"), [("x-amzn-oidc-data", minter.mint(payload=payload(sub)))]).status == 200

        wait_until(ok, 15, interval=0.3, what="recovery after the user service came back")
    finally:
        svc.stop()
        e.stop(check=True)


def test_failure_mode_allow_continues_with_claims_only(wasm, key_server, echo, minter):
    port = free_port()  # nothing listens
    e = start_envoy(wasm, key_server, echo, port, users_config("allow"), "users-allow")
    try:
        sub = new_sub()
        up = assert_allowed(e, minter.mint(payload=payload(sub)), headers={"x-auth-user-id": "forged"})
        assert up.get("x-auth-user") == sub
        assert up.get("x-auth-user-id") is None
        assert e.counter("alb_oidc.user_service.fail_open") == 1  # a fresh Envoy: its one request
    finally:
        e.stop(check=True)


def test_garbage_answer_is_503(wasm, key_server, echo, minter):
    # The echo server speaks HTTP/1.1 plain text, not gRPC over HTTP/2.
    e = start_envoy(wasm, key_server, echo, echo.port, users_config(), "users-garbage")
    try:
        assert_refused(e, echo, minter.mint(payload=payload(new_sub())), 503)
    finally:
        e.stop(check=True)
