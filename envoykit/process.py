"""Child processes in their own process groups, and the one Envoy launcher.

``EnvoyProcess`` writes a bootstrap (YAML), starts the Envoy binary from the
venv with ``--use-dynamic-base-id`` (several Envoys side by side), waits until
the admin endpoint says ready and every listener accepts connections, and
stops the whole process group. Envoy logs to stderr, which goes to
``envoy.log`` next to the rendered config; ``panics()`` scans it for wasm
panics and traps."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import yaml

from envoykit.admin import EnvoyAdmin
from envoykit.bootstrap import admin_port_of, listener_ports_of
from envoykit.paths import ENVOY_BIN, REPO
from envoykit.wait import WaitTimeout, port_open, wait_until

# Strings that must never appear in the log of an Envoy running the filter.
PANIC_PATTERNS: list[str | re.Pattern[str]] = [
    "panicked at",
    "wasm trap",
    "Unreachable",
    "unreachable executed",
    "RuntimeError: unreachable",
    re.compile(r"Function: proxy_on_\w+ failed"),
]


def scan_log_for_panics(text: str) -> list[str]:
    """The lines of `text` that show a wasm panic or trap."""
    bad = []
    for line in text.splitlines():
        for p in PANIC_PATTERNS:
            if p.search(line) if isinstance(p, re.Pattern) else p in line:
                bad.append(line)
                break
    return bad


def log_tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def relevant_log_tail(text: str, n: int = 30) -> str:
    """The last `n` lines from the wasm component or at error level and above."""
    keep = [ln for ln in text.splitlines() if "][wasm]" in ln or "][critical]" in ln or "][error]" in ln]
    return "\n".join(keep[-n:])


def _die_with_parent() -> None:
    """In the child between fork and exec: get SIGTERM when the parent dies (Linux)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # not Linux: the process group still lets the parent clean up
        pass


class ProcessGroup:
    """One child process in its own process group, its output in `log`.
    `stop()` signals the whole group: SIGTERM, then SIGKILL after a grace period."""

    def __init__(
        self,
        name: str,
        log: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.cwd = cwd
        self.env = env
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = False  # SIGKILL was needed

    def spawn(self, argv: list[str]) -> None:
        """Starts `argv` with stdout and stderr in `log` (truncated)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.killed = False
        with open(self.log, "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(self.cwd or REPO),
                env={**os.environ, **(self.env or {})},
                start_new_session=True,  # own process group: a Ctrl-C reaches only the parent
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def returncode(self) -> int | None:
        """None while running (or never started: see `started`)."""
        return None if self.proc is None else self.proc.poll()

    @property
    def started(self) -> bool:
        return self.proc is not None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 25) -> str:
        return f"--- last lines of {self.log} ---\n" + log_tail(self.log_text(), n)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM to the group, SIGKILL after `grace` seconds; anything left
        in the group afterwards is killed too. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.killed = True
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.group_alive():
            self.killed = True
            self._signal_group(signal.SIGKILL)
        return self.proc.returncode

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def group_alive(self) -> bool:
        if self.proc is None:
            return False
        try:
            os.killpg(self.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


class EnvoyStartError(RuntimeError):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(f"{message}\n--- envoy log tail ---\n{log_tail(log)}")
        self.log = log

    @property
    def address_in_use(self) -> bool:
        """A port picked as free was taken before Envoy bound it (retry with new ports)."""
        return "Address already in use" in self.log


class EnvoyProcess(ProcessGroup):
    """One Envoy. `start(bootstrap)` writes the bootstrap to `config_path`
    (default `<workdir>/envoy.yaml`), starts Envoy and waits until it serves."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "envoy",
        concurrency: int = 2,
        log_level: str = "info",
        component_log_level: str = "wasm:debug",
        drain_time_s: int = 0,
        cpus: str | None = None,
        config_path: Path | None = None,
        log: Path | None = None,
        die_with_parent: bool = False,
        envoy_bin: Path = ENVOY_BIN,
        extra_args: list[str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(name, log or workdir / "envoy.log", cwd=workdir, die_with_parent=die_with_parent)
        self.dir = workdir
        self.config_path = config_path or workdir / "envoy.yaml"
        self.concurrency = concurrency
        self.log_level = log_level
        self.component_log_level = component_log_level
        self.drain_time_s = drain_time_s
        self.cpus = cpus  # taskset CPU list, or None
        self.envoy_bin = envoy_bin
        self.extra_args = list(extra_args or [])  # appended to the command line
        self.admin = EnvoyAdmin(0)
        self.listener_ports: list[int] = []

    def write_bootstrap(self, boot: dict, comment: str | None = None) -> Path:
        self.admin = EnvoyAdmin(admin_port_of(boot))
        self.listener_ports = listener_ports_of(boot)
        head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(head + yaml.safe_dump(boot, sort_keys=False))
        return self.config_path

    def command(self) -> list[str]:
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        return [
            *pin,
            str(self.envoy_bin),
            "-c",
            str(self.config_path),
            "--concurrency",
            str(self.concurrency),
            "--use-dynamic-base-id",
            "-l",
            self.log_level,
            "--component-log-level",
            self.component_log_level,
            "--drain-time-s",
            str(self.drain_time_s),
            *self.extra_args,
        ]

    def start(self, boot: dict | None = None, timeout: float = 60.0, comment: str | None = None) -> EnvoyProcess:
        """Writes `boot` (if given), starts Envoy and waits until it serves;
        on failure stops it and raises EnvoyStartError with the log tail."""
        if boot is not None:
            self.write_bootstrap(boot, comment)
        self.spawn(self.command())
        try:
            self.wait_ready(timeout)
        except EnvoyStartError:
            self.stop()
            raise
        return self

    def serving(self) -> bool:
        """Admin /ready answers 200 and every listener accepts connections;
        EnvoyStartError if Envoy has exited."""
        rc = self.returncode()
        if rc is not None:
            raise EnvoyStartError(f"Envoy '{self.name}' exited with status {rc} before serving", self.log_text())
        return self.admin.ready() and all(port_open(p) for p in self.listener_ports)

    def wait_ready(self, timeout: float) -> None:
        try:
            wait_until(self.serving, timeout, interval=0.05, what=f"Envoy '{self.name}' serving")
        except WaitTimeout as e:
            raise EnvoyStartError(str(e), self.log_text()) from None

    def panics(self) -> list[str]:
        return scan_log_for_panics(self.log_text())


def envoy_command_validate(config_path: Path, envoy_bin: Path = ENVOY_BIN) -> list[str]:
    return [
        str(envoy_bin),
        "--mode",
        "validate",
        "-c",
        str(config_path),
        "--use-dynamic-base-id",
        "-l",
        "info",
        "--component-log-level",
        "wasm:debug",
    ]


def envoy_validate(config_path: Path, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate -c FILE` (which, in Envoy 1.40, runs the filter's
    proxy_on_configure); stdout and stderr merged into `.stdout`."""
    return subprocess.run(
        envoy_command_validate(config_path),
        cwd=str(cwd or REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        text=True,
    )


def envoy_version(envoy_bin: Path = ENVOY_BIN) -> str:
    out = subprocess.run([str(envoy_bin), "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.strip().split("version:")[-1].strip()
