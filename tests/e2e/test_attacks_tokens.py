"""Attack suite, bad tokens: the reference list (tokens.bad_tokens()) and
the extra attacks below (ALBeast signers, alg confusion, HS256 with the public
key, duplicate JSON keys, kid path tricks), each with forged identity headers,
once per signature backend. See attack_kit.py for the guarantee."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from attack_kit import TOKEN_HEADER, Record, classify, failures, forged_identity
from checks import upath
from filter_envoy import FilterEnvoy
from tokens import (
    ARN,
    ARN2,
    CLIENT,
    FOREIGN_ARN,
    ISSUER,
    Key,
    Minter,
    b64u,
    bad_tokens,
    compact,
    hs256,
)

# =========================================================== 1. bad tokens ==
#
# The reference list as built by tokens.bad_tokens(), plus the cases below,
# each with a fresh, registered signing key (so a signature that verified would
# be accepted, and any key fetch is attributable to the case).

UNTRUSTED = ARN.replace(":us-east-1:", ":us-west-2:")  # our ALB's name, other region
assert UNTRUSTED != ARN


def _dup_header(m: Minter, extra: bytes, first: bytes = b"") -> str:
    h, p = m.claims()
    hj = compact(h)
    return m.from_bytes(b"{" + first + hj[1:-1] + extra + b"}", compact(p))


def _dup_payload(m: Minter, extra: bytes, first: bytes = b"") -> str:
    h, p = m.claims()
    pj = compact(p)
    return m.from_bytes(compact(h), b"{" + first + pj[1:-1] + extra + b"}")


def _alg_with_es256_sig(m: Minter, alg: str) -> str:
    """Header names `alg` but the signature is a valid ES256 signature by the
    kid's key: a verifier that ignored `alg` would accept it."""
    return m.mint(header={"alg": alg})


def _hs256(m: Minter, secret: bytes, alg: str = "HS256") -> str:
    h, p = m.claims(header={"alg": alg})
    hs, ps = b64u(compact(h)), b64u(compact(p))
    return f"{hs}.{ps}.{b64u(hs256(secret, f'{hs}.{ps}'.encode()))}"


def _pem_der(m: Minter) -> bytes:
    body = b"".join(ln for ln in m.key.pem.splitlines() if not ln.startswith(b"-----"))
    return base64.b64decode(body)


def _kid_json(m: Minter, raw_kid_json: bytes) -> str:
    """A header whose kid is the given raw JSON text (escapes and all)."""
    h, p = m.claims()
    h.pop("kid")
    hj = compact(h)
    return m.from_bytes(hj[:-1] + b',"kid":' + raw_kid_json + b"}", compact(p))


