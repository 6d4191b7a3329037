"""The attack suite's kit: every hostile input from `alb-tokens.md`'s list (and more),
end to end through a real Envoy, table-driven.

The guarantee under test, for every case:

* the client gets the documented status (401 for a bad token, 400/431 where
  Envoy itself refuses the request line or headers, 200 only for the exempt
  and anonymous paths, which carry no identity);
* the upstream never saw a refused request, and never saw identity that the
  filter did not verify: every case also sends forged copies of every
  identity header the filter manages (`x-auth-*` and the claim headers);
* no key fetch happens for a token refused on its header or claims (so a
  kid never reaches the key URL unless it is `^[A-Za-z0-9_-]{1,64}$`);
* no wasm panic or trap (the conftest scans the Envoy log after every test).

The attack tests are `test_attacks_*.py`. Each case is recorded here; at the
end of the session (conftest) the counts are written to
`tests/e2e/out/attack_summary.json` (cases, refused, passed without identity,
let through — which must be 0). SECURITY.md quotes these figures.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from configs import IDENTITY_HEADERS
from envoykit.client import Response
from envoykit.echo import EchoServer, Upstream

OUT_DIR = Path(__file__).resolve().parent / "out"
FORGED = "forged-by-client"
TOKEN_HEADER = "x-amzn-oidc-data"

# --------------------------------------------------------------- recording --


@dataclass
class Record:
    group: str
    case: str
    outcome: str  # "refused" | "passed_without_identity" | "verified" | "let_through"
    status: int
    detail: str = ""


@dataclass
class Summary:
    records: list[Record] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rec: Record, requests: int = 1) -> None:
        with self.lock:
            self.records.append(rec)
            self.requests += requests


SUMMARY = Summary()


def write_summary() -> None:
    """Writes the figures of every case recorded in this session (called by
    conftest at the end of the session; nothing when no attack test ran)."""
    if not SUMMARY.records:
        return
    by_outcome: dict[str, int] = {}
    by_group: dict[str, dict[str, int]] = {}
    for r in SUMMARY.records:
        by_outcome[r.outcome] = by_outcome.get(r.outcome, 0) + 1
        g = by_group.setdefault(r.group, {})
        g[r.outcome] = g.get(r.outcome, 0) + 1
    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": len(SUMMARY.records),
        "refused": by_outcome.get("refused", 0),
        "passed_without_identity": by_outcome.get("passed_without_identity", 0),
        "verified_controls": by_outcome.get("verified", 0),
        "let_through": by_outcome.get("let_through", 0),
        "requests_sent": SUMMARY.requests,
        "by_group": by_group,
        "let_through_cases": [f"{r.group}/{r.case}: {r.detail}" for r in SUMMARY.records if r.outcome == "let_through"],
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "attack_summary.json").write_text(json.dumps(doc, indent=2) + "\n")


def forged_identity(variants: bool = True) -> list[tuple[str, str]]:
    """Forged copies of every managed identity header: lower case, UPPER,
    Title-Case, and repeated."""
    out: list[tuple[str, str]] = []
    for name in IDENTITY_HEADERS:
        out.append((name, FORGED))
        if variants:
            out.append((name.upper(), FORGED + "-upper"))
            out.append(("-".join(p.capitalize() for p in name.split("-")), FORGED + "-title"))
            out.append((name, FORGED + "-again"))
    return out


def forged_seen(up: Upstream) -> list[str]:
    """Forged values of managed headers that reached the upstream."""
    bad = []
    for name in IDENTITY_HEADERS:
        for v in up.all(name):
            if FORGED in v:
                bad.append(f"{name}: {v!r}")
    return bad


def classify(
    group: str,
    case: str,
    r: Response,
    path: str,
    echo: EchoServer,
    *,
    refuse: set[int] | None = None,
    may_pass: bool = False,
    verified_user: str | None = None,
    requests: int = 1,
) -> Record:
    """Judges one response against the guarantee and records it.

    refuse: statuses that count as a refusal (the upstream must not be hit).
    may_pass: a 200 without any identity is acceptable (exempt / anonymous).
    verified_user: a 200 carrying exactly this verified user is acceptable.
    """
    refuse = refuse if refuse is not None else {401}
    hits = echo.hits(path)
    if r.status in refuse and hits == 0:
        rec = Record(group, case, "refused", r.status)
    elif r.status == 200 and (may_pass or verified_user is not None):
        up = r.upstream
        forged = forged_seen(up)
        users = up.all("x-auth-user")
        if forged:
            rec = Record(
                group, case, "let_through", 200, "forged identity reached the upstream: " + "; ".join(forged[:3])
            )
        elif verified_user is not None and users == [verified_user]:
            rec = Record(group, case, "verified", 200)
        elif may_pass and not any(up.all(n) for n in IDENTITY_HEADERS):
            rec = Record(group, case, "passed_without_identity", 200)
        else:
            rec = Record(group, case, "let_through", 200, f"unexpected identity upstream: x-auth-user={users}")
    elif hits:
        rec = Record(group, case, "let_through", r.status, f"status {r.status} but the upstream saw the request")
    else:
        rec = Record(
            group,
            case,
            "unexpected_status",
            r.status,
            f"expected one of {sorted(refuse)}{' or 200' if may_pass else ''}, got {r.status} {r.body[:120]!r}",
        )
    SUMMARY.add(rec, requests)
    return rec


def failures(recs: list[Record]) -> list[str]:
    return [
        f"{r.group}/{r.case}: {r.outcome} (status {r.status}) {r.detail}"
        for r in recs
        if r.outcome not in ("refused", "passed_without_identity", "verified")
    ]


# --------------------------------------------------------------- raw client --


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> Response:
    """Sends raw bytes (request line and headers exactly as given) and parses
    the response (Content-Length bodies; Envoy's answers all have one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                lengths = [
                    ln.split(b":", 1)[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")
                ]
                if lengths and len(body) >= int(lengths[0]):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith(b"HTTP/") else 0
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers.append((k.decode("latin-1").strip().lower(), v.decode("latin-1").strip()))
    return Response(status, body, headers)


def raw_get(port: int, path: bytes, headers: list[tuple[bytes, bytes]]) -> Response:
    req = b"GET " + path + b" HTTP/1.1\r\nHost: attack.test\r\nConnection: close\r\n"
    for k, v in headers:
        req += k + b": " + v + b"\r\n"
    return raw_request(port, req + b"\r\n")
