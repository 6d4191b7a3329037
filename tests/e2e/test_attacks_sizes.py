"""Attack suite, sizes and bytes: tokens at and over the parser's limit,
giant claims, and non-UTF-8 bytes in the token header and the path."""

from __future__ import annotations

import json
import uuid
from typing import Any

from attack_kit import FORGED, SUMMARY, TOKEN_HEADER, Record, classify, failures, forged_identity, raw_get
from checks import upath
from tokens import Minter, b64u, compact

# ====================================================== 4. sizes and bytes ==


def _token_of_exact_length(m: Minter, total: int, sub: str) -> str:
    """A validly signed token exactly `total` bytes long (padding varied to hit it)."""
    h, p = m.claims(payload={"sub": sub, "blob": ""})
    hb = compact(h)
    for pad_h in (True, False):
        for pad_p in (True, False):
            base = len(compact(p))
            target = (total - 90 - len(b64u(hb, pad_h))) * 3 // 4 - base
            for extra in range(max(0, target - 8), target + 8):
                pb = compact(dict(p, blob="x" * extra))
                hs, ps = b64u(hb, pad_h), b64u(pb, pad_p)
                if len(hs) + len(ps) + 2 + 88 == total:
                    return m.sign_segments(hs, ps)
    raise AssertionError(f"no token of length {total}")


