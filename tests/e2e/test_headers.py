"""What the upstream receives: client-sent identity headers are stripped on every
path (verified, exempt, allow_missing, refused); the ALB's x-amzn-oidc-*
headers: removed in any spelling on requests nobody verified (unless
forward_unverified_alb_headers), x-amzn-oidc-identity rewritten to the
verified sub, strip_alb_headers; custom header names and token header."""

from __future__ import annotations

import uuid

import pytest

from checks import IDENTITY_MISMATCH, Deltas, alb_spellings, assert_allowed, assert_refused, headers_named, upath
from configs import ALB_HEADERS, IDENTITY_HEADERS, alb_header_spellings, config
from tokens import ARN

FORGED = "forged-by-client"


def forged_headers(case_variants: bool = False) -> list[tuple[str, str]]:
    out = []
    for name in IDENTITY_HEADERS:
        out.append((name, FORGED))
        if case_variants:
            out.append((name.upper(), FORGED + "-upper"))
    return out


def assert_no_forged(up, names=IDENTITY_HEADERS) -> None:
    for name in names:
        for v in up.all(name):
            assert not v.startswith(FORGED), f"upstream saw client-sent {name}: {v!r}"


def test_strip_on_verified_request(envoy_main, minter):
    token = minter.mint(payload={"sub": "real-user", "email": "real@example.com"})
    up = assert_allowed(envoy_main, token, headers=forged_headers(case_variants=True))
    assert_no_forged(up)
    assert up.all("x-auth-user") == ["real-user"]
    assert up.all("x-claim-email") == ["real@example.com"]
    # claims not in the token: the forged copies are gone and nothing replaces them
    for name in ("x-auth-user-id", "x-auth-email", "x-auth-groups", "x-auth-name", "x-claim-absent", "x-claim-level"):
        assert up.all(name) == [], f"{name}: {up.all(name)}"


def test_strip_on_exempt_request(envoy_main):
    up = assert_allowed(envoy_main, None, path="/healthz", headers=forged_headers(case_variants=True))
    assert_no_forged(up)
    for name in IDENTITY_HEADERS:
        assert up.all(name) == []


def test_strip_on_exempt_prefix_request_with_token(envoy_main, minter):
    """Exempt requests skip verification: even a valid token gives no identity."""
    up = assert_allowed(envoy_main, minter.mint(), path="/static/app.js", headers=forged_headers())
    assert_no_forged(up)
    assert up.all("x-auth-user") == []


def test_refused_request_never_forwarded(envoy_main, echo, minter):
    # bad token + forged identity: refused, upstream never sees anything
    bad = minter.mint()[:-8] + "AAAAAAA="
    assert_refused(envoy_main, echo, bad, 401, headers=forged_headers())
    assert_refused(envoy_main, echo, None, 401, headers=forged_headers())


def test_x_amzn_headers_on_verified_request(envoy_main, minter):
    """Data and access token forwarded as they came; the identity header is
    the verified `sub`, whatever the client sent."""
    token = minter.mint(payload={"sub": "verified-sub"})
    d = Deltas(envoy_main, IDENTITY_MISMATCH)
    up = assert_allowed(
        envoy_main,
        token,
        headers={"x-amzn-oidc-accesstoken": "access-token-value", "x-amzn-oidc-identity": "identity-value"},
    )
    assert up.get("x-amzn-oidc-data") == token  # byte for byte, padding included
    assert up.get("x-amzn-oidc-accesstoken") == "access-token-value"
    assert up.all("x-amzn-oidc-identity") == ["verified-sub"]
    d.assert_equal({IDENTITY_MISMATCH: 1})


# ------------------------------------- the ALB's identity header, verified ----


def identity_spellings(value: str) -> list[tuple[str, str]]:
    return [(n, f"{value}-{i}") for i, n in enumerate(alb_header_spellings("x-amzn-oidc-identity"))]


