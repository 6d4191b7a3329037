"""The threaded HTTP server base shared by the key endpoint and the echo upstream."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # coalescing tests open hundreds of connections


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def send_body(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a body after a HEAD answer would corrupt a reused connection
            self.wfile.write(body)


class ThreadedServer:
    """Serves `handler_cls` on a free 127.0.0.1 port from a daemon thread;
    handlers reach the owner through `self.server.owner`."""

    handler_cls: type[BaseHTTPRequestHandler]
    stopping: threading.Event

    def start(self) -> Self:
        self.httpd = Server(("127.0.0.1", 0), self.handler_cls)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
