"""The benchmark harness must not rot: `python -m bench.run_bench --smoke`
(what `make bench-smoke` runs, after `make bench-build`, which `make test-e2e`
does before pytest) starts the benchmark Envoy with every variant (a)-(h),
(r) and (t), checks each one answers correctly (identity header, 401 for bad
tokens, hot/cold token-cache behaviour; (r): its rules route as configured;
(t): its access token verified from the cache on every request, the key set
fetched once) and sends a few hundred requests through wrk to each.

It measures nothing and asserts no time: only that the harness runs and every
variant is correct. Without wrk (a system package: .ci/run installs it) it is
SKIPPED, or fails under ALB_OIDC_NO_SKIP=1."""

from __future__ import annotations

import subprocess
import sys

from envoykit.paths import REPO


def test_bench_smoke(require_tool) -> None:
    require_tool("wrk")
    p = subprocess.run(
        [sys.executable, "-m", "bench.run_bench", "--smoke", "--check-requests", "200"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, (
        f"bench.run_bench --smoke failed ({p.returncode}; `make bench-build` first):\n{out[-6000:]}"
    )
    assert "bench-smoke: 10 variants valid" in out, out[-4000:]
    assert "(r) rules: /api/orders/42?expand=items by rule api, DELETE 403, anyone 200 without a token" in out
    assert (
        "(t) access token: verified (x-auth-groups=bench-group); "
        "tampered counted invalid, missing counted absent (200 without groups)"
    ) in out
    for key in "abcdefghrt":
        assert f"({key}) valid:" in out, f"variant ({key}) not validated:\n{out[-4000:]}"
