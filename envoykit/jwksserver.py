"""A stand-in for an IdP's key set endpoint (Cognito's
``/<pool>/.well-known/jwks.json``): serves one JWKS document per path,
counts every request per path (the filter's fetches), swaps a path's
document at any time (key rotation), and has fault modes per path, delays
per path, and holds until the test releases them.

Paths, not one global document: each test (and each Envoy) uses a path of
its own, so counts and faults never leak between tests that share the
server."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import Counter

from envoykit.httpserver import QuietHandler, ThreadedServer

# The filter refuses a key set larger than this (src/access_token/jwks.rs).
MAX_JWKS_BYTES = 256 * 1024

JWKS_MODES = {
    "ok",  # 200 + the path's document (404 when the path has none)
    "slow",  # sleep `slow_s`, then as `ok` (longer than the filter's fetch timeout)
    "404",
    "500",
    "503",
    "garbage",  # 200, bytes that are not JSON
    "not_jwks",  # 200, JSON that is no key set (an array)
    "oversized",  # 200, a valid key set padded to more than 256 KiB
    "reset",  # TCP RST without any response
    "close",  # close the connection without any response (FIN)
}


class _JwksHandler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802
        js: JwksServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path
        with js.lock:
            js.counts[path] += 1
            js.log.append((path, self.headers.get("Host", "")))
            mode = js.modes.get(path, "ok")
            doc = js.documents.get(path)
            delay = js.delays.get(path, 0.0)
            gate = js.gates.get(path)
        if delay:
            js.stopping.wait(delay)
        if gate is not None:
            gate.wait(js.stall_s)
        try:
            js.serve(self, mode, doc)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


class JwksServer(ThreadedServer):
    handler_cls = _JwksHandler

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []  # (path, Host) per request
        self.documents: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.delays: dict[str, float] = {}
        self.gates: dict[str, threading.Event] = {}
        self.slow_s = 2.0
        self.stall_s = 8.0
        self.stopping = threading.Event()

    # -- configuration ----------------------------------------------------
    def publish(self, path: str, document: bytes | str) -> None:
        """Serve `document` at `path` from now on (a rotation swaps it)."""
        with self.lock:
            self.documents[path] = document.encode() if isinstance(document, str) else document

    def set_mode(self, path: str, mode: str) -> None:
        assert mode in JWKS_MODES, mode
        with self.lock:
            self.modes[path] = mode

    def set_delay(self, path: str, seconds: float) -> None:
        with self.lock:
            self.delays[path] = seconds

    def hold(self, path: str) -> None:
        """Requests for `path` wait until `release(path)` (at most `stall_s`)."""
        with self.lock:
            self.gates[path] = threading.Event()

    def release(self, path: str) -> None:
        with self.lock:
            gate = self.gates.pop(path, None)
        if gate is not None:
            gate.set()

    def reset(self) -> None:
        """Every path back to `ok` without delay or hold (documents stay)."""
        with self.lock:
            self.modes.clear()
            self.delays.clear()
            gates, self.gates = list(self.gates.values()), {}
        for gate in gates:
            gate.set()

    # -- observation --------------------------------------------------------
    def fetches(self, path: str) -> int:
        with self.lock:
            return self.counts[path]

    def hosts(self, path: str) -> list[str]:
        with self.lock:
            return [h for p, h in self.log if p == path]

    # -- responses --------------------------------------------------------
    def serve(self, h: _JwksHandler, mode: str, doc: bytes | None) -> None:
        if mode in ("ok", "slow"):
            if mode == "slow":
                self.stopping.wait(self.slow_s)
            if doc is None:
                h.send_body(404, b'{"message":"not found"}', "application/json")
            else:
                h.send_body(200, doc, "application/json")
        elif mode in ("404", "500", "503"):
            h.send_body(int(mode), b'{"message":"nope"}', "application/json")
        elif mode == "garbage":
            h.send_body(200, bytes(range(256)) * 4 + b"\x00garbage\xff", "application/json")
        elif mode == "not_jwks":
            h.send_body(200, b'[{"keys":[]}]', "application/json")
        elif mode == "oversized":
            h.send_body(200, oversized(doc or b'{"keys":[]}'), "application/json")
        elif mode in ("reset", "close"):
            sock = h.connection
            if mode == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            try:
                if mode == "close":
                    sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        else:  # pragma: no cover
            raise AssertionError(mode)


def oversized(doc: bytes) -> bytes:
    """`doc` (a key set) with a member that takes it past 256 KiB: still a
    valid key set, refused for its size alone."""
    parsed = json.loads(doc)
    parsed["padding"] = "A" * (MAX_JWKS_BYTES + 1)
    return json.dumps(parsed, separators=(",", ":")).encode()
