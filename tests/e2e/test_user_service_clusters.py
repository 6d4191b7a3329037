"""The user service reached through clusters of any name (issue: Envoy aborted
on some names).

Envoy's wasm gRPC call reads its `upstream` argument as a serialized
`envoy.config.core.v3.GrpcService` and only falls back to a cluster name when
that parse fails. Bare names such as `users` happen to parse as a message with
no target, and Envoy 1.40 aborted on them (`panic: unset oneof`). The filter
now always sends a serialized `GrpcService`: every name below must reach the
service, and Envoy must stay up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks import assert_allowed, assert_refused
from filter_envoy import FilterEnvoy
from userservice import UserService, new_sub, payload, running_service, start_envoy, users_config

# `users`, `alb_oidc_users` and `us_db` crashed Envoy before the fix; the
# Istio-style name is what a WasmPlugin uses in a mesh.
CLUSTER_NAMES = ["users", "alb_oidc_users", "us_db", "outbound|50051||alb-oidc-user-service.alb-oidc.svc.cluster.local"]


@pytest.fixture(scope="module")
def users() -> Iterator[UserService]:
    yield from running_service("alb-oidc-clusters-")


def _config(cluster: str, failure_mode: str = "deny") -> dict:
    cfg = users_config(failure_mode)
    cfg["user_service"]["cluster"] = cluster
    return cfg


@pytest.fixture
def envoy_named(wasm: Path, key_server: Any, echo: Any, users: UserService) -> Iterator[Any]:
    started: list[FilterEnvoy] = []

    def make(cluster: str, configured: str | None = None, failure_mode: str = "deny") -> FilterEnvoy:
        e = start_envoy(
            wasm,
            key_server,
            echo,
            users.port,
            _config(configured or cluster, failure_mode),
            f"cluster-{len(started)}",
            cluster=cluster,
        )
        started.append(e)
        return e

    yield make
    for e in started:
        e.stop(check=True)


@pytest.mark.parametrize("cluster", CLUSTER_NAMES)
def test_any_cluster_name_reaches_the_user_service(envoy_named, users, minter, cluster):
    envoy = envoy_named(cluster)
    sub = new_sub()
    up = assert_allowed(envoy, minter.mint(payload=payload(sub)), what=cluster)
    shown = users.admin("users", "show", sub)
    stored = shown.get("user", shown)
    assert up.get("x-auth-user-id") == str(stored["id"])
    assert envoy.counter("alb_oidc.user_service.calls") == 1
    # Envoy is still serving (it aborted on the first call before the fix).
    assert envoy.proc is not None and envoy.proc.poll() is None
    assert_allowed(envoy, minter.mint(payload=payload(new_sub())), what=f"{cluster}, second user")


def test_unknown_cluster_is_503_and_envoy_stays_up(envoy_named, echo, minter):
    envoy = envoy_named("user_service", configured="users")
    for _ in range(3):
        assert_refused(envoy, echo, minter.mint(payload=payload(new_sub())), 503)
    assert envoy.counter("alb_oidc.requests.denied.user_service_unavailable") == 3
    assert envoy.proc is not None and envoy.proc.poll() is None


def test_unknown_cluster_with_failure_mode_allow_forwards_claims_only(envoy_named, minter):
    envoy = envoy_named("user_service", configured="users", failure_mode="allow")
    sub = new_sub()
    up = assert_allowed(envoy, minter.mint(payload=payload(sub)))
    assert up.get("x-auth-user") == sub
    assert up.get("x-auth-user-id") is None
    assert envoy.counter("alb_oidc.user_service.fail_open") == 1
    assert envoy.proc is not None and envoy.proc.poll() is None
