"""The benchmark harness must not rot: `make bench-smoke` builds what the
benchmarks need, starts the benchmark Envoy with every variant (a)-(h), checks
each one answers correctly (identity header, 401 for bad tokens, hot/cold
token-cache behaviour) and sends a few hundred requests through wrk to each.

It measures nothing and asserts no time: only that the harness runs and every
variant is correct."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k != "MFLAGS"}
    p = subprocess.run(["make", "-s", "bench-smoke"], cwd=REPO, env=env, capture_output=True, text=True)
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"make bench-smoke failed ({p.returncode}):\n{out[-6000:]}"
    assert "bench-smoke: 8 variants valid" in out, out[-4000:]
    for key in "abcdefgh":
        assert f"({key}) valid:" in out, f"variant ({key}) not validated:\n{out[-4000:]}"
