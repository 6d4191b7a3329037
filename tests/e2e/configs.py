"""Filter configurations used by the suite."""

from __future__ import annotations

import copy
from typing import Any

from tokens import ARN, ARN2, CLIENT, ISSUER, REGION

CLAIM_HEADERS = {
    "email": "x-claim-email",
    "email_verified": "x-claim-email-verified",
    "custom:level": "x-claim-level",
    "custom:admin": "x-claim-admin",
    "groups": "x-claim-groups",
    "ratio": "x-claim-ratio",
    "absent_claim": "x-claim-absent",
}

EXEMPT = ["/healthz", "/public/exact", "/static/*", "/api/v1/open*"]

# The standard configuration most tests run against.
BASE_CONFIG: dict[str, Any] = {
    "region": REGION,
    "alb_arns": [ARN, ARN2],
    "issuer": ISSUER,
    "client_id": CLIENT,
    "exempt_paths": EXEMPT,
    "claim_headers": CLAIM_HEADERS,
    "key_fetch_timeout_ms": 3000,
    "key_failure_ttl_s": 2,
    "key_cache_ttl_s": 300,
}

# Key-endpoint fault tests: short fetch timeout and negative TTL.
FAULT_CONFIG: dict[str, Any] = {
    "region": REGION,
    "alb_arns": [ARN],
    "issuer": ISSUER,
    "client_id": CLIENT,
    "key_fetch_timeout_ms": 500,
    "key_failure_ttl_s": 1,
}

# Every injected header name: all six `headers` defaults plus claim headers.
IDENTITY_HEADERS = [
    "x-auth-user",
    "x-auth-claims",
    "x-auth-user-id",
    "x-auth-email",
    "x-auth-groups",
    "x-auth-name",
] + list(CLAIM_HEADERS.values())


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict:
    """A deep copy of `base` with `changes` (a value of None removes the key)."""
    c = copy.deepcopy(base)
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def config(**changes: Any) -> dict:
    return _changed(BASE_CONFIG, changes)


# ------------------------------------------------------------ authorization --
#
# Issue 12's rules, one path prefix per requirement kind so each test can name
# the rule it exercises. Groups come from two claims: an array (`custom:groups`)
# and a comma-separated string (`custom:roles`).

GROUPS_CLAIMS = ["custom:groups", "custom:roles"]

RULES: list[dict[str, Any]] = [
    {"name": "public", "paths": ["/public/*"], "allow": "anyone"},
    {"name": "catalog", "paths": ["/catalog/*"], "allow": "optional"},
    {"name": "admin", "paths": ["/admin/*"], "require": {"groups_any": ["admin"]}},
    {"name": "oncall", "paths": ["/oncall/*"], "require": {"groups_all": ["staff", "oncall"]}},
    {"name": "tenant", "paths": ["/tenant/*"], "require": {"claims": {"custom:tenant": ["acme", "globex"]}}},
    {"name": "tier", "paths": ["/tier/*"], "require": {"claims": {"custom:tier": [3]}}},
    {"name": "beta", "paths": ["/beta/*"], "require": {"claims": {"custom:beta": [True]}}},
    {
        "name": "ops",
        "paths": ["/ops/*"],
        "require": {"any_of": [{"groups_all": ["staff", "oncall"]}, {"groups_any": ["admin"]}]},
    },
    {
        "name": "finance",
        "paths": ["/finance/*"],
        "require": {"groups_any": ["finance"], "claims": {"custom:tenant": ["acme"]}},
    },
    {"name": "legacy", "paths": ["/old/*"], "allow": "deny"},
    # ignore_case: the case-folded reading matches too (admin's does not)
    {"name": "billing", "paths": ["/billing/*"], "ignore_case": True, "require": {"groups_any": ["finance"]}},
    # hosts: exact and *.suffix; a path prefix of their own keeps them apart
    {"name": "reports", "hosts": ["reports.example.com"], "paths": ["/h/*"], "allow": "deny"},
    {"name": "corp", "hosts": ["*.corp.example"], "paths": ["/h/*"], "allow": "anyone"},
    # methods: GET (which also matches HEAD) is open, writes need `editor`;
    # the write methods are configured in lower and mixed case on purpose
    {"name": "docs-read", "methods": ["GET"], "paths": ["/docs/*"], "allow": "anyone"},
    {"name": "docs_write", "methods": ["post", "Delete"], "paths": ["/docs/*"], "require": {"groups_any": ["editor"]}},
]

RULE_NAMES = [r["name"] for r in RULES]

# A tightening rule and the Envoy defaults around it: `/static/*` stays exempt
# (BASE_CONFIG's exempt_paths), `/public/*` is an `anyone` rule.
AUTHZ_CONFIG: dict[str, Any] = {**BASE_CONFIG, "groups_claim": GROUPS_CLAIMS, "rules": RULES}

# The ALB's own headers, which nobody verified on a request that continues
# without a token: every spelling (any case, `_` for `-`) must go.
ALB_HEADERS = ["x-amzn-oidc-data", "x-amzn-oidc-identity", "x-amzn-oidc-accesstoken"]


def alb_header_spellings(name: str) -> list[str]:
    """`name` as a client may spell it: lower, UPPER, Title-Case, `_` for
    `-` (all and some), mixed case."""
    under = name.replace("-", "_")
    parts = name.split("-")
    return [
        name,
        name.upper(),
        "-".join(p.capitalize() for p in parts),
        under,
        under.upper(),
        parts[0] + "_" + "-".join(parts[1:]),
        "_".join(p.capitalize() for p in parts[:2]) + "-" + "-".join(p.upper() for p in parts[2:]),
    ]


def authz_config(**changes: Any) -> dict:
    """AUTHZ_CONFIG with `changes` (a value of None removes the key)."""
    return _changed(AUTHZ_CONFIG, changes)
