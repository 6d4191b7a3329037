"""The benchmark's Envoy bootstrap: one listener per variant, all in one Envoy.

Every listener has the same route table:

* ``/check``  -> the ``echo`` cluster (a tiny upstream that answers with the
  headers it received). Only the validation phase uses it: it shows that the
  variant injects the identity header and that the filter actually ran.
* everything else -> ``direct_response`` 200 ``ok``. The measurement phases
  only hit ``/`` (variant (r): ``/api/orders/42?expand=items``, the path its
  20th rule matches), so no upstream cost enters the numbers and only the
  HTTP filters differ between variants.

Each wasm listener gets its own ``vm_id``, hence its own V8 VM and caches:
one variant's verified tokens can never make another variant's requests hot.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from envoykit import bootstrap as bs

REGION = "us-east-1"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/bench/0123456789abcdef"
ISSUER = "https://idp.alb-sim.local"
CLIENT = "alb-sim-client"
SUB = "bench-user"
TOKEN_HEADER = "x-amzn-oidc-data"
IDENTITY_HEADER = "x-auth-user"

# Variant (t): the IdP's access token (issue 13). Issuer and client are the
# test kit's (`bench-mint access` defaults); the key set is served by the
# `bench_jwks` listener through the `idp_jwks` cluster.
ACCESS_TOKEN_HEADER = "x-amzn-oidc-accesstoken"
IDP_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
IDP_CLIENT_ID = "testclientid"
JWKS_CLUSTER = "idp_jwks"
JWKS_AUTHORITY = "cognito-idp.us-east-1.amazonaws.com"
JWKS_PATH = "/us-east-1_TEST/.well-known/jwks.json"
ACCESS_GROUP = "bench-group"
GROUPS_HEADER = "x-auth-groups"


@dataclass
class Variant:
    key: str  # "a".."h", "r", "t"
    title: str
    kind: str  # "none" | "noop" | "alb" | "jwt"
    tokens: str  # "hot" | "cold"
    filter_config: dict | None = None  # alb-oidc JSON config
    jwt_cache: bool = False
    expects_identity: bool = True
    expects_user_id: bool = False
    port: int = 0
    extra: dict = field(default_factory=dict)
    # Another build of the filter (--baseline-wasm), for before/after in one run.
    wasm: Path | None = None
    # The path the load generator requests.
    path: str = "/"
    # The rule that decides `path` (counted in alb_oidc.rule.<name>.allowed).
    rule: str | None = None

    @property
    def access_token(self) -> bool:
        """Verifies the IdP's access token: its requests carry one."""
        return bool(self.filter_config) and "access_token" in self.filter_config  # type: ignore[operator]


def alb_config(backend: str, *, user_service: bool = False) -> dict:
    cfg: dict[str, Any] = {
        "region": REGION,
        "alb_arns": [ARN],
        "issuer": ISSUER,
        "client_id": CLIENT,
        "signature_backend": backend,
        # One key for the whole run: a re-fetch mid-round would be noise.
        "key_cache_ttl_s": 3600,
    }
    if user_service:
        # A warm user cache for the whole run (the default is 300 s).
        cfg["user_service"] = {"cluster": "user_service", "revalidate_s": 3600}
    return cfg


RULES_PATH = "/api/orders/42?expand=items"
RULES_LATE_RULE = "api"


def twenty_rules() -> list[dict]:
    """19 rules a GET of RULES_PATH passes by (other paths, hosts, methods,
    case-folded prefixes), then the one it matches: a `require` on a claim
    every bench token has. The shape of the criterion bench's 20 rules
    (benches/core.rs); the late rule checks a claim instead of groups, so that
    (r) sends exactly (c)'s token and differs from (c) only by the rules."""
    rules: list[dict] = []
    for i in range(19):
        name = f"r{i}"
        match i % 4:
            case 0:
                rules.append({"name": name, "paths": [f"/area{i}/*"], "allow": "anyone"})
            case 1:
                rules.append({"name": name, "hosts": [f"h{i}.example.com"], "allow": "deny"})
            case 2:
                rules.append(
                    {"name": name, "paths": ["/api/*"], "methods": ["DELETE"], "require": {"groups_any": ["admin"]}}
                )
            case _:
                rules.append(
                    {"name": name, "paths": [f"/exact{i}", f"/p{i}/*"], "ignore_case": True, "allow": "optional"}
                )
    rules.append({"name": RULES_LATE_RULE, "paths": ["/api/*"], "require": {"claims": {"email_verified": ["true"]}}})
    return rules


def rules_config() -> dict:
    """(c)'s configuration plus 20 route rules; `groups_claim` names a claim the
    bench tokens lack (group requirements need a source of groups)."""
    return {**alb_config("host"), "groups_claim": "custom:groups", "rules": twenty_rules()}


def access_token_config() -> dict:
    """(d)'s configuration plus an `access_token` block. Not `required`: a
    token that fails counts as absent (validation checks the counters). The
    key set is cached for the whole run, as (d)'s ALB key is."""
    return {
        **alb_config("host"),
        "access_token": {
            "issuer": IDP_ISSUER,
            "jwks_cluster": JWKS_CLUSTER,
            "jwks_authority": JWKS_AUTHORITY,
            "jwks_path": JWKS_PATH,
            "client_ids": [IDP_CLIENT_ID],
            "groups_claim": "cognito:groups",
            "jwks_cache_ttl_s": 3600,
        },
    }


