"""Configuration modes: allow_missing, bypass_validation, clock_skew_s, audience."""

from __future__ import annotations

import pytest

from checks import assert_allowed, assert_refused
from configs import IDENTITY_HEADERS, config
from envoykit.wait import wait_until
from tokens import FOREIGN_ARN, Key, Minter, b64u, compact, hs256

FORGED = [(n, "forged") for n in IDENTITY_HEADERS]

# ------------------------------------------------------------- allow_missing --


@pytest.fixture(scope="module")
def envoy_allow(make_envoy_module):
    return make_envoy_module(config(allow_missing=True), name="allow-missing")


def test_allow_missing_no_token(envoy_allow):
    before = envoy_allow.counter("alb_oidc.requests.anonymous")
    up = assert_allowed(envoy_allow, None, headers=FORGED)
    for n in IDENTITY_HEADERS:
        assert up.all(n) == [], f"{n} reached the upstream of an anonymous request: {up.all(n)}"
    assert envoy_allow.counter("alb_oidc.requests.anonymous") == before + 1


def test_allow_missing_valid_token_still_verified(envoy_allow, minter):
    up = assert_allowed(envoy_allow, minter.mint(payload={"sub": "am-user"}), headers=FORGED)
    assert up.get("x-auth-user") == "am-user"


@pytest.mark.parametrize("kind", ["garbage", "expired", "foreign_signer", "bad_signature", "alg_none"])
def test_allow_missing_invalid_token_still_401(envoy_allow, echo, new_minter, kind):
    m = new_minter()
    token = {
        "garbage": "garbage",
        "expired": m.mint(exp=m.now() - 60),
        "foreign_signer": Minter(m.key, signer=FOREIGN_ARN).mint(),
        "bad_signature": m.mint(key=Key.generate()),
        "alg_none": b64u(compact(dict(m.claims()[0], alg="none"))) + "." + b64u(compact(m.claims()[1])) + ".AAAA",
    }[kind]
    assert_refused(envoy_allow, echo, token, 401, headers=FORGED, what=kind)


def test_allow_missing_unknown_key_still_401(envoy_allow, echo, new_minter):
    assert_refused(envoy_allow, echo, new_minter(register=False).mint(), 401)


# ------------------------------------------------------------------- bypass --

BYPASS = {"region": "us-east-1", "bypass_validation": True, "claim_headers": {"email": "x-claim-email"}}


@pytest.fixture(scope="module")
def envoy_bypass(make_envoy_module):
    return make_envoy_module(dict(BYPASS), name="bypass")


def _unsigned(
    alg: str,
    header: dict | None = None,
    payload: dict | None = None,
    drop: tuple = (),
    sig: str = "AAAA",
    kid: str = "dev-kid",
) -> str:
    m = Minter(Key.generate(kid))
    h, p = m.claims(dict({"alg": alg}, **(header or {})), payload, drop_payload=drop)
    return f"{b64u(compact(h))}.{b64u(compact(p))}.{sig}"


def test_bypass_logs_warning(envoy_bypass):
    def warned() -> bool:  # the log file is flushed every 50 ms: poll briefly
        text = envoy_bypass.log_text().lower()
        return any("bypass" in line and "warn" in line for line in text.splitlines())

    wait_until(warned, timeout=5, what="a warning about bypass_validation in the log at configuration load")


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", "RS256"])
def test_bypass_accepts_unverified(envoy_bypass, key_server, alg):
    before = key_server.total()
    token = _unsigned(alg, payload={"sub": f"dev-{alg}", "email": "dev@example.com"})
    up = assert_allowed(envoy_bypass, token, headers=FORGED)
    assert up.get("x-auth-user") == f"dev-{alg}"
    assert up.get("x-claim-email") == "dev@example.com"
    assert key_server.total() == before, "bypass mode fetched a key it does not use"


def test_bypass_hs256_with_pem_secret_accepted(envoy_bypass, minter):
    h, p = minter.claims({"alg": "HS256"})
    hs, ps = b64u(compact(h)), b64u(compact(p))
    sig = b64u(hs256(minter.key.pem, f"{hs}.{ps}".encode()))
    assert_allowed(envoy_bypass, f"{hs}.{ps}.{sig}")


def test_bypass_foreign_signer_and_unknown_kid_accepted(envoy_bypass, new_minter):
    assert_allowed(envoy_bypass, new_minter(signer=FOREIGN_ARN, register=False).mint())


@pytest.mark.parametrize(
    "case",
    ["expired", "exp_missing", "exp_string", "iss_missing", "sub_missing", "malformed", "missing_token", "nbf_future"],
)
def test_bypass_still_requires_claims(envoy_bypass, echo, case):
    now = Minter(Key.generate()).now()
    token = {
        "expired": _unsigned("none", header={"exp": now - 60}, payload={"exp": now - 60}),
        "exp_missing": _unsigned("none", drop=("exp",)),
        "exp_string": _unsigned("none", payload={"exp": str(now + 600)}),
        "iss_missing": _unsigned("none", drop=("iss",)),
        "sub_missing": _unsigned("none", drop=("sub",)),
        "malformed": "a.b",
        "missing_token": None,
        "nbf_future": _unsigned("none", payload={"nbf": now + 600}),
    }[case]
    assert_refused(envoy_bypass, echo, token, 401, headers=FORGED, what=case)


# ---------------------------------------------------- clock skew and audience --

ALT = config(clock_skew_s=30, audience="my-app", issuer=None, client_id=None)


@pytest.fixture(scope="module")
def envoy_alt(make_envoy_module):
    return make_envoy_module(ALT, name="alt")


def test_clock_skew(envoy_alt, echo, minter):
    now = minter.now()
    assert_allowed(envoy_alt, minter.mint(exp=now - 10, payload={"aud": "my-app"}))
    assert_refused(envoy_alt, echo, minter.mint(exp=now - 120, payload={"aud": "my-app"}), 401)
    assert_allowed(envoy_alt, minter.mint(payload={"aud": "my-app", "nbf": now + 10}))
    assert_refused(envoy_alt, echo, minter.mint(payload={"aud": "my-app", "nbf": now + 300}), 401)


@pytest.mark.parametrize(
    "aud,ok",
    [
        ("my-app", True),
        (["other", "my-app"], True),
        (["my-app"], True),
        (None, False),  # ALB tokens carry no aud: configuring audience refuses them
        ("other", False),
        ("my-app2", False),
        ("my-ap", False),
        ([], False),
        (["other"], False),
        ([["my-app"]], False),
        (1, False),
        ({"aud": "my-app"}, False),
    ],
)
def test_audience(envoy_alt, echo, minter, aud, ok):
    token = minter.mint(drop_payload=("aud",)) if aud is None else minter.mint(payload={"aud": aud})
    if ok:
        assert_allowed(envoy_alt, token)
    else:
        assert_refused(envoy_alt, echo, token, 401, what=f"aud={aud!r}")


def test_no_issuer_no_client_configured(envoy_alt, minter):
    """Without issuer/client_id configured any iss/client is fine (iss still required)."""
    assert_allowed(envoy_alt, minter.mint(header={"client": "anything"}, payload={"aud": "my-app", "iss": "https://x"}))


def test_no_issuer_configured_iss_still_required(envoy_alt, echo, minter):
    assert_refused(envoy_alt, echo, minter.mint(payload={"aud": "my-app"}, drop_payload=("iss",)), 401)
