"""Rules on the user service's permissions, staff and superuser flags and
profile fields (issue 14), with the real user service and its admin CLI:
a permission granted with `perms grant` opens a `permissions_all` route
within `revalidate_s` and a revoke closes it again; a superuser passes every
permission rule but not `staff`; a profile field reaches the upstream as a
header; forged copies of every new header are stripped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks import FORBIDDEN, assert_allowed, assert_refused, headers_named, upath
from envoykit.wait import wait_until
from filter_envoy import FilterEnvoy
from userservice import REVALIDATE_S, UserService, new_sub, payload, running_envoy, running_service, users_config

RULES = [
    {"name": "orders", "paths": ["/orders/*"], "require": {"permissions_all": ["shop.view_order"]}},
    {"name": "staff", "paths": ["/staff/*"], "require": {"staff": True}},
    {"name": "root", "paths": ["/root/*"], "require": {"superuser": True}},
]
NEW_HEADERS = ["x-auth-permissions", "x-auth-staff", "x-auth-superuser", "x-auth-department", "x-auth-scopes"]


@pytest.fixture(scope="module")
def users() -> Iterator[UserService]:
    yield from running_service("alb-oidc-users-perms-", "--profile-claims", "custom:department=department")


@pytest.fixture(scope="module")
def envoy_perms(wasm: Path, key_server: Any, echo: Any, users: UserService) -> Iterator[FilterEnvoy]:
    cfg = users_config(rules=RULES)
    cfg["user_service"]["user_headers"] = {"department": "x-auth-department"}
    yield from running_envoy(wasm, key_server, echo, users.port, cfg, "users-perms")


def wait_for_status(envoy: FilterEnvoy, minter: Any, sub: str, path: str, expected: int, what: str) -> None:
    """A fresh token for `sub` gets `expected` on `path` once the cached
    answer is revalidated (within `revalidate_s`)."""

    def status() -> int:
        return envoy.request(path, [("x-amzn-oidc-data", minter.mint(payload=payload(sub)))]).status

    wait_until(lambda: status() == expected, timeout=REVALIDATE_S + 5, interval=0.2, what=what)


def test_a_granted_permission_opens_and_a_revoke_closes(envoy_perms, users, echo, minter):
    sub = new_sub()
    token = minter.mint(payload=payload(sub))
    assert_refused(envoy_perms, echo, token, 403, path=upath("orders"), body=FORBIDDEN)

    users.admin("perms", "grant", "shop.view_order", "--user", sub)
    wait_for_status(envoy_perms, minter, sub, upath("orders"), 200, "/orders open after the grant")
    up = assert_allowed(envoy_perms, minter.mint(payload=payload(sub)), path=upath("orders"))
    assert up.get("x-auth-permissions") == "shop.view_order"

    users.admin("perms", "revoke", "shop.view_order", "--user", sub)
    wait_for_status(envoy_perms, minter, sub, upath("orders"), 403, "/orders closed after the revoke")


def test_a_group_permission_applies_to_its_members(envoy_perms, users, minter):
    sub = new_sub()
    group = f"g-{sub}"
    users.admin("perms", "grant", "shop.view_order", "--group", group)
    up = assert_allowed(envoy_perms, minter.mint(payload=payload(sub, groups=[group])), path=upath("orders"))
    assert up.get("x-auth-permissions") == "shop.view_order"
    assert up.get("x-auth-groups") == group


def test_a_superuser_passes_permission_rules_but_is_not_staff(envoy_perms, users, echo, minter):
    sub = new_sub()
    assert_refused(envoy_perms, echo, minter.mint(payload=payload(sub)), 403, path=upath("root"), body=FORBIDDEN)
    users.admin("users", "set", sub, "--superuser")
    wait_for_status(envoy_perms, minter, sub, upath("root"), 200, "/root open for the superuser")
    up = assert_allowed(envoy_perms, minter.mint(payload=payload(sub)), path=upath("orders"))
    assert up.get("x-auth-permissions") == "*"
    assert up.get("x-auth-superuser") == "true"
    assert up.get("x-auth-staff") is None
    assert_refused(envoy_perms, echo, minter.mint(payload=payload(sub)), 403, path=upath("staff"), body=FORBIDDEN)


def test_the_staff_rule(envoy_perms, users, echo, minter):
    sub = new_sub()
    assert_refused(envoy_perms, echo, minter.mint(payload=payload(sub)), 403, path=upath("staff"), body=FORBIDDEN)
    users.admin("users", "set", sub, "--staff")
    wait_for_status(envoy_perms, minter, sub, upath("staff"), 200, "/staff open for staff")
    up = assert_allowed(envoy_perms, minter.mint(payload=payload(sub)), path=upath("staff"))
    assert up.get("x-auth-staff") == "true"
    assert up.get("x-auth-superuser") is None


def test_a_profile_field_reaches_the_upstream(envoy_perms, minter):
    sub = new_sub()
    token = minter.mint(payload=payload(sub, **{"custom:department": "Sales"}))
    up = assert_allowed(envoy_perms, token, path=upath("plain"))
    assert up.get("x-auth-department") == "Sales"


def test_forged_copies_of_every_new_header_are_stripped(envoy_perms, minter):
    sub = new_sub()
    forged = [(name, "forged") for name in NEW_HEADERS] + [(name.upper(), "forged") for name in NEW_HEADERS]
    up = assert_allowed(envoy_perms, minter.mint(payload=payload(sub)), path=upath("plain"), headers=forged)
    assert headers_named(up, NEW_HEADERS) == []
