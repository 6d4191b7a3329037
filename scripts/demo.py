#!/usr/bin/env python3
"""The local demo behind `make demo`: the whole alb-oidc topology on 127.0.0.1.

    browser / curl
      -> alb-sim proxy      :8000   signs a fresh x-amzn-oidc-data per request, like the ALB
      -> Envoy              :10000  alb-oidc filter (envoy/demo.yaml), admin :9901
      -> demo upstream      :8080   envoy/demo_upstream.py: "who am I" page
    filter -> alb-sim key endpoint :8081   (public keys, like public-keys.auth.elb.<region>.amazonaws.com)
    filter -> user service         :50051  (gRPC, SQLite at .run/users.db; groups from the access token)

Usage (from the repo root, after `make build venv`; `make demo` does both):
    .venv/bin/python -m scripts.demo            start, self-test, print what to try, wait for Ctrl-C
    .venv/bin/python -m scripts.demo --check    start, self-test, stop (exit 0 = demo works)
    DEMO_ONESHOT=1 ...                          same as --check

Environment (all optional):
    DEMO_PROXY_PORT=8000 DEMO_ENVOY_PORT=10000 DEMO_ADMIN_PORT=9901
    DEMO_KEYS_PORT=8081 DEMO_USERS_PORT=50051 DEMO_UPSTREAM_PORT=8080
    DEMO_RUN_DIR=.run         keys, users.db, rendered Envoy config, logs
    DEMO_USER=alice           identity of a request with no x-alb-sim-user header and no session (curl)
    DEMO_IDENTITIES=alb-sim/identities.example.json
    DEMO_ENVOY_CONCURRENCY=2
    ALB_OIDC_ENVOY, ALB_OIDC_WASM, ALB_OIDC_BIN_DIR (default target/release),
    ALB_OIDC_ALB_SIM, ALB_OIDC_USER_SERVICE   binaries (envoykit/paths.py)

Every process runs in its own process group; on Ctrl-C (SIGINT), SIGTERM or
SIGHUP each group gets SIGTERM (SIGKILL after a grace period) and the script
checks that no process is left. Children also get SIGTERM if this script dies
(Linux parent-death signal).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envoykit.bootstrap import admin_port_of, hcm_of
from envoykit.paths import ALB_SIM_BIN, ENVOY_BIN, FILTER_WASM, REPO, USER_SERVICE_BIN, path_from_env
from envoykit.process import EnvoyProcess, EnvoyStartError, ProcessGroup
from envoykit.wait import WaitTimeout, port_open, wait_until

DEMO_CONFIG = REPO / "envoy" / "demo.yaml"
UPSTREAM_SCRIPT = REPO / "envoy" / "demo_upstream.py"

ALB_SIM = ALB_SIM_BIN
USER_SERVICE = USER_SERVICE_BIN
ENVOY = ENVOY_BIN
WASM = FILTER_WASM

# (attribute, environment variable, default, what listens there)
PORTS = [
    ("proxy", "DEMO_PROXY_PORT", 8000, "alb-sim proxy, the ALB stand-in you open"),
    ("envoy", "DEMO_ENVOY_PORT", 10000, "Envoy listener"),
    ("admin", "DEMO_ADMIN_PORT", 9901, "Envoy admin"),
    ("keys", "DEMO_KEYS_PORT", 8081, "alb-sim key endpoint"),
    ("users", "DEMO_USERS_PORT", 50051, "user service (gRPC)"),
    ("upstream", "DEMO_UPSTREAM_PORT", 8080, "demo upstream"),
]

STOP_GRACE_S = 10.0


class DemoError(Exception):
    pass


class Stop(Exception):
    """Raised from the signal handler: leave whatever we are doing and clean up."""


def say(msg: str = "") -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------- settings --


@dataclass
class Ports:
    proxy: int
    envoy: int
    admin: int
    keys: int
    users: int
    upstream: int

    @classmethod
    def from_env(cls) -> Ports:
        values = {}
        for attr, var, default, _ in PORTS:
            raw = os.environ.get(var) or str(default)
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise DemoError(f"{var}={raw!r} is not a TCP port")
            values[attr] = int(raw)
        if len(set(values.values())) != len(values):
            raise DemoError(f"the demo ports must differ: {values}")
        return cls(**values)

    def check_free(self) -> None:
        for attr, var, _, what in PORTS:
            port = getattr(self, attr)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError as e:
                    raise DemoError(
                        f"port {port} ({what}) is not free: {e.strerror}. "
                        f"Stop what uses it or pick another port, e.g. {var}={port + 1} make demo"
                    ) from None


def render_envoy_config(ports: Ports, wasm: Path) -> tuple[dict, dict]:
    """envoy/demo.yaml with the ports and the .wasm path swapped in.

    Returns (bootstrap, filter configuration). Only port values and the .wasm
    path change; if the file's shape changes, this fails loudly."""
    boot = yaml.safe_load(DEMO_CONFIG.read_text())
    boot["admin"]["address"]["socket_address"]["port_value"] = ports.admin
    assert admin_port_of(boot) == ports.admin
    (listener,) = boot["static_resources"]["listeners"]
    listener["address"]["socket_address"]["port_value"] = ports.envoy
    cluster_ports = {"demo_upstream": ports.upstream, "alb_public_keys": ports.keys, "user_service": ports.users}
    seen = set()
    for cluster in boot["static_resources"]["clusters"]:
        name = cluster["name"]
        (ep,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        ep["endpoint"]["address"]["socket_address"]["port_value"] = cluster_ports[name]
        seen.add(name)
    if seen != set(cluster_ports):
        raise DemoError(f"{DEMO_CONFIG}: expected clusters {sorted(cluster_ports)}, found {sorted(seen)}")
    hcm = hcm_of(listener)
    wasm_filter = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    cfg = wasm_filter["typed_config"]["config"]
    cfg["vm_config"]["code"]["local"]["filename"] = str(wasm)
    filter_config = json.loads(cfg["configuration"]["value"])
    return boot, filter_config


# ---------------------------------------------------------------- processes --


def check_alive(child: ProcessGroup) -> None:
    rc = child.returncode()
    if rc is not None:
        raise DemoError(f"{child.name} exited with status {rc}\n{child.tail()}")


def wait_for(pred: Callable[[], bool], child: ProcessGroup, timeout: float, what: str) -> None:
    def reached() -> bool:
        check_alive(child)
        try:
            return pred()
        except OSError:
            return False

    try:
        wait_until(reached, timeout, what=f"{child.name}: {what}")
    except WaitTimeout as e:
        raise DemoError(f"{e}\n{child.tail()}") from None


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


# --------------------------------------------------------------------- HTTP --


@dataclass
class Reply:
    status: int
    body: str


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, r.read().decode(errors="replace"))
    finally:
        conn.close()


