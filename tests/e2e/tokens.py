"""Minting ALB-style ES256 tokens, valid and every kind of bad.

The ALB sends three base64url segments *with* `=` padding and signs the padded
`header.payload` text; the signature is raw r||s (64 bytes). Every helper here
signs exactly the text that goes on the wire, so a refused token is refused for
the reason the test names and not because of an accidentally broken signature
(unless the signature is what the test breaks).

The ALB format and the signatures are not implemented here: tokens are minted
by `alb-sim mint-batch` (the Rust test kit, `testkit/`, which alb-sim and the
filter's own tests mint with), kept running as one co-process per test
process. A key is named by a seed; the co-process derives it. This module only
assembles segments and builds the malformed variants.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import hmac
import json
import secrets
import select
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from envoykit.paths import ALB_SIM_BIN, BUILD_HINT

# The test kit's standard values (testkit/src/fixtures.rs); checked against the
# kit when the co-process starts.
REGION = "us-east-1"
ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/demo/0123456789abcdef"
ARN2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/other-alb/0123456789abcdef"
FOREIGN_ARN = "arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/app/attacker/feedfacecafebeef"
ISSUER = "https://idp.example.com"
CLIENT = "client-1"

ANSWER_TIMEOUT_S = 30

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

ALB_SIM = ALB_SIM_BIN


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


# ------------------------------------------------------------ the minter ----


class MintError(RuntimeError):
    """alb-sim mint-batch is missing, died, or refused a request."""


class _MintBatch:
    """`alb-sim mint-batch` as a co-process: one JSON request line in, one
    JSON answer line out. Started on first use; thread-safe."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        if not ALB_SIM.is_file():
            raise MintError(f"{ALB_SIM} is missing: {BUILD_HINT} (or set ALB_OIDC_ALB_SIM)")
        proc = subprocess.Popen(
            [str(ALB_SIM), "mint-batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        atexit.register(_close, proc)
        self._proc = proc
        fixtures = self._exchange({"op": "fixtures"})
        ours = {
            "region": REGION,
            "arn": ARN,
            "arn2": ARN2,
            "foreign_arn": FOREIGN_ARN,
            "issuer": ISSUER,
            "client": CLIENT,
        }
        if fixtures != ours:
            raise MintError(f"tokens.py's constants differ from the test kit's: {ours} != {fixtures}")
        return proc

    def _exchange(self, request: dict) -> dict:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            # One request is out, so nothing is buffered yet: wait (bounded) for the answer to start.
            if not select.select([proc.stdout], [], [], ANSWER_TIMEOUT_S)[0]:
                proc.kill()
                raise MintError(f"alb-sim mint-batch did not answer within {ANSWER_TIMEOUT_S} s: {request['op']!r}")
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._proc = None
            err = proc.stderr.read() if proc.stderr else ""
            raise MintError(f"{ALB_SIM} mint-batch exited ({proc.wait()}): {err.strip()}")
        answer = json.loads(line)
        if "error" in answer:
            raise MintError(f"alb-sim mint-batch refused {request['op']!r}: {answer['error']}")
        return answer

    def ask(self, request: dict) -> dict:
        with self._lock:
            if self._proc is None:
                self._start()
            return self._exchange(request)


def _close(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


_MINT = _MintBatch()


def mint_batch(request: dict) -> dict:
    """One request to the kit's co-process (protocol: testkit/src/batch.rs)."""
    return _MINT.ask(request)


# ---------------------------------------------------------------- keys ------


@dataclass
class Key:
    """A P-256 key, named by the seed alb-sim derives it from."""

    seed: str
    kid: str

    @classmethod
    def generate(cls, kid: str | None = None) -> Key:
        return cls(secrets.token_hex(16), kid or new_kid())

    @property
    def pem(self) -> bytes:
        """The public key as the ALB key endpoint serves it."""
        if self.seed not in _PEMS:
            _PEMS[self.seed] = _MINT.ask({"op": "public_key", "key": self.seed})["pem"].encode()
        return _PEMS[self.seed]

    def _sign(self, data: bytes, form: str) -> bytes:
        return b64u_decode(
            _MINT.ask({"op": "sign", "key": self.seed, "text": data.decode(), "form": form})["signature"]
        )

    def sign_der(self, data: bytes) -> bytes:
        return self._sign(data, "der")

    def sign_raw(self, data: bytes) -> bytes:
        return self._sign(data, "raw")


_PEMS: dict[str, bytes] = {}


# ---------------------------------------------------------------- claims ----


def default_claims(sub: str | None = None) -> dict:
    """The identity in every token unless a test says otherwise (the ALB
    appends `exp` and `iss`)."""
    return {
        "sub": sub or "e4b8a4e2-1c2d-4e1f-9a0b-" + uuid.uuid4().hex[:12],
        "email_verified": "true",
        "email": "alice@example.com",
        "username": "alice",
        "given_name": "Alice",
        "family_name": "Liddell",
    }


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

    def _mint(
        self,
        header: dict | None,
        payload: dict | None,
        drop_header: tuple,
        drop_payload: tuple,
        exp: int | None,
        pad: bool = True,
        key: Key | None = None,
    ) -> dict:
        """The kit's ALB token (header fields, claims, then `exp` and `iss`),
        with `header`/`payload` fields set and `drop_*` fields removed."""
        return _MINT.ask(
            {
                "op": "mint",
                "key": (key or self.key).seed,
                "kid": self.kid,
                "signer": self.signer,
                "issuer": ISSUER,
                "client": CLIENT,
                "exp": exp if exp is not None else self.now() + self.lifetime,
                "claims": default_claims(),
                "header": header or {},
                "drop_header": list(drop_header),
                "payload": payload or {},
                "drop_payload": list(drop_payload),
                "pad": pad,
            }
        )

    def claims(
        self,
        header: dict | None = None,
        payload: dict | None = None,
        *,
        drop_header: tuple = (),
        drop_payload: tuple = (),
        exp: int | None = None,
    ) -> tuple[dict, dict]:
        """The header and payload objects `mint` would sign, in order."""
        minted = self._mint(header, payload, drop_header, drop_payload, exp)
        return json.loads(minted["header"]), json.loads(minted["payload"])

    def sign_segments(self, h_seg: str, p_seg: str, *, key: Key | None = None, pad: bool = True) -> str:
        """header.payload.signature with an ES256 raw signature over the exact text."""
        sig = (key or self.key).sign_raw(f"{h_seg}.{p_seg}".encode())
        return f"{h_seg}.{p_seg}.{b64u(sig, pad)}"

    def from_bytes(
        self,
        h_bytes: bytes,
        p_bytes: bytes,
        *,
        pad: bool = True,
        key: Key | None = None,
    ) -> str:
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
        return self._mint(header, payload, drop_header, drop_payload, exp, pad, key)["token"]

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
    build: Callable[[], str] = field(repr=False)  # minted on first use of `token`
    reasons: tuple[str, ...]  # acceptable `alb_oidc.requests.denied.<reason>` names
    fetches_key: bool = True  # False: the filter must refuse before any key fetch

    @cached_property
    def token(self) -> str:
        return self.build()


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

    def add(id: str, token: Callable[[], str], reasons: tuple = MALFORMED, fetches_key: bool = True) -> None:
        out.append(Bad(id, token, reasons, fetches_key))

    def signed(h_seg: str, p_seg: str, sig_pad: bool = True) -> str:
        return m.sign_segments(h_seg, p_seg, pad=sig_pad)

    # ---- segment structure -------------------------------------------------
    add("two_segments", lambda: f"{gh}.{gp}", fetches_key=False)
    add("one_segment", lambda: gh, fetches_key=False)
    add("four_segments", lambda: f"{good}.{gs}", fetches_key=False)
    add("trailing_dot", lambda: f"{good}.", fetches_key=False)
    add("empty_header", lambda: f".{gp}.{gs}", fetches_key=False)
    add("empty_payload", lambda: f"{gh}..{gs}", fetches_key=False)
    add("empty_signature", lambda: f"{gh}.{gp}.", fetches_key=False)
    add("all_empty", lambda: "..", fetches_key=False)
    add("dots_only", lambda: "....", fetches_key=False)

    # ---- base64url strictness (all signed over the exact wire text) ---------
    sig_body = gs.rstrip("=")
    assert len(gs) - len(sig_body) == 2  # 64 bytes -> 86 chars + '=='
    add("sig_padding_short", lambda: f"{gh}.{gp}.{sig_body}=")
    add("sig_padding_long", lambda: f"{gh}.{gp}.{sig_body}===")
    p1 = b64u(payload_bytes_with_len_mod(m, 2))  # needs one '='
    assert p1.endswith("=") and not p1.endswith("==")
    add("payload_padding_double", lambda: signed(gh, p1 + "="))
    p0 = b64u(payload_bytes_with_len_mod(m, 0))  # needs none
    add("payload_padding_on_aligned", lambda: signed(gh, p0 + "="))
    p2 = b64u(payload_bytes_with_len_mod(m, 1))  # needs '=='
    assert p2.endswith("==")
    add("payload_padding_half", lambda: signed(gh, p2[:-1]))  # 'xx=' : a '=' short
    # padding in the middle: first byte padded, then the rest
    middle = b64u(pb[:1]) + b64u(pb[1:])
    assert "=" in middle.rstrip("=")
    add("payload_padding_middle", lambda: signed(gh, middle))
    add("header_padding_middle", lambda: signed(b64u(hb[:2]) + b64u(hb[2:]), gp))
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
    add("plus_slash_alphabet", lambda: signed(gh, seg.replace("-", "+").replace("_", "/")))
    mid = len(gp) // 2
    add("space_in_payload", lambda: signed(gh, gp[:mid] + " " + gp[mid:]))
    add("tab_in_payload", lambda: signed(gh, gp[:mid] + "\t" + gp[mid:]))
    add("space_after_dot", lambda: f"{gh}. {gp}.{gs}")
    add("space_in_signature", lambda: f"{gh}.{gp}.{gs[:40]} {gs[40:]}")
    add("invalid_b64_char", lambda: signed(gh, gp[:mid] + "!" + gp[mid:]))
    add("non_ascii_char", lambda: f"{gh}.{gp[:mid]}\u00e9{gp[mid:]}.{gs}")
    add("noncanonical_sig_bits", lambda: f"{gh}.{gp}.{noncanonical_last_char(gs)}")
    add("noncanonical_sig_bits_unpadded", lambda: f"{gh}.{gp}.{noncanonical_last_char(gs.rstrip('='))}")
    pnc = b64u(payload_bytes_with_len_mod(m, 1))
    add("noncanonical_payload_bits", lambda: signed(gh, noncanonical_last_char(pnc)))
    add("noncanonical_payload_bits_unpadded", lambda: signed(gh, noncanonical_last_char(pnc.rstrip("="))))

    # ---- JSON shape ------------------------------------------------------------
    hjson = hb.decode()
    pjson = pb.decode()

    def with_h(hbytes: bytes) -> str:
        return signed(b64u(hbytes), gp)

    def with_p(pbytes: bytes) -> str:
        return signed(gh, b64u(pbytes))

    add(
        "header_dup_kid",
        lambda: with_h(hjson[:-1].encode() + b',"kid":"' + other_key.kid.encode() + b'"}'),
        fetches_key=False,
    )
    add("header_dup_alg", lambda: with_h(hjson[:-1].encode() + b',"alg":"none"}'), fetches_key=False)
    add("header_dup_alg_same", lambda: with_h(hjson[:-1].encode() + b',"alg":"ES256"}'), fetches_key=False)
    add(
        "header_dup_signer",
        lambda: with_h(hjson[:-1].encode() + (',"signer":' + json.dumps(FOREIGN_ARN) + "}").encode()),
        fetches_key=False,
    )
    add("payload_dup_sub", lambda: with_p(pjson[:-1].encode() + b',"sub":"admin"}'))
    add("payload_dup_exp_same", lambda: with_p(pjson[:-1].encode() + b',"exp":' + str(p["exp"]).encode() + b"}"))
    expired_first = dict(p)
    expired_first.pop("exp")
    add(
        "payload_dup_exp_expired_then_future",
        lambda: with_p(
            b'{"exp":'
            + str(now - 3600).encode()
            + b","
            + compact(expired_first)[1:-1]
            + b',"exp":'
            + str(p["exp"]).encode()
            + b"}"
        ),
    )
    add("payload_dup_iss", lambda: with_p(pjson[:-1].encode() + b',"iss":"https://evil.example"}'))
    # duplicates that only show after unescaping the key: "s\u0075b" is "sub"
    add("payload_dup_sub_escaped_key", lambda: with_p(pjson[:-1].encode() + b',"s\\u0075b":"admin"}'))
    add(
        "header_dup_kid_escaped_key",
        lambda: with_h(hjson[:-1].encode() + b',"k\\u0069d":"' + other_key.kid.encode() + b'"}'),
        fetches_key=False,
    )
    add("header_json_array", lambda: with_h(compact([h])), fetches_key=False)
    add("header_json_string", lambda: with_h(b'"ES256"'), fetches_key=False)
    add("header_not_json", lambda: with_h(b"alg=ES256"), fetches_key=False)
    add("header_trailing_garbage", lambda: with_h(hb + b"x"), fetches_key=False)
    add("payload_json_array", lambda: with_p(compact([p])))
    add("payload_json_number", lambda: with_p(b"123"))
    add("payload_json_null", lambda: with_p(b"null"))
    add("payload_json_string", lambda: with_p(b'"alice"'))
    add("payload_not_json", lambda: with_p(pb[:-1]))
    add("payload_two_objects", lambda: with_p(pb + b"{}"))
    add("payload_invalid_utf8", lambda: with_p(pjson[:-1].encode() + b',"x":"\xff\xfe"}'))

    # ---- size ------------------------------------------------------------------
    add("oversized_20k", lambda: m.mint(payload={"blob": "A" * 20_000}))
    add(
        "oversized_40k_header_seg",
        lambda: with_h(hjson[:-1].encode() + b',"x5c":"' + b"B" * 30_000 + b'"}'),
        fetches_key=False,
    )

    # ---- header: alg -------------------------------------------------------------
    junk_sig = b64u(b"\x00" * 64)

    def alg_token(alg: Any, sig: str | None = None) -> str:
        hh = dict(h, alg=alg)
        hs = b64u(compact(hh))
        if sig is None:
            return signed(hs, gp)
        return f"{hs}.{gp}.{sig}"

    add("alg_none", lambda: alg_token("none", junk_sig), HEADER, fetches_key=False)
    add("alg_None", lambda: alg_token("None", junk_sig), HEADER, fetches_key=False)
    add("alg_NONE", lambda: alg_token("NONE", junk_sig), HEADER, fetches_key=False)
    add("alg_empty", lambda: alg_token(""), HEADER, fetches_key=False)
    add("alg_lowercase", lambda: alg_token("es256"), HEADER, fetches_key=False)
    add("alg_trailing_space", lambda: alg_token("ES256 "), HEADER, fetches_key=False)
    add("alg_ES384", lambda: alg_token("ES384"), HEADER, fetches_key=False)
    add("alg_RS256", lambda: alg_token("RS256"), HEADER, fetches_key=False)
    add("alg_EdDSA", lambda: alg_token("EdDSA"), HEADER, fetches_key=False)
    add("alg_number", lambda: alg_token(256), HEADER, fetches_key=False)
    add("alg_null", lambda: alg_token(None), HEADER, fetches_key=False)
    add("alg_list", lambda: alg_token(["ES256"]), HEADER, fetches_key=False)
    hs_hdr = b64u(compact(dict(h, alg="HS256")))
    add(
        "alg_HS256_pem_secret",
        lambda: f"{hs_hdr}.{gp}.{b64u(hs256(m.key.pem, f'{hs_hdr}.{gp}'.encode()))}",
        HEADER,
        fetches_key=False,
    )
    hs_hdr_es = b64u(compact(h))
    add(
        "alg_ES256_hmac_pem_signature",
        lambda: f"{hs_hdr_es}.{gp}.{b64u(hs256(m.key.pem, f'{hs_hdr_es}.{gp}'.encode()))}",
        ("bad_signature", "malformed"),
    )
    no_alg = dict(h)
    no_alg.pop("alg")
    add("alg_missing", lambda: signed(b64u(compact(no_alg)), gp), HEADER, fetches_key=False)

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
        add(name, lambda kid=kid: kid_token(kid), HEADER, fetches_key=False)
    add("kid_missing", lambda: kid_token(None, drop=True), HEADER, fetches_key=False)

    # ---- header: signer (checked before any key fetch) ---------------------------
    signer_reasons = ("untrusted_signer", "bad_header")

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
        add(name, lambda signer=signer: signer_token(signer), signer_reasons, fetches_key=False)
    add("signer_missing", lambda: signer_token(None, drop=True), signer_reasons, fetches_key=False)

    # ---- header: client ------------------------------------------------------------
    client_reasons = ("bad_client", "bad_header")
    for name, client in [
        ("client_wrong", "someone-else"),
        ("client_suffix", CLIENT + "x"),
        ("client_empty", ""),
        ("client_number", 5),
        ("client_null", None),
    ]:
        add(name, lambda client=client: signed(b64u(compact(dict(h, client=client))), gp), client_reasons)
    no_client = dict(h)
    no_client.pop("client")
    add("client_missing", lambda: signed(b64u(compact(no_client)), gp), client_reasons)

    # ---- signature -------------------------------------------------------------------
    sig_reasons = ("bad_signature", "malformed")
    raw = b64u_decode(gs)
    msg = f"{gh}.{gp}".encode()
    add("sig_der", lambda: f"{gh}.{gp}.{b64u(m.key.sign_der(msg))}", sig_reasons)
    add("sig_63_bytes", lambda: f"{gh}.{gp}.{b64u(raw[:63])}", sig_reasons)
    raw65 = raw + bytes(1)
    add("sig_65_bytes", lambda: f"{gh}.{gp}.{b64u(raw65)}", sig_reasons)
    add("sig_32_bytes", lambda: f"{gh}.{gp}.{b64u(raw[:32])}", sig_reasons)
    add("sig_128_bytes", lambda: f"{gh}.{gp}.{b64u(raw + raw)}", sig_reasons)
    add("sig_zeros", lambda: f"{gh}.{gp}.{b64u(bytes(64))}", sig_reasons)
    ones = bytes([255]) * 64
    add("sig_ones", lambda: f"{gh}.{gp}.{b64u(ones)}", sig_reasons)
    add("sig_r_s_swapped", lambda: f"{gh}.{gp}.{b64u(raw[32:] + raw[:32])}", sig_reasons)
    add("sig_other_key", lambda: m.from_bytes(hb, pb, key=other_key), sig_reasons)
    tampered = dict(p, sub="admin")
    add("sig_tampered_payload", lambda: f"{gh}.{b64u(compact(tampered))}.{gs}", sig_reasons)
    add("sig_tampered_header", lambda: f"{b64u(compact(dict(h, typ='JWS')))}.{gp}.{gs}", sig_reasons)
    # the ALB signs the padded text: a verifier must not strip padding before verifying
    gh_np, gp_np = b64u_nopad(hb), b64u_nopad(pb)
    assert gh_np != gh or gp_np != gp
    sig_over_unpadded = b64u(m.key.sign_raw(f"{gh_np}.{gp_np}".encode()))
    add("sig_over_unpadded_sent_padded", lambda: f"{gh}.{gp}.{sig_over_unpadded}", sig_reasons)
    add("sig_over_padded_sent_unpadded", lambda: f"{gh_np}.{gp_np}.{gs}", sig_reasons)

    # ---- claims ----------------------------------------------------------------------
    claim_reasons = ("bad_claims",)
    exp_reasons = ("expired",)
    add("expired", lambda: m.mint(exp=now - 60), exp_reasons)
    add("expired_payload_only", lambda: m.mint(header={"exp": now + 600}, payload={"exp": now - 60}), exp_reasons)
    add("exp_missing", lambda: m.mint(drop_payload=("exp",)), claim_reasons + exp_reasons)
    add("exp_string", lambda: m.mint(payload={"exp": str(now + 600)}), claim_reasons + exp_reasons)
    add("exp_null", lambda: m.mint(payload={"exp": None}), claim_reasons + exp_reasons)
    add("exp_bool", lambda: m.mint(payload={"exp": True}), claim_reasons + exp_reasons)
    add("exp_list", lambda: m.mint(payload={"exp": [now + 600]}), claim_reasons + exp_reasons)
    add("exp_zero", lambda: m.mint(payload={"exp": 0}), claim_reasons + exp_reasons)
    add("exp_negative", lambda: m.mint(payload={"exp": -1}), claim_reasons + exp_reasons)
    add("nbf_future", lambda: m.mint(payload={"nbf": now + 600}), ("not_yet_valid",))
    add("nbf_string", lambda: m.mint(payload={"nbf": str(now - 600)}), ("not_yet_valid", "bad_claims"))
    add("iss_missing", lambda: m.mint(drop_payload=("iss",)), claim_reasons + ("bad_issuer",))
    add("iss_forged", lambda: m.mint(payload={"iss": "https://evil.example.com/pool"}), ("bad_issuer",))
    add("iss_forged_header_ok", lambda: m.mint(header={"iss": ISSUER}, payload={"iss": ISSUER + "x"}), ("bad_issuer",))
    add("iss_number", lambda: m.mint(payload={"iss": 1}), claim_reasons + ("bad_issuer",))
    add("sub_missing", lambda: m.mint(drop_payload=("sub",)), claim_reasons + ("no_username",))
    add("sub_empty", lambda: m.mint(payload={"sub": ""}), claim_reasons + ("no_username",))
    add("sub_number", lambda: m.mint(payload={"sub": 42}), claim_reasons + ("no_username",))
    add("sub_null", lambda: m.mint(payload={"sub": None}), claim_reasons + ("no_username",))
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
