"""Minting ALB-style ES256 tokens, valid and every kind of bad.

The ALB sends three base64url segments *with* `=` padding and signs the padded
`header.payload` text; the signature is raw r||s (64 bytes). Every helper here
signs exactly the text that goes on the wire, so a refused token is refused for
the reason the test names and not because of an accidentally broken signature
(unless the signature is what the test breaks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REGION = "us-east-1"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188"
ARN2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/other-alb/0123456789abcdef"
FOREIGN_ARN = "arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/app/attacker/feedfacecafebeef"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI"
CLIENT = "5m3examplec1ient1d"

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# ---------------------------------------------------------------- encoding --


def b64u(data: bytes, pad: bool = True) -> str:
    s = base64.urlsafe_b64encode(data).decode()
    return s if pad else s.rstrip("=")


def b64u_nopad(data: bytes) -> str:
    return b64u(data, pad=False)


def b64u_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def new_kid() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------- keys ------


@dataclass
class Key:
    priv: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def generate(cls, kid: str | None = None) -> Key:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid or new_kid())

    @property
    def pem(self) -> bytes:
        return self.priv.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def sign_der(self, data: bytes) -> bytes:
        return self.priv.sign(data, ec.ECDSA(hashes.SHA256()))

    def sign_raw(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.sign_der(data))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_to_der(sig: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


# ---------------------------------------------------------------- claims ----


def default_header(kid: str, *, exp: int, signer: str = ARN) -> dict:
    return {"alg": "ES256", "typ": "JWT", "kid": kid, "signer": signer, "iss": ISSUER, "client": CLIENT, "exp": exp}


def default_payload(*, exp: int, sub: str | None = None) -> dict:
    return {
        "sub": sub or "e4b8a4e2-1c2d-4e1f-9a0b-" + uuid.uuid4().hex[:12],
        "email_verified": "true",
        "email": "alice@example.com",
        "username": "alice",
        "given_name": "Alice",
        "family_name": "Liddell",
        "exp": exp,
        "iss": ISSUER,
    }


_MISSING = object()


def _apply(d: dict, changes: dict | None, drop: tuple | list = ()) -> dict:
    out = dict(d)
    for k, v in (changes or {}).items():
        if v is _MISSING:
            out.pop(k, None)
        else:
            out[k] = v
    for k in drop:
        out.pop(k, None)
    return out


# ---------------------------------------------------------------- minting ---


@dataclass
class Minter:
    """Mints tokens for one signing key (kid registered on the key server)."""

    key: Key
    signer: str = ARN
    lifetime: int = 120

    @property
    def kid(self) -> str:
        return self.key.kid

    def now(self) -> int:
        return int(time.time())

    def claims(
        self,
        header: dict | None = None,
        payload: dict | None = None,
        *,
        drop_header: tuple = (),
        drop_payload: tuple = (),
        exp: int | None = None,
    ) -> tuple[dict, dict]:
        e = exp if exp is not None else self.now() + self.lifetime
        h = _apply(default_header(self.kid, exp=e, signer=self.signer), header, drop_header)
        p = _apply(default_payload(exp=e), payload, drop_payload)
        return h, p

    def sign_segments(self, h_seg: str, p_seg: str, *, key: Key | None = None, pad: bool = True) -> str:
        """header.payload.signature with an ES256 raw signature over the exact text."""
        sig = (key or self.key).sign_raw(f"{h_seg}.{p_seg}".encode())
        return f"{h_seg}.{p_seg}.{b64u(sig, pad)}"

    def from_bytes(self, h_bytes: bytes, p_bytes: bytes, *, pad: bool = True, key: Key | None = None) -> str:
        return self.sign_segments(b64u(h_bytes, pad), b64u(p_bytes, pad), key=key, pad=pad)

    def mint(
        self,
        header: dict | None = None,
        payload: dict | None = None,
        *,
        drop_header: tuple = (),
        drop_payload: tuple = (),
        exp: int | None = None,
        pad: bool = True,
        key: Key | None = None,
    ) -> str:
        h, p = self.claims(header, payload, drop_header=drop_header, drop_payload=drop_payload, exp=exp)
        return self.from_bytes(compact(h), compact(p), pad=pad, key=key)

    def mint_with_payload_bytes(self, p_bytes: bytes, header: dict | None = None, *, pad: bool = True) -> str:
        h, _ = self.claims(header)
        return self.from_bytes(compact(h), p_bytes, pad=pad)


def payload_bytes_with_len_mod(minter: Minter, mod: int, payload: dict | None = None) -> bytes:
    """A valid payload JSON whose byte length % 3 == mod (controls base64 padding:
    0 -> no '=', 1 -> '==', 2 -> '=')."""
    _, p = minter.claims(payload=payload)
    for extra in range(3):
        p2 = dict(p, pad="x" * extra)
        b = compact(p2)
        if len(b) % 3 == mod:
            return b
    raise AssertionError("unreachable")


def hs256(secret: bytes, data: bytes) -> bytes:
    return hmac.new(secret, data, hashlib.sha256).digest()


def noncanonical_last_char(seg: str) -> str:
    """Flip unused low bits of the last significant char of a (padded or unpadded)
    base64url segment whose decoded length is not a multiple of 3. A lenient
    decoder yields the same bytes; a strict one must refuse."""
    body = seg.rstrip("=")
    pad = seg[len(body) :]
    rem = len(body) % 4
    assert rem in (2, 3), "segment has no spare bits"
    spare = 4 if rem == 2 else 2  # unused bits in the last char
    v = B64URL.index(body[-1])
    assert v & ((1 << spare) - 1) == 0
    v |= 1
    return body[:-1] + B64URL[v] + pad


# ------------------------------------------------------------- bad tokens ---


@dataclass
class Bad:
    id: str
    token: str
    reasons: tuple[str, ...]  # acceptable `alb_oidc.requests.denied.<reason>` names
    fetches_key: bool = True  # False: the filter must refuse before any key fetch


MALFORMED = ("malformed",)
HEADER = ("bad_header", "malformed")


def bad_tokens(m: Minter, other_key: Key) -> list[Bad]:
    """Every bad input from the reference list, for a config with
    alb_arns=[ARN, ARN2], issuer=ISSUER, client_id=CLIENT, username_claim=sub."""
    out: list[Bad] = []
    now = m.now()
    h, p = m.claims()
    hb, pb = compact(h), compact(p)
    good = m.from_bytes(hb, pb)
    gh, gp, gs = good.split(".")

    def add(id: str, token: str, reasons: tuple = MALFORMED, fetches_key: bool = True) -> None:
        out.append(Bad(id, token, reasons, fetches_key))

    def signed(h_seg: str, p_seg: str, sig_pad: bool = True) -> str:
        return m.sign_segments(h_seg, p_seg, pad=sig_pad)

    # ---- segment structure -------------------------------------------------
    add("two_segments", f"{gh}.{gp}", fetches_key=False)
    add("one_segment", gh, fetches_key=False)
    add("four_segments", f"{good}.{gs}", fetches_key=False)
    add("trailing_dot", f"{good}.", fetches_key=False)
    add("empty_header", f".{gp}.{gs}", fetches_key=False)
    add("empty_payload", f"{gh}..{gs}", fetches_key=False)
    add("empty_signature", f"{gh}.{gp}.", fetches_key=False)
    add("all_empty", "..", fetches_key=False)
    add("dots_only", "....", fetches_key=False)

    # ---- base64url strictness (all signed over the exact wire text) ---------
    sig_body = gs.rstrip("=")
    assert len(gs) - len(sig_body) == 2  # 64 bytes -> 86 chars + '=='
    add("sig_padding_short", f"{gh}.{gp}.{sig_body}=")
    add("sig_padding_long", f"{gh}.{gp}.{sig_body}===")
    p1 = b64u(payload_bytes_with_len_mod(m, 2))  # needs one '='
    assert p1.endswith("=") and not p1.endswith("==")
    add("payload_padding_double", signed(gh, p1 + "="))
    p0 = b64u(payload_bytes_with_len_mod(m, 0))  # needs none
    add("payload_padding_on_aligned", signed(gh, p0 + "="))
    p2 = b64u(payload_bytes_with_len_mod(m, 1))  # needs '=='
    assert p2.endswith("==")
    add("payload_padding_half", signed(gh, p2[:-1]))  # 'xx=' : a '=' short
    # padding in the middle: first byte padded, then the rest
    middle = b64u(pb[:1]) + b64u(pb[1:])
    assert "=" in middle.rstrip("=")
    add("payload_padding_middle", signed(gh, middle))
    add("header_padding_middle", signed(b64u(hb[:2]) + b64u(hb[2:]), gp))
    # '+' '/' alphabet: find a payload whose base64url contains '-' or '_'
    for i in range(2000):
        pb_alpha = json.dumps(
            dict(p, nick="?" * (i % 3) + "\u00ff\u00fe\u00fb??>~~" + str(i)), ensure_ascii=False, separators=(",", ":")
        ).encode()
        seg = b64u(pb_alpha)
        if "-" in seg and "_" in seg:
            break
    else:  # pragma: no cover
        raise AssertionError("no payload with -/_ found")
    assert "-" in seg
    add("plus_slash_alphabet", signed(gh, seg.replace("-", "+").replace("_", "/")))
    mid = len(gp) // 2
    add("space_in_payload", signed(gh, gp[:mid] + " " + gp[mid:]))
    add("tab_in_payload", signed(gh, gp[:mid] + "\t" + gp[mid:]))
    add("space_after_dot", f"{gh}. {gp}.{gs}")
    add("space_in_signature", f"{gh}.{gp}.{gs[:40]} {gs[40:]}")
    add("invalid_b64_char", signed(gh, gp[:mid] + "!" + gp[mid:]))
    add("non_ascii_char", f"{gh}.{gp[:mid]}\u00e9{gp[mid:]}.{gs}")
    add("noncanonical_sig_bits", f"{gh}.{gp}.{noncanonical_last_char(gs)}")
    add("noncanonical_sig_bits_unpadded", f"{gh}.{gp}.{noncanonical_last_char(gs.rstrip('='))}")
    pnc = b64u(payload_bytes_with_len_mod(m, 1))
    add("noncanonical_payload_bits", signed(gh, noncanonical_last_char(pnc)))
    add("noncanonical_payload_bits_unpadded", signed(gh, noncanonical_last_char(pnc.rstrip("="))))

    # ---- JSON shape ------------------------------------------------------------
    hjson = hb.decode()
    pjson = pb.decode()

    def with_h(hbytes: bytes) -> str:
        return signed(b64u(hbytes), gp)

    def with_p(pbytes: bytes) -> str:
        return signed(gh, b64u(pbytes))

    add("header_dup_kid", with_h(hjson[:-1].encode() + b',"kid":"' + other_key.kid.encode() + b'"}'), fetches_key=False)
    add("header_dup_alg", with_h(hjson[:-1].encode() + b',"alg":"none"}'), fetches_key=False)
    add("header_dup_alg_same", with_h(hjson[:-1].encode() + b',"alg":"ES256"}'), fetches_key=False)
    add(
        "header_dup_signer",
        with_h(hjson[:-1].encode() + (',"signer":' + json.dumps(FOREIGN_ARN) + "}").encode()),
        fetches_key=False,
    )
    add("payload_dup_sub", with_p(pjson[:-1].encode() + b',"sub":"admin"}'))
    add("payload_dup_exp_same", with_p(pjson[:-1].encode() + b',"exp":' + str(p["exp"]).encode() + b"}"))
    expired_first = dict(p)
    expired_first.pop("exp")
    add(
        "payload_dup_exp_expired_then_future",
        with_p(
            b'{"exp":'
            + str(now - 3600).encode()
            + b","
            + compact(expired_first)[1:-1]
            + b',"exp":'
            + str(p["exp"]).encode()
            + b"}"
        ),
    )
    add("payload_dup_iss", with_p(pjson[:-1].encode() + b',"iss":"https://evil.example"}'))
    # duplicates that only show after unescaping the key: "s\u0075b" is "sub"
    add("payload_dup_sub_escaped_key", with_p(pjson[:-1].encode() + b',"s\\u0075b":"admin"}'))
    add(
        "header_dup_kid_escaped_key",
        with_h(hjson[:-1].encode() + b',"k\\u0069d":"' + other_key.kid.encode() + b'"}'),
        fetches_key=False,
    )
    add("header_json_array", with_h(compact([h])), fetches_key=False)
    add("header_json_string", with_h(b'"ES256"'), fetches_key=False)
    add("header_not_json", with_h(b"alg=ES256"), fetches_key=False)
    add("header_trailing_garbage", with_h(hb + b"x"), fetches_key=False)
    add("payload_json_array", with_p(compact([p])))
    add("payload_json_number", with_p(b"123"))
    add("payload_json_null", with_p(b"null"))
    add("payload_json_string", with_p(b'"alice"'))
    add("payload_not_json", with_p(pb[:-1]))
    add("payload_two_objects", with_p(pb + b"{}"))
    add("payload_invalid_utf8", with_p(pjson[:-1].encode() + b',"x":"\xff\xfe"}'))

    # ---- size ------------------------------------------------------------------
    add("oversized_20k", m.mint(payload={"blob": "A" * 20_000}))
    add(
        "oversized_40k_header_seg", with_h(hjson[:-1].encode() + b',"x5c":"' + b"B" * 30_000 + b'"}'), fetches_key=False
    )

    # ---- header: alg -------------------------------------------------------------
    junk_sig = b64u(b"\x00" * 64)

    def alg_token(alg: Any, sig: str | None = None) -> str:
        hh = dict(h, alg=alg)
        hs = b64u(compact(hh))
        if sig is None:
            return signed(hs, gp)
        return f"{hs}.{gp}.{sig}"

    add("alg_none", alg_token("none", junk_sig), HEADER, fetches_key=False)
    add("alg_None", alg_token("None", junk_sig), HEADER, fetches_key=False)
    add("alg_NONE", alg_token("NONE", junk_sig), HEADER, fetches_key=False)
    add("alg_empty", alg_token(""), HEADER, fetches_key=False)
    add("alg_lowercase", alg_token("es256"), HEADER, fetches_key=False)
    add("alg_trailing_space", alg_token("ES256 "), HEADER, fetches_key=False)
    add("alg_ES384", alg_token("ES384"), HEADER, fetches_key=False)
    add("alg_RS256", alg_token("RS256"), HEADER, fetches_key=False)
    add("alg_EdDSA", alg_token("EdDSA"), HEADER, fetches_key=False)
    add("alg_number", alg_token(256), HEADER, fetches_key=False)
    add("alg_null", alg_token(None), HEADER, fetches_key=False)
    add("alg_list", alg_token(["ES256"]), HEADER, fetches_key=False)
    hs_hdr = b64u(compact(dict(h, alg="HS256")))
    add(
        "alg_HS256_pem_secret",
        f"{hs_hdr}.{gp}.{b64u(hs256(m.key.pem, f'{hs_hdr}.{gp}'.encode()))}",
        HEADER,
        fetches_key=False,
    )
    hs_hdr_es = b64u(compact(h))
    add(
        "alg_ES256_hmac_pem_signature",
        f"{hs_hdr_es}.{gp}.{b64u(hs256(m.key.pem, f'{hs_hdr_es}.{gp}'.encode()))}",
        ("bad_signature", "malformed"),
    )
    no_alg = dict(h)
    no_alg.pop("alg")
    add("alg_missing", signed(b64u(compact(no_alg)), gp), HEADER, fetches_key=False)

    # ---- header: kid -------------------------------------------------------------
    def kid_token(kid: Any, drop: bool = False) -> str:
        hh = dict(h)
        if drop:
            hh.pop("kid")
        else:
            hh["kid"] = kid
        return signed(b64u(compact(hh)), gp)

    for name, kid in [
        ("kid_dotdot", "../../etc/passwd"),
        ("kid_slash", f"a/{m.kid}"),
        ("kid_dot", f"{m.kid}.pem"),
        ("kid_percent", "%2e%2e%2f" + m.kid),
        ("kid_query", m.kid + "?x=1"),
        ("kid_hash", m.kid + "#x"),
        ("kid_space", m.kid + " "),
        ("kid_backslash", "..\\" + m.kid),
        ("kid_at", "user@host"),
        ("kid_colon", "http:" + m.kid),
        ("kid_newline", m.kid + "\n"),
        ("kid_nul", m.kid + "\u0000"),
        ("kid_unicode", m.kid[:-1] + "\u00e9"),
        ("kid_65_chars", "a" * 65),
        ("kid_4k", "a" * 4096),
        ("kid_empty", ""),
        ("kid_number", 12345),
        ("kid_null", None),
        ("kid_list", [m.kid]),
        ("kid_object", {"kid": m.kid}),
    ]:
        add(name, kid_token(kid), HEADER, fetches_key=False)
    add("kid_missing", kid_token(None, drop=True), HEADER, fetches_key=False)

    # ---- header: signer (checked before any key fetch) ---------------------------
    SIGNER = ("untrusted_signer", "bad_header")

    def signer_token(signer: Any, drop: bool = False) -> str:
        hh = dict(h)
        if drop:
            hh.pop("signer")
        else:
            hh["signer"] = signer
        return signed(b64u(compact(hh)), gp)

    for name, signer in [
        ("signer_foreign_alb", FOREIGN_ARN),
        ("signer_prefix", ARN[:-1]),
        ("signer_prefix_short", ARN.rsplit("/", 1)[0]),
        ("signer_suffix", ARN + "0"),
        ("signer_suffix_slash", ARN + "/"),
        ("signer_leading_space", " " + ARN),
        ("signer_trailing_space", ARN + " "),
        ("signer_uppercase", ARN.upper()),
        ("signer_empty", ""),
        ("signer_wildcard", "*"),
        ("signer_list", [ARN]),
        ("signer_number", 1),
        ("signer_null", None),
        ("signer_object", {"arn": ARN}),
    ]:
        add(name, signer_token(signer), SIGNER, fetches_key=False)
    add("signer_missing", signer_token(None, drop=True), SIGNER, fetches_key=False)

    # ---- header: client ------------------------------------------------------------
    CL = ("bad_client", "bad_header")
    for name, client in [
        ("client_wrong", "someone-else"),
        ("client_suffix", CLIENT + "x"),
        ("client_empty", ""),
        ("client_number", 5),
        ("client_null", None),
    ]:
        add(name, signed(b64u(compact(dict(h, client=client))), gp), CL)
    no_client = dict(h)
    no_client.pop("client")
    add("client_missing", signed(b64u(compact(no_client)), gp), CL)

    # ---- signature -------------------------------------------------------------------
    SIG = ("bad_signature", "malformed")
    raw = b64u_decode(gs)
    msg = f"{gh}.{gp}".encode()
    add("sig_der", f"{gh}.{gp}.{b64u(m.key.sign_der(msg))}", SIG)
    add("sig_63_bytes", f"{gh}.{gp}.{b64u(raw[:63])}", SIG)
    raw65 = raw + bytes(1)
    add("sig_65_bytes", f"{gh}.{gp}.{b64u(raw65)}", SIG)
    add("sig_32_bytes", f"{gh}.{gp}.{b64u(raw[:32])}", SIG)
    add("sig_128_bytes", f"{gh}.{gp}.{b64u(raw + raw)}", SIG)
    add("sig_zeros", f"{gh}.{gp}.{b64u(bytes(64))}", SIG)
    ones = bytes([255]) * 64
    add("sig_ones", f"{gh}.{gp}.{b64u(ones)}", SIG)
    add("sig_r_s_swapped", f"{gh}.{gp}.{b64u(raw[32:] + raw[:32])}", SIG)
    add("sig_other_key", m.from_bytes(hb, pb, key=other_key), SIG)
    tampered = dict(p, sub="admin")
    add("sig_tampered_payload", f"{gh}.{b64u(compact(tampered))}.{gs}", SIG)
    add("sig_tampered_header", f"{b64u(compact(dict(h, typ='JWS')))}.{gp}.{gs}", SIG)
    # the ALB signs the padded text: a verifier must not strip padding before verifying
    gh_np, gp_np = b64u_nopad(hb), b64u_nopad(pb)
    assert gh_np != gh or gp_np != gp
    sig_over_unpadded = b64u(m.key.sign_raw(f"{gh_np}.{gp_np}".encode()))
    add("sig_over_unpadded_sent_padded", f"{gh}.{gp}.{sig_over_unpadded}", SIG)
    add("sig_over_padded_sent_unpadded", f"{gh_np}.{gp_np}.{gs}", SIG)

    # ---- claims ----------------------------------------------------------------------
    CLAIMS = ("bad_claims",)
    EXP = ("expired",)
    add("expired", m.mint(exp=now - 60), EXP)
    add("expired_payload_only", m.mint(header={"exp": now + 600}, payload={"exp": now - 60}), EXP)
    add("exp_missing", m.mint(drop_payload=("exp",)), CLAIMS + EXP)
    add("exp_string", m.mint(payload={"exp": str(now + 600)}), CLAIMS + EXP)
    add("exp_null", m.mint(payload={"exp": None}), CLAIMS + EXP)
    add("exp_bool", m.mint(payload={"exp": True}), CLAIMS + EXP)
    add("exp_list", m.mint(payload={"exp": [now + 600]}), CLAIMS + EXP)
    add("exp_zero", m.mint(payload={"exp": 0}), CLAIMS + EXP)
    add("exp_negative", m.mint(payload={"exp": -1}), CLAIMS + EXP)
    add("nbf_future", m.mint(payload={"nbf": now + 600}), ("not_yet_valid",))
    add("nbf_string", m.mint(payload={"nbf": str(now - 600)}), ("not_yet_valid", "bad_claims"))
    add("iss_missing", m.mint(drop_payload=("iss",)), CLAIMS + ("bad_issuer",))
    add("iss_forged", m.mint(payload={"iss": "https://evil.example.com/pool"}), ("bad_issuer",))
    add("iss_forged_header_ok", m.mint(header={"iss": ISSUER}, payload={"iss": ISSUER + "x"}), ("bad_issuer",))
    add("iss_number", m.mint(payload={"iss": 1}), CLAIMS + ("bad_issuer",))
    add("sub_missing", m.mint(drop_payload=("sub",)), CLAIMS + ("no_username",))
    add("sub_empty", m.mint(payload={"sub": ""}), CLAIMS + ("no_username",))
    add("sub_number", m.mint(payload={"sub": 42}), CLAIMS + ("no_username",))
    add("sub_null", m.mint(payload={"sub": None}), CLAIMS + ("no_username",))
    return out


def valid_variants(m: Minter) -> list[tuple[str, str]]:
    """Tokens the filter must accept with the standard config."""
    now = m.now()
    h, p = m.claims()
    hb, pb = compact(h), compact(p)
    out = [
        ("padded_alb_style", m.from_bytes(hb, pb, pad=True)),
        ("unpadded", m.from_bytes(hb, pb, pad=False)),
        ("header_padded_payload_unpadded", m.sign_segments(b64u(hb), b64u_nopad(pb))),
        ("payload_mod0", m.sign_segments(b64u(hb), b64u(payload_bytes_with_len_mod(m, 0)))),
        ("payload_mod1", m.sign_segments(b64u(hb), b64u(payload_bytes_with_len_mod(m, 1)))),
        ("payload_mod2", m.sign_segments(b64u(hb), b64u(payload_bytes_with_len_mod(m, 2)))),
        ("second_trusted_arn", Minter(m.key, signer=ARN2).mint()),
        ("nbf_past", m.mint(payload={"nbf": now - 60})),
        ("exp_far_future", m.mint(exp=now + 86400 * 365)),
        ("exp_float", m.mint(payload={"exp": float(now + 600)})),
        ("near_alb_size_limit_10k", m.mint(payload={"blob": "C" * 7_000})),
        ("unicode_claims", m.mint(payload={"name": "Ren\u00e9 \u00c5ngstr\u00f6m \u2603"})),
        ("extra_header_fields", m.mint(header={"x5u": "ignored", "custom": [1, 2]})),
        ("aud_present_not_configured", m.mint(payload={"aud": "whatever"})),
    ]
    return out
