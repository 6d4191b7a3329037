#!/usr/bin/env python3
"""alb-oidc benchmarks: the filter against Envoy alone, a no-op wasm filter
and Envoy's native jwt_authn, side by side in one Envoy (issue 5).

    make bench          # full run -> bench/RESULTS.md, bench/results.png, bench/out/results.json
    make bench-smoke    # correctness only: a few hundred requests per variant
    .venv/bin/python -m bench.run_bench --help    # from the repo root

What a run does:

1. keys and tokens: one ES256 key (alb-sim), tokens minted by `bench-mint`
   (alb-sim's library) before any Envoy starts; the key is served by a tiny
   key server (a STATIC cluster) and inlined as a JWKS for jwt_authn;
   (t): one IdP access token (RS256, `bench-mint access`) and its key set,
   served by one more listener of the same Envoy (`direct_response`);
2. one Envoy (`--concurrency 1`, pinned to CPU 1 with taskset) with one
   listener per variant (a)-(h), (r), (t), `direct_response` upstream;
3. validation of every variant through an echo route (`/check`): 200, the
   identity header, 401 for a tampered and for a missing token, the no-op
   filter loaded, and the token cache behaving as the variant says (hot:
   hits; cold: every request a miss; (t): every access token verified, from
   the access-token cache, one key set fetch for the whole run);
4. warm-up (discarded), then R rounds; in each round every variant (order
   rotated per round) gets a saturation run (wrk pinned to CPU 0) and a
   fixed-rate run. Envoy CPU time per request comes from /proc/<pid>/stat
   (utime+stime) over the requests wrk completed. Every run must have zero
   errors and zero non-2xx answers or the harness stops;
5. extras: key fetches per kid with --concurrency 2 and 500 simultaneous
   requests; RSS before/after 100,000 distinct tokens; the user service's
   Authenticate throughput/latency on SQLite and PostgreSQL;
6. RESULTS.md (tables, ratios), a PNG chart, results.json, terminal summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import envoy_config as ec
from bench.loadgen import Wrk, WrkResult, find_wrk
from envoykit.client import http_request
from envoykit.echo import EchoServer
from envoykit.keyserver import KeyServer
from envoykit.paths import ALB_SIM_BIN, ENVOY_BIN, FILTER_WASM, NATIVE_BIN_DIR, REPO, USER_SERVICE_BIN
from envoykit.process import EnvoyProcess, EnvoyStartError, ProcessGroup, envoy_version
from envoykit.wait import WaitTimeout, free_port, port_open, wait_until

BENCH = REPO / "bench"
ENVOY = ENVOY_BIN
WASM = FILTER_WASM
NOOP_WASM = REPO / "target" / "wasm32-wasip1" / "release" / "alb_oidc_bench_noop.wasm"
ALB_SIM = ALB_SIM_BIN
USER_SERVICE = USER_SERVICE_BIN
BENCH_MINT = NATIVE_BIN_DIR / "bench-mint"
US_BENCH = NATIVE_BIN_DIR / "us-bench"
PG_URL = os.environ.get("ALB_OIDC_BENCH_PG", "postgres://postgres@127.0.0.1:5432/test")
CLK_TCK = os.sysconf("SC_CLK_TCK")


_USED_PORTS: set[int] = set()


def new_port() -> int:
    """A free port not handed out before in this run (new_port() alone can
    return the same port twice once the probe socket is closed)."""
    while True:
        p = free_port()
        if p not in _USED_PORTS:
            _USED_PORTS.add(p)
            return p


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# (t)'s access-token counters checked in the semantics run.
ACCESS_COUNTERS = (
    "access_token.verified",
    "access_token.absent",
    "access_token.invalid",
    "access_token_cache.hit",
    "access_token_cache.miss",
)


class BenchError(RuntimeError):
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise BenchError(msg)


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------


def pinning() -> tuple[str | None, str | None]:
    """(envoy CPUs, load generator CPUs) for taskset, or None where unavailable."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return "1", "0"
    return None, None


def cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all threads), in clock ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError("no VmRSS")


def wait_port(port: int, timeout: float, proc: ProcessGroup, what: str) -> None:
    def listening() -> bool:
        if proc.returncode() is not None:
            raise BenchError(f"{what} exited with {proc.returncode()} before listening\n{proc.tail()}")
        return port_open(port, timeout=0.5)

    try:
        wait_until(listening, timeout, interval=0.05, what=f"{what} listening on {port}")
    except WaitTimeout as e:
        raise BenchError(str(e)) from None


def start_envoy(name: str, boot: dict, workdir: Path, concurrency: int, cpus: str | None) -> EnvoyProcess:
    """The benchmark's Envoy: warnings only (logging costs CPU), pinned to `cpus`."""
    e = EnvoyProcess(
        workdir / name,
        name=name,
        concurrency=concurrency,
        log_level="warning",
        component_log_level="wasm:info",
        cpus=cpus,
    )
    try:
        return e.start(boot, timeout=60)
    except EnvoyStartError as err:
        raise BenchError(f"envoy {name}: {err}") from None


def stop_envoy(e: EnvoyProcess) -> None:
    """Stops it; a wasm panic or trap in its log fails the run."""
    e.stop(grace=15)
    bad = e.panics()
    if bad:
        raise BenchError(f"wasm panic/trap in envoy {e.name} log:\n" + "\n".join(bad[:5]))


