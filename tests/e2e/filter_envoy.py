"""The suite's Envoy: the filter in front of the echo upstream, with the key
endpoint stand-in as the key cluster (and, given a port, the IdP's key set
stand-in as the `idp_jwks` cluster), on fresh ports. Started and stopped by
envoykit's launcher; subclasses change the bootstrap in `customize`."""

from __future__ import annotations

import http.client
import tempfile
from pathlib import Path
from typing import Any, Self

from envoykit import bootstrap as bs
from envoykit.client import DEFAULT_REQUEST_TIMEOUT, Response, http_request
from envoykit.ecds import EcdsFile, ecds_counters
from envoykit.paths import FILTER_WASM
from envoykit.process import EnvoyProcess, EnvoyStartError, log_tail, scan_log_for_panics
from envoykit.wait import free_port, port_open, wait_until

# Where Envoy work directories (config, log) go; conftest points this into
# pytest's basetemp so old runs are pruned and logs of failed runs are kept.
WORK_ROOT: Path | None = None


def _workdir(name: str) -> Path:
    root = WORK_ROOT
    if root is None:
        return Path(tempfile.mkdtemp(prefix=f"alb-oidc-{name}-"))
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))


class FilterEnvoy:
    """One real Envoy with the filter. Use `start()` / `stop()` (or `with`)."""

    def __init__(
        self,
        filter_config: Any,
        *,
        key_port: int,
        echo_port: int,
        concurrency: int = 2,
        wasm_path: Path = FILTER_WASM,
        key_cluster: str = "alb_public_keys",
        jwks_port: int | None = None,
        jwks_cluster: str = "idp_jwks",
        workdir: Path | None = None,
        name: str = "envoy",
        log_level: str = "info",
        hcm_options: dict | None = None,
    ) -> None:
        self.filter_config = filter_config
        self.hcm_options = hcm_options  # extra HttpConnectionManager settings
        self.key_port = key_port
        self.echo_port = echo_port
        self.wasm_path = wasm_path
        self.key_cluster = key_cluster
        self.jwks_port = jwks_port  # the IdP key set's cluster, when given
        self.jwks_cluster = jwks_cluster
        self.name = name
        self.dir = workdir or _workdir(name)
        self.process = EnvoyProcess(
            self.dir, name=name, concurrency=concurrency, log_level=log_level, component_log_level="wasm:debug"
        )
        self.port = 0
        self.allow_panics = False

    # -- bootstrap ------------------------------------------------------------
    def bootstrap(self) -> dict:
        listener = bs.http_listener(
            "ingress",
            self.port,
            routes=[bs.route_to_cluster("echo")],
            http_filters=[bs.wasm_filter("alb_oidc", self.wasm_path, self.filter_config)],
            hcm_options=self.hcm_options,
        )
        clusters = [bs.static_cluster("echo", self.echo_port), bs.static_cluster(self.key_cluster, self.key_port)]
        if self.jwks_port is not None:
            clusters.append(bs.static_cluster(self.jwks_cluster, self.jwks_port))
        return bs.bootstrap(admin_port=free_port(), listeners=[listener], clusters=clusters)

    def customize(self, boot: dict) -> None:
        """Subclasses change the rendered bootstrap here."""

    def write_config(self) -> Path:
        """Renders the bootstrap on fresh ports and writes it."""
        self.port = free_port()
        boot = self.bootstrap()
        self.customize(boot)
        return self.process.write_bootstrap(boot)

    @property
    def config_path(self) -> Path:
        return self.process.config_path

    # -- lifecycle --------------------------------------------------------------
    def spawn(self) -> None:
        """Starts Envoy without waiting for it (for configurations it must refuse)."""
        self.write_config()
        self.process.spawn(self.process.command())

    def start(self, timeout: float = 30.0) -> Self:
        for attempt in range(3):  # a free port can be stolen between probe and bind
            self.write_config()
            try:
                self.process.start(timeout=timeout)
                return self
            except EnvoyStartError as e:
                if not (e.address_in_use and attempt < 2):
                    raise
        raise AssertionError("unreachable")

    def stop(self, check: bool = True) -> None:
        self.process.stop()
        if check and not self.allow_panics:
            self.assert_no_panics()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(check=exc[0] is None)

    @property
    def proc(self) -> Any:
        return self.process.proc

    @property
    def log_path(self) -> Path:
        return self.process.log

    def log_text(self) -> str:
        return self.process.log_text()

    def listener_up(self) -> bool:
        return port_open(self.port)

    def assert_no_panics(self) -> None:
        text = self.log_text()
        bad = scan_log_for_panics(text)
        assert not bad, (
            "wasm panic/trap in the Envoy log:\n"
            + "\n".join(bad[:10])
            + f"\n--- log tail ({self.log_path}) ---\n"
            + log_tail(text)
        )

    # -- traffic ------------------------------------------------------------------
    def request(self, path: str = "/", headers: Any = None, **kw: Any) -> Response:
        return http_request(self.port, path, headers, **kw)

    def connection(self, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    # -- admin ----------------------------------------------------------------------
    def admin(self, path: str) -> str:
        return self.process.admin.get(path)

    def stats(self) -> dict[str, int]:
        return self.process.admin.stats("alb_oidc")

    def counter(self, suffix: str) -> int:
        return self.process.admin.counter(suffix)

    def counters(self, *suffixes: str) -> dict[str, int]:
        return self.process.admin.counters(*suffixes)


FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"

# The filter publishes the verified username and the deciding rule as filter
# state (proxy-wasm set_property); Envoy stores a property path `P` under the
# key `wasm.P`, with `P` exactly as the filter passed it: one path element
# `alb_oidc.user` gives `wasm.alb_oidc.user` (the elements of a longer path
# would be joined with NUL bytes, not dots). Checked with Envoy 1.40.
ACCESS_LOG_FORMAT = (
    "path=%REQ(:PATH)% status=%RESPONSE_CODE% "
    "user=%FILTER_STATE(wasm.alb_oidc.user:PLAIN)% rule=%FILTER_STATE(wasm.alb_oidc.rule:PLAIN)%\n"
)


class AccessLogEnvoy(FilterEnvoy):
    """A FilterEnvoy with a file access log (`access.log` in its work
    directory) in `log_format`, whose `key=value` fields `access_log_entry`
    reads back. Envoy flushes access log files on a timer (10 s by default):
    here every 100 ms, so a test waits on the line, not on the timer."""

    def __init__(self, *a: Any, log_format: str = ACCESS_LOG_FORMAT, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.access_log = self.dir / "access.log"
        self.log_format = log_format
        self.process.extra_args = ["--file-flush-interval-msec", "100"]

    def customize(self, boot: dict) -> None:
        hcm = bs.hcm_of(boot["static_resources"]["listeners"][0])
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": FILE_ACCESS_LOG_TYPE,
                    "path": str(self.access_log),
                    "log_format": {"text_format_source": {"inline_string": self.log_format}},
                },
            }
        ]

    def access_log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def access_log_entry(self, path: str, timeout: float = 5.0) -> dict[str, str]:
        """The fields of the one access log line of the request for `path`
        (waits for it with a bound)."""

        def entries() -> list[dict[str, str]]:
            found = []
            for line in self.access_log_lines():
                fields = dict(f.partition("=")[::2] for f in line.split(" "))
                if fields.get("path") == path:
                    found.append(fields)
            return found

        found = wait_until(entries, timeout, interval=0.05, what=f"access log line for {path}")
        assert len(found) == 1, f"{len(found)} access log lines for {path}: {found}"
        return found[0]


