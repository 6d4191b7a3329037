"""Test harness for the alb-oidc end-to-end suite.

Everything here runs on 127.0.0.1 only:

* ``KeyServer``   - serves PEM public keys by kid like the ALB key endpoint
                    (``GET <prefix><kid>``), counts requests per path and can be
                    switched into fault modes (per kid or globally).
* ``EchoServer``  - the upstream: answers every request with a JSON document of
                    the request line and headers it received.
* ``Envoy``       - renders a bootstrap, starts the real Envoy from the venv with
                    the filter's .wasm, waits for readiness, reads stats, and on
                    stop checks the log for wasm panics/traps.
* ``http_request``- a raw HTTP/1.1 client (http.client) that sends the path
                    byte-for-byte (``requests``/urllib3 would normalise dot
                    segments, which the exempt-path tests must not have).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ENVOY_BIN = Path(os.environ.get("ALB_OIDC_ENVOY", REPO / ".venv" / "bin" / "envoy"))
WASM_PATH = Path(
    os.environ.get(
        "ALB_OIDC_WASM", REPO / "target" / "wasm32-wasip1" / "release" / "alb_oidc.wasm"
    )
)

# Strings that must never appear in an Envoy log of a run with the filter.
PANIC_PATTERNS = [
    "panicked at",
    "wasm trap",
    "Unreachable",
    "unreachable executed",
    "RuntimeError: unreachable",
    re.compile(r"Function: proxy_on_\w+ failed"),
]

DEFAULT_REQUEST_TIMEOUT = 15.0

# Where Envoy work directories (config, log) go; conftest points this into
# pytest's basetemp so old runs are pruned and logs of failed runs are kept.
WORK_ROOT: Path | None = None


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Threaded HTTP servers
# --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # coalescing tests open hundreds of connections


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ThreadedServer:
    handler_cls: type[BaseHTTPRequestHandler]

    def start(self) -> "_ThreadedServer":
        self.httpd = _Server(("127.0.0.1", 0), self.handler_cls)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- key server -----------------------------------------------------------

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


class _KeyHandler(_QuietHandler):
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
        if delay:
            ks._wait(delay)
        ks.serve(self, mode, kid, pem)


class KeyServer(_ThreadedServer):
    handler_cls = _KeyHandler

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []  # (path, Host) per request
        self.delays: dict[str, float] = {}  # per-kid delay before answering
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

    def set_delay(self, kid: str, seconds: float) -> None:
        with self.lock:
            self.delays[kid] = seconds

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
                h._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            else:
                h._send(200, pem, "application/octet-stream")
        elif mode in ("404", "403", "500", "503", "429"):
            h._send(int(mode), b"<Error>nope</Error>", "application/xml")
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
            h._send(200, bytes(range(256)) * 4 + b"\x00garbage\xff", "application/octet-stream")
        elif mode == "empty":
            h._send(200, b"", "application/octet-stream")
        elif mode == "huge":
            line = b"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + b"A" * 28 + b"\n"
            body = b"-----BEGIN PUBLIC KEY-----\n" + line * (6 * 1024 * 1024 // len(line))
            body += b"-----END PUBLIC KEY-----\n"
            h._send(200, body, "application/octet-stream")
        elif mode == "nonpem":
            h._send(200, json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid}]}).encode(), "application/json")
        elif mode == "der":
            from cryptography.hazmat.primitives.serialization import load_pem_public_key, Encoding, PublicFormat

            assert pem is not None
            der = load_pem_public_key(pem).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            h._send(200, der, "application/octet-stream")
        elif mode == "p384":
            h._send(200, self.p384_pem(), "application/octet-stream")
        elif mode == "rsa":
            h._send(200, self.rsa_pem(), "application/octet-stream")
        elif mode == "private":
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

            k = ec.generate_private_key(ec.SECP256R1())
            h._send(200, k.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
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


# ---- echo upstream --------------------------------------------------------


class _EchoHandler(_QuietHandler):
    def _echo(self) -> None:
        es: EchoServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_len": len(body),
        }
        with es.lock:
            es.paths[self.path] += 1
        self._send(200, json.dumps(doc).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _echo  # noqa: N815


class EchoServer(_ThreadedServer):
    handler_cls = _EchoHandler

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paths: Counter[str] = Counter()
        self.stopping = threading.Event()

    def hits(self, path: str) -> int:
        with self.lock:
            return self.paths[path]

    def total(self) -> int:
        with self.lock:
            return sum(self.paths.values())


# --------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def upstream(self) -> "Upstream":
        """The echo upstream's view of the request (only valid for 2xx from the echo)."""
        return Upstream(self.json())


