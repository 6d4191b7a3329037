"""The IdP's access tokens (issue 13), valid and every kind of bad, and their
key sets (JWKS).

Minted by `alb-sim mint-batch` (`access_token` and `jwks` requests: the Rust
test kit's `idp` module), like the ALB tokens in tokens.py: this module
names keys, writes headers and payloads and picks how each bad token is
broken; it does no cryptography. Keys: `rsa-a`, `rsa-b` (fixed 2048-bit RSA
keys), `rsa-weak` (1024 bits), `p256:SEED`, `p384:SEED`.

A bad token is broken in exactly one way, signed over its exact wire text
unless the signature is what is broken, so a refusal is for the reason the
test names.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tokens import b64u_decode, b64u_nopad, mint_batch

# The test kit's IdP (testkit/src/idp.rs).
IDP_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
IDP_CLIENT_ID = "testclientid"
IDP_AUDIENCE = "orders-api"
JWKS_CLUSTER = "idp_jwks"
JWKS_AUTHORITY = "cognito-idp.us-east-1.amazonaws.com"

ACCESS_HEADER = "x-amzn-oidc-accesstoken"
ALL_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384"]


@dataclass(frozen=True)
class IdpKey:
    """A key of the test kit, under a kid."""

    spec: str  # rsa-a, rsa-b, rsa-weak, p256:SEED, p384:SEED
    kid: str

    def entry(self, set_: dict | None = None, drop: tuple = ()) -> dict:
        """This key's entry of a `jwks` request: its public JWK, with
        members set and dropped."""
        return {"key": self.spec, "kid": self.kid, "set": set_ or {}, "drop": list(drop)}


def jwks(*entries: IdpKey | dict) -> bytes:
    """A key set document of the keys (or `IdpKey.entry` dicts), in order."""
    keys = [e.entry() if isinstance(e, IdpKey) else e for e in entries]
    return mint_batch({"op": "jwks", "keys": keys})["jwks"].encode()


def sign(
    key: IdpKey,
    header: dict | None = None,
    payload: dict | None = None,
    *,
    header_text: str | None = None,
    payload_text: str | None = None,
    sign_alg: str | None = None,
    der: bool = False,
    hs256_secret: str | dict | None = None,
    unsigned: bool = False,
) -> str:
    """An access token with exactly this header and payload, signed with
    `key` as the header's `alg` says (or `sign_alg`; `der`: ECDSA in DER),
    or HS256 keyed with `hs256_secret` (`"public_der"`, `"public_pem"` of
    `key`, or `{"text": ...}`), or not at all."""
    request: dict[str, Any] = {"op": "access_token", "key": key.spec, "header": header or {}, "payload": payload or {}}
    if header_text is not None:
        request["header_text"] = header_text
    if payload_text is not None:
        request["payload_text"] = payload_text
    if sign_alg is not None:
        request["sign_alg"] = sign_alg
    if der:
        request["form"] = "der"
    if hs256_secret is not None:
        request["hs256_secret"] = hs256_secret
    if unsigned:
        request["unsigned"] = True
    return mint_batch(request)["token"]


# Scopes and groups of the valid tokens unless a test says otherwise.
DEFAULT_SCOPE = "openid orders:read"
DEFAULT_GROUPS = ["readers"]


@dataclass
class AccessMinter:
    """Cognito-style access tokens signed with one key."""

    key: IdpKey
    alg: str = "RS256"
    lifetime: int = 3600

    def header(self, **changes: Any) -> dict:
        h = {"kid": self.key.kid, "alg": self.alg}
        h.update(changes)
        return h

    def payload(self, sub: str, /, **changes: Any) -> dict:
        """What Cognito puts in an access token, for the login whose data
        token says `sub`; a change of None removes the claim."""
        now = int(time.time())
        p: dict[str, Any] = {
            "sub": sub,
            "cognito:groups": list(DEFAULT_GROUPS),
            "iss": IDP_ISSUER,
            "version": 2,
            "client_id": IDP_CLIENT_ID,
            "aud": IDP_AUDIENCE,
            "token_use": "access",
            "scope": DEFAULT_SCOPE,
            "auth_time": now,
            "exp": now + self.lifetime,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "username": "alice",
        }
        for k, v in changes.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    def mint(self, sub: str, /, header: dict | None = None, **claims: Any) -> str:
        """A valid token for `sub` (a fresh `jti`, so never a cache hit of
        another), with claims changed (None removes one)."""
        return sign(self.key, header or self.header(), self.payload(sub, **claims))


# ------------------------------------------------------------- bad tokens ---

# The refusal reasons (`alb_oidc.requests.denied.<reason>`) with `required: true`.
INVALID = "access_token_invalid"
MISSING = "access_token_missing"


@dataclass
class BadAccess:
    id: str
    build: Callable[[], str] = field(repr=False)  # minted on first use of `token`
    # acceptable refusal reasons with `required: true`
    reasons: tuple[str, ...] = (INVALID,)

    @cached_property
    def token(self) -> str:
        return self.build()


@dataclass(frozen=True)
class KeySet:
    """The keys of the key set bad tokens are checked against."""

    rsa: IdpKey  # RS256/384/512 signer, no `alg` in its JWK
    rsa_rs256_only: IdpKey  # a JWK with `"alg":"RS256"`
    ec256: IdpKey
    ec384: IdpKey
    weak: IdpKey  # 1024-bit RSA: skipped by the filter
    other_rsa: IdpKey  # not in the key set; same kid as `rsa` for forgeries

    def document(self) -> bytes:
        return jwks(
            self.rsa,
            self.rsa_rs256_only.entry({"alg": "RS256"}),
            self.ec256,
            self.ec384,
            self.weak,
        )


def standard_key_set(tag: str = "") -> KeySet:
    return KeySet(
        rsa=IdpKey("rsa-a", f"rsa-a{tag}"),
        rsa_rs256_only=IdpKey("rsa-b", f"rsa-b-rs256{tag}"),
        ec256=IdpKey("p256:idp-ec256", f"ec256{tag}"),
        ec384=IdpKey("p384:idp-ec384", f"ec384{tag}"),
        weak=IdpKey("rsa-weak", f"weak{tag}"),
        other_rsa=IdpKey("rsa-b", f"rsa-a{tag}"),
    )


def valid_access_tokens(ks: KeySet, sub: str) -> list[tuple[str, str]]:
    """Tokens the filter must accept with `algorithms` = all five, each key
    of the set with each algorithm that fits it."""
    return [
        ("RS256", AccessMinter(ks.rsa).mint(sub)),
        ("RS384", AccessMinter(ks.rsa, alg="RS384").mint(sub)),
        ("RS512", AccessMinter(ks.rsa, alg="RS512").mint(sub)),
        ("RS256_jwk_alg_RS256", AccessMinter(ks.rsa_rs256_only).mint(sub)),
        ("ES256", AccessMinter(ks.ec256, alg="ES256").mint(sub)),
        ("ES384", AccessMinter(ks.ec384, alg="ES384").mint(sub)),
        ("scope_array", AccessMinter(ks.rsa).mint(sub, scope=["openid", "orders:read"])),
        ("aud_array", AccessMinter(ks.rsa).mint(sub, aud=["other", IDP_AUDIENCE])),
        ("no_token_use", AccessMinter(ks.rsa).mint(sub, token_use=None)),
        ("nbf_past", AccessMinter(ks.rsa).mint(sub, nbf=int(time.time()) - 60)),
        ("x5u_jku_jwk_ignored", AccessMinter(ks.rsa).mint(sub, header=_with_key_pointers(ks))),
    ]


def _with_key_pointers(ks: KeySet) -> dict:
    """A header naming keys elsewhere, which the filter must never read."""
    return {
        "kid": ks.rsa.kid,
        "alg": "RS256",
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "jwk": {"kty": "RSA", "kid": "attacker", "n": "AQAB", "e": "AQAB"},
    }


def bad_access_tokens(ks: KeySet, sub: str) -> list[BadAccess]:
    """Every bad access token of issue 13 for the login `sub`, against a
    filter with `issuer` IDP_ISSUER, `client_ids` [IDP_CLIENT_ID],
    `audiences` [IDP_AUDIENCE], all five algorithms, and key set `ks`."""
    out: list[BadAccess] = []
    rsa = AccessMinter(ks.rsa)
    now = int(time.time())

    def add(id: str, build: Callable[[], str], reasons: tuple[str, ...] = (INVALID,)) -> None:
        out.append(BadAccess(id, build, reasons))

    def with_header(**changes: Any) -> str:
        h = rsa.header(**changes)
        return sign(ks.rsa, {k: v for k, v in h.items() if v is not None}, rsa.payload(sub), sign_alg="RS256")

    # ---- claims ---------------------------------------------------------------
    add("wrong_sub", lambda: rsa.mint(sub + "-other"))
    add("sub_missing", lambda: rsa.mint(sub, sub=None))
    add("sub_number", lambda: rsa.mint(sub, sub=42))
    add("expired", lambda: rsa.mint(sub, exp=now - 120))
    add("exp_missing", lambda: rsa.mint(sub, exp=None))
    add("exp_string", lambda: rsa.mint(sub, exp=str(now + 600)))
    add("nbf_future", lambda: rsa.mint(sub, nbf=now + 600))
    add("wrong_iss", lambda: rsa.mint(sub, iss=IDP_ISSUER + "x"))
    add("iss_missing", lambda: rsa.mint(sub, iss=None))
    add("wrong_client_id", lambda: rsa.mint(sub, client_id="anotherappclient"))
    add("client_id_missing", lambda: rsa.mint(sub, client_id=None))
    add("wrong_aud", lambda: rsa.mint(sub, aud="other-api"))
    add("aud_missing", lambda: rsa.mint(sub, aud=None))
    add("token_use_id", lambda: rsa.mint(sub, token_use="id"))
    add("payload_dup_sub", lambda: _dup_sub(ks, sub))

    # ---- algorithm confusion ----------------------------------------------------
    add("alg_none", lambda: sign(ks.rsa, rsa.header(alg="none"), rsa.payload(sub), unsigned=True))
    add(
        "alg_none_signed",
        lambda: sign(ks.rsa, rsa.header(alg="none"), rsa.payload(sub), sign_alg="RS256"),
    )
    add(
        "hs256_rsa_public_der_secret",
        lambda: sign(ks.rsa, rsa.header(alg="HS256"), rsa.payload(sub), hs256_secret="public_der"),
    )
    add(
        "hs256_rsa_public_pem_secret",
        lambda: sign(ks.rsa, rsa.header(alg="HS256"), rsa.payload(sub), hs256_secret="public_pem"),
    )
    add(
        "rs256_header_hmac_signature",
        lambda: sign(ks.rsa, rsa.header(), rsa.payload(sub), hs256_secret="public_der"),
    )
    add(
        "es256_header_rsa_key",
        lambda: sign(ks.ec256, rsa.header(alg="ES256", kid=ks.rsa.kid), rsa.payload(sub)),
    )
    add(
        "rs256_header_ec_key",
        lambda: sign(ks.rsa, rsa.header(alg="RS256", kid=ks.ec256.kid), rsa.payload(sub)),
    )
    add(
        "es384_header_p256_key",
        lambda: sign(ks.ec384, rsa.header(alg="ES384", kid=ks.ec256.kid), rsa.payload(sub)),
    )
    add(
        "rs384_with_rs256_only_jwk",
        lambda: sign(ks.rsa_rs256_only, rsa.header(alg="RS384", kid=ks.rsa_rs256_only.kid), rsa.payload(sub)),
    )
    add("alg_PS256", lambda: with_header(alg="PS256"))
    add("alg_EdDSA", lambda: with_header(alg="EdDSA"))
    add("alg_lowercase", lambda: with_header(alg="rs256"))
    add("alg_missing", lambda: with_header(alg=None))
    add("alg_number", lambda: with_header(alg=256))

    # ---- header ---------------------------------------------------------------------
    add("kid_unknown", lambda: with_header(kid=f"unknown-{uuid.uuid4().hex}"))
    add("kid_missing", lambda: with_header(kid=None))
    add("kid_number", lambda: with_header(kid=7))
    add("kid_empty", lambda: with_header(kid=""))
    add("crit_header", lambda: with_header(crit=["exp"]))
    add("b64_false", lambda: with_header(b64=False))
    add(
        "header_dup_alg",
        lambda: sign(
            ks.rsa,
            payload=rsa.payload(sub),
            header_text=f'{{"kid":"{ks.rsa.kid}","alg":"HS256","alg":"RS256"}}',
            sign_alg="RS256",
        ),
    )

    # ---- keys -------------------------------------------------------------------------
    add("weak_rsa_1024_key", lambda: AccessMinter(ks.weak).mint(sub))
    add("signed_by_other_key_same_kid", lambda: AccessMinter(ks.other_rsa).mint(sub))

    # ---- signature --------------------------------------------------------------------
    ec = AccessMinter(ks.ec256, alg="ES256")
    add("es256_der_signature", lambda: sign(ks.ec256, ec.header(), ec.payload(sub), der=True))
    add("signature_empty", lambda: _strip_signature(rsa.mint(sub)))
    add("tampered_payload", lambda: _swap_payload(rsa.mint(sub), rsa.payload(sub, **{"cognito:groups": ["admin"]})))
    add("es256_r_s_swapped", lambda: _swap_halves(ec.mint(sub)))

    # ---- format -------------------------------------------------------------------------
    add("padded_segments", lambda: _pad(rsa.mint(sub)))
    # Not three segments: not a JWS at all, as opaque as Google's tokens.
    add("two_segments", lambda: rsa.mint(sub).rsplit(".", 1)[0], (INVALID, MISSING))
    add("four_segments", lambda: rsa.mint(sub) + ".e30", (INVALID, MISSING))
    add("not_json_payload", lambda: sign(ks.rsa, rsa.header(), payload_text="sub=" + sub))
    add("oversized_20k", lambda: rsa.mint(sub, blob="A" * 20_000))
    # Google's and some IdPs' access tokens are opaque: never a JWT.
    add("opaque", lambda: "ya29.a0AfH6SMB" + uuid.uuid4().hex, (INVALID, MISSING))
    return out


def _dup_sub(ks: KeySet, sub: str) -> str:
    p = AccessMinter(ks.rsa).payload(sub)
    text = json.dumps(p, separators=(",", ":"))[:-1] + ',"sub":"' + sub + '"}'
    return sign(ks.rsa, AccessMinter(ks.rsa).header(), payload_text=text)


def _strip_signature(token: str) -> str:
    return token.rsplit(".", 1)[0] + "."


def _swap_payload(token: str, payload: dict) -> str:
    h, _, s = token.split(".")
    return f"{h}.{b64u_nopad(json.dumps(payload).encode())}.{s}"


def _swap_halves(token: str) -> str:
    h, p, s = token.split(".")
    raw = b64u_decode(s)
    half = len(raw) // 2
    return f"{h}.{p}.{b64u_nopad(raw[half:] + raw[:half])}"


def _pad(token: str) -> str:
    """Each segment with the `=` padding IdPs never send (tokens whose
    segments all happen to need none are refused for that reason anyway:
    the last one gets a `=` too many)."""

    def padded(seg: str) -> str:
        return seg + "=" * (-len(seg) % 4)

    segs = [padded(s) for s in token.split(".")]
    if all(s == t for s, t in zip(segs, token.split("."), strict=True)):
        segs[-1] += "="
    return ".".join(segs)
