"""Envoy's admin endpoint: readiness, /stats counters, the Prometheus exposition."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One sample of the Prometheus exposition."""

    name: str
    labels: dict[str, str]
    value: float


class EnvoyAdmin:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, timeout: float = 10.0) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            return r.read().decode()

    def ready(self) -> bool:
        """GET /ready answers 200 (Envoy is initialised, listeners included)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        """Every integer stat (counters and gauges) whose name matches `filter_regex`."""
        text = self.get("/stats?filter=" + urllib.parse.quote(filter_regex))
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, sep, val = line.partition(": ")
            if sep and val.strip().lstrip("-").isdigit():
                out[name.strip()] = int(val)
        return out

    def stat(self, name: str) -> int:
        """The stat named exactly `name` (0 while Envoy has not created it)."""
        return self.stats("^" + re.escape(name) + "$").get(name, 0)

    def counters(self, *suffixes: str, filter_regex: str = "alb_oidc") -> dict[str, int]:
        """Per suffix, the sum of every stat named `suffix` or ending in
        `.suffix` (the filter's metrics carry a `wasmcustom.` or other prefix)."""
        st = self.stats(filter_regex)
        return {s: sum(v for n, v in st.items() if n == s or n.endswith("." + s)) for s in suffixes}

    def counter(self, suffix: str, filter_regex: str = "alb_oidc") -> int:
        return self.counters(suffix, filter_regex=filter_regex)[suffix]

    def prometheus(self) -> list[Sample]:
        """GET /stats/prometheus, parsed by the Prometheus client library's parser
        (a malformed exposition raises)."""
        from prometheus_client.parser import text_string_to_metric_families

        return [
            Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(self.get("/stats/prometheus"))
            for s in family.samples
        ]
