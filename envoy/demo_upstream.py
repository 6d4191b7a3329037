#!/usr/bin/env python3
"""The demo upstream: a small web app that shows who you are as it sees you.

It runs behind Envoy + the alb-oidc filter and only reads the headers the
filter injects (it never looks at the token itself):

  x-auth-user      the username claim          x-auth-user-id  the user service's id
  x-auth-email     email (verified only)       x-auth-groups   groups, comma-joined
  x-auth-name      "first last"                x-auth-claims   the verified claims
                                                               (base64url JSON)

It also shows the filter's rule that let the request in (`x-alb-oidc-rule`,
which Envoy's route sets from the filter state `wasm.alb_oidc.rule`).

Routes:
  GET /         HTML page (what a browser shows); any other path too, e.g.
                /admin (rule admin: group admin) and /catalog (rule catalog:
                anonymous visitors welcome)
  GET /whoami   the same as JSON (for curl and tests)
  GET /healthz  "ok" (an exempt path in the filter config: no token needed)

Python standard library only. Usage:
  python envoy/demo_upstream.py [--host 127.0.0.1] [--port 8080]
Environment: DEMO_UPSTREAM_HOST, DEMO_UPSTREAM_PORT (flags win).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IDENTITY_HEADERS = [
    ("x-auth-user", "user (username claim)"),
    ("x-auth-user-id", "user id (user service)"),
    ("x-auth-email", "email (user service, verified only)"),
    ("x-auth-groups", "groups (user service)"),
    ("x-auth-name", "name (user service)"),
]
CLAIM_HEADER_PREFIX = "x-auth-claim-"
ALB_HEADERS = ["x-amzn-oidc-identity", "x-amzn-oidc-data", "x-amzn-oidc-accesstoken"]
# Set by Envoy's route (envoy/demo.yaml) from the filter state wasm.alb_oidc.rule.
RULE_HEADER = "x-alb-oidc-rule"


def decode_claims(value: str | None) -> tuple[Any, str | None]:
    """x-auth-claims is the verified payload JSON, base64url without padding."""
    if value is None:
        return None, None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return json.loads(raw), None
    except (binascii.Error, ValueError) as e:
        return None, f"cannot decode x-auth-claims: {e}"


def whoami(headers: Any, path: str) -> dict:
    claims, error = decode_claims(headers.get("x-auth-claims"))
    doc: dict[str, Any] = {
        "path": path,
        "authenticated": headers.get("x-auth-user") is not None,
        "rule": headers.get(RULE_HEADER),
        "identity": {name: headers.get(name) for name, _ in IDENTITY_HEADERS},
        "claim_headers": {k.lower(): v for k, v in headers.items() if k.lower().startswith(CLAIM_HEADER_PREFIX)},
        "claims": claims,
        "alb_headers_forwarded": [h for h in ALB_HEADERS if headers.get(h) is not None],
    }
    if error:
        doc["claims_error"] = error
    return doc


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>alb-oidc demo: who am I?</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 56rem; color: #222; }}
 table {{ border-collapse: collapse; width: 100%; }}
 th, td {{ text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
 th {{ width: 22rem; font-weight: 600; }}
 code, pre {{ background: #f5f5f5; padding: .1rem .3rem; border-radius: 3px; }}
 pre {{ padding: .8rem; overflow-x: auto; }}
 .none {{ color: #999; font-style: italic; }}
 .banner {{ padding: .8rem 1rem; border-radius: 6px; background: {banner_bg}; }}
</style></head>
<body>
<h1>Who am I?</h1>
<p class="banner">{banner}</p>
<p>Let in by the alb-oidc rule <code id="rule">{rule}</code> (<code>wasm.alb_oidc.rule</code>,
copied into <code>{rule_header}</code> by Envoy's route).</p>
<h2>Identity headers (injected by the alb-oidc filter)</h2>
<table>
{rows}
</table>
<h2>Verified claims (<code>x-auth-claims</code>, decoded)</h2>
<pre id="claims">{claims}</pre>
<h2>Try</h2>
<ul>
 <li>another identity: <code>curl -H 'x-alb-sim-user: bob' http://{host}/</code> (alice, bob, carol)</li>
 <li>the admin area: <a href="/admin"><code>/admin</code></a> (rule <code>admin</code>: group admin; alice gets in, carol gets 403)</li>
 <li>the catalog: <a href="/catalog"><code>/catalog</code></a> (rule <code>catalog</code>: signed in or not)</li>
 <li>logged out: <code>curl -i -H 'x-alb-sim-user: anonymous' http://{host}/</code> &rarr; 401 from the filter</li>
 <li>the same as JSON: <a href="/whoami"><code>/whoami</code></a>; health (exempt, no token): <a href="/healthz"><code>/healthz</code></a></li>
</ul>
<p><small>Path requested: <code>{path}</code>. Raw ALB headers forwarded by Envoy: {alb}.
This page reads only headers; the filter strips any client-sent <code>x-auth-*</code>
header, so they can be trusted.</small></p>
</body></html>
"""


