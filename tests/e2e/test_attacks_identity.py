"""Attack suite, client-sent identity: forged identity headers (every
managed name, in every case, repeated, underscore spellings) on every kind of
path: verified, exempt, allow_missing, and refused for every reason class."""

from __future__ import annotations

import uuid

import pytest

from attack_kit import FORGED, TOKEN_HEADER, classify, failures, forged_identity
from checks import upath
from configs import IDENTITY_HEADERS, config
from envoykit.bootstrap import hcm_of
from filter_envoy import FilterEnvoy
from tokens import FOREIGN_ARN, Key, Minter

# ================================================== 2. client-sent identity ==
#
# Forged identity headers (every managed name incl. claim headers; lower case,
# UPPER, Title-Case, repeated) on every kind of path: verified, exempt,
# allow_missing, and refused for every reason class.

ALLOW_CFG = config(allow_missing=True, key_fetch_timeout_ms=1000, key_failure_ttl_s=1)


@pytest.fixture(scope="module")
def envoy_allow(make_envoy_module) -> FilterEnvoy:
    return make_envoy_module(ALLOW_CFG, name="attack-allow-missing")


def test_forged_identity_headers_on_every_path(envoy_allow, echo, key_server):
    e = envoy_allow
    good = Minter(Key.generate())
    key_server.add_key(good.kid, good.key.pem)
    failing = Minter(Key.generate())
    key_server.add_key(failing.kid, failing.key.pem)
    key_server.set_mode(failing.kid, "500")
    unknown = Minter(Key.generate())  # not on the key server: 404
    sub = f"real-{uuid.uuid4().hex[:8]}"
    valid = good.mint(payload={"sub": sub, "email": "real@example.com", "groups": ["g"]})
    cases: list[tuple[str, str | None, str, dict]] = [
        # (case, token, path, expectation)
        ("verified", valid, upath("v"), {"verified_user": sub}),
        ("verified_exempt_prefix_with_token", valid, "/static/" + uuid.uuid4().hex, {"may_pass": True}),
        ("exempt_exact_no_token", None, "/healthz?" + uuid.uuid4().hex, {"may_pass": True}),
        ("exempt_prefix_bad_token", "not.a.token", "/static/" + uuid.uuid4().hex, {"may_pass": True}),
        ("allow_missing_no_token", None, upath("anon"), {"may_pass": True}),
        ("refused_garbage_token", "garbage", upath("r"), {"refuse": {401}}),
        ("refused_empty_token", "", upath("r"), {"refuse": {401}}),
        ("refused_expired", good.mint(exp=good.now() - 30), upath("r"), {"refuse": {401}}),
        ("refused_foreign_signer", Minter(good.key, signer=FOREIGN_ARN).mint(), upath("r"), {"refuse": {401}}),
        ("refused_bad_signature", good.mint(key=Key.generate()), upath("r"), {"refuse": {401}}),
        ("refused_unknown_kid", unknown.mint(), upath("r"), {"refuse": {401}}),
        ("refused_key_endpoint_500", failing.mint(), upath("r"), {"refuse": {503}}),
    ]
    recs = []
    for case, token, path, exp in cases:
        for variant in ("plain", "cases_and_repeats"):
            hdrs = ([(TOKEN_HEADER, token)] if token is not None else []) + forged_identity(variants=variant != "plain")
            r = e.request(path if variant == "plain" else path + ("&" if "?" in path else "?") + "v2", hdrs)
            sent_path = path if variant == "plain" else path + ("&" if "?" in path else "?") + "v2"
            rec = classify("forged-identity", f"{case}/{variant}", r, sent_path, echo, **exp)
            if rec.outcome == "verified":
                up = r.upstream
                # the injected values are the only ones, and exactly the verified ones
                if (
                    up.all("x-claim-email") != ["real@example.com"]
                    or up.all("x-claim-groups") != ["g"]
                    or any(
                        up.all(n)
                        for n in ("x-auth-user-id", "x-auth-email", "x-auth-groups", "x-auth-name", "x-claim-level")
                    )
                ):
                    rec.outcome, rec.detail = (
                        "let_through",
                        f"unexpected identity headers: {[(n, up.all(n)) for n in IDENTITY_HEADERS]}",
                    )
            recs.append(rec)
    bad = failures(recs)
    assert not bad, "\n".join(bad)


