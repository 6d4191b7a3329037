"""Authorization (issue 12) with the real user service, on both signature
backends: the groups a rule sees are the union of the `groups_claim` values
and the user service's groups; a group granted with the service's admin CLI
opens /admin once the cached answer is revalidated; a user the service
refuses gets 403 on an `optional` rule too.

The service takes its own groups from the token's `groups` claim
(`--groups-claim groups`, see userservice.py); the filter's `groups_claim`
here is `custom:roles`, so each source can be told apart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks import (
    ANSWER_COUNTERS,
    DENIED_FORBIDDEN,
    FORBIDDEN,
    Deltas,
    assert_allowed,
    assert_refused,
    rule_counters,
    upath,
)
from envoykit.wait import wait_until
from filter_envoy import FilterEnvoy
from userservice import REVALIDATE_S, UserService, new_sub, payload, running_envoy, running_service, users_config

RULES = [
    {"name": "catalog", "paths": ["/catalog/*"], "allow": "optional"},
    {"name": "admin", "paths": ["/admin/*"], "require": {"groups_any": ["admin"]}},
]


@pytest.fixture(scope="module")
def users() -> Iterator[UserService]:
    yield from running_service("alb-oidc-users-authz-")


@pytest.fixture(scope="module", params=["host", "rust"])
def envoy_users(request: Any, wasm: Path, key_server: Any, echo: Any, users: UserService) -> Iterator[FilterEnvoy]:
    cfg = users_config(groups_claim="custom:roles", rules=RULES, signature_backend=request.param)
    yield from running_envoy(wasm, key_server, echo, users.port, cfg, f"users-authz-{request.param}")


def watch(envoy: FilterEnvoy, *rules: str) -> Deltas:
    return Deltas(envoy, *rule_counters(*rules), *ANSWER_COUNTERS)


def test_groups_from_the_user_service_open_admin(envoy_users, minter):
    """No groups_claim value: the service's groups (from its `groups` claim) alone."""
    sub = new_sub()
    d = watch(envoy_users, "admin")
    up = assert_allowed(envoy_users, minter.mint(payload=payload(sub, groups=["admin"])), path=upath("admin"))
    assert up.get("x-auth-groups") == "admin"
    d.assert_equal({"alb_oidc.rule.admin.allowed": 1})


def test_groups_are_the_union_of_claims_and_service(envoy_users, echo, minter):
    sub = new_sub()
    token = minter.mint(payload=payload(sub, groups=["staff", "beta"], **{"custom:roles": "oncall, staff"}))
    up = assert_allowed(envoy_users, token, path=upath("catalog"), headers={"x-auth-groups": "admin"})
    assert up.all("x-auth-groups") == ["beta,oncall,staff"]
    d = watch(envoy_users, "admin")
    assert_refused(envoy_users, echo, token, 403, path=upath("admin"), body=FORBIDDEN)
    d.assert_equal({"alb_oidc.rule.admin.denied": 1, DENIED_FORBIDDEN: 1})


def test_group_from_claims_alone_opens_admin(envoy_users, minter):
    """`admin` in the filter's groups_claim only (the service knows `staff`)."""
    sub = new_sub()
    token = minter.mint(payload=payload(sub, groups=["staff"], **{"custom:roles": "admin"}))
    up = assert_allowed(envoy_users, token, path=upath("admin"))
    assert up.get("x-auth-groups") == "admin,staff"


def test_group_granted_with_admin_cli_opens_admin_after_revalidation(envoy_users, users, echo, minter):
    sub = new_sub()

    def token() -> str:
        return minter.mint(payload=payload(sub, groups=["staff"]))

    d = watch(envoy_users, "admin")
    assert_refused(envoy_users, echo, token(), 403, path=upath("admin"), body=FORBIDDEN)
    d.assert_equal({"alb_oidc.rule.admin.denied": 1, DENIED_FORBIDDEN: 1})

    users.admin("groups", "add", sub, "admin")

    def status() -> int:
        return envoy_users.request(upath("admin"), [("x-amzn-oidc-data", token())]).status

    # The cached answer (staff only) holds until revalidate_s has passed; then
    # the service is asked again and answers with the granted group.
    wait_until(lambda: status() == 200, timeout=REVALIDATE_S + 5, interval=0.2, what="/admin open after the grant")
    up = assert_allowed(envoy_users, token(), path=upath("admin"))
    assert up.get("x-auth-groups") == "admin,staff"


def test_optional_rule_user_refused_by_service_403(envoy_users, users, echo, minter):
    """A valid token on an `optional` rule gets the full identity: a user the
    service refuses (a local account of that name) is refused, not anonymous."""
    sub = new_sub()
    users.admin("users", "create-local", sub)
    d = watch(envoy_users, "catalog")
    assert_refused(envoy_users, echo, minter.mint(payload=payload(sub)), 403, path=upath("catalog"), body=FORBIDDEN)
    d.assert_equal({"alb_oidc.rule.catalog.denied": 1})
    assert_allowed(envoy_users, None, path=upath("catalog"))