def test_identity_rewritten_to_verified_sub(envoy_backend, minter):
    """Every spelling of x-amzn-oidc-identity the client sent is gone, and
    exactly one copy with the verified sub reaches the upstream; one
    mismatch counted."""
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    d = Deltas(envoy_backend, IDENTITY_MISMATCH)
    up = assert_allowed(envoy_backend, minter.mint(payload={"sub": sub}), headers=identity_spellings("someone-else"))
    assert headers_named(up, ["x-amzn-oidc-identity"]) == [("x-amzn-oidc-identity", sub)]
    d.assert_equal({IDENTITY_MISMATCH: 1})


def test_identity_equal_to_sub_is_no_mismatch(envoy_backend, minter):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    d = Deltas(envoy_backend, IDENTITY_MISMATCH)
    up = assert_allowed(envoy_backend, minter.mint(payload={"sub": sub}), headers={"x-amzn-oidc-identity": sub})
    assert headers_named(up, ["x-amzn-oidc-identity"]) == [("x-amzn-oidc-identity", sub)]
    d.assert_equal({})


def test_identity_absent_is_added_without_mismatch(envoy_backend, minter):
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    d = Deltas(envoy_backend, IDENTITY_MISMATCH)
    up = assert_allowed(envoy_backend, minter.mint(payload={"sub": sub}))
    assert headers_named(up, ["x-amzn-oidc-identity"]) == [("x-amzn-oidc-identity", sub)]
    d.assert_equal({})


def test_identity_mismatch_counted_once_per_request(envoy_backend, minter):
    d = Deltas(envoy_backend, IDENTITY_MISMATCH)
    for i in range(3):
        assert_allowed(envoy_backend, minter.mint(payload={"sub": f"s{i}"}), headers={"x-amzn-oidc-identity": "x"})
    d.assert_equal({IDENTITY_MISMATCH: 3})


# ------------------------------------ the ALB's headers, nobody verified ----


@pytest.fixture(scope="module", params=["host", "rust"])
def envoy_anon(request, make_envoy_module):
    """allow_missing (default rule optional), on one forced signature backend."""
    return make_envoy_module(config(allow_missing=True, signature_backend=request.param), name=f"anon-{request.param}")


@pytest.mark.parametrize("path", ["/healthz", "/static/app.js", "anonymous"])
def test_unverified_alb_headers_removed_in_any_spelling(envoy_anon, path):
    p = upath("anon") if path == "anonymous" else path
    up = assert_allowed(envoy_anon, None, path=p, headers=alb_spellings(with_token=path != "anonymous"))
    assert headers_named(up, ALB_HEADERS) == [], f"{p}: {headers_named(up, ALB_HEADERS)}"


def test_exempt_request_with_valid_token_forwards_no_alb_header(envoy_anon, minter):
    """An exempt request's token is not verified: it goes too."""
    up = assert_allowed(
        envoy_anon,
        None,
        path="/static/app.js",
        headers=[("x-amzn-oidc-data", minter.mint()), ("x-amzn-oidc-identity", "id")],
    )
    assert headers_named(up, ALB_HEADERS) == []


@pytest.fixture(scope="module")
def envoy_forward_unverified(make_envoy_module):
    return make_envoy_module(config(allow_missing=True, forward_unverified_alb_headers=True), name="forward-unverified")


@pytest.mark.parametrize("path", ["/healthz", "anonymous"])
def test_forward_unverified_alb_headers_keeps_them(envoy_forward_unverified, path):
    p = upath("anon") if path == "anonymous" else path
    sent = alb_spellings(with_token=path != "anonymous")
    up = assert_allowed(envoy_forward_unverified, None, path=p, headers=sent)
    # Envoy's HTTP/1 codec lowercases names; nothing else changes
    assert sorted(headers_named(up, ALB_HEADERS)) == sorted((k.lower(), v) for k, v in sent)


