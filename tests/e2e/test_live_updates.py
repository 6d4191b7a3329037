"""Live configuration updates, as Istio delivers a WasmPlugin's `pluginConfig`
(issue 15): a real Envoy 1.40 takes the filter's configuration through ECDS
from a watched file (`filter_envoy.EcdsEnvoy`; every version written to a
temporary file and renamed over the watched one), and each update is
followed by requests whose answers must be the new configuration's.

Covered: an ARN removed while a token it signed sits in the verified-token
cache (refused at once); a changed rule (`require` -> `allow: deny` ->
`anyone`); a changed user-service block (a cluster that is down, with
`failure_mode` deny then allow, and back); invalid updates (Envoy rejects
them and the previous configuration keeps answering); a request paused on
a key fetch while the configuration changes; and an answer cached under one
user-service `authority`, asked for under another.

Envoy's own counters tell when a version was taken or refused
(`extension_config_discovery.http_filter.alb_oidc.*`, `envoykit.ecds`): each
test waits on them with a bound, never on a timer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from checks import (
    DENIED_BY_RULE,
    DENIED_FORBIDDEN,
    EXEMPT,
    FORBIDDEN,
    UNAUTHORIZED,
    Deltas,
    Moved,
    assert_allowed,
    assert_refused,
    describe,
    token_headers,
    upath,
)
from configs import config
from envoykit import bootstrap as bs
from envoykit.wait import free_port, wait_until
from filter_envoy import EcdsEnvoy
from tokens import ARN, ARN2, Minter
from userservice import UserService, new_sub, payload, running_service, users_config

# What Envoy 1.40's ECDS counters do for a version it takes, and for one it
# refuses (the filter's on_configure said no). Seen with Envoy 1.40.0: a
# refused version bumps `config_reload` as well, together with `config_fail`.
TAKEN = {
    "update_attempt": 1,
    "update_success": 1,
    "update_rejected": 0,
    "config_reload": 1,
    "config_fail": 0,
    "config_conflict": 0,
}
REFUSED = {
    "update_attempt": 1,
    "update_success": 0,
    "update_rejected": 1,
    "config_reload": 1,
    "config_fail": 1,
    "config_conflict": 0,
}

UNTRUSTED_SIGNER = "alb_oidc.requests.denied.untrusted_signer"
USER_UNAVAILABLE = "alb_oidc.requests.denied.user_service_unavailable"
USER_REFUSED = "alb_oidc.requests.denied.user_refused"
USER_CALLS = "alb_oidc.user_service.calls"
USER_FAILED = "alb_oidc.user_service.failed"
USER_FAIL_OPEN = "alb_oidc.user_service.fail_open"
USER_CACHE_HIT = "alb_oidc.user_service.cache_hit"
USER_COUNTERS = [USER_UNAVAILABLE, USER_REFUSED, USER_CALLS, USER_FAILED, USER_FAIL_OPEN, USER_CACHE_HIT]

GROUPS_CLAIM = "custom:groups"


def rules_config(admin_rule: dict) -> dict:
    """BASE_CONFIG with one rule for /admin/* (`admin_rule` gives its answer)."""
    rule = {"name": "admin", "paths": ["/admin/*"], **admin_rule}
    return config(groups_claim=[GROUPS_CLAIM], rules=[rule])


REQUIRE_ADMIN = rules_config({"require": {"groups_any": ["admin"]}})
DENY_ADMIN = rules_config({"allow": "deny"})
ANYONE_ADMIN = rules_config({"allow": "anyone"})


def admin_path() -> str:
    return f"/admin/{uuid.uuid4().hex}"


@pytest.fixture
def make_ecds(make_envoy: Any) -> Any:
    """make_ecds(config, **kw): a fresh EcdsEnvoy (stopped after the test)."""

    def make(cfg: dict, **kw: Any) -> EcdsEnvoy:
        return make_envoy(cfg, envoy_cls=EcdsEnvoy, name=kw.pop("name", "ecds"), **kw)

    return make


# ----------------------------------------------------------------- signers --


def test_removed_arn_refuses_a_token_in_the_verified_token_cache(make_ecds, echo, key_server, new_minter):
    # One worker: the second request is sure to meet the first one's cache entry.
    e = make_ecds(config(alb_arns=[ARN, ARN2]), concurrency=1, name="ecds-arn")
    removed = new_minter(signer=ARN2)
    kept = Minter(removed.key, signer=ARN)  # the same kid under the ARN that stays
    token = removed.mint()
    assert_allowed(e, token, what="ARN2 trusted")
    hits = Deltas(e, "alb_oidc.token_cache.hit", "alb_oidc.token_cache.miss")
    assert_allowed(e, token, what="ARN2 trusted, again")
    hits.assert_equal({"alb_oidc.token_cache.hit": 1}, "the token sits in the verified-token cache")

    assert e.update(config(alb_arns=[ARN])) == TAKEN

    m = Moved(e)
    assert_refused(e, echo, token, 401, body=UNAUTHORIZED, what="ARN2 removed, same token")
    # A miss: the cache was rebuilt; the refusal is the default rule's.
    m.assert_moved(
        {UNTRUSTED_SIGNER: 1, "alb_oidc.token_cache.miss": 1, "alb_oidc.rule.default.denied": 1},
        "the cached token after the update",
    )
    assert_allowed(e, kept.mint(), what="ARN still trusted")
    # The key fetched under the old configuration is still in shared data.
    assert key_server.count_kid(removed.kid) == 1


# ------------------------------------------------------------------- rules --


def test_changed_rule_answers_at_once_on_the_same_connection(make_ecds, echo, new_minter):
    e = make_ecds(REQUIRE_ADMIN, name="ecds-rule")
    m = new_minter()
    admin = m.mint(payload={GROUPS_CLAIM: ["admin"]})
    staff = m.mint(payload={GROUPS_CLAIM: ["staff"]})
    # One keep-alive connection throughout: a new request on an old
    # connection gets the new configuration too.
    conn = e.connection()

    def get(token: str | None) -> Any:
        p = admin_path()
        r = e.request(p, token_headers(token), conn=conn)
        return p, r

    p, r = get(admin)
    assert r.status == 200, f"require admin, admin: {describe(r)}"
    p, r = get(staff)
    assert (r.status, r.body) == (403, FORBIDDEN), f"require admin, staff: {describe(r)}"

    assert e.update(DENY_ADMIN) == TAKEN
    moved = Moved(e)
    p, r = get(admin)
    assert (r.status, r.body) == (403, FORBIDDEN), f"allow: deny, admin: {describe(r)}"
    assert echo.hits(p) == 0
    moved.assert_moved({DENIED_BY_RULE: 1, "alb_oidc.rule.admin.denied": 1}, "allow: deny")

    assert e.update(ANYONE_ADMIN) == TAKEN
    moved = Moved(e)
    p, r = get(None)
    assert r.status == 200, f"anyone, no token: {describe(r)}"
    assert r.upstream.path == p
    moved.assert_moved({EXEMPT: 1, "alb_oidc.rule.admin.allowed": 1}, "anyone")

    assert e.update(REQUIRE_ADMIN) == TAKEN
    rule = ["alb_oidc.rule.admin.allowed", "alb_oidc.rule.admin.denied"]
    d = Deltas(e, DENIED_FORBIDDEN, DENIED_BY_RULE, EXEMPT, *rule)
    p, r = get(staff)
    assert (r.status, r.body) == (403, FORBIDDEN), f"require admin again, staff: {describe(r)}"
    d.assert_equal({DENIED_FORBIDDEN: 1, "alb_oidc.rule.admin.denied": 1}, "require admin again")
    conn.close()


# ----------------------------------------------------------- invalid updates --

INVALID = {
    "unknown_field": (config(alb_arns=[ARN], nonexistent_setting=1), "field `nonexistent_setting`"),
    # Not an Elastic Load Balancing ARN (the filter checks the six parts only)
    "bad_arn": (config(alb_arns=["arn:aws:s3:::bucket"]), "field `alb_arns[0]`"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_update_is_rejected_and_the_previous_configuration_serves(make_ecds, echo, new_minter, case):
    bad, named = INVALID[case]
    e = make_ecds(REQUIRE_ADMIN, name=f"ecds-invalid-{case}")
    m = new_minter()
    admin = m.mint(payload={GROUPS_CLAIM: ["admin"]})
    staff = m.mint(payload={GROUPS_CLAIM: ["staff"]})

    def answers() -> list[int]:
        return [
            e.request(admin_path(), token_headers(admin)).status,
            e.request(admin_path(), token_headers(staff)).status,
            e.request(admin_path()).status,
            e.request(upath("other"), token_headers(staff)).status,
        ]

    before = answers()
    assert before == [200, 403, 401, 200]

    assert e.update(bad) == REFUSED
    assert named in e.log_text(), f"the filter's refusal names {named}"
    counters = Deltas(e, DENIED_FORBIDDEN, "alb_oidc.requests.denied.missing_token", "alb_oidc.requests.allowed")
    assert answers() == before, "the previous configuration keeps answering"
    counters.assert_equal(
        {DENIED_FORBIDDEN: 1, "alb_oidc.requests.denied.missing_token": 1, "alb_oidc.requests.allowed": 2}
    )
    # The refused version is not stuck: the next valid one is taken.
    assert e.update(DENY_ADMIN) == TAKEN
    assert_refused(e, echo, admin, 403, path=admin_path(), body=FORBIDDEN, what="allow: deny after a refusal")


# ------------------------------------------------------------- user service --


@pytest.fixture(scope="module")
def users() -> Iterator[UserService]:
    yield from running_service("alb-oidc-ecds-users-")


@pytest.fixture(scope="module")
def users_b() -> Iterator[UserService]:
    yield from running_service("alb-oidc-ecds-users-b-")


def users_block(cluster: str, failure_mode: str = "deny", **extra: Any) -> dict:
    cfg = users_config(failure_mode)
    cfg["user_service"].update(cluster=cluster, **extra)
    return cfg


def test_changed_user_service_block(make_ecds, echo, users, minter):
    down_port = free_port()  # nothing listens there
    clusters = [
        bs.static_cluster("user_service", users.port, http2=True, connect_timeout="0.5s"),
        bs.static_cluster("users_down", down_port, http2=True, connect_timeout="0.5s"),
    ]
    e = make_ecds(users_block("user_service"), clusters=clusters, name="ecds-users")
    known = new_sub()
    up = assert_allowed(e, minter.mint(payload=payload(known)), what="service up")
    known_id = up.get("x-auth-user-id")
    assert known_id is not None

    # The cluster changed to one that is down, failure_mode deny: 503, for
    # a user the old cluster's service answered a moment ago too (its answer
    # belongs to that cluster).
    assert e.update(users_block("users_down")) == TAKEN
    for sub in (new_sub(), known):
        d = Deltas(e, *USER_COUNTERS)
        assert_refused(e, echo, minter.mint(payload=payload(sub)), 503, what=f"cluster down, deny, {sub}")
        d.assert_equal({USER_UNAVAILABLE: 1, USER_CALLS: 1, USER_FAILED: 1}, f"cluster down, deny, {sub}")

    # Same cluster, failure_mode allow: claims-only identity.
    assert e.update(users_block("users_down", "allow")) == TAKEN
    sub = new_sub()
    d = Deltas(e, *USER_COUNTERS)
    up = assert_allowed(e, minter.mint(payload=payload(sub)), what="cluster down, allow")
    assert (up.get("x-auth-user"), up.get("x-auth-user-id")) == (sub, None)
    d.assert_equal({USER_FAIL_OPEN: 1, USER_CALLS: 1, USER_FAILED: 1}, "cluster down, allow")

    # Back: the service answers again, for a user it has never seen.
    assert e.update(users_block("user_service")) == TAKEN
    sub = new_sub()
    up = assert_allowed(e, minter.mint(payload=payload(sub)), what="service back")
    shown = users.admin("users", "show", sub)
    assert up.get("x-auth-user-id") == str(shown.get("user", shown)["id"])
    up = assert_allowed(e, minter.mint(payload=payload(known)), what="service back, known user")
    assert up.get("x-auth-user-id") == known_id


def authority_router(port: int, a: UserService, b: UserService) -> tuple[dict, list[dict]]:
    """An HTTP/2 listener on `port` in the same Envoy that sends a gRPC call
    to service `a` or `b` by its `:authority` (`users-a`, `users-b`): one
    cluster, two services, as behind a gateway that routes by host."""
    grpc = {"http_protocol_options": {}, "codec_type": "HTTP2"}
    listener = bs.http_listener(
        "users_router",
        port,
        http_filters=[],
        hcm_options=grpc,
        virtual_hosts=[
            bs.virtual_host("a", ["users-a"], [bs.route_to_cluster("users_a")]),
            bs.virtual_host("b", ["users-b"], [bs.route_to_cluster("users_b")]),
        ],
    )
    clusters = [
        bs.static_cluster("user_service", port, http2=True, connect_timeout="0.5s"),
        bs.static_cluster("users_a", a.port, http2=True, connect_timeout="0.5s"),
        bs.static_cluster("users_b", b.port, http2=True, connect_timeout="0.5s"),
    ]
    return listener, clusters


def test_changed_user_service_authority_asks_the_other_service(make_ecds, echo, users, users_b, minter):
    """`user_service.authority` picks the service behind a shared cluster
    (a gateway routing by host): an answer service A gave must not stand
    for service B's after the authority changes, as an answer from another
    cluster does not (the test above)."""
    port = free_port()
    listener, clusters = authority_router(port, users, users_b)
    # A long revalidation period: A's answer is still fresh when B is asked.
    e = make_ecds(
        users_block("user_service", authority="users-a", revalidate_s=300),
        clusters=clusters,
        listeners=[listener],
        name="ecds-authority",
    )
    sub = new_sub()
    up = assert_allowed(e, minter.mint(payload=payload(sub)), what="service A")
    shown = users.admin("users", "show", sub)
    assert up.get("x-auth-user-id") == str(shown.get("user", shown)["id"])
    # An update that leaves the user-service block's meaning alone: A's
    # answer, in shared data, still stands (no call).
    assert e.update(users_block("user_service", authority="users-a", revalidate_s=300, timeout_ms=900)) == TAKEN
    d = Deltas(e, *USER_COUNTERS)
    assert_allowed(e, minter.mint(payload=payload(sub)), what="service A, answer kept")
    d.assert_equal({USER_CACHE_HIT: 1}, "A's answer kept across the update")
    # B knows this name as a local account, which an OIDC login must not take over.
    users_b.admin("users", "create-local", sub)
    assert e.update(users_block("user_service", authority="users-b", revalidate_s=300)) == TAKEN

    # The calls now reach B: a user B has never seen is created there.
    other = new_sub()
    up = assert_allowed(e, minter.mint(payload=payload(other)), what="service B, new user")
    shown = users_b.admin("users", "show", other)
    assert up.get("x-auth-user-id") == str(shown.get("user", shown)["id"])

    d = Deltas(e, *USER_COUNTERS)
    assert_refused(e, echo, minter.mint(payload=payload(sub)), 403, what="service B, local account")
    d.assert_equal({USER_REFUSED: 1, USER_CALLS: 1}, "service B was asked")


# -------------------------------------------------------- requests in flight --


@pytest.mark.xfail(
    strict=True,
    reason="known gap (docs/istio.md, Live configuration updates): an ECDS update makes a new root "
    "context, so a request paused in the old one is decided by the old configuration; the fix hands "
    "paused requests over to the newest root of the same plugin",
)
def test_request_paused_across_an_update_gets_the_new_answer(make_ecds, echo, key_server, new_minter):
    """A request waiting for its key when the configuration changes must be
    answered under the new one (issue 15: never an old configuration's
    decision): /admin/* turned `allow: deny` while it waited."""
    e = make_ecds(REQUIRE_ADMIN, concurrency=1, name="ecds-paused")
    m = new_minter()
    key_server.hold(m.kid)
    path = admin_path()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(e.request, path, token_headers(m.mint(payload={GROUPS_CLAIM: ["admin"]})))
        wait_until(lambda: key_server.count_kid(m.kid) == 1, 10, interval=0.02, what="the key fetch under way")
        assert e.update(DENY_ADMIN) == TAKEN
        key_server.release(m.kid)
        r = pending.result(timeout=30)
    # A request that arrives now gets the new answer (the update is in force).
    assert_refused(e, echo, m.mint(payload={GROUPS_CLAIM: ["admin"]}), 403, path=admin_path(), body=FORBIDDEN)
    assert (r.status, r.body) == (403, FORBIDDEN), f"paused across allow: deny: {describe(r)}"
    assert echo.hits(path) == 0