# (id, builder(m, other_key) -> token, fetch_allowed)
EXTRA_TOKENS: list[tuple[str, Callable[[Minter, Key], str], bool]] = [
    # ---- ALBeast: validly signed by the region's key, but not by our ALB ----
    (
        "albeast_foreign_signer_valid_sig",
        lambda m, o: Minter(m.key, signer=FOREIGN_ARN).mint(payload={"sub": "admin"}),
        False,
    ),
    ("albeast_our_alb_name_other_region", lambda m, o: Minter(m.key, signer=UNTRUSTED).mint(), False),
    (
        "albeast_foreign_signer_copies_our_iss_client",
        lambda m, o: Minter(m.key, signer=FOREIGN_ARN).mint(
            header={"iss": ISSUER, "client": CLIENT}, payload={"iss": ISSUER}
        ),
        False,
    ),
    (
        "albeast_forged_iss_trusted_signer",
        lambda m, o: m.mint(payload={"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Attacker"}),
        False,
    ),
    (
        "albeast_forged_iss_header_and_payload",
        lambda m, o: m.mint(header={"iss": "https://evil.example"}, payload={"iss": "https://evil.example"}),
        False,
    ),
    ("albeast_iss_prefix", lambda m, o: m.mint(payload={"iss": ISSUER[:-1]}), False),
    ("albeast_iss_trailing_slash", lambda m, o: m.mint(payload={"iss": ISSUER + "/"}), False),
    ("albeast_wrong_client", lambda m, o: m.mint(header={"client": "attacker-client"}), False),
    # ---- signer spellings ------------------------------------------------------
    ("signer_nul_suffix", lambda m, o: Minter(m.key, signer=ARN + "\u0000").mint(), False),
    ("signer_newline_suffix", lambda m, o: Minter(m.key, signer=ARN + "\n").mint(), False),
    ("signer_tab_prefix", lambda m, o: Minter(m.key, signer="\t" + ARN).mint(), False),
    ("signer_nbsp_prefix", lambda m, o: Minter(m.key, signer="\u00a0" + ARN).mint(), False),
    ("signer_two_arns_comma", lambda m, o: Minter(m.key, signer=ARN + "," + ARN2).mint(), False),
    ("signer_two_arns_space", lambda m, o: Minter(m.key, signer=ARN + " " + ARN2).mint(), False),
    ("signer_mixed_case_app", lambda m, o: Minter(m.key, signer=ARN.replace("/app/", "/APP/")).mint(), False),
    ("signer_fullwidth_colon", lambda m, o: Minter(m.key, signer=ARN.replace(":", "\uff1a", 1)).mint(), False),
    ("signer_prefix_4", lambda m, o: Minter(m.key, signer=ARN[:-4]).mint(), False),
    ("signer_suffix_alb2", lambda m, o: Minter(m.key, signer=ARN + ARN2).mint(), False),
    ("signer_bool", lambda m, o: m.mint(header={"signer": True}), False),
    ("signer_list_both", lambda m, o: m.mint(header={"signer": [ARN, ARN2]}), False),
    # ---- alg -------------------------------------------------------------------
    ("alg_none_valid_es256_sig", lambda m, o: _alg_with_es256_sig(m, "none"), False),
    ("alg_HS256_valid_es256_sig", lambda m, o: _alg_with_es256_sig(m, "HS256"), False),
    ("alg_es256_lower_valid_sig", lambda m, o: _alg_with_es256_sig(m, "es256"), False),
    ("alg_ES256K_valid_sig", lambda m, o: _alg_with_es256_sig(m, "ES256K"), False),
    ("alg_none_empty_sig", lambda m, o: _alg_with_es256_sig(m, "none").rsplit(".", 1)[0] + ".", False),
    ("alg_none_no_sig_segment", lambda m, o: _alg_with_es256_sig(m, "none").rsplit(".", 1)[0], False),
    ("alg_nOnE", lambda m, o: _hs256(m, b"", alg="nOnE"), False),
    # ---- HS256 with the public key as the HMAC secret ---------------------------
    ("hs256_pem_secret", lambda m, o: _hs256(m, m.key.pem), False),
    ("hs256_pem_no_newline", lambda m, o: _hs256(m, m.key.pem.rstrip(b"\n")), False),
    ("hs256_der_secret", lambda m, o: _hs256(m, _pem_der(m)), False),
    ("hs256_pem_secret_alg_es256", lambda m, o: _hs256(m, m.key.pem, alg="ES256"), False),
    ("hs512_pem_secret", lambda m, o: _hs256(m, m.key.pem, alg="HS512"), False),
    # ---- duplicate JSON keys (the check and the verifier must see one value) ----
    (
        "dup_signer_foreign_then_trusted",
        lambda m, o: _dup_header(m, b"", first=b'"signer":' + json.dumps(FOREIGN_ARN).encode() + b","),
        False,
    ),
    (
        "dup_signer_escaped_foreign",
        lambda m, o: _dup_header(m, b',"\\u0073igner":' + json.dumps(FOREIGN_ARN).encode()),
        False,
    ),
    (
        "dup_signer_escaped_upper_hex",
        lambda m, o: _dup_header(m, b',"sign\\u0065r":' + json.dumps(FOREIGN_ARN).encode()),
        False,
    ),
    ("dup_alg_escaped_none", lambda m, o: _dup_header(m, b',"\\u0061lg":"none"'), False),
    ("dup_alg_none_first", lambda m, o: _dup_header(m, b"", first=b'"alg":"none",'), False),
    ("dup_kid_escaped_other", lambda m, o: _dup_header(m, b',"\\u006bid":"' + o.kid.encode() + b'"'), False),
    ("dup_kid_escaped_upper_hex", lambda m, o: _dup_header(m, b',"\\u006Bid":"' + o.kid.encode() + b'"'), False),
    ("dup_client_escaped", lambda m, o: _dup_header(m, b',"cli\\u0065nt":"other"'), False),
    ("dup_payload_sub_first", lambda m, o: _dup_payload(m, b"", first=b'"sub":"admin",'), False),
    ("dup_payload_sub_escaped_first_char", lambda m, o: _dup_payload(m, b',"\\u0073ub":"admin"'), False),
    ("dup_payload_sub_escaped_last_char", lambda m, o: _dup_payload(m, b',"su\\u0062":"admin"'), False),
    ("dup_payload_exp_escaped_past", lambda m, o: _dup_payload(m, b',"e\\u0078p":1'), False),
    ("dup_payload_iss_escaped", lambda m, o: _dup_payload(m, b',"\\u0069ss":"https://evil.example"'), False),
    ("dup_payload_email", lambda m, o: _dup_payload(m, b',"email":"admin@example.com"'), False),
    ("dup_payload_email_escaped", lambda m, o: _dup_payload(m, b',"em\\u0061il":"admin@example.com"'), False),
    (
        "dup_payload_groups_claim_header",
        lambda m, o: _dup_payload(m, b',"groups":["admins"],"groups":["admins","root"]'),
        False,
    ),
    # ---- kid path tricks -----------------------------------------------------------
    ("kid_dotdot_slash", lambda m, o: m.mint(header={"kid": "../" + m.kid}), False),
    ("kid_dotdot_only", lambda m, o: m.mint(header={"kid": ".."}), False),
    ("kid_dot_only", lambda m, o: m.mint(header={"kid": "."}), False),
    ("kid_pct2f", lambda m, o: m.mint(header={"kid": "..%2f" + m.kid}), False),
    ("kid_pct2F_upper", lambda m, o: m.mint(header={"kid": "%2F" + m.kid}), False),
    ("kid_pct00", lambda m, o: m.mint(header={"kid": m.kid + "%00"}), False),
    ("kid_question", lambda m, o: m.mint(header={"kid": m.kid + "?x=../y"}), False),
    ("kid_hash", lambda m, o: m.mint(header={"kid": m.kid + "#frag"}), False),
    ("kid_json_escaped_slash", lambda m, o: _kid_json(m, b'"a\\/' + m.kid.encode() + b'"'), False),
    ("kid_json_escaped_dot", lambda m, o: _kid_json(m, b'"\\u002e\\u002e\\u002f' + m.kid.encode() + b'"'), False),
    ("kid_crlf_header_injection", lambda m, o: m.mint(header={"kid": m.kid + "\r\nHost: evil.example"}), False),
    ("kid_absolute_url", lambda m, o: m.mint(header={"kid": "http://evil.example/" + m.kid}), False),
    ("kid_65_valid_chars", lambda m, o: m.mint(header={"kid": "k" * 65}), False),
    ("kid_10k", lambda m, o: m.mint(header={"kid": "k" * 10_000}), False),
    ("kid_empty", lambda m, o: m.mint(header={"kid": ""}), False),
    ("kid_true", lambda m, o: m.mint(header={"kid": True}), False),
    ("kid_float", lambda m, o: m.mint(header={"kid": 1.5}), False),
    ("kid_object", lambda m, o: m.mint(header={"kid": {"$ref": m.kid}}), False),
    # a well-formed kid that the key host does not know: one fetch, 404, 401
    ("kid_64_unknown", lambda m, o: m.mint(header={"kid": "Z" * 64}), True),
]


