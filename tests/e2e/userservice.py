"""The real user service binary and an Envoy wired to it, shared by the
user-service and fault-injection suites."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from configs import config
from envoykit import bootstrap as bs
from envoykit.paths import BUILD_HINT, USER_SERVICE_BIN
from envoykit.wait import free_port, port_open, wait_until
from filter_envoy import FilterEnvoy

USER_SERVICE = USER_SERVICE_BIN
REVALIDATE_S = 2


class UserService:
    """The real user service binary on a free port with a temp SQLite file."""

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.dir = workdir
        self.extra_args = extra_args
        self.db = workdir / "users.db"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "user-service.log"

    def start(self) -> UserService:
        if not USER_SERVICE.exists():
            pytest.fail(f"{USER_SERVICE} not built: {BUILD_HINT}")
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [
                    str(USER_SERVICE),
                    "serve",
                    "--database",
                    str(self.db),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--groups-claim",
                    "groups",
                    *self.extra_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._listening, 30, what="user service listening")
        return self

    def _listening(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise RuntimeError(f"user service exited: {self.log.read_text()[-2000:]}")
        return port_open(self.port, timeout=0.5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def admin(self, *args: str) -> Any:
        out = subprocess.run(
            [str(USER_SERVICE), *args, "--database", str(self.db), "--json"], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None


class EnvoyWithUsers(FilterEnvoy):
    """The suite's Envoy plus an HTTP/2 cluster for the user service."""

    def __init__(self, *a: Any, user_port: int, cluster: str = "user_service", **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.user_port = user_port
        self.cluster = cluster

    def customize(self, boot: dict) -> None:
        cluster = bs.static_cluster(self.cluster, self.user_port, http2=True, connect_timeout="0.5s")
        boot["static_resources"]["clusters"].append(cluster)


def users_config(failure_mode: str = "deny", **changes: Any) -> dict:
    return config(
        user_service={
            "cluster": "user_service",
            "timeout_ms": 1000,
            "revalidate_s": REVALIDATE_S,
            "failure_mode": failure_mode,
        },
        **changes,
    )


def start_envoy(
    wasm: Path, key_server: Any, echo: Any, port: int, cfg: dict, name: str, cluster: str = "user_service"
) -> FilterEnvoy:
    e = EnvoyWithUsers(
        cfg,
        key_port=key_server.port,
        echo_port=echo.port,
        wasm_path=wasm,
        user_port=port,
        name=name,
        concurrency=2,
        cluster=cluster,
    )
    e.start()
    return e


def running_service(prefix: str, *extra_args: str) -> Iterator[UserService]:
    """A fixture body: the service on a fresh SQLite file (and `extra_args`
    to `serve`), stopped after."""
    svc = UserService(Path(tempfile.mkdtemp(prefix=prefix)), extra_args).start()
    yield svc
    svc.stop()


def running_envoy(wasm: Path, key_server: Any, echo: Any, port: int, cfg: dict, name: str) -> Iterator[FilterEnvoy]:
    """A fixture body: an Envoy wired to the user service on `port`, its log
    checked for panics when it stops."""
    e = start_envoy(wasm, key_server, echo, port, cfg, name)
    yield e
    e.stop(check=True)


def new_sub() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def payload(sub: str, **extra: Any) -> dict:
    return {
        "sub": sub,
        "email": f"{sub}@example.com",
        "email_verified": "true",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "groups": ["admin", "staff"],
        **extra,
    }