class EcdsEnvoy(FilterEnvoy):
    """A FilterEnvoy whose filter takes its configuration through ECDS from a
    watched file, as Istio delivers a WasmPlugin's `pluginConfig` (by xDS),
    plus `clusters` of its own. `update(config)` replaces the configuration
    atomically and waits until Envoy has taken or refused it. `listeners`
    are served besides the filter's (on ports the caller picked)."""

    RESOURCE = "alb_oidc"

    def __init__(
        self, *a: Any, clusters: list[dict] | None = None, listeners: list[dict] | None = None, **kw: Any
    ) -> None:
        super().__init__(*a, **kw)
        self.clusters = list(clusters or [])
        self.listeners = list(listeners or [])
        self.ecds = EcdsFile(self.dir / "ecds" / f"{self.RESOURCE}.yaml", self.RESOURCE)

    def _typed_config(self, filter_config: Any) -> dict:
        return bs.wasm_config(self.RESOURCE, self.wasm_path, filter_config)

    def customize(self, boot: dict) -> None:
        hcm = bs.hcm_of(boot["static_resources"]["listeners"][0])
        hcm["http_filters"][0] = bs.ecds_filter(self.RESOURCE, self.ecds.path)
        boot["static_resources"]["clusters"].extend(self.clusters)
        boot["static_resources"]["listeners"].extend(self.listeners)
        # Envoy refuses any xDS subscription, file-based too, without these.
        boot["node"] = {"id": self.name, "cluster": "alb-oidc-e2e"}
        # The path must exist when Envoy loads the bootstrap; the listener
        # warms until this first configuration is accepted.
        self.ecds.write(self._typed_config(self.filter_config))

    def ecds_counters(self) -> dict[str, int]:
        return ecds_counters(self.process.admin, self.RESOURCE)

    def update(self, filter_config: Any, timeout: float = 15.0) -> dict[str, int]:
        """Writes `filter_config` as the next version; returns how much each
        ECDS counter moved once Envoy has answered it. Envoy 1.40 counts a
        version it takes as `update_success` at once and `config_reload`
        once every worker has it (the update reaches the workers
        asynchronously), so requests sent after this returns see it; a
        version it refuses moves `update_rejected`, `config_reload` and
        `config_fail` together. A version identical to the one in force
        moves only `update_success` (Envoy keeps what it has), so it is
        refused here rather than waited for."""
        assert filter_config != self.filter_config, "an identical version: Envoy would not reload"
        before = self.ecds_counters()

        def answered() -> dict[str, int] | None:
            now = self.ecds_counters()
            moved = {k: now[k] - before[k] for k in now}
            verdict = moved["update_success"] or moved["update_rejected"]
            return moved if verdict and moved["config_reload"] else None

        self.ecds.write(self._typed_config(filter_config))
        moved = wait_until(answered, timeout, interval=0.02, what=f"ECDS version {self.ecds.version} answered")
        if moved["update_rejected"] == 0:
            self.filter_config = filter_config
        return moved
