"""Token verification through a real Envoy, once per signature backend
(`signature_backend: host` = Envoy's native verify_signature, `rust` = pure Rust).

Valid tokens reach the upstream with the identity headers; every bad input from
the reference list is refused with 401, never reaches the upstream, is counted
under a fitting `denied.<reason>`, and (where the header is already bad) never
causes a key fetch."""

from __future__ import annotations

import base64
import json

import pytest

from checks import assert_allowed, assert_refused, b64url_nopad
from tokens import ARN, ISSUER, Key, Minter, bad_tokens, compact, valid_variants

VALID_IDS = [v[0] for v in valid_variants(Minter(Key.generate()))]
BAD_IDS = [b.id for b in bad_tokens(Minter(Key.generate()), Key.generate())]

DENIED_REASONS = [
    "missing_token",
    "malformed",
    "bad_header",
    "untrusted_signer",
    "bad_client",
    "unknown_key",
    "key_unavailable",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "bad_claims",
    "bad_issuer",
    "bad_audience",
    "no_username",
]


def denied_counts(envoy) -> dict[str, int]:
    return envoy.counters(*[f"alb_oidc.requests.denied.{r}" for r in DENIED_REASONS])


@pytest.mark.parametrize("variant", VALID_IDS)
def test_valid_token_accepted(envoy_backend, minter, variant):
    token = dict(valid_variants(minter))[variant]
    up = assert_allowed(envoy_backend, token, what=f"{envoy_backend.backend}/{variant}")
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert up.get("x-auth-user") == payload["sub"]


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_token_refused(envoy_backend, echo, key_server, new_minter, case):
    m = new_minter()
    other = Key.generate()
    key_server.add_key(other.kid, other.pem)
    bad = {b.id: b for b in bad_tokens(m, other)}[case]
    # Fresh kid per test: any key-server request during the call was caused by it.
    before_fetch = key_server.total()
    before = denied_counts(envoy_backend)
    assert_refused(envoy_backend, echo, bad.token, 401, what=f"{envoy_backend.backend}/{case}")
    after = denied_counts(envoy_backend)
    delta = {k.rsplit(".", 1)[-1]: after[k] - before[k] for k in after if after[k] != before[k]}
    assert sum(delta.values()) == 1, f"{case}: expected exactly one denied counter increment, got {delta}"
    (reason,) = delta
    assert reason in bad.reasons, f"{case}: denied as {reason!r}, expected one of {bad.reasons}"
    if not bad.fetches_key:
        assert key_server.total() == before_fetch, f"{case}: a key was fetched for a token refused on its header"


def test_identity_headers(envoy_backend, minter):
    """x-auth-user = username claim; x-auth-claims = the exact payload bytes,
    base64url without padding (not a re-serialisation); claim_headers conversions."""
    h, _ = minter.claims()
    # Deliberately unusual but valid JSON: spaces, \u escapes, key order, nesting.
    payload_text = (
        '{ "exp" : %d, "iss":"%s", "sub" :"user-\\u00e9-1",  "email":"alice@example.com",'
        '"email_verified":"true","custom:level":3,"custom:admin":false,"groups":["admins","dev ops"],'
        '"ratio":1.5,"nested":{"a":[1,{"b":null}]}, "name":"Ren\\u00e9"}'
    ) % (h["exp"], ISSUER)
    pbytes = payload_text.encode()
    json.loads(pbytes)
    token = minter.from_bytes(compact(h), pbytes)
    up = assert_allowed(envoy_backend, token)
    # The header carries the claim's UTF-8 bytes as they are (the echo
    # upstream, like http.server, reads header bytes as latin-1).
    assert up.get("x-auth-user").encode("latin-1") == "user-\u00e9-1".encode()
    assert up.get("x-auth-claims") == b64url_nopad(pbytes), (
        "x-auth-claims must be the exact payload bytes, unpadded base64url"
    )
    assert up.get("x-claim-email") == "alice@example.com"
    assert up.get("x-claim-email-verified") == "true"
    assert up.get("x-claim-level") == "3"
    assert up.get("x-claim-admin") == "false"
    assert up.get("x-claim-groups") == "admins,dev ops"
    assert up.get("x-claim-ratio") == "1.5"
    assert up.get("x-claim-absent") is None
    # the token itself is forwarded unchanged by default
    assert up.get("x-amzn-oidc-data") == token