def test_forward_unverified_still_rewrites_verified_identity(envoy_forward_unverified, minter):
    up = assert_allowed(
        envoy_forward_unverified, minter.mint(payload={"sub": "fw-sub"}), headers=identity_spellings("other")
    )
    assert headers_named(up, ["x-amzn-oidc-identity"]) == [("x-amzn-oidc-identity", "fw-sub")]


# ------------------------------------------------------ strip_alb_headers ----


@pytest.fixture(scope="module")
def envoy_strip(make_envoy_module):
    return make_envoy_module(config(strip_alb_headers=True, allow_missing=True), name="strip")


def test_strip_alb_headers_on_verified(envoy_strip, minter):
    up = assert_allowed(
        envoy_strip,
        minter.mint(payload={"sub": "u-strip"}),
        headers={"x-amzn-oidc-accesstoken": "at", "x-amzn-oidc-identity": "id"},
    )
    assert up.get("x-auth-user") == "u-strip"
    for h in ("x-amzn-oidc-data", "x-amzn-oidc-accesstoken", "x-amzn-oidc-identity"):
        assert up.all(h) == [], f"{h} forwarded despite strip_alb_headers"


def test_strip_alb_headers_on_verified_repeated_copies(envoy_strip, minter):
    """strip_alb_headers removes every copy (any case) and adds no identity.
    (The `_` spellings on verified requests are not in the contract.)"""
    token = minter.mint(payload={"sub": "u-strip"})
    extra = [(k, v) for k, v in alb_spellings(with_token=False) if "_" not in k]
    up = assert_allowed(envoy_strip, token, headers=extra)
    assert [(k, v) for k, v in headers_named(up, ALB_HEADERS) if "_" not in k] == []


def test_strip_alb_headers_on_unverified_any_spelling(envoy_strip):
    for path, with_token in (("/healthz", True), (upath("anon"), False)):
        up = assert_allowed(envoy_strip, None, path=path, headers=alb_spellings(with_token=with_token))
        assert headers_named(up, ALB_HEADERS) == [], path


def test_strip_alb_headers_on_exempt_and_anonymous(envoy_strip):
    for path in ("/healthz", upath("anon")):
        up = assert_allowed(
            envoy_strip,
            None,
            path=path,
            headers=[("x-amzn-oidc-accesstoken", "at"), ("x-amzn-oidc-identity", "id")] + forged_headers(),
        )
        for h in ("x-amzn-oidc-accesstoken", "x-amzn-oidc-identity"):
            assert up.all(h) == [], f"{path}: {h} forwarded despite strip_alb_headers"
        assert_no_forged(up)


# ------------------------------------------ custom names and token header ----

CUSTOM = config(
    alb_arns=ARN,  # a single string is accepted too
    token_header="x-test-token",
    username_claim="email",
    headers={
        "user": "x-my-user",
        "claims": "x-my-claims",
        "user_id": "x-my-uid",
        "email": "x-my-email",
        "groups": "x-my-groups",
        "name": "x-my-name",
    },
    claim_headers={"given_name": "x-my-given"},
)


@pytest.fixture(scope="module")
def envoy_custom(make_envoy_module):
    return make_envoy_module(CUSTOM, name="custom")


def test_custom_names(envoy_custom, minter):
    forged = [
        (n, FORGED)
        for n in ("x-my-user", "x-my-claims", "x-my-uid", "x-my-email", "x-my-groups", "x-my-name", "x-my-given")
    ]
    up = assert_allowed(
        envoy_custom, minter.mint(payload={"email": "bob@example.com"}), token_header="x-test-token", headers=forged
    )
    assert up.get("x-my-user") == "bob@example.com"
    assert up.get("x-my-claims")
    assert up.get("x-my-given") == "Alice"
    assert_no_forged(
        up, ["x-my-user", "x-my-claims", "x-my-uid", "x-my-email", "x-my-groups", "x-my-name", "x-my-given"]
    )
    # the default names are not injected by this config
    assert up.all("x-auth-user") == [] and up.all("x-auth-claims") == []


