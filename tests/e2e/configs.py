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


def config(**changes: Any) -> dict:
    c = copy.deepcopy(BASE_CONFIG)
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c