def page_field(html_text: str, header: str) -> str | None:
    """The value the demo page shows for one identity header (cell id = header name)."""
    m = re.search(rf'<td id="{re.escape(header)}">(.*?)</td>', html_text, re.S)
    if not m or 'class="none"' in m.group(1):
        return None
    return m.group(1)


def page_rule(html_text: str) -> str | None:
    """The filter's rule the demo page shows (Envoy's route copies it from the filter state)."""
    m = re.search(r'<code id="rule">(.*?)</code>', html_text, re.S)
    return m.group(1) if m else None


# --------------------------------------------------------------------- demo --


class Demo:
    def __init__(self, check: bool) -> None:
        self.check = check
        self.ports = Ports.from_env()
        self.run_dir = path_from_env("DEMO_RUN_DIR", REPO / ".run")
        self.logs = self.run_dir / "logs"
        self.keys_dir = self.run_dir / "keys"
        self.db = self.run_dir / "users.db"
        self.envoy_config = self.run_dir / "envoy-demo.yaml"
        self.user = os.environ.get("DEMO_USER", "alice")
        self.identities = path_from_env("DEMO_IDENTITIES", REPO / "alb-sim" / "identities.example.json")
        self.concurrency = os.environ.get("DEMO_ENVOY_CONCURRENCY", "2")
        self.children: list[ProcessGroup] = []
        self.filter_config: dict = {}
        self.envoy = EnvoyProcess(
            self.run_dir,
            name="envoy",
            concurrency=int(self.concurrency),
            log_level="warning",
            component_log_level="wasm:info",
            drain_time_s=1,
            config_path=self.envoy_config,
            log=self.logs / "envoy.log",
            die_with_parent=True,
        )

    # -- set-up ------------------------------------------------------------
    def preflight(self) -> None:
        missing = [
            f"  {p} ({hint})"
            for p, hint in [
                (ALB_SIM, "make build"),
                (USER_SERVICE, "make build"),
                (WASM, "make wasm"),
                (ENVOY, "make venv"),
                (self.identities, "DEMO_IDENTITIES"),
            ]
            if not p.exists()
        ]
        if missing:
            raise DemoError("missing:\n" + "\n".join(missing) + "\n`make demo` builds and installs all of them.")
        self.ports.check_free()
        self.logs.mkdir(parents=True, exist_ok=True)
        boot, self.filter_config = render_envoy_config(self.ports, WASM)
        self.envoy.write_bootstrap(
            boot, comment="Rendered by scripts/demo.py from envoy/demo.yaml (ports and .wasm path); do not edit."
        )
        for log in self.logs.glob("*.log"):
            log.unlink()

    @property
    def signer(self) -> str:
        arns = self.filter_config["alb_arns"]
        return arns if isinstance(arns, str) else arns[0]

    def generate_keys(self) -> None:
        out = subprocess.run(
            [str(ALB_SIM), "keys", "generate", "--dir", str(self.keys_dir), "--if-missing"],
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode != 0:
            raise DemoError(f"alb-sim keys generate failed:\n{out.stderr}")
        cur = subprocess.run(
            [str(ALB_SIM), "keys", "current", "--dir", str(self.keys_dir)],
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.kid = cur.stdout.strip()
        if cur.returncode != 0 or not self.kid:
            raise DemoError(f"alb-sim keys current failed:\n{cur.stderr}")

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ProcessGroup:
        child = ProcessGroup(name, self.logs / f"{name}.log", env=env, die_with_parent=True)
        self.children.append(child)
        child.spawn(argv)
        say(f"  started {name:<14} pid {child.pid:<7} log {self._rel(child.log)}")
        return child

    def _rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(REPO))
        except ValueError:
            return str(p)

    def start(self) -> None:
        p = self.ports
        say(f"alb-oidc demo: starting (run directory {self._rel(self.run_dir)})")
        self.preflight()
        self.generate_keys()

        users = self.spawn(
            "user-service",
            [
                str(USER_SERVICE),
                "serve",
                "--database",
                str(self.db),
                "--listen",
                f"127.0.0.1:{p.users}",
            ],
            env={"NO_COLOR": "1"},
        )
        upstream = self.spawn(
            "demo-upstream",
            [
                sys.executable,
                "-u",
                str(UPSTREAM_SCRIPT),
                "--host",
                "127.0.0.1",
                "--port",
                str(p.upstream),
            ],
        )
        envoy = self.envoy
        self.children.append(envoy)
        envoy.spawn(envoy.command())
        say(f"  started {envoy.name:<14} pid {envoy.pid:<7} log {self._rel(envoy.log)}")
        alb = self.spawn(
            "alb-sim",
            [
                str(ALB_SIM),
                "run",
                "--dir",
                str(self.keys_dir),
                "--keys-listen",
                f"127.0.0.1:{p.keys}",
                "--proxy-listen",
                f"127.0.0.1:{p.proxy}",
                "--upstream",
                f"http://127.0.0.1:{p.envoy}",
                "--signer",
                self.signer,
                "--issuer",
                self.filter_config.get("issuer", "https://idp.alb-sim.local"),
                "--client",
                self.filter_config.get("client_id", "alb-sim-client"),
                "--identities",
                str(self.identities),
                "--default-user",
                self.user,
            ],
        )

        wait_for(lambda: port_open(p.users), users, 30, f"gRPC port {p.users} open")
        wait_for(lambda: http_ok(f"http://127.0.0.1:{p.upstream}/healthz"), upstream, 30, "GET /healthz = 200")
        try:
            envoy.wait_ready(60)
        except EnvoyStartError as e:
            raise DemoError(str(e)) from None
        wait_for(
            lambda: http_ok(f"http://127.0.0.1:{p.keys}/{self.kid}") and port_open(p.proxy),
            alb,
            30,
            "key endpoint serving the current key and the proxy open",
        )
        say("  all up.")

    # -- self-test ------------------------------------------------------------
    def self_test(self) -> dict:
        p = self.ports
        say()
        say(f"Self-test: GET http://127.0.0.1:{p.proxy}/ as {self.user} (through the stand-in, Envoy and the filter)")
        # A browser without a session would be sent to the sign-in page: name the identity.
        r = get(p.proxy, "/", {"Accept": "text/html", "x-alb-sim-user": self.user})
        if r.status != 200:
            raise DemoError(f"GET / via the stand-in: status {r.status}, body {r.body[:300]!r}\n{self._tails()}")
        user, uid = page_field(r.body, "x-auth-user"), page_field(r.body, "x-auth-user-id")
        if user != self.user or not (uid and uid.isdigit()):
            raise DemoError(
                f"the page does not show {self.user} with a user id (user={user!r}, id={uid!r})\n"
                f"{r.body[:2000]}\n{self._tails()}"
            )
        who = json.loads(get(p.proxy, "/whoami").body)
        ident = who["identity"]
        for name, value in ident.items():
            say(f"    {name:<16} {value if value is not None else '(none)'}")
        claims = who.get("claims") or {}
        say(f"    claims           {json.dumps(claims, ensure_ascii=False)}")

        r = get(p.envoy, "/healthz")
        if r.status != 200 or r.body.strip() != "ok":
            raise DemoError(f"GET /healthz (exempt, no token) straight to Envoy: {r.status} {r.body[:200]!r}")
        say(f"  exempt path: GET http://127.0.0.1:{p.envoy}/healthz without a token -> {r.status} {r.body.strip()}")

        r = get(p.proxy, "/", {"x-alb-sim-user": "anonymous"})
        if r.status != 401:
            raise DemoError(f"GET / as anonymous: expected 401 from the filter, got {r.status} {r.body[:200]!r}")
        say(f"  logged out:  GET / with x-alb-sim-user: anonymous -> {r.status} (refused by the filter)")

        # The rules of envoy/demo.yaml: /admin needs the group admin, /catalog is optional.
        html_accept = {"Accept": "text/html"}
        r = get(p.proxy, "/admin", {**html_accept, "x-alb-sim-user": "alice"})
        if r.status != 200 or page_field(r.body, "x-auth-user") != "alice" or page_rule(r.body) != "admin":
            raise DemoError(
                f"GET /admin as alice (group admin): expected 200 as alice by rule admin, got {r.status} "
                f"(user={page_field(r.body, 'x-auth-user')!r}, rule={page_rule(r.body)!r})\n{self._tails()}"
            )
        carol = get(p.proxy, "/admin", {**html_accept, "x-alb-sim-user": "carol"})
        if carol.status != 403 or carol.body != "forbidden\n":
            raise DemoError(f"GET /admin as carol (no group admin): expected 403 forbidden, got {carol.status} "
                            f"{carol.body[:200]!r}")  # fmt: skip
        say(f"  admin area:  GET /admin as alice -> {r.status} (rule {page_rule(r.body)}); "
            f"as carol -> {carol.status} (not in group admin)")  # fmt: skip
        r = get(p.proxy, "/catalog", {**html_accept, "x-alb-sim-user": "anonymous"})
        if r.status != 200 or page_field(r.body, "x-auth-user") is not None or page_rule(r.body) != "catalog":
            raise DemoError(
                f"GET /catalog as anonymous: expected 200 without identity by rule catalog, got {r.status} "
                f"(user={page_field(r.body, 'x-auth-user')!r}, rule={page_rule(r.body)!r})"
            )
        say(f"  optional:    GET /catalog as anonymous -> {r.status} (rule {page_rule(r.body)}, no identity)")
        return who

    def _tails(self) -> str:
        return "\n".join(c.tail(15) for c in self.children)

    # -- waiting ------------------------------------------------------------
    def banner(self) -> None:
        p = self.ports
        db = shlex.quote(self._rel(self.db))
        keys = shlex.quote(self._rel(self.keys_dir))
        us, sim = shlex.quote(self._rel(USER_SERVICE)), shlex.quote(self._rel(ALB_SIM))
        say(f"""
alb-oidc demo is running. Open in a browser:

    http://127.0.0.1:{p.proxy}/          pick an identity on the sign-in page; /logout signs out

Try with curl  (no session cookie, no x-alb-sim-user header: you are {self.user}; DEMO_USER=carol for another):
    curl -s http://127.0.0.1:{p.proxy}/whoami                                  # {self.user}, as the app sees it
    curl -s -H 'x-alb-sim-user: bob' http://127.0.0.1:{p.proxy}/whoami         # bob: unverified email, no groups
    curl -s -H 'x-alb-sim-user: carol' http://127.0.0.1:{p.proxy}/whoami       # carol: group staff
    curl -si -H 'x-alb-sim-user: anonymous' http://127.0.0.1:{p.proxy}/        # logged out: 401 from the filter
    curl -s http://127.0.0.1:{p.proxy}/admin                                   # {self.user} on the admin area (rule admin: group admin)
    curl -si -H 'x-alb-sim-user: carol' http://127.0.0.1:{p.proxy}/admin       # carol is not in group admin: 403
    curl -s -H 'x-alb-sim-user: anonymous' http://127.0.0.1:{p.proxy}/catalog  # rule catalog (optional): in, without identity
    curl -si http://127.0.0.1:{p.envoy}/                                        # straight to Envoy, no token: 401
    curl -s http://127.0.0.1:{p.envoy}/healthz                                  # exempt path: ok without a token
    curl -s http://127.0.0.1:{p.admin}/stats | grep alb_oidc                    # the filter's counters

Look behind the scenes:
    {us} users list --database {db}
    {us} users deactivate bob --database {db}   # bob gets 403 within 30 s
    {sim} keys generate --dir {keys}                           # rotate: the filter fetches the new key
    {sim} mint --dir {keys} --signer {self.signer} --user carol
    logs: {self._rel(self.logs)}/  (request lines follow below)

Press Ctrl-C to stop everything.
""")

    def follow(self) -> None:
        """Print new log lines of every child until a signal arrives; fail if a child dies."""
        offsets = {c.name: 0 for c in self.children}
        while True:
            for c in self.children:
                try:
                    with open(c.log, "rb") as f:
                        f.seek(offsets[c.name])
                        data = f.read()
                except FileNotFoundError:
                    continue
                if data:
                    end = data.rfind(b"\n") + 1
                    offsets[c.name] += end
                    for line in data[:end].decode(errors="replace").splitlines():
                        say(f"[{c.name}] {line}")
                check_alive(c)
            time.sleep(0.3)

    # -- tear-down ------------------------------------------------------------
    def stop(self) -> bool:
        """Stop in reverse start order (entry point first). True when clean."""
        if not self.children:
            return True
        say("\nStopping ...")
        clean = True
        for c in reversed(self.children):
            rc = c.stop(grace=STOP_GRACE_S)
            how = "killed (SIGKILL)" if c.killed else f"exited {rc}"
            say(f"  {c.name:<14} {how}")
            if c.killed:
                clean = False
        left = [c for c in self.children if c.group_alive()]
        if left:
            say("  STILL RUNNING: " + ", ".join(f"{c.name} (group {c.pid})" for c in left))
            return False
        say("  no demo process left.")
        return clean


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--check",
        action="store_true",
        help="start, self-test (an authenticated request, the exempt health check, the rules' areas), stop",
    )
    args = ap.parse_args()
    check = args.check or os.environ.get("DEMO_ONESHOT", "") not in ("", "0", "false")

    def on_signal(signum: int, _frame: Any) -> None:
        raise Stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    demo: Demo | None = None
    status = 0
    try:
        demo = Demo(check)
        demo.start()
        demo.self_test()
        if check:
            say(
                "\ndemo check: OK (authenticated request shows the identity and user id; exempt /healthz works; "
                "/admin: alice 200, carol 403; /catalog anonymous 200)"
            )
        else:
            demo.banner()
            demo.follow()
    except Stop as e:
        say(f"\n{e}: stopping the demo.")
    except DemoError as e:
        say(f"\ndemo: error: {e}")
        status = 1
    finally:
        if demo is not None:
            # A second Ctrl-C must not cut the clean-up short.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, lambda *_: say("  (still stopping, please wait)"))
            if not demo.stop() and status == 0:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