def test_oversized_tokens_and_giant_claims(envoy_main, echo, key_server, minter):
    e = envoy_main
    recs = []
    forged = forged_identity(variants=False)

    def send(case: str, token: str, **exp: Any) -> Record:
        p = upath("size")
        before = len(key_server.log)
        rec = classify("oversized", case, e.request(p, [(TOKEN_HEADER, token)] + forged), p, echo, **exp)
        if (
            rec.outcome == "refused"
            and rec.status == 401
            and len(key_server.log) != before
            and exp.get("no_fetch", True)
        ):
            rec.outcome, rec.detail = "fetched_for_refused_header", "an oversized token caused a key fetch"
        recs.append(rec)
        return rec

    # the parser's limit is 16 KiB: exactly at it verifies, one byte over does not
    send("token_exactly_16384", _token_of_exact_length(minter, 16384, "at-limit"), verified_user="at-limit")
    send("token_16385", _token_of_exact_length(minter, 16385, "over-limit"), refuse={401})
    for kib in (17, 32):
        send(f"token_{kib}k", minter.mint(payload={"blob": "B" * (kib * 1024 * 3 // 4)}), refuse={401})
    # just under Envoy's 60 KiB header limit: the filter's 401, or Envoy's own
    # 431 once the other headers push the total over it
    send("token_59k", minter.mint(payload={"blob": "B" * (59 * 1024 * 3 // 4)}), refuse={401, 431})
    # beyond Envoy's own header limit (60 KiB by default): Envoy answers 431 itself
    send("token_70k", minter.mint(payload={"blob": "B" * (70 * 1024 * 3 // 4)}), refuse={431, 400, 401})
    # giant claims inside the limit: verified, and injected exactly as signed
    big_email = "a" * 9000 + "@example.com"
    rec = send(
        "giant_email_claim_9k",
        minter.mint(payload={"sub": "giant", "email": big_email}),
        verified_user="giant",
        refuse={401},
    )
    if rec.outcome == "verified":
        pass  # value checked below on a fresh request
    r = e.request(upath("size"), [(TOKEN_HEADER, minter.mint(payload={"sub": "giant2", "email": big_email}))])
    if r.status == 200:
        assert r.upstream.all("x-claim-email") == [big_email]
    send(
        "thousand_claims",
        minter.mint(payload={"sub": "many-claims", **{f"c{i}": i for i in range(1000)}}),
        verified_user="many-claims",
        refuse={401},
    )
    send(
        "claim_groups_2000_entries",
        minter.mint(payload={"sub": "groups", "groups": [f"g{i}" for i in range(2000)]}),
        verified_user="groups",
        refuse={401},
    )
    send(
        "deep_header_nesting",
        minter.mint(header={"x": json.loads("[" * 500 + "]" * 500)}, payload={"sub": "deep"}),
        refuse={401},
        verified_user="deep",
    )
    bad = [f for f in failures(recs)]
    assert not bad, "\n".join(bad)


def test_non_utf8_bytes(envoy_main, echo, minter):
    """Non-UTF-8 bytes in the token header (obs-text, which Envoy passes on)
    and in the path: refused, never a trap (the SDK would panic on such a
    header; the filter reads headers with raw host calls)."""
    port = envoy_main.port
    tok = minter.mint().encode()
    sub = "utf8-user"
    good = minter.mint(payload={"sub": sub}).encode()
    forged = [(k.encode(), v.encode()) for k, v in forged_identity(variants=False)]
    cases: list[tuple[str, bytes, list[tuple[bytes, bytes]], dict]] = [
        (
            "token_trailing_ff",
            b"/" + uuid.uuid4().hex.encode(),
            [(b"x-amzn-oidc-data", tok + b"\xff")],
            {"refuse": {400, 401}},
        ),
        (
            "token_leading_fffe",
            b"/" + uuid.uuid4().hex.encode(),
            [(b"x-amzn-oidc-data", b"\xff\xfe" + tok)],
            {"refuse": {400, 401}},
        ),
        (
            "token_inner_80",
            b"/" + uuid.uuid4().hex.encode(),
            [(b"x-amzn-oidc-data", tok[:40] + b"\x80" + tok[40:])],
            {"refuse": {400, 401}},
        ),
        (
            "token_latin1_only",
            b"/" + uuid.uuid4().hex.encode(),
            [(b"x-amzn-oidc-data", bytes(range(0x80, 0x100)))],
            {"refuse": {400, 401}},
        ),
        (
            "token_overlong_utf8_dot",
            b"/" + uuid.uuid4().hex.encode(),
            [(b"x-amzn-oidc-data", tok.replace(b".", b"\xc0\xae", 1))],
            {"refuse": {400, 401}},
        ),
        ("token_nul", b"/" + uuid.uuid4().hex.encode(), [(b"x-amzn-oidc-data", tok + b"\x00")], {"refuse": {400, 401}}),
        (
            "forged_identity_non_utf8_value",
            b"/" + uuid.uuid4().hex.encode(),
            [
                (b"x-amzn-oidc-data", good),
                (b"x-auth-user", FORGED.encode() + b"\xff\xfe"),
                (b"x-claim-email", FORGED.encode() + b"\xc3\x28"),
            ],
            {"verified_user": sub},
        ),
        (
            "path_ff",
            b"/\xff" + uuid.uuid4().hex.encode(),
            [(b"x-amzn-oidc-data", good)],
            {"refuse": {400, 401}, "verified_user": sub},
        ),
        ("exempt_prefix_path_ff_no_token", b"/static/\xfe\xff", [], {"refuse": {400, 401}}),
        ("exempt_path_non_utf8_token", b"/healthz", [(b"x-amzn-oidc-data", tok + b"\xff")], {"may_pass": True}),
    ]
    recs = []
    for case, path, hdrs, exp in cases:
        before = echo.total()
        r = raw_get(port, path, hdrs + forged)
        lookup = path.decode("latin-1")
        if r.status == 200 or echo.hits(lookup):
            rec = classify("non-utf8", case, r, lookup, echo, **exp)
        elif echo.total() != before:
            rec = Record("non-utf8", case, "let_through", r.status, "upstream saw it")
            SUMMARY.add(rec)
        else:
            rec = Record(
                "non-utf8", case, "refused" if r.status in exp.get("refuse", set()) else "unexpected_status", r.status
            )
            SUMMARY.add(rec)
        recs.append(rec)
    bad = failures(recs)
    assert not bad, "\n".join(bad)
    # and the filter still works
    r = envoy_main.request(upath(), [(TOKEN_HEADER, minter.mint())])
    assert r.status == 200