def test_identity_headers_ascii_user(envoy_backend, minter):
    token = minter.mint(payload={"sub": "alice-123", "custom:admin": True, "groups": []})
    up = assert_allowed(envoy_backend, token)
    assert up.get("x-auth-user") == "alice-123"
    assert up.get("x-claim-admin") == "true"
    # claim absent from the token: no header at all
    assert up.get("x-claim-level") is None
    claims = json.loads(base64.urlsafe_b64decode(up.get("x-auth-claims") + "=="))
    assert claims["sub"] == "alice-123"
    assert "=" not in up.get("x-auth-claims")


def test_crlf_in_claim_cannot_inject_headers(envoy_backend, echo, minter):
    """A username with CR/LF cannot travel as a header: it is no username (401,
    `denied.no_username`). Any other claim with CR/LF gets no claim header."""
    before = envoy_backend.counter("alb_oidc.requests.denied.no_username")
    token = minter.mint(payload={"sub": "alice\r\nx-injected: 1"})
    assert_refused(envoy_backend, echo, token, 401, what="CR/LF in the username")
    assert envoy_backend.counter("alb_oidc.requests.denied.no_username") - before == 1
    token = minter.mint(payload={"sub": "crlf-email", "email": "a@b\r\nx-injected2: 1"})
    up = assert_allowed(envoy_backend, token, what="CR/LF in a claim header's claim")
    assert up.get("x-auth-user") == "crlf-email"
    assert up.get("x-claim-email") is None
    assert "x-injected2" not in up.names()


def test_missing_token_refused(envoy_backend, echo):
    before = envoy_backend.counter("alb_oidc.requests.denied.missing_token")
    assert_refused(envoy_backend, echo, None, 401, what="no token")
    assert envoy_backend.counter("alb_oidc.requests.denied.missing_token") == before + 1


def test_empty_token_header_refused(envoy_backend, echo):
    assert_refused(envoy_backend, echo, "", 401, what="empty token header")


def test_two_token_headers_refused(envoy_backend, echo, minter):
    """Two x-amzn-oidc-data headers are ambiguous: 401 in either order, even
    when one of them is valid, and even when both are the same good token."""
    good = minter.mint(payload={"sub": "good-user"})
    forged = Minter(Key.generate(), signer=ARN).mint(payload={"sub": "admin"})
    for first, second in ((good, forged), (forged, good), (good, good)):
        assert_refused(envoy_backend, echo, first, 401, headers=[("x-amzn-oidc-data", second)], what="two tokens")


def test_unknown_kid_is_401(envoy_backend, echo, new_minter, key_server):
    m = new_minter(register=False)
    assert_refused(envoy_backend, echo, m.mint(), 401, what="unknown kid")
    assert key_server.count_kid(m.kid) == 1


# P-256 group order: (r, s) and (r, n - s) are both valid ECDSA signatures.
# The ALB does not promise low-S; both backends must accept either form.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.mark.parametrize("form", ["low_s", "high_s"])
def test_signature_s_form(envoy_backend, minter, form):
    from tokens import b64u, b64u_decode

    for _ in range(3):  # different random k each time
        token = minter.mint()
        h, p, sig = token.split(".")
        raw = b64u_decode(sig)
        r, s = raw[:32], int.from_bytes(raw[32:], "big")
        low = min(s, P256_N - s)
        want = low if form == "low_s" else P256_N - low
        token2 = f"{h}.{p}.{b64u(r + want.to_bytes(32, 'big'))}"
        assert_allowed(envoy_backend, token2, what=f"{envoy_backend.backend}/{form}")