def test_forged_identity_many_copies_and_huge_values(envoy_main, echo, minter):
    """90 forged copies (Envoy allows 100 headers) and a 40 KiB forged value:
    stripped; 101+ headers: Envoy refuses the request (431) before the filter."""
    recs = []
    sub = "many-copies-user"
    tok = minter.mint(payload={"sub": sub})
    many = [(IDENTITY_HEADERS[i % len(IDENTITY_HEADERS)], f"{FORGED}-{i}") for i in range(90)]
    p = upath("many")
    recs.append(
        classify(
            "forged-identity",
            "90_copies",
            envoy_main.request(p, [(TOKEN_HEADER, tok)] + many),
            p,
            echo,
            verified_user=sub,
        )
    )
    p = upath("huge")
    recs.append(
        classify(
            "forged-identity",
            "40k_forged_value",
            envoy_main.request(p, [(TOKEN_HEADER, tok), ("x-auth-user", FORGED + "A" * 40_000)]),
            p,
            echo,
            verified_user=sub,
        )
    )
    p = upath("toomany")
    too_many = [("x-auth-user", f"{FORGED}-{i}") for i in range(120)]
    recs.append(
        classify(
            "forged-identity",
            "120_copies",
            envoy_main.request(p, [(TOKEN_HEADER, tok)] + too_many),
            p,
            echo,
            refuse={431, 400},
        )
    )
    bad = failures(recs)
    assert not bad, "\n".join(bad)


# Envoy's default `headers_with_underscores_action` is ALLOW, and servers that
# map `-` and `_` to the same CGI-style variable (Django under ASGI/WSGI,
# PHP-FPM, Rack) read a client-sent `x_auth_user` as `HTTP_X_AUTH_USER`. The
# filter removes every incoming name that folds (case, `_` -> `-`) to a
# managed one, on every path. (Found by this suite; was a strict xfail.)
def test_underscore_spelling_of_identity_headers_not_forwarded(envoy_allow, echo, key_server):
    good = Minter(Key.generate())
    key_server.add_key(good.kid, good.key.pem)
    sub = f"us-{uuid.uuid4().hex[:8]}"
    spellings = []
    for n in IDENTITY_HEADERS:
        spellings += [
            (n.replace("-", "_"), FORGED),
            (n.replace("-", "_").upper(), FORGED + "-upper"),
            ("_".join(p.capitalize() for p in n.split("-")), FORGED + "-title"),
            (n.replace("-", "_", 1), FORGED + "-mixed"),
        ]
    cases = [
        ("exempt", None, "/healthz", {"may_pass": True}),
        ("anonymous", None, upath("anon"), {"may_pass": True}),
        ("verified", good.mint(payload={"sub": sub}), upath("v"), {"verified_user": sub}),
        ("refused", "garbage", upath("r"), {"refuse": {401}}),
    ]
    recs = []
    for case, token, path, exp in cases:
        hdrs = ([(TOKEN_HEADER, token)] if token else []) + spellings
        r = envoy_allow.request(path, hdrs)
        rec = classify("forged-identity", f"underscore_spellings_{case}", r, path, echo, **exp)
        if r.status == 200:
            leaked = [
                f"{k}: {v}"
                for k, v in r.upstream.doc["headers"]
                if k.replace("_", "-").lower() in IDENTITY_HEADERS and FORGED in v
            ]
            if leaked:
                rec.outcome, rec.detail = "let_through", f"upstream received {leaked[:4]}"
        recs.append(rec)
    bad = failures(recs)
    assert not bad, "\n".join(bad)


class EnvoyDropUnderscores(FilterEnvoy):
    """The suite's Envoy with the recommended HCM hardening for underscores."""

    def customize(self, boot: dict) -> None:
        hcm = hcm_of(boot["static_resources"]["listeners"][0])
        hcm["common_http_protocol_options"] = {"headers_with_underscores_action": "DROP_HEADER"}


def test_underscore_spellings_dropped_with_recommended_envoy_setting(wasm, key_server, echo):
    """Defence in depth that SECURITY.md recommends, and that the example
    configs set: with headers_with_underscores_action: DROP_HEADER nothing
    reaches the upstream either (and the filter works alongside it)."""
    e = EnvoyDropUnderscores(
        ALLOW_CFG, key_port=key_server.port, echo_port=echo.port, wasm_path=wasm, name="attack-underscores"
    )
    e.start()
    try:
        recs = []
        hdrs = [(n.replace("-", "_"), FORGED) for n in IDENTITY_HEADERS] + forged_identity(variants=False)
        for case, path in (("exempt", "/healthz"), ("anonymous", upath("anon"))):
            r = e.request(path, hdrs)
            rec = classify("forged-identity", f"underscore_dropped_{case}", r, path, echo, may_pass=True)
            if rec.outcome == "passed_without_identity":
                leaked = [k for k, _ in r.upstream.doc["headers"] if k.replace("_", "-") in IDENTITY_HEADERS]
                if leaked:
                    rec.outcome, rec.detail = "let_through", f"upstream received {leaked}"
            recs.append(rec)
        bad = failures(recs)
        assert not bad, "\n".join(bad)
    finally:
        e.stop(check=True)