def render_page(doc: dict, host: str) -> str:
    def cell(v: Any) -> str:
        if v is None or v == "":
            return '<span class="none">(none)</span>'
        return html.escape(str(v))

    rows = []
    for name, label in IDENTITY_HEADERS:
        rows.append(
            f"<tr><th>{html.escape(label)}<br><code>{name}</code></th>"
            f'<td id="{name}">{cell(doc["identity"].get(name))}</td></tr>'
        )
    for name, value in sorted(doc["claim_headers"].items()):
        rows.append(
            f"<tr><th>claim header<br><code>{html.escape(name)}</code></th>"
            f'<td id="{html.escape(name)}">{cell(value)}</td></tr>'
        )
    if doc["claims"] is not None:
        claims = html.escape(json.dumps(doc["claims"], indent=2, ensure_ascii=False))
    else:
        claims = html.escape(doc.get("claims_error", "(no x-auth-claims header)"))
    user = doc["identity"].get("x-auth-user")
    if user:
        uid = doc["identity"].get("x-auth-user-id")
        banner = f"Signed in as <strong>{html.escape(user)}</strong>" + (
            f" (user id <strong>{html.escape(uid)}</strong>)" if uid else " (no user id: user service not configured)"
        )
        banner_bg = "#e6f4ea"
    else:
        banner = (
            "No identity: this request reached the app without a verified user "
            "(an <code>anyone</code> or <code>optional</code> rule, or an exempt path)."
        )
        banner_bg = "#fdecea"
    alb = ", ".join(f"<code>{h}</code>" for h in doc["alb_headers_forwarded"]) or "none"
    return PAGE.format(
        rows="\n".join(rows),
        claims=claims,
        banner=banner,
        banner_bg=banner_bg,
        path=html.escape(doc["path"]),
        rule=html.escape(doc["rule"] or "(none)"),
        rule_header=RULE_HEADER,
        alb=alb,
        host=html.escape(host),
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "alb-oidc-demo-upstream"

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
            return
        if path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
            return
        doc = whoami(self.headers, self.path)
        if path == "/whoami":
            self._send(200, json.dumps(doc, indent=2).encode() + b"\n", "application/json")
        else:
            host = self.headers.get("Host") or "127.0.0.1:8000"
            self._send(200, render_page(doc, host).encode(), "text/html; charset=utf-8")

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, fmt: str, *args: Any) -> None:
        user = self.headers.get("x-auth-user", "-") if hasattr(self, "headers") else "-"
        sys.stderr.write(f"demo-upstream: user={user} {fmt % args}\n")
        sys.stderr.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("DEMO_UPSTREAM_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("DEMO_UPSTREAM_PORT", "8080")))
    args = ap.parse_args()

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)

    def stop(signum: int, _frame: Any) -> None:
        # shutdown() blocks until serve_forever returns: call it from another thread.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = httpd.server_address[:2]
    sys.stderr.write(f"demo-upstream: listening on http://{host}:{port}\n")
    sys.stderr.flush()
    httpd.serve_forever()
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
