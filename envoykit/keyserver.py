"""A stand-in for the ALB key endpoint: serves PEM public keys by kid
(``GET <prefix><kid>``), records every request (path and Host), and can be
switched into fault modes per kid or for every kid, with per-kid delays, or
held per kid until the test releases them."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import Counter

from envoykit.httpserver import QuietHandler, ThreadedServer

KEY_MODES = {
    "ok",  # 200 + the registered PEM
    "slow",  # sleep `slow_s`, then 200 + PEM (for coalescing tests)
    "404",
    "403",
    "500",
    "503",
    "429",
    "302",
    "stall",  # accept, read, never answer (until stall_s elapses, then close)
    "drip",  # 200, Content-Length 4096, one byte every 0.2 s
    "garbage",  # 200, random-looking non-PEM bytes
    "empty",  # 200, empty body
    "huge",  # 200, a PEM-looking body of several MB
    "nonpem",  # 200, a JWKS JSON document (what other IdPs serve)
    "der",  # 200, the right key but DER-encoded instead of PEM
    "p384",  # 200, a PEM P-384 public key
    "rsa",  # 200, a PEM RSA public key
    "private",  # 200, a PEM P-256 *private* key
    "reset",  # TCP RST without any response
    "close",  # close the connection without any response (FIN)
}


class _KeyHandler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802
        ks: KeyServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path
        kid = path.rsplit("/", 1)[-1]
        with ks.lock:
            ks.counts[path] += 1
            ks.log.append((path, self.headers.get("Host", "")))
            mode = ks.modes.get(kid, ks.global_mode)
            pem = ks.keys.get(kid)
            delay = ks.delays.get(kid, 0.0)
            gate = ks.gates.get(kid)
        if delay:
            ks._wait(delay)
        if gate is not None:
            gate.wait(ks.stall_s)
        ks.serve(self, mode, kid, pem)


class KeyServer(ThreadedServer):
    handler_cls = _KeyHandler

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []  # (path, Host) per request
        self.delays: dict[str, float] = {}  # per-kid delay before answering
        self.gates: dict[str, threading.Event] = {}  # per-kid hold, until released (or stall_s)
        self.keys: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.global_mode = "ok"
        self.slow_s = 1.0
        self.stall_s = 8.0
        self.stopping = threading.Event()
        self._p384_pem: bytes | None = None
        self._rsa_pem: bytes | None = None

    # -- configuration ----------------------------------------------------
    def add_key(self, kid: str, pem: bytes) -> None:
        with self.lock:
            self.keys[kid] = pem

    def set_mode(self, kid: str | None, mode: str) -> None:
        assert mode in KEY_MODES, mode
        with self.lock:
            if kid is None:
                self.global_mode = mode
            else:
                self.modes[kid] = mode

    def clear_mode(self, kid: str | None = None) -> None:
        with self.lock:
            if kid is None:
                self.global_mode = "ok"
            else:
                self.modes.pop(kid, None)
                self.delays.pop(kid, None)

    def reset(self) -> None:
        """Every kid back to mode `ok` without a delay (keys stay registered)."""
        with self.lock:
            self.global_mode = "ok"
            self.modes.clear()
            self.delays.clear()
            gates, self.gates = list(self.gates.values()), {}
        for gate in gates:
            gate.set()

    def set_delay(self, kid: str, seconds: float) -> None:
        with self.lock:
            self.delays[kid] = seconds

    def hold(self, kid: str) -> None:
        """Requests for `kid` wait before answering until `release(kid)`
        (at most `stall_s`), so a test can act while a fetch is in flight."""
        with self.lock:
            self.gates[kid] = threading.Event()

    def release(self, kid: str) -> None:
        with self.lock:
            gate = self.gates.pop(kid, None)
        if gate is not None:
            gate.set()

    def requests_for(self, kid: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(p, h) for p, h in self.log if p.rsplit("/", 1)[-1] == kid]

    # -- observation --------------------------------------------------------
    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def count(self, path: str) -> int:
        with self.lock:
            return self.counts[path]

    def count_kid(self, kid: str) -> int:
        """Requests whose last path segment is exactly `kid` (any prefix)."""
        with self.lock:
            return sum(n for p, n in self.counts.items() if p.rsplit("/", 1)[-1] == kid)

    # -- responses --------------------------------------------------------
    def _wait(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def serve(self, h: _KeyHandler, mode: str, kid: str, pem: bytes | None) -> None:
        try:
            self._serve(h, mode, kid, pem)
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True

    def _serve(self, h: _KeyHandler, mode: str, kid: str, pem: bytes | None) -> None:
        if mode in ("ok", "slow"):
            if mode == "slow":
                self._wait(self.slow_s)
            if pem is None:
                h.send_body(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            else:
                h.send_body(200, pem, "application/octet-stream")
        elif mode in ("404", "403", "500", "503", "429"):
            h.send_body(int(mode), b"<Error>nope</Error>", "application/xml")
        elif mode == "302":
            h.send_response(302)
            h.send_header("Location", "http://127.0.0.1:1/" + kid)
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif mode == "stall":
            self._wait(self.stall_s)
            h.close_connection = True
        elif mode == "drip":
            h.send_response(200)
            h.send_header("Content-Length", "4096")
            h.end_headers()
            h.wfile.flush()
            for _ in range(4096):
                if self.stopping.is_set():
                    break
                h.wfile.write(b"-")
                h.wfile.flush()
                self._wait(0.2)
            h.close_connection = True
        elif mode == "garbage":
            h.send_body(200, bytes(range(256)) * 4 + b"\x00garbage\xff", "application/octet-stream")
        elif mode == "empty":
            h.send_body(200, b"", "application/octet-stream")
        elif mode == "huge":
            line = b"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + b"A" * 28 + b"\n"
            body = b"-----BEGIN PUBLIC KEY-----\n" + line * (6 * 1024 * 1024 // len(line))
            body += b"-----END PUBLIC KEY-----\n"
            h.send_body(200, body, "application/octet-stream")
        elif mode == "nonpem":
            h.send_body(
                200, json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid}]}).encode(), "application/json"
            )
        elif mode == "der":
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

            assert pem is not None
            der = load_pem_public_key(pem).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            h.send_body(200, der, "application/octet-stream")
        elif mode == "p384":
            h.send_body(200, self.p384_pem(), "application/octet-stream")
        elif mode == "rsa":
            h.send_body(200, self.rsa_pem(), "application/octet-stream")
        elif mode == "private":
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

            k = ec.generate_private_key(ec.SECP256R1())
            h.send_body(200, k.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        elif mode in ("reset", "close"):
            sock = h.connection
            if mode == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            try:
                sock.shutdown(socket.SHUT_RDWR) if mode == "close" else None
            finally:
                sock.close()
        else:  # pragma: no cover
            raise AssertionError(mode)

    def p384_pem(self) -> bytes:
        if self._p384_pem is None:
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            k = ec.generate_private_key(ec.SECP384R1())
            self._p384_pem = k.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return self._p384_pem

    def rsa_pem(self) -> bytes:
        if self._rsa_pem is None:
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._rsa_pem = k.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return self._rsa_pem
