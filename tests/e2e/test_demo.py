"""`make demo` cannot rot: run scripts/demo.py (`python -m scripts.demo`) for real on free ports.

* `--check` (what `make demo-check` runs): everything starts, one authenticated
  request through the stand-in shows alice and a user id from the user service,
  the exempt /healthz answers without a token, anonymous is refused, the rules
  of envoy/demo.yaml hold (/admin: alice 200, carol 403; /catalog: anonymous
  200), and every process stops cleanly (exit 0, process groups empty).
* interactive mode: starts, prints what to open and curl, serves requests
  (identity switch with x-alb-sim-user), and SIGINT (Ctrl-C) stops everything.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from envoykit.client import http_request
from envoykit.paths import ALB_SIM_BIN, BUILD_HINT, ENVOY_BIN, FILTER_WASM, REPO, USER_SERVICE_BIN
from envoykit.process import scan_log_for_panics
from envoykit.wait import free_port, wait_until

DEMO = [sys.executable, "-u", "-m", "scripts.demo"]
BINARIES = [ALB_SIM_BIN, USER_SERVICE_BIN]
PORT_VARS = [
    "DEMO_PROXY_PORT",
    "DEMO_ENVOY_PORT",
    "DEMO_ADMIN_PORT",
    "DEMO_KEYS_PORT",
    "DEMO_USERS_PORT",
    "DEMO_UPSTREAM_PORT",
]


@pytest.fixture
def demo_env(wasm: Path, tmp_path: Path) -> dict[str, str]:
    for b in BINARIES:
        if not b.exists():
            pytest.fail(f"{b} not built: {BUILD_HINT}")
    ports: set[int] = set()
    while len(ports) < len(PORT_VARS):
        ports.add(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    env.update(dict(zip(PORT_VARS, map(str, sorted(ports)), strict=True)))
    env["DEMO_RUN_DIR"] = str(tmp_path / "run")
    env["ALB_OIDC_WASM"] = str(wasm)
    env["ALB_OIDC_ENVOY"] = str(ENVOY_BIN)
    env["ALB_OIDC_ALB_SIM"] = str(ALB_SIM_BIN)
    env["ALB_OIDC_USER_SERVICE"] = str(USER_SERVICE_BIN)
    return env


def started_pids(output: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"started (\S+)\s+pid (\d+)", output)}


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose argv contains `text` (the unique run dir)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{d.name}: {cmd}")
    return found


def assert_all_gone(pids: dict[str, int], run_dir: str) -> None:
    assert set(pids) == {"user-service", "demo-upstream", "envoy", "alb-sim"}, pids
    for name, pid in pids.items():
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            continue
        pytest.fail(f"{name}'s process group {pid} is still alive after the demo stopped")
    assert processes_mentioning(run_dir) == []


def test_demo_check_mode(demo_env: dict[str, str]) -> None:
    out = subprocess.run(
        [*DEMO, "--check"],
        env=demo_env,
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )
    text = out.stdout
    assert out.returncode == 0, text
    assert "demo check: OK" in text
    assert re.search(r"x-auth-user\s+alice\b", text), text
    assert re.search(r"x-auth-user-id\s+\d+", text), text
    assert re.search(r"x-auth-groups\s+admin\n", text), text  # the access token's cognito:groups
    assert "GET http://127.0.0.1:{}/healthz without a token -> 200 ok".format(demo_env["DEMO_ENVOY_PORT"]) in text
    assert "admin area:  GET /admin as alice -> 200 (rule admin); as carol -> 403 (not in group admin)" in text, text
    assert "optional:    GET /catalog as anonymous -> 200 (rule catalog, no identity)" in text, text
    for name in ("alb-sim", "envoy", "demo-upstream", "user-service"):
        assert re.search(rf"{name}\s+exited 0", text), text
    assert "no demo process left" in text
    assert_all_gone(started_pids(text), demo_env["DEMO_RUN_DIR"])
    run = Path(demo_env["DEMO_RUN_DIR"])
    assert (run / "users.db").exists() and list((run / "keys").glob("*.pem"))
    # Envoy ran the repo's demo config with only ports and the .wasm path changed.
    rendered = (run / "envoy-demo.yaml").read_text()
    assert demo_env["DEMO_KEYS_PORT"] in rendered and str(FILTER_WASM.name) in rendered
    assert not scan_log_for_panics((run / "logs" / "envoy.log").read_text())

    # DEMO_ONESHOT=1 is the same mode (and reuses the keys and users.db).
    out = subprocess.run(
        DEMO,
        env={**demo_env, "DEMO_ONESHOT": "1"},
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0 and "demo check: OK" in out.stdout, out.stdout
    assert re.search(r"x-auth-user-id\s+1\b", out.stdout), "alice keeps her id across runs"


def test_demo_refuses_busy_port(demo_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", int(demo_env["DEMO_ENVOY_PORT"])))
        s.listen()
        out = subprocess.run(
            [*DEMO, "--check"],
            env=demo_env,
            cwd=str(REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert f"port {demo_env['DEMO_ENVOY_PORT']} (Envoy listener) is not free" in out.stdout
    assert "DEMO_ENVOY_PORT=" in out.stdout
    assert "started" not in out.stdout


def test_demo_interactive_ctrl_c(demo_env: dict[str, str]) -> None:
    log = Path(demo_env["DEMO_RUN_DIR"]).parent / "demo.out"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            DEMO, env=demo_env, cwd=str(REPO), stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(lambda: "Press Ctrl-C" in log.read_text() or proc.poll() is not None, 120, what="demo banner")
        text = log.read_text()
        assert proc.poll() is None, text
        proxy = int(demo_env["DEMO_PROXY_PORT"])
        # What the banner tells people to open and curl.
        assert f"http://127.0.0.1:{proxy}/" in text
        assert f"curl -s -H 'x-alb-sim-user: bob' http://127.0.0.1:{proxy}/whoami" in text
        assert f"curl -si -H 'x-alb-sim-user: anonymous' http://127.0.0.1:{proxy}/" in text

        page = http_request(proxy, "/")
        assert page.status == 200 and b'<td id="x-auth-user">alice</td>' in page.body
        bob = http_request(proxy, "/whoami", {"x-alb-sim-user": "bob"})
        assert bob.status == 200
        who = json.loads(bob.body)
        assert who["identity"]["x-auth-user"] == "bob"
        assert who["identity"]["x-auth-user-id"].isdigit()
        assert who["identity"]["x-auth-email"] is None  # bob's email is not verified
        assert who["claims"]["name"] == "Bob Baker"
        assert http_request(proxy, "/", {"x-alb-sim-user": "anonymous"}).status == 401
        # The rules of envoy/demo.yaml, and the rule the page shows (Envoy's route
        # copies the filter state wasm.alb_oidc.rule into x-alb-oidc-rule).
        admin = http_request(proxy, "/admin", {"x-alb-sim-user": "alice"})
        assert admin.status == 200 and b'<code id="rule">admin</code>' in admin.body
        assert b'<td id="x-auth-user">alice</td>' in admin.body
        carol = http_request(proxy, "/admin/users", {"x-alb-sim-user": "carol"})
        assert (carol.status, carol.body) == (403, b"forbidden\n")
        catalog = http_request(proxy, "/catalog/books", {"x-alb-sim-user": "carol"})
        assert catalog.status == 200 and b'<code id="rule">catalog</code>' in catalog.body
        assert b'<td id="x-auth-user">carol</td>' in catalog.body  # optional: a valid token still identifies
        # Straight to Envoy without the stand-in: no token, refused; exempt path fine.
        envoy = int(demo_env["DEMO_ENVOY_PORT"])
        assert http_request(envoy, "/").status == 401
        assert http_request(envoy, "/admin").status == 401
        assert http_request(envoy, "/healthz").status == 200
        # Anonymous on the optional area; the ALB's headers, unverified, are not forwarded.
        anon = http_request(envoy, "/catalog", {"x-amzn-oidc-identity": "alice", "x-amzn-oidc-accesstoken": "forged"})
        assert anon.status == 200 and b'<code id="rule">catalog</code>' in anon.body
        assert b'<td id="x-auth-user"><span class="none">' in anon.body
        assert b"Raw ALB headers forwarded by Envoy: none." in anon.body
        # Request lines of the children are followed on the console.
        wait_until(lambda: "[alb-sim] alb-sim proxy:" in log.read_text(), 10, what="followed proxy log")
        # Envoy's access log (envoy/demo.yaml) names the verified user and the deciding
        # rule from the filter state, on 200, 403 and 401 alike ("-" when unset).
        # Envoy flushes access logs every 10 s by default.
        envoy_log = Path(demo_env["DEMO_RUN_DIR"]) / "logs" / "envoy.log"
        lines = [
            '"GET /admin HTTP/1.1" 200 user=alice rule=admin',
            '"GET /admin/users HTTP/1.1" 403 user=carol rule=admin',
            '"GET /admin HTTP/1.1" 401 user=- rule=admin',
            '"GET /catalog HTTP/1.1" 200 user=- rule=catalog',
            '"GET /healthz HTTP/1.1" 200 user=- rule=exempt_paths',
            '"GET / HTTP/1.1" 401 user=- rule=default',
        ]
        wait_until(lambda: all(ln in envoy_log.read_text() for ln in lines), 30, what="the access log lines")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    text = log.read_text()
    assert rc == 0, text
    assert "SIGINT: stopping the demo." in text
    assert "no demo process left" in text
    assert_all_gone(started_pids(text), demo_env["DEMO_RUN_DIR"])
    wait_until(lambda: processes_mentioning(demo_env["DEMO_RUN_DIR"]) == [], 10, what="no demo process left")