# --------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------


class Tokens:
    """Keys and token files in the work directory."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "tokens"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys = workdir / "keys"
        kid = subprocess.run(
            [str(ALB_SIM), "keys", "generate", "--dir", str(self.keys)], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.kid = subprocess.run(
            [str(ALB_SIM), "keys", "current", "--dir", str(self.keys)], capture_output=True, text=True, check=True
        ).stdout.strip()
        check(self.kid == kid, f"alb-sim keys current says {self.kid!r}, the key just generated is {kid!r}")
        self.pem = subprocess.run(
            [str(ALB_SIM), "keys", "public", "--dir", str(self.keys)], capture_output=True, check=True
        ).stdout

    def mint(self, name: str, count: int, unpadded: bool, keys: Path | None = None, sub: str = ec.SUB) -> Path:
        out = self.dir / f"{name}.txt"
        cmd = [
            str(BENCH_MINT),
            "--dir",
            str(keys or self.keys),
            "--count",
            str(count),
            "--out",
            str(out),
            "--signer",
            ec.ARN,
            "--issuer",
            ec.ISSUER,
            "--client",
            ec.CLIENT,
            "--sub",
            sub,
            "--exp-in",
            "14400",
            "--threads",
            str(min(2, os.cpu_count() or 1)),
        ]
        if unpadded:
            cmd.append("--unpadded")
        subprocess.run(cmd, check=True)
        return out

    def mint_access(self) -> tuple[str, str]:
        """(t)'s IdP access token, for the data tokens' `sub`, and the key set
        that verifies it."""
        out, jwks = self.dir / "access_token.txt", self.dir / "idp_jwks.json"
        cmd = [
            str(BENCH_MINT),
            "access",
            "--issuer",
            ec.IDP_ISSUER,
            "--client-id",
            ec.IDP_CLIENT_ID,
            "--sub",
            ec.SUB,
            "--group",
            ec.ACCESS_GROUP,
            "--exp-in",
            "14400",
            "--out",
            str(out),
            "--jwks-out",
            str(jwks),
        ]
        subprocess.run(cmd, check=True)
        return Tokens.read(out)[0], jwks.read_text()

    @staticmethod
    def read(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if line]


def tamper(token: str) -> str:
    """Flips one character in the middle of the signature segment."""
    h, p, s = token.split(".")
    i = len(s.rstrip("=")) // 2
    c = "A" if s[i] != "A" else "B"
    return f"{h}.{p}.{s[:i]}{c}{s[i + 1 :]}"


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.smoke = args.smoke
        self.work = Path(tempfile.mkdtemp(prefix="alb-oidc-bench-"))
        self.envoy_cpus, self.gen_cpus = pinning()
        self.wrk = Wrk(find_wrk(REPO), self.work, self.gen_cpus)
        self.variants = [v for v in ec.variants() if v.key in args.variants]
        if args.baseline_wasm:
            self.variants += ec.baseline_variants(self.variants, args.baseline_wasm)
        self.results: dict[str, Any] = {"variants": {}, "rounds": [], "extras": {}}
        self.procs: list[ProcessGroup] = []
        self.envoys: list[EnvoyProcess] = []
        self.key_server = KeyServer().start()
        self.echo = EchoServer().start()

    # -- lifecycle ----------------------------------------------------------
    def close(self) -> None:
        for e in self.envoys:
            e.stop(grace=15)
        for p in self.procs:
            p.stop(grace=15)
        self.key_server.stop()
        self.echo.stop()

    def spawn(self, cmd: list[str], name: str, cpus: str | None = None, env: dict | None = None) -> ProcessGroup:
        p = ProcessGroup(name, self.work / f"{name}.log", env=env)
        p.spawn((["taskset", "-c", cpus] if cpus else []) + cmd)
        self.procs.append(p)
        return p

    def start_user_service(
        self, database: str, name: str, cpus: str | None = None, extra: tuple[str, ...] = ()
    ) -> tuple[ProcessGroup, int]:
        port = new_port()
        p = self.spawn(
            [str(USER_SERVICE), "serve", "--database", database, "--listen", f"127.0.0.1:{port}", *extra],
            name,
            cpus,
            env={"RUST_LOG": "warn"},
        )
        wait_port(port, 30, p, "user service")
        return p, port

    # -- tokens -----------------------------------------------------------------
    def prepare_tokens(self) -> None:
        t0 = time.monotonic()
        self.tok = Tokens(self.work)
        self.key_server.add_key(self.tok.kid, self.tok.pem)
        self.jwks = ec.jwks_from_pem(self.tok.pem, self.tok.kid)
        # Probe tokens decide the encoding (see choose_encoding).
        self.probe = {
            enc: Tokens.read(self.tok.mint(f"probe_{enc}", 3, enc == "unpadded")) for enc in ("padded", "unpadded")
        }
        log(f"key {self.tok.kid}; probe tokens minted")
        self.access_token: str | None = None
        self.idp_jwks: str | None = None
        if any(v.access_token for v in self.variants):
            self.access_token, self.idp_jwks = self.tok.mint_access()
            log(f"IdP access token minted ({len(self.access_token)} bytes, RS256)")
        self.mint_seconds = time.monotonic() - t0

    def mint_pools(self, unpadded: bool) -> None:
        t0 = time.monotonic()
        enc = "unpadded" if unpadded else "padded"
        self.hot_file = self.tok.mint(f"hot_{enc}", 1, unpadded)
        self.hot = Tokens.read(self.hot_file)[0]
        pool = self.args.pool
        self.pools: dict[str, Path] = {}
        for v in self.variants:
            if v.tokens == "cold":
                self.pools[v.key] = self.tok.mint(f"cold_{v.key}_{enc}", pool, unpadded)
        n = sum(len(Tokens.read(p)) for p in self.pools.values())
        log(f"minted {n} cold tokens ({enc}) in {time.monotonic() - t0:.1f}s")

    # -- envoy ---------------------------------------------------------------
    def start_main_envoy(self) -> None:
        us_port = None
        if any(v.filter_config and "user_service" in v.filter_config for v in self.variants):
            db = self.work / "users.db"
            self.us_proc, us_port = self.start_user_service(str(db), "user-service-main")
        for v in self.variants:
            v.port = new_port()
        boot = ec.bootstrap(
            self.variants,
            admin_port=new_port(),
            wasm=WASM,
            noop_wasm=NOOP_WASM,
            jwks=self.jwks,
            echo_port=self.echo.port,
            key_port=self.key_server.port,
            user_service_port=us_port,
            idp_jwks=self.idp_jwks,
            idp_jwks_port=new_port() if self.idp_jwks is not None else None,
        )
        self.envoy = start_envoy("main", boot, self.work, 1, self.envoy_cpus)
        self.envoys.append(self.envoy)
        log(
            f"envoy pid {self.envoy.pid} (--concurrency 1{', CPU ' + self.envoy_cpus if self.envoy_cpus else ''}), "
            f"listeners: " + " ".join(f"{v.key}:{v.port}" for v in self.variants)
        )

    def choose_encoding(self) -> bool:
        """True when the run must use unpadded tokens.

        The ALB pads its base64url segments; JWT libraries (Envoy's jwt_authn
        among them) expect unpadded ones. If jwt_authn refuses the padded
        probe, every variant gets unpadded tokens, so all of them parse the
        same bytes (alb-oidc accepts both spellings)."""
        jwt = next((v for v in self.variants if v.kind == "jwt"), None)
        alb = next((v for v in self.variants if v.kind == "alb"), None)
        if alb is not None:
            for enc in ("padded", "unpadded"):
                r = http_request(alb.port, "/check", {ec.TOKEN_HEADER: self.probe[enc][0]})
                check(r.status == 200, f"alb-oidc ({alb.key}) refused a valid {enc} token: {r.status} {r.body[:200]!r}")
        if jwt is None:
            self.results["encoding"] = {"padded_accepted_by_jwt_authn": None, "used": "padded"}
            return False
        r = http_request(jwt.port, "/check", {ec.TOKEN_HEADER: self.probe["padded"][1]})
        padded_ok = r.status == 200
        r2 = http_request(jwt.port, "/check", {ec.TOKEN_HEADER: self.probe["unpadded"][1]})
        check(r2.status == 200, f"jwt_authn refused a valid unpadded token: {r2.status} {r2.body[:200]!r}")
        used = "padded" if padded_ok else "unpadded"
        self.results["encoding"] = {
            "padded_accepted_by_jwt_authn": padded_ok,
            "padded_status": r.status,
            "padded_body": r.body.decode(errors="replace")[:200],
            "used": used,
        }
        log(f"jwt_authn on the ALB's padded token: {r.status} {r.body[:80]!r}; all variants use {used} tokens")
        return not padded_ok

    # -- validation ------------------------------------------------------------
    def token_for(self, v: ec.Variant, i: int = 0) -> str:
        return Tokens.read(self.pools[v.key])[i] if v.tokens == "cold" else self.hot

    def extra_header(self, v: ec.Variant) -> tuple[str, str] | None:
        """The fixed header besides the token that every request of `v` carries."""
        if v.access_token:
            assert self.access_token is not None
            return (ec.ACCESS_TOKEN_HEADER, self.access_token)
        return None

    def headers_for(self, v: ec.Variant, tok: str) -> dict[str, str]:
        hdrs = {ec.TOKEN_HEADER: tok}
        extra = self.extra_header(v)
        if extra is not None:
            hdrs[extra[0]] = extra[1]
        return hdrs

    def validate(self) -> None:
        for v in self.variants:
            tok = self.token_for(v)
            r = http_request(v.port, "/check", self.headers_for(v, tok))
            check(r.status == 200, f"({v.key}) /check answered {r.status}: {r.body[:200]!r}")
            up = r.upstream
            if v.expects_identity:
                check(
                    up.get(ec.IDENTITY_HEADER) == ec.SUB,
                    f"({v.key}) identity header {ec.IDENTITY_HEADER}={up.get(ec.IDENTITY_HEADER)!r}, want {ec.SUB!r}",
                )
            if v.expects_user_id:
                uid = up.get("x-auth-user-id")
                check(bool(uid) and uid.isdigit(), f"({v.key}) x-auth-user-id missing or odd: {uid!r}")
            r = http_request(v.port, "/", self.headers_for(v, tok))
            check(r.status == 200 and r.body == b"ok\n", f"({v.key}) / answered {r.status} {r.body[:100]!r}")
            if v.rule:
                self.validate_rules(v, tok)
            if v.access_token:
                self.validate_access_token(v)
            if v.kind in ("alb", "jwt"):
                bad = tamper(self.token_for(v, 1))
                for hdrs, what in ((self.headers_for(v, bad), "tampered token"), ({}, "no token")):
                    r = http_request(v.port, "/", hdrs)
                    check(r.status == 401, f"({v.key}) {what} answered {r.status}, want 401")
            if v.kind == "noop":
                check(
                    "alb-oidc-bench-noop: configured" in self.envoy.log_text(),
                    f"({v.key}) the no-op filter did not log its configuration",
                )
            log(
                f"({v.key}) valid: 200 from echo and direct_response"
                + (f", {ec.IDENTITY_HEADER}={ec.SUB}" if v.expects_identity else "")
                + (", x-auth-user-id present" if v.expects_user_id else "")
                + (", 401 for tampered/missing token" if v.kind in ("alb", "jwt") else "")
            )
        self.results["validated"] = True
        if self.access_token is not None:
            self.results["access_token"] = {
                "token_bytes": len(self.access_token),
                "request_bytes": {
                    v.key: request_bytes(v, self.headers_for(v, self.token_for(v))) for v in self.variants
                },
                "jwks_fetch_ok_after_validation": self.check_one_jwks_fetch("after validation"),
            }

    def check_one_jwks_fetch(self, when: str) -> int:
        """The key set was fetched exactly once (per Envoy, and it is cached
        for the whole run): another fetch mid-run would be noise."""
        n = self.envoy.admin.counter("alb_oidc.jwks_fetch.ok")
        check(n == 1, f"jwks_fetch.ok is {n} {when}, want 1")
        for bad in ("jwks_fetch.failed", "jwks_fetch.invalid"):
            got = self.envoy.admin.counter(f"alb_oidc.{bad}")
            check(got == 0, f"{bad} is {got} {when}, want 0")
        return n

    def validate_access_token(self, v: ec.Variant) -> None:
        """(t) uses the access token: its group reaches the upstream; a
        tampered one and none count as absent (not required), without the
        group. Each request moves exactly its own counter by one."""
        assert self.access_token is not None
        # The pool's last token: wrk reaches it only after the cache has
        # forgotten it, so the semantics run still sees every token cold.
        tok = self.token_for(v, -1)

        def counters() -> dict[str, int]:
            names = ("verified", "absent", "invalid")
            return {n: self.envoy.admin.counter(f"alb_oidc.access_token.{n}") for n in names}

        cases = (
            (self.access_token, "verified", ec.ACCESS_GROUP),
            (tamper(self.access_token), "invalid", None),
            (None, "absent", None),
        )
        for access, counted, group in cases:
            before = counters()
            hdrs = {ec.TOKEN_HEADER: tok, **({ec.ACCESS_TOKEN_HEADER: access} if access else {})}
            r = http_request(v.port, "/check", hdrs)
            check(r.status == 200, f"({v.key}) access token {counted}: /check answered {r.status}")
            got = r.upstream.get(ec.GROUPS_HEADER)
            check(got == group, f"({v.key}) access token {counted}: {ec.GROUPS_HEADER}={got!r}, want {group!r}")
            after = counters()
            moved = {k: after[k] - before[k] for k in after}
            want = {k: int(k == counted) for k in after}
            check(moved == want, f"({v.key}) access token {counted}: counters moved {moved}, want {want}")
        log(
            f"({v.key}) access token: verified ({ec.GROUPS_HEADER}={ec.ACCESS_GROUP}); "
            "tampered counted invalid, missing counted absent (200 without groups)"
        )

    def validate_rules(self, v: ec.Variant, tok: str) -> None:
        """The rules variant routes as configured: its path by the late rule
        (exactly one more allowed on that rule's counter), an earlier
        `require` on DELETE refused (403: no groups), an `anyone` rule open
        without a token."""
        counter = f"alb_oidc.rule.{v.rule}.allowed"

        def allowed() -> int:
            return sum(n for k, n in self.envoy.admin.stats("alb_oidc").items() if k.endswith(counter))

        before = allowed()
        r = http_request(v.port, v.path, {ec.TOKEN_HEADER: tok})
        check(r.status == 200 and r.body == b"ok\n", f"({v.key}) {v.path} answered {r.status} {r.body[:100]!r}")
        check(allowed() - before == 1, f"({v.key}) {counter} went {before} -> {allowed()}, want +1")
        r = http_request(v.port, "/api/orders/42", {ec.TOKEN_HEADER: tok}, method="DELETE")
        check(r.status == 403, f"({v.key}) DELETE /api/... (needs group admin) answered {r.status}, want 403")
        r = http_request(v.port, "/area0/x")
        check(r.status == 200, f"({v.key}) /area0/x (allow: anyone) without a token answered {r.status}, want 200")
        log(f"({v.key}) rules: {v.path} by rule {v.rule}, DELETE 403, anyone 200 without a token")

    def semantics_run(self, v: ec.Variant, n: int) -> dict:
        """n requests through wrk, checking statuses and (for alb-oidc) that
        hot variants hit the token cache and cold ones never do."""
        before = self.envoy.admin.stats("alb_oidc")
        name = f"http.bench_{v.key}.downstream_rq_2xx"
        s2xx = self.envoy.admin.stat(name)
        res = self.run_at_least(v, n, connections=4)
        got2xx = self.envoy.admin.stat(name) - s2xx
        # Envoy also answered the few requests still in flight when wrk stopped.
        check(
            res.requests <= got2xx <= res.requests + 4 * res.chunks,
            f"({v.key}) Envoy counted {got2xx} 2xx, wrk {res.requests} requests",
        )
        after = self.envoy.admin.stats("alb_oidc")

        def delta(suffix: str) -> int:
            # On a dot: `token_cache.hit` must not count `access_token_cache.hit`.
            return sum(after.get(k, 0) - before.get(k, 0) for k in after if k == suffix or k.endswith("." + suffix))

        out = {"requests": res.requests, "2xx": got2xx}
        if v.kind == "alb":
            hit, miss = delta("token_cache.hit"), delta("token_cache.miss")
            out.update(cache_hit=hit, cache_miss=miss)
            if v.tokens == "hot":
                check(hit >= res.requests and miss == 0, f"({v.key}) hot variant: hits {hit}, misses {miss}")
            else:
                check(miss >= res.requests and hit == 0, f"({v.key}) cold variant: hits {hit}, misses {miss}")
            if v.expects_user_id:
                out["user_cache_hit"] = delta("user_service.cache_hit")
                out["user_calls"] = delta("user_service.calls")
            if v.access_token:
                # Validation verified the access token already: every request
                # Envoy answered 2xx used it, straight from the cache.
                at = {k: delta(f"alb_oidc.{k}") for k in ACCESS_COUNTERS}
                out["access_token"] = at
                want = {k: got2xx if k in ("access_token.verified", "access_token_cache.hit") else 0 for k in at}
                check(at == want, f"({v.key}) access-token counters moved {at}, want {want} (Envoy 2xx: {got2xx})")
            if v.rule:
                by_rule = delta(f"rule.{v.rule}.allowed")
                out["rule_allowed"] = by_rule
                check(
                    res.requests <= by_rule <= res.requests + 4 * res.chunks,
                    f"({v.key}) rule {v.rule} allowed {by_rule}, wrk completed {res.requests}",
                )
        return out

    # -- load --------------------------------------------------------------------
    def wrk_run(self, v: ec.Variant, **kw: Any) -> WrkResult:
        tf = self.pools[v.key] if v.tokens == "cold" else self.hot_file
        off = self.offsets.get(v.key, 0)
        res = self.wrk.run(v.port, tf, offset=off, path=v.path, extra_header=self.extra_header(v), **kw)
        if v.tokens == "cold":
            self.offsets[v.key] = off + res.requests + kw.get("connections", 16)
        return res

    def run_at_least(
        self,
        v: ec.Variant,
        n: int,
        connections: int,
        chunk_s: float = 1.0,
        port: int | None = None,
        token_file: Path | None = None,
    ) -> WrkResult:
        """wrk runs of chunk_s seconds until at least n requests completed
        (wrk cannot stop after a count), every one without errors/non-2xx."""
        total, last, chunks = 0, None, 0
        off = 0
        while total < n:
            chunks += 1
            if token_file is None:
                res = self.wrk_run(v, connections=connections, duration_s=chunk_s)
            else:
                res = self.wrk.run(port or v.port, token_file, offset=off, connections=connections, duration_s=chunk_s)
                off += res.requests + connections
            check(res.errors == 0, f"({v.key}) {res.errors} errors/non-2xx in {res.requests} requests: {res.raw}")
            check(res.requests > 0, f"({v.key}) no request completed")
            total += res.requests
            last = res
        assert last is not None
        last.requests = total
        last.chunks = chunks
        return last

    def measure(self, v: ec.Variant, mode: str) -> dict:
        a = self.args
        if mode == "sat":
            kw = dict(connections=a.connections, duration_s=a.duration)
        else:
            conns = a.paced_connections
            kw = dict(connections=conns, duration_s=a.latency_duration, pace_ms=max(1, round(conns * 1000 / a.rate)))
        t0 = cpu_ticks(self.envoy.pid)
        res = self.wrk_run(v, **kw)
        t1 = cpu_ticks(self.envoy.pid)
        check(res.errors == 0, f"({v.key}) {mode}: {res.errors} errors/non-2xx: {res.raw}")
        check(res.requests > 0, f"({v.key}) {mode}: no requests completed")
        cpu_us = (t1 - t0) / CLK_TCK * 1e6 / res.requests
        return {
            "requests": res.requests,
            "seconds": res.duration_s,
            "rps": res.rps,
            "cpu_us_per_req": cpu_us,
            "cpu_s": (t1 - t0) / CLK_TCK,
            "p50_us": res.lat_p50_us,
            "p90_us": res.lat_p90_us,
            "p99_us": res.lat_p99_us,
            "max_us": res.lat_max_us,
        }

    def run_rounds(self) -> None:
        a = self.args
        log(f"warm-up: {a.warmup}s per variant (discarded)")
        for v in self.variants:
            self.wrk_run(v, connections=a.connections, duration_s=a.warmup)
        keys = [v.key for v in self.variants]
        for r in range(a.rounds):
            order = self.variants[r % len(keys) :] + self.variants[: r % len(keys)]
            rnd: dict[str, Any] = {"order": [v.key for v in order], "load_start": os.getloadavg()[0]}
            for v in order:
                sat = self.measure(v, "sat")
                lat = self.measure(v, "paced")
                rnd[v.key] = {"sat": sat, "paced": lat}
                log(
                    f"round {r + 1}/{a.rounds} ({v.key}) {sat['cpu_us_per_req']:7.1f} us CPU/req  "
                    f"{sat['rps']:8.0f} req/s  @{lat['rps']:.0f}/s p50 {lat['p50_us']} us p99 {lat['p99_us']} us"
                )
            self.results["rounds"].append(rnd)

    # -- extras -------------------------------------------------------------------
    def extra_key_fetch(self) -> None:
        """--concurrency 2, 500 simultaneous requests each with its own token
        under a kid the Envoy has never seen: count the key server's requests."""
        keys2 = self.work / "keys2"
        subprocess.run([str(ALB_SIM), "keys", "generate", "--dir", str(keys2)], check=True, capture_output=True)
        out = {}
        for delay in (0.0, 0.3):
            kid = subprocess.run(
                [str(ALB_SIM), "keys", "generate", "--dir", str(keys2)], check=True, capture_output=True, text=True
            ).stdout.strip()
            current = subprocess.run(
                [str(ALB_SIM), "keys", "current", "--dir", str(keys2)], check=True, capture_output=True, text=True
            ).stdout.strip()
            check(current == kid, f"alb-sim keys current says {current!r}, the key just generated is {kid!r}")
            pem = subprocess.run(
                [str(ALB_SIM), "keys", "public", "--dir", str(keys2)], check=True, capture_output=True
            ).stdout
            self.key_server.add_key(kid, pem)
            if delay:
                self.key_server.set_delay(kid, delay)
            toks = Tokens.read(self.tok.mint(f"kid_{int(delay * 1000)}", 500, self.unpadded, keys=keys2))
            v = ec.Variant("k", "key fetch", "alb", "cold", ec.alb_config("host"))
            v.port = new_port()
            boot = ec.bootstrap(
                [v],
                admin_port=new_port(),
                wasm=WASM,
                noop_wasm=NOOP_WASM,
                jwks=self.jwks,
                echo_port=self.echo.port,
                key_port=self.key_server.port,
                user_service_port=None,
            )
            e = start_envoy(f"keyfetch_{int(delay * 1000)}", boot, self.work, 2, None)
            self.envoys.append(e)
            try:
                statuses = burst(v.port, toks)
                fetches = self.key_server.count_kid(kid)
                st = e.admin.stats("listener.127.0.0.1")
                per_worker = {
                    k.split(".")[-2]: n for k, n in st.items() if ".worker_" in k and k.endswith("downstream_cx_total")
                }
            finally:
                stop_envoy(e)
            ok = sum(1 for s in statuses if s == 200)
            out[f"delay_{int(delay * 1000)}ms"] = {
                "requests": len(toks),
                "ok": ok,
                "statuses": _count(statuses),
                "key_fetches": fetches,
                "connections_per_worker": per_worker,
            }
            log(
                f"key fetch (key server delay {delay * 1000:.0f} ms): {len(toks)} simultaneous requests, "
                f"{ok} x 200, key server saw {fetches} fetch(es) of the new kid; connections per worker {per_worker}"
            )
        self.results["extras"]["key_fetch"] = out

    def extra_rss(self) -> None:
        """RSS before/after N distinct valid tokens (bounded by the caches)."""
        n = self.args.rss_tokens
        v = ec.Variant("m", "rss", "alb", "cold", ec.alb_config("host"))
        v.port = new_port()
        boot = ec.bootstrap(
            [v],
            admin_port=new_port(),
            wasm=WASM,
            noop_wasm=NOOP_WASM,
            jwks=self.jwks,
            echo_port=self.echo.port,
            key_port=self.key_server.port,
            user_service_port=None,
        )
        t0 = time.monotonic()
        tf = self.tok.mint("rss", n, self.unpadded)
        log(f"rss: minted {n} distinct tokens in {time.monotonic() - t0:.1f}s")
        e = start_envoy("rss", boot, self.work, 1, self.envoy_cpus)
        self.envoys.append(e)
        try:
            r = http_request(v.port, "/", {ec.TOKEN_HEADER: self.hot})
            check(r.status == 200, f"rss envoy: {r.status}")
            self.run_at_least(v, 2000, 8, 1.0, v.port, self.pools.get("d", self.hot_file))
            time.sleep(1)
            before = rss_kib(e.pid)
            # Tokens are used in file order from the first one: the first n
            # requests are n distinct tokens (a chunk that goes past the end
            # wraps round to tokens evicted long ago).
            res = self.run_at_least(v, n, 16, 5.0, v.port, tf)
            time.sleep(1)
            after = rss_kib(e.pid)
            res2 = self.run_at_least(v, n, 16, 5.0, v.port, tf)
            time.sleep(1)
            after2 = rss_kib(e.pid)
            miss = e.admin.counter("token_cache.miss")
        finally:
            stop_envoy(e)
        tok_len = len(self.hot)
        self.results["extras"]["rss"] = {
            "tokens": n,
            "requests_first_pass": res.requests,
            "requests_second_pass": res2.requests,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_after_second_pass_kib": after2,
            "token_cache_misses": miss,
            "token_len": tok_len,
            "verified_token_cache_max": 1024,
        }
        log(
            f"rss: before {before} KiB, after {res.requests} distinct tokens {after} KiB (+{after - before}), "
            f"after a second pass {after2} KiB"
        )

    def extra_user_service(self) -> None:
        a = self.args
        out: dict[str, Any] = {}
        backends = [("sqlite", str(self.work / "us-bench.db"))]
        pg_db = f"alb_oidc_bench_{os.getpid()}"
        pg_ok = pg_admin(f"CREATE DATABASE {pg_db}")
        if pg_ok is None:
            backends.append(("postgresql", PG_URL.rsplit("/", 1)[0] + "/" + pg_db))
        else:
            out["postgresql"] = {"skipped": pg_ok}
            log(f"user service: PostgreSQL skipped ({pg_ok})")
        try:
            groups = {"groups": a.us_groups} if a.us_groups else {}
            extra = ("--groups-claim", "groups") if a.us_groups else ()
            for name, db in backends:
                p, port = self.start_user_service(db, f"user-service-{name}", self.envoy_cpus, extra)
                addr = f"http://127.0.0.1:{port}"
                try:
                    if a.us_groups:
                        seed_group_permissions(db, a.us_groups, a.us_group_perms)
                    warm = us_bench(addr, "warm", users=a.us_users, cpus=self.gen_cpus, **groups)
                    if a.us_groups:
                        log(f"user service {name}: {warm['permissions_per_user']} permissions per user")
                    runs = {}
                    for c in a.us_concurrency:
                        runs[f"closed_c{c}"] = us_bench(
                            addr,
                            "closed",
                            users=a.us_users,
                            concurrency=c,
                            duration=a.us_duration,
                            cpus=self.gen_cpus,
                            **groups,
                        )
                    runs[f"rate_{a.us_rate}"] = us_bench(
                        addr,
                        "rate",
                        users=a.us_users,
                        rate=a.us_rate,
                        duration=a.us_duration,
                        cpus=self.gen_cpus,
                        **groups,
                    )
                finally:
                    p.stop(grace=15)
                out[name] = runs
                for k, r in runs.items():
                    log(
                        f"user service {name} {k}: {r['calls_per_s']:.0f} calls/s p50 {r['p50_us']} us "
                        f"p99 {r['p99_us']} us errors {r['errors']}"
                    )
        finally:
            if pg_ok is None:
                pg_admin(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
        self.results["extras"]["user_service"] = out

    # -- main -------------------------------------------------------------------------
    def run(self) -> None:
        a = self.args
        self.results["meta"] = environment()
        self.results["meta"]["argv"] = " ".join(self.args.argv)
        self.results["params"] = {k: v for k, v in vars(a).items() if k not in ("out", "argv")}
        self.offsets: dict[str, int] = {}
        self.prepare_tokens()
        self.start_main_envoy()
        self.unpadded = self.choose_encoding()
        self.mint_pools(self.unpadded)
        self.validate()
        sem = {}
        for v in self.variants:
            sem[v.key] = self.semantics_run(v, a.check_requests)
            log(f"({v.key}) {sem[v.key]}")
        self.results["semantics"] = sem
        if self.smoke:
            if self.access_token is not None:
                self.check_one_jwks_fetch("after the semantics runs")
            stop_envoy(self.envoy)
            return
        self.run_rounds()
        if self.access_token is not None:
            self.results["access_token"]["jwks_fetch_ok_end"] = self.check_one_jwks_fetch("after the rounds")
        self.results["envoy_rss_kib_end"] = rss_kib(self.envoy.pid)
        stop_envoy(self.envoy)
        if not a.no_extras:
            self.extra_key_fetch()
            self.extra_rss()
            self.extra_user_service()


def request_bytes(v: ec.Variant, headers: dict[str, str]) -> int:
    """The size of one of `v`'s requests as wrk writes it (request line,
    Host, the token headers)."""
    lines = [f"GET {v.path} HTTP/1.1", f"Host: 127.0.0.1:{v.port}", *(f"{k}: {x}" for k, x in headers.items())]
    return sum(len(line) + 2 for line in lines) + 2


def _count(xs: list) -> dict:
    out: dict[str, int] = {}
    for x in xs:
        out[str(x)] = out.get(str(x), 0) + 1
    return out


def burst(port: int, tokens: list[str]) -> list[int]:
    """Opens one connection per token, then sends every request before
    reading any answer: all of them reach Envoy at (nearly) the same time."""
    socks = []
    for _ in tokens:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    time.sleep(0.2)  # let Envoy accept and spread the connections
    for s, t in zip(socks, tokens, strict=True):
        s.sendall(f"GET / HTTP/1.1\r\nHost: bench\r\n{ec.TOKEN_HEADER}: {t}\r\nConnection: close\r\n\r\n".encode())
    statuses = []
    for s in socks:
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        try:
            statuses.append(int(data.split(b" ", 2)[1]))
        except (IndexError, ValueError):
            statuses.append(0)
    return statuses


def pg_admin(sql: str) -> str | None:
    """Runs one statement on the PostgreSQL server; None on success, else why not."""
    if not shutil.which("psql"):
        return "psql not installed"
    p = subprocess.run(
        ["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], capture_output=True, text=True, timeout=60
    )
    return None if p.returncode == 0 else (p.stderr.strip() or f"psql exit {p.returncode}")


def seed_group_permissions(database: str, groups: int, perms: int) -> None:
    """Grants `perms` permissions to each of the `groups` groups us-bench's
    users carry in their groups claim, through the admin CLI."""
    for g in range(groups):
        for n in range(perms):
            cmd = [str(USER_SERVICE), "perms", "grant", f"bench{g}.perm_{n}", "--group", f"bench-group-{g}"]
            p = subprocess.run([*cmd, "--database", database], capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                raise BenchError(f"seeding failed: {' '.join(cmd)}\n{p.stderr}")


def us_bench(addr: str, mode: str, cpus: str | None = None, **kw: Any) -> dict:
    cmd = (["taskset", "-c", cpus] if cpus else []) + [str(US_BENCH), mode, "--addr", addr]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise BenchError(f"us-bench failed: {' '.join(cmd)}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def environment() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "envoy": envoy_version(ENVOY),
        "git": git,
        "loadavg_start": os.getloadavg(),
        "pinning": pinning(),
        "wasm_bytes": WASM.stat().st_size if WASM.exists() else None,
        "noop_wasm_bytes": NOOP_WASM.stat().st_size if NOOP_WASM.exists() else None,
        "native_bin_dir": str(NATIVE_BIN_DIR),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="correctness only: validation + a few hundred requests")
    ap.add_argument("--variants", default="abcdefghrt")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--baseline-wasm",
        type=Path,
        help="another build of the filter: adds (c0) and (d0), (c) and (d) with it, to compare in one run",
    )
    ap.add_argument("--duration", type=float, default=5, help="seconds per saturation run")
    ap.add_argument("--latency-duration", type=float, default=5, help="seconds per fixed-rate run")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--connections", type=int, default=16, help="wrk connections at saturation")
    ap.add_argument("--rate", type=float, default=500, help="fixed request rate for latency (req/s)")
    ap.add_argument("--paced-connections", type=int, default=5)
    ap.add_argument("--pool", type=int, default=20000, help="tokens per cold variant (cycled; > 10x the cache)")
    ap.add_argument("--check-requests", type=int, default=300, help="requests per variant in the semantics check")
    ap.add_argument("--rss-tokens", type=int, default=100000)
    ap.add_argument("--us-users", type=int, default=1000)
    ap.add_argument("--us-concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[4, 32])
    ap.add_argument("--us-rate", type=int, default=500)
    ap.add_argument("--us-duration", type=float, default=10)
    ap.add_argument("--us-groups", type=int, default=0, help="groups in every user's groups claim (0: no groups claim)")
    ap.add_argument("--us-group-perms", type=int, default=20, help="permissions granted to each of those groups")
    ap.add_argument("--no-extras", action="store_true")
    ap.add_argument(
        "--micro", type=Path, default=REPO / "target" / "criterion", help="criterion output directory to include"
    )
    ap.add_argument("--out", type=Path, default=BENCH)
    ap.add_argument(
        "--name",
        help="a subset run's name: writes RESULTS-NAME.md, results-NAME.png and out/results-NAME.json "
        "(without the full run's notes), leaving RESULTS.md alone",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args(argv)
    a.argv = sys.argv[1:] if argv is None else argv
    if a.smoke:
        a.pool = min(a.pool, 2000)
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for p, what in (
        (ENVOY, "make venv"),
        (WASM, "make wasm"),
        (NOOP_WASM, "make bench-build"),
        (ALB_SIM, "make bench-build"),
        (BENCH_MINT, "make bench-build"),
        (USER_SERVICE, "make bench-build"),
    ):
        if not p.exists():
            print(f"missing {p}: run `{what}`", file=sys.stderr)
            return 2
    # The smoke run checks answers only, so `make test` may give it the dev
    # binaries; a measurement of unoptimised minting and user service would
    # be a wrong number, not a slow one.
    if not args.smoke and NATIVE_BIN_DIR.name == "debug":
        print(
            f"ALB_OIDC_BIN_DIR={NATIVE_BIN_DIR}: measurements need release binaries (make bench-build)", file=sys.stderr
        )
        return 2
    b = Bench(args)
    ok = False
    try:
        b.run()
        ok = True
    except BenchError as e:
        print(f"\nBENCH FAILED: {e}\n(work directory kept: {b.work})", file=sys.stderr)
        return 1
    finally:
        b.close()
        if ok and not args.keep:
            shutil.rmtree(b.work, ignore_errors=True)
    b.results["meta"]["loadavg_end"] = os.getloadavg()
    if args.smoke:
        print(
            f"bench-smoke: {len(b.variants)} variants valid "
            f"({', '.join(b.variants[i].key for i in range(len(b.variants)))}); "
            f"{args.check_requests} requests each, all 200; tokens {b.results['encoding']['used']}"
        )
        return 0
    from bench import report

    report.write(b.results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
