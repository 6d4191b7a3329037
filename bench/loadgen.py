"""wrk as the load generator, driven through a generated Lua script.

Why wrk: Debian ships it (``apt-get install wrk``), it is the usual HTTP/1.1
benchmarking tool for Envoy, one thread of it drives well over 50k requests/s
(so on its own core it is never the bottleneck of a filter that costs tens of
microseconds), and its Lua hook lets every request carry a *different* token
header: the cold variants need a fresh token per request, which no
fixed-header generator (oha, hey, ab) can send.

Two modes:

* saturation (closed loop): ``-t1 -cC``, as fast as Envoy answers;
* paced (fixed rate below saturation): each of ``C`` connections waits
  ``pace_ms`` after every response, so the offered rate is about
  ``C * 1000 / (pace_ms + latency)``; the achieved rate is reported with the
  latencies. wrk's pacing is per connection (closed loop with think time),
  not an open-loop schedule; at rates far below saturation queueing is
  negligible, so coordinated omission does not distort p50/p99 here.

An optional fixed extra header (name and value as script arguments 4 and
5) goes on every request besides the token: variant (t)'s access token,
the same on every request as the ALB forwards it for a whole login.

The script prints one JSON line from ``done()``: completed requests,
duration, errors by kind (non-2xx/3xx status included) and latency
percentiles in microseconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_TEMPLATE = r"""
local tokens = {}
local n, idx = 0, 0
local path = "/"
local header = "x-amzn-oidc-data"
local headers = {}

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then n = n + 1; tokens[n] = line end
  end
  idx = tonumber(args[2]) %% n
  path = args[3]
  if args[4] then headers[args[4]] = args[5] end
end

function request()
  idx = idx + 1
  if idx > n then idx = 1 end
  headers[header] = tokens[idx]
  return wrk.format("GET", path, headers)
end
%(delay)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"bytes":%%d,"err_connect":%%d,"err_read":%%d,"err_write":%%d,' ..
    '"err_status":%%d,"err_timeout":%%d,"lat_p50_us":%%d,"lat_p90_us":%%d,"lat_p99_us":%%d,' ..
    '"lat_max_us":%%d,"lat_mean_us":%%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def find_wrk(repo: Path) -> str:
    for cand in (os.environ.get("WRK"), shutil.which("wrk"), str(repo / ".tools" / "bin" / "wrk")):
        if cand and Path(cand).exists():
            return cand
    raise SystemExit("wrk not found: install it (Debian: apt-get install wrk; .ci/run does) or set WRK=/path/to/wrk")


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    err_status: int
    lat_p50_us: int
    lat_p90_us: int
    lat_p99_us: int
    lat_max_us: int
    raw: dict
    chunks: int = 1

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


class Wrk:
    def __init__(self, wrk: str, workdir: Path, cpu: str | None) -> None:
        self.wrk = wrk
        self.dir = workdir
        self.cpu = cpu  # taskset CPU list for the generator, or None
        self._scripts: dict[int, Path] = {}

    def script(self, pace_ms: int) -> Path:
        if pace_ms not in self._scripts:
            text = LUA_TEMPLATE % {
                "delay": f"function delay() return {pace_ms} end" if pace_ms > 0 else "",
            }
            p = self.dir / f"wrk_{pace_ms}.lua"
            p.write_text(text)
            self._scripts[pace_ms] = p
        return self._scripts[pace_ms]

    def run(
        self,
        port: int,
        token_file: Path,
        *,
        offset: int = 0,
        connections: int = 16,
        duration_s: float = 5.0,
        pace_ms: int = 0,
        path: str = "/",
        timeout_s: int = 10,
        extra_header: tuple[str, str] | None = None,
    ) -> WrkResult:
        script = self.script(pace_ms)
        cmd = []
        if self.cpu is not None:
            cmd += ["taskset", "-c", self.cpu]
        cmd += [
            self.wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
            "--",
            str(token_file),
            str(offset),
            path,
            *(extra_header or ()),
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 120)
        line = next((ln for ln in reversed(p.stdout.splitlines()) if ln.startswith("{")), None)
        if p.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
        d = json.loads(line)
        errors = d["err_connect"] + d["err_read"] + d["err_write"] + d["err_status"] + d["err_timeout"]
        return WrkResult(
            requests=d["requests"],
            duration_s=d["duration_us"] / 1e6,
            errors=errors,
            err_status=d["err_status"],
            lat_p50_us=d["lat_p50_us"],
            lat_p90_us=d["lat_p90_us"],
            lat_p99_us=d["lat_p99_us"],
            lat_max_us=d["lat_max_us"],
            raw=d,
        )