def _bad_token_table() -> list[tuple[str, int]]:
    ref = bad_tokens(Minter(Key.generate()), Key.generate())
    return [(b.id, i) for i, b in enumerate(ref)]


REF_TABLE = _bad_token_table()


def _run_token_table(envoy: FilterEnvoy, echo: Any, key_server: Any, group: str) -> list[Record]:
    recs: list[Record] = []
    other = Key.generate()
    key_server.add_key(other.kid, other.pem)
    forged = forged_identity(variants=False)
    jobs: list[tuple[str, Callable[[Minter], str], bool]] = []
    for case_id, idx in REF_TABLE:

        def build(m: Minter, idx: int = idx) -> tuple[str, bool]:
            b = bad_tokens(m, other)[idx]
            return b.token, "bad_signature" in b.reasons

        jobs.append((f"ref_{case_id}", build, True))
    for case_id, builder, fetch_ok in EXTRA_TOKENS:
        jobs.append((case_id, lambda m, b=builder, f=fetch_ok: (b(m, other), f), True))
    for case_id, build, _ in jobs:
        k = Key.generate()
        key_server.add_key(k.kid, k.pem)
        m = Minter(k)
        token, fetch_ok = build(m)
        log_before = len(key_server.log)
        p = upath("atk")
        r = envoy.request(p, [(TOKEN_HEADER, token)] + forged)
        rec = classify(group, case_id, r, p, echo, refuse={401})
        new_paths = [path for path, _ in key_server.log[log_before:]]
        if not fetch_ok and new_paths:
            rec.outcome, rec.detail = (
                "fetched_for_refused_header",
                f"key fetch(es) {new_paths[:3]} for a token refused before any fetch",
            )
        for path in new_paths:
            if not re.fullmatch(r"/[A-Za-z0-9_-]{1,64}", path):
                rec.outcome, rec.detail = "bad_key_url", f"key URL path {path!r} carries attacker-chosen characters"
        recs.append(rec)
    return recs


def test_bad_tokens_refused_nothing_forwarded(envoy_backend, echo, key_server):
    """Every bad token of the reference list and every extra attack above, each
    with forged identity headers: 401, upstream never hit, no fetch for a token
    refused on its header or claims, key URLs only ever carry a well-formed kid.
    Runs once per signature backend (host = Envoy's BoringSSL, rust = p256)."""
    # control: the same Envoy accepts a good token and strips the forgeries
    m = Minter(Key.generate())
    key_server.add_key(m.kid, m.key.pem)
    p = upath("ctl")
    r = envoy_backend.request(p, [(TOKEN_HEADER, m.mint(payload={"sub": "control-user"}))] + forged_identity())
    ctl = classify(f"tokens-{envoy_backend.backend}", "control_valid_token", r, p, echo, verified_user="control-user")
    assert ctl.outcome == "verified", ctl
    recs = _run_token_table(envoy_backend, echo, key_server, f"tokens-{envoy_backend.backend}")
    assert len(recs) == len(REF_TABLE) + len(EXTRA_TOKENS)
    bad = failures(recs)
    assert not bad, f"{len(bad)} of {len(recs)} attack tokens not cleanly refused:\n" + "\n".join(bad)
