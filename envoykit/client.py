"""A raw HTTP/1.1 client (http.client) that sends the path byte for byte:
``requests``/urllib3 would normalise dot segments, which the exempt-path
tests must not have."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from envoykit.echo import Upstream

DEFAULT_REQUEST_TIMEOUT = 15.0


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def upstream(self) -> Upstream:
        """The echo upstream's view of the request (only valid for 2xx from the echo)."""
        return Upstream(self.json())


def http_request(
    port: int,
    path: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    method: str = "GET",
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
    conn: http.client.HTTPConnection | None = None,
) -> Response:
    """Send one request with the path exactly as given; a `host` header in
    `headers` replaces the default one (127.0.0.1:port)."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        items = list(headers.items() if isinstance(headers, dict) else (headers or []))
        own_host = any(k.lower() == "host" for k, _ in items)
        c.putrequest(method, path, skip_host=own_host, skip_accept_encoding=True)
        for k, v in items:
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        return Response(r.status, body, [(k.lower(), v) for k, v in r.getheaders()])
    finally:
        if own:
            c.close()
