"""The upstream of the tests: answers every request with a JSON document of
the request line and the headers it received (``Upstream`` reads it)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass

from envoykit.httpserver import QuietHandler, ThreadedServer


class _EchoHandler(QuietHandler):
    def _echo(self) -> None:
        es: EchoServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {
            "method": self.command,
            "path": self.path,
            # the request target as sent: http.server collapses a leading `//` in `path`
            "raw_path": self.requestline.split(" ")[1] if self.requestline.count(" ") >= 2 else self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_len": len(body),
        }
        with es.lock:
            es.paths[self.path] += 1
        self.send_body(200, json.dumps(doc).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _echo  # noqa: N815

    def __getattr__(self, name: str):  # noqa: ANN204
        # Any other method spelling (`get`, `Delete`, ...): method names are
        # case-sensitive in HTTP, and the authorization tests send them as is.
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)


class EchoServer(ThreadedServer):
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


@dataclass
class Upstream:
    doc: dict

    @property
    def path(self) -> str:
        return self.doc["path"]

    @property
    def raw_path(self) -> str:
        """The request target exactly as the upstream received it."""
        return self.doc["raw_path"]

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.doc["headers"] if k == name]

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        assert len(vals) <= 1, f"upstream saw {name} {len(vals)} times: {vals}"
        return vals[0] if vals else None

    def names(self) -> set[str]:
        return {k for k, _ in self.doc["headers"]}