def variants() -> list[Variant]:
    return [
        Variant("a", "Envoy alone (router only)", "none", "hot", expects_identity=False),
        Variant("b", "no-op Rust proxy-wasm filter", "noop", "hot", expects_identity=False),
        Variant("c", "alb-oidc hot (one token repeated)", "alb", "hot", alb_config("host")),
        Variant("d", "alb-oidc cold, native verify_signature", "alb", "cold", alb_config("host")),
        Variant("e", "alb-oidc cold, pure-Rust p256", "alb", "cold", alb_config("rust")),
        Variant("f", "jwt_authn cold, no cache", "jwt", "cold"),
        Variant("g", "jwt_authn hot, jwt_cache_config", "jwt", "hot", jwt_cache=True),
        Variant(
            "h",
            "alb-oidc + user service, hot",
            "alb",
            "hot",
            alb_config("host", user_service=True),
            expects_user_id=True,
        ),
        Variant(
            "r",
            "alb-oidc hot, 20 route rules (the 20th matches)",
            "alb",
            "hot",
            rules_config(),
            path=RULES_PATH,
            rule=RULES_LATE_RULE,
        ),
        Variant(
            "t",
            "alb-oidc cold + hot IdP access token",
            "alb",
            "cold",
            access_token_config(),
        ),
    ]


def baseline_variants(selected: list[Variant], wasm: Path) -> list[Variant]:
    """(c0) and (d0): (c) and (d) with another build of the filter, so a
    change is measured against its baseline in the same run, same noise."""
    out = []
    for v in selected:
        if v.key in ("c", "d"):
            title = f"{v.title}, baseline build"
            out.append(replace(v, key=f"{v.key}0", title=title, wasm=wasm))
    return out


def jwt_filter(jwks: dict, cache: bool) -> dict:
    provider: dict[str, Any] = {
        "issuer": ISSUER,
        "from_headers": [{"name": TOKEN_HEADER}],
        "forward": True,
        "local_jwks": {"inline_string": json.dumps(jwks)},
        "claim_to_headers": [{"header_name": IDENTITY_HEADER, "claim_name": "sub"}],
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"alb": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "alb"}}],
        },
    }


def listener(v: Variant, filters: list[dict]) -> dict:
    routes = [bs.route_to_cluster("echo", path="/check"), bs.direct_response(200, "ok\n")]
    return bs.http_listener(f"bench_{v.key}", v.port, routes=routes, http_filters=filters)


def bootstrap(
    vs: list[Variant],
    *,
    admin_port: int,
    wasm: Path,
    noop_wasm: Path,
    jwks: dict,
    echo_port: int,
    key_port: int,
    user_service_port: int | None,
    idp_jwks: str | None = None,
    idp_jwks_port: int | None = None,
) -> dict:
    """`idp_jwks` (the key set's text) and `idp_jwks_port` are needed when a
    variant verifies access tokens."""
    listeners = []
    for v in vs:
        if v.kind == "none":
            filters: list[dict] = []
        elif v.kind == "noop":
            filters = [bs.wasm_filter(f"bench_{v.key}", noop_wasm, "{}")]
        elif v.kind == "alb":
            assert v.filter_config is not None
            filters = [bs.wasm_filter(f"bench_{v.key}", v.wasm or wasm, v.filter_config)]
        elif v.kind == "jwt":
            filters = [jwt_filter(jwks, v.jwt_cache)]
        else:  # pragma: no cover
            raise AssertionError(v.kind)
        listeners.append(listener(v, filters))
    clusters = [bs.static_cluster("echo", echo_port), bs.static_cluster("alb_public_keys", key_port)]
    if user_service_port is not None:
        clusters.append(bs.static_cluster("user_service", user_service_port, http2=True))
    if any(v.access_token for v in vs):
        assert idp_jwks is not None and idp_jwks_port is not None, "a variant verifies access tokens: key set needed"
        listeners.append(jwks_listener(idp_jwks, idp_jwks_port))
        clusters.append(bs.static_cluster(JWKS_CLUSTER, idp_jwks_port))
    return bs.bootstrap(admin_port=admin_port, listeners=listeners, clusters=clusters)


def jwks_listener(jwks: str, port: int) -> dict:
    """The IdP's key set at JWKS_PATH, 404 elsewhere (a wrong path fails
    the fetch instead of passing by accident)."""
    routes = [
        {"match": {"path": JWKS_PATH}, "direct_response": {"status": 200, "body": {"inline_string": jwks}}},
        bs.direct_response(404, "not found\n"),
    ]
    return bs.http_listener("bench_jwks", port, routes=routes, http_filters=[])


def jwks_from_pem(pem: bytes, kid: str) -> dict:
    """The P-256 public key as a JWKS (what jwt_authn's local_jwks wants)."""
    nums = load_pem_public_key(pem).public_numbers()  # type: ignore[union-attr]

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    return {
        "keys": [
            {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": b64(nums.x), "y": b64(nums.y)}
        ]
    }  # type: ignore[attr-defined]