def test_custom_token_header_removed_on_exempt_request(envoy_custom):
    """The configured token_header is the ALB data header to remove, in any spelling."""
    up = assert_allowed(envoy_custom, None, path="/healthz", headers=alb_spellings(token_header="x-test-token"))
    assert headers_named(up, ["x-test-token", "x-amzn-oidc-identity", "x-amzn-oidc-accesstoken"]) == []


def test_custom_token_header_only(envoy_custom, echo, minter):
    # a token in the default header is not looked at when token_header is changed
    assert_refused(envoy_custom, echo, minter.mint(), 401)


def test_custom_username_claim_missing(envoy_custom, echo, minter):
    for payload, drop in (({}, ("email",)), ({"email": ""}, ()), ({"email": 42}, ()), ({"email": ["a@b"]}, ())):
        token = minter.mint(payload=payload, drop_payload=drop)
        p = upath()
        r = envoy_custom.request(p, [("x-test-token", token)])
        assert r.status == 401, f"{payload or drop}: {r.status}"
        assert echo.hits(p) == 0


def test_custom_single_arn_string(envoy_custom, echo, new_minter):
    from tokens import ARN2

    m = new_minter(signer=ARN2)  # ARN2 is not configured here
    p = upath()
    r = envoy_custom.request(p, [("x-test-token", m.mint())])
    assert r.status == 401 and echo.hits(p) == 0


# ----------------------------------------------- casing and repeated copies ----

MIXED = config(
    headers={"user": "X-Auth-User", "claims": "X-Auth-Claims"},
    claim_headers={"email": "X-Claim-Email", "groups": "X-CLAIM-GROUPS"},
    allow_missing=True,
)


@pytest.fixture(scope="module")
def envoy_mixed_case(make_envoy_module):
    return make_envoy_module(MIXED, name="mixed-case")


@pytest.mark.parametrize("with_token", [True, False])
def test_mixed_case_header_names_still_stripped(envoy_mixed_case, minter, with_token):
    """Header names configured in mixed case: client copies (any case, several
    times) are still removed, and the injected values are the only ones."""
    forged = []
    for name in ("x-auth-user", "X-AUTH-USER", "x-auth-claims", "x-claim-email", "X-Claim-Email", "x-claim-groups"):
        forged += [(name, FORGED), (name, FORGED + "2")]
    token = (
        minter.mint(payload={"sub": "mc-user", "email": "mc@example.com", "groups": ["g1", "g2"]})
        if with_token
        else None
    )
    up = assert_allowed(envoy_mixed_case, token, headers=forged)
    assert_no_forged(up, ["x-auth-user", "x-auth-claims", "x-claim-email", "x-claim-groups"])
    if with_token:
        assert up.all("x-auth-user") == ["mc-user"]
        assert up.all("x-claim-email") == ["mc@example.com"]
        assert up.all("x-claim-groups") == ["g1,g2"]
    else:
        for n in ("x-auth-user", "x-auth-claims", "x-claim-email", "x-claim-groups"):
            assert up.all(n) == []


def test_many_forged_copies_stripped(envoy_main, minter):
    forged = [("x-auth-user", f"{FORGED}-{i}") for i in range(30)] + [
        ("x-claim-email", f"{FORGED}-{i}") for i in range(30)
    ]  # Envoy allows 100 headers
    up = assert_allowed(envoy_main, minter.mint(payload={"sub": "many"}), headers=forged)
    assert up.all("x-auth-user") == ["many"]
    assert_no_forged(up)


def test_repeated_token_header_refused(envoy_main, echo, minter):
    """Two `x-amzn-oidc-data` headers are ambiguous (which one did the ALB
    send?): 401, even when both are valid."""
    p = upath("two-tokens")
    r = envoy_main.request(p, [("x-amzn-oidc-data", minter.mint()), ("x-amzn-oidc-data", minter.mint())])
    assert r.status == 401 and echo.hits(p) == 0
    assert envoy_main.request(upath("one-token"), [("x-amzn-oidc-data", minter.mint())]).status == 200