@dataclass
class Upstream:
    doc: dict

    @property
    def path(self) -> str:
        return self.doc["path"]

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.doc["headers"] if k == name]

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        assert len(vals) <= 1, f"upstream saw {name} {len(vals)} times: {vals}"
        return vals[0] if vals else None

    def names(self) -> set[str]:
        return {k for k, _ in self.doc["headers"]}


def http_request(
    port: int,
    path: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    method: str = "GET",
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
    conn: http.client.HTTPConnection | None = None,
) -> Response:
    """Send one request with the path exactly as given."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        return Response(r.status, body, [(k.lower(), v) for k, v in r.getheaders()])
    finally:
        if own:
            c.close()


# --------------------------------------------------------------------------
# Envoy
# --------------------------------------------------------------------------


class EnvoyStartError(RuntimeError):
    pass


def render_bootstrap(
    *,
    filter_config: Any,
    wasm_path: Path,
    listener_port: int,
    admin_port: int,
    echo_port: int,
    key_port: int,
    key_cluster: str = "alb_public_keys",
) -> dict:
    """The bootstrap as a dict. `filter_config` that is not a str is JSON-encoded."""
    cfg_text = filter_config if isinstance(filter_config, str) else json.dumps(filter_config)

    def static_cluster(name: str, port: int) -> dict:
        return {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
                        ]
                    }
                ],
            },
        }

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener_port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "ingress",
                                        "route_config": {
                                            "name": "local",
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}],
                                                }
                                            ],
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.wasm",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                                    "config": {
                                                        "name": "alb_oidc",
                                                        "configuration": {
                                                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                                                            "value": cfg_text,
                                                        },
                                                        "vm_config": {
                                                            "vm_id": "alb_oidc",
                                                            "runtime": "envoy.wasm.runtime.v8",
                                                            "code": {"local": {"filename": str(wasm_path)}},
                                                        },
                                                    },
                                                },
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [static_cluster("echo", echo_port), static_cluster(key_cluster, key_port)],
        },
    }


def scan_log_for_panics(text: str) -> list[str]:
    bad = []
    for line in text.splitlines():
        for p in PANIC_PATTERNS:
            if (p.search(line) if isinstance(p, re.Pattern) else p in line):
                bad.append(line)
                break
    return bad


def log_tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def relevant_log_tail(text: str, n: int = 30) -> str:
    """The last `n` lines from the wasm component or at error level and above."""
    keep = [ln for ln in text.splitlines() if "][wasm]" in ln or "][critical]" in ln or "][error]" in ln]
    return "\n".join(keep[-n:])


class Envoy:
    """One real Envoy process with the filter. Use `start()` / `stop()`."""

    def __init__(
        self,
        filter_config: Any,
        *,
        key_port: int,
        echo_port: int,
        concurrency: int = 2,
        wasm_path: Path = WASM_PATH,
        key_cluster: str = "alb_public_keys",
        workdir: Path | None = None,
        name: str = "envoy",
        log_level: str = "info",
    ) -> None:
        self.filter_config = filter_config
        self.key_port = key_port
        self.echo_port = echo_port
        self.concurrency = concurrency
        self.wasm_path = wasm_path
        self.key_cluster = key_cluster
        self.name = name
        if workdir is None:
            root = WORK_ROOT
            if root is not None:
                root.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix=f"{name}-" if root else f"alb-oidc-{name}-", dir=root))
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "envoy.yaml"
        self.log_path = self.dir / "envoy.log"
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.admin_port = 0
        self.allow_panics = False

    # -- lifecycle ----------------------------------------------------------
    def write_config(self) -> Path:
        self.port = free_port()
        self.admin_port = free_port()
        boot = render_bootstrap(
            filter_config=self.filter_config,
            wasm_path=self.wasm_path,
            listener_port=self.port,
            admin_port=self.admin_port,
            echo_port=self.echo_port,
            key_port=self.key_port,
            key_cluster=self.key_cluster,
        )
        self.config_path.write_text(yaml.safe_dump(boot, sort_keys=False))
        return self.config_path

    def command(self) -> list[str]:
        return [
            str(ENVOY_BIN),
            "-c",
            str(self.config_path),
            "--concurrency",
            str(self.concurrency),
            "--use-dynamic-base-id",
            "--log-path",
            str(self.log_path),
            "-l",
            self.log_level,
            "--component-log-level",
            "wasm:debug",
            "--drain-time-s",
            "0",
            # the log file is buffered (default flush every 10 s): flush often so
            # the per-test panic scan and log assertions see recent lines
            "--file-flush-interval-msec",
            "50",
        ]

    def spawn(self) -> None:
        self.write_config()
        if self.log_path.exists():
            self.log_path.unlink()
        self._stdout = open(self.dir / "stdout.log", "wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._stdout, stderr=subprocess.STDOUT, cwd=str(self.dir), start_new_session=True
        )

    def start(self, timeout: float = 30.0) -> "Envoy":
        for attempt in range(3):  # a free port can be stolen between probe and bind
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except EnvoyStartError as e:
                text = self.log_text()
                self._kill()
                if "Address already in use" in text and attempt < 2:
                    continue
                raise EnvoyStartError(f"{e}\n--- envoy log tail ({self.log_path}) ---\n{log_tail(text)}") from None
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise EnvoyStartError(f"envoy exited with status {rc} before becoming ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200 and self._listener_up():
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise EnvoyStartError(f"envoy not ready within {timeout}s")

    def _listener_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _kill(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        try:
            self._stdout.close()
        except Exception:
            pass
        return self.proc.returncode

    def stop(self, check: bool = True) -> None:
        self._kill()
        if check and not self.allow_panics:
            self.assert_no_panics()

    def log_text(self) -> str:
        parts = []
        for p in (self.log_path, self.dir / "stdout.log"):
            try:
                parts.append(p.read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return "\n".join(parts)

    def assert_no_panics(self) -> None:
        text = self.log_text()
        bad = scan_log_for_panics(text)
        assert not bad, (
            "wasm panic/trap in the Envoy log:\n" + "\n".join(bad[:10]) + f"\n--- log tail ({self.log_path}) ---\n" + log_tail(text)
        )

    def __enter__(self) -> "Envoy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop(check=exc[0] is None)

    # -- traffic --------------------------------------------------------------
    def request(self, path: str = "/", headers: Any = None, **kw: Any) -> Response:
        return http_request(self.port, path, headers, **kw)

    def connection(self, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    # -- admin -----------------------------------------------------------------
    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
            return r.read().decode()

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.admin("/stats?filter=alb_oidc").splitlines():
            name, sep, val = line.partition(": ")
            if sep and val.strip().lstrip("-").isdigit():
                out[name.strip()] = int(val)
        return out

    def counter(self, suffix: str) -> int:
        """Sum of every stat whose name is `suffix` or ends with `.suffix`
        (the filter's metrics may carry a `wasmcustom.` or other prefix)."""
        total = 0
        for name, val in self.stats().items():
            if name == suffix or name.endswith("." + suffix):
                total += val
        return total

    def counters(self, *suffixes: str) -> dict[str, int]:
        st = self.stats()
        return {
            s: sum(v for n, v in st.items() if n == s or n.endswith("." + s)) for s in suffixes
        }


def envoy_validate(config_path: Path, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`envoy --mode validate -c FILE`; returns the completed process (stdout+stderr merged)."""
    return subprocess.run(
        [str(ENVOY_BIN), "--mode", "validate", "-c", str(config_path), "--use-dynamic-base-id", "-l", "info",
         "--component-log-level", "wasm:debug"],
        cwd=str(cwd or REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        text=True,
    )


def wait_until(pred, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `pred` until it returns truthy or `timeout` elapses (then AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(interval)