WEIRD_PAYLOADS = {
    # payload JSON text -> never crashes the filter; the status each gets is in WEIRD_STATUS
    "deep_array_nesting": lambda exp: '{"sub":"u","iss":"%s","exp":%d,"x":%s}' % (ISSUER, exp, "[" * 4000 + "]" * 4000),
    "deep_object_nesting": lambda exp: (
        '{"sub":"u","iss":"%s","exp":%d,"x":%s}' % (ISSUER, exp, '{"a":' * 1500 + "1" + "}" * 1500)
    ),
    "huge_exp": lambda exp: '{"sub":"u","iss":"%s","exp":1e308}' % ISSUER,
    "exp_overflow_int": lambda exp: '{"sub":"u","iss":"%s","exp":184467440737095516160000}' % ISSUER,
    "exp_inf_like": lambda exp: '{"sub":"u","iss":"%s","exp":1e999}' % ISSUER,
    "exp_negative_zero": lambda exp: '{"sub":"u","iss":"%s","exp":-0}' % ISSUER,
    "exp_fraction": lambda exp: '{"sub":"u","iss":"%s","exp":%d.999}' % (ISSUER, exp),
    "lone_surrogate_sub": lambda exp: '{"sub":"\\ud800","iss":"%s","exp":%d}' % (ISSUER, exp),
    "bad_escape": lambda exp: '{"sub":"\\x41","iss":"%s","exp":%d}' % (ISSUER, exp),
    "nul_in_sub": lambda exp: '{"sub":"a\\u0000b","iss":"%s","exp":%d}' % (ISSUER, exp),
    "many_keys": lambda exp: (
        '{"sub":"u","iss":"%s","exp":%d,%s}' % (ISSUER, exp, ",".join(f'"k{i}":{i}' for i in range(800)))
    ),
    "long_string_escapes": lambda exp: '{"sub":"%s","iss":"%s","exp":%d}' % ("\\u00e9" * 1500, ISSUER, exp),
    "bom_prefix": lambda exp: '\ufeff{"sub":"u","iss":"%s","exp":%d}' % (ISSUER, exp),
    "trailing_whitespace": lambda exp: '{"sub":"u","iss":"%s","exp":%d}  \n' % (ISSUER, exp),
    "comment": lambda exp: '{"sub":"u",/*c*/"iss":"%s","exp":%d}' % (ISSUER, exp),
    "single_quotes": lambda exp: "{'sub':'u','iss':'%s','exp':%d}" % (ISSUER, exp),
    "trailing_comma": lambda exp: '{"sub":"u","iss":"%s","exp":%d,}' % (ISSUER, exp),
}

WEIRD_STATUS = {
    # JSON nested deeper than the parser's recursion limit (128) is refused
    "deep_array_nesting": 401,
    "deep_object_nesting": 401,
    # exp is any JSON number: far in the future is valid
    "huge_exp": 200,
    "exp_overflow_int": 200,
    # a number literal beyond f64 is not a number JSON can carry
    "exp_inf_like": 401,
    # exp 0: expired
    "exp_negative_zero": 401,
    "exp_fraction": 200,
    # not valid JSON text
    "lone_surrogate_sub": 401,
    "bad_escape": 401,
    "bom_prefix": 401,
    "comment": 401,
    "single_quotes": 401,
    "trailing_comma": 401,
    # a NUL cannot travel in a header value: no username
    "nul_in_sub": 401,
    "many_keys": 200,  # 800 keys: under 16 KiB once encoded
    "long_string_escapes": 200,
    # JSON allows whitespace after the value
    "trailing_whitespace": 200,
}


def test_weird_status_covers_every_payload():
    assert set(WEIRD_STATUS) == set(WEIRD_PAYLOADS)


@pytest.mark.parametrize("case", sorted(WEIRD_PAYLOADS))
def test_weird_payload(envoy_backend, echo, minter, case):
    text = WEIRD_PAYLOADS[case](minter.now() + 600)
    token = minter.mint_with_payload_bytes(text.encode())
    if WEIRD_STATUS[case] == 200:
        assert_allowed(envoy_backend, token, what=case)
    else:
        assert_refused(envoy_backend, echo, token, 401, what=case)
