"""Fixtures for the end-to-end suite: one key server and one echo upstream per
session, FilterEnvoys per configuration (shared where tests need no isolation), a
panic/trap check of every live Envoy's log after every test, and the policy
for missing system tools (`require_tool`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from requires import missing

import attack_kit
import filter_envoy
from configs import FAULT_CONFIG, config
from envoykit.echo import EchoServer
from envoykit.jwksserver import JwksServer
from envoykit.keyserver import KeyServer
from envoykit.paths import ENVOY_BIN, FILTER_WASM
from envoykit.process import log_tail, relevant_log_tail, scan_log_for_panics
from filter_envoy import FilterEnvoy
from tokens import ARN, Key, Minter

# ------------------------------------------------------------ environment --

# CI (.ci/run) sets ALB_OIDC_NO_SKIP=1: a test that would be skipped for a
# missing tool fails instead, so CI can never pass without running it.
NO_SKIP = os.environ.get("ALB_OIDC_NO_SKIP") == "1"


def pytest_report_header(config: Any) -> list[str]:
    return [f"alb-oidc wasm: {FILTER_WASM}", f"envoy: {ENVOY_BIN}", f"ALB_OIDC_NO_SKIP: {int(NO_SKIP)}"]


@pytest.fixture
def require_tool() -> Callable[[str], str]:
    """require_tool("wrk") -> its path; when it is not on PATH the test is
    SKIPPED, or fails under ALB_OIDC_NO_SKIP=1."""

    def require(name: str) -> str:
        path = shutil.which(name)
        if path:
            return path
        missing(f"{name} is not installed (.ci/run installs it; locally: apt-get install {name})")

    return require


@pytest.fixture(scope="session")
def wasm() -> Path:
    if not ENVOY_BIN.exists():
        pytest.fail(f"Envoy not found at {ENVOY_BIN}: run `make venv`")
    if not FILTER_WASM.exists():
        pytest.fail(f"filter not built: {FILTER_WASM} missing (run `make wasm`)")
    return FILTER_WASM


@pytest.fixture(scope="session", autouse=True)
def _envoy_workdirs(tmp_path_factory: Any) -> None:
    filter_envoy.WORK_ROOT = tmp_path_factory.getbasetemp() / "envoy"


@pytest.fixture(scope="session", autouse=True)
def _attack_summary() -> Iterator[None]:
    """After the session, the attack suite's figures (if any attack test ran)."""
    yield
    attack_kit.write_summary()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """On a failure, attach the log tail of every live Envoy to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _LIVE:
        for e in _LIVE:
            rep.sections.append((f"envoy {e.name} log tail ({e.log_path})", relevant_log_tail(e.log_text(), 30)))


@pytest.fixture(scope="session")
def key_server() -> Iterator[KeyServer]:
    ks = KeyServer().start()
    yield ks
    ks.stop()


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    """The IdP key set stand-in; tests serve their key sets at paths of their own."""
    js = JwksServer().start()
    yield js
    js.stop()


@pytest.fixture(scope="session")
def echo() -> Iterator[EchoServer]:
    es = EchoServer().start()
    yield es
    es.stop()


@pytest.fixture(autouse=True)
def _reset_key_server_modes(key_server: KeyServer) -> Iterator[None]:
    yield
    key_server.reset()


# ----------------------------------------------------------------- envoys --

_LIVE: list[FilterEnvoy] = []
_PANIC_OFFSETS: dict[int, int] = {}


def _start(wasm: Path, key_server: KeyServer, echo: EchoServer, cfg: Any, **kw: Any) -> FilterEnvoy:
    envoy_cls = kw.pop("envoy_cls", FilterEnvoy)  # a FilterEnvoy subclass (e.g. AccessLogEnvoy)
    e = envoy_cls(cfg, key_port=key_server.port, echo_port=echo.port, wasm_path=wasm, **kw)
    e.start()
    _LIVE.append(e)
    return e


def _stop(e: FilterEnvoy) -> None:
    if e in _LIVE:
        _LIVE.remove(e)
    e.stop(check=True)


@pytest.fixture(autouse=True)
def _no_new_panics() -> Iterator[None]:
    """After every test, fail it if any live Envoy logged a wasm panic/trap."""
    yield
    problems = []
    for e in list(_LIVE):
        text = e.log_text()
        start = _PANIC_OFFSETS.get(id(e), 0)
        new = scan_log_for_panics(text[start:])
        _PANIC_OFFSETS[id(e)] = len(text)
        if new:
            problems.append(f"{e.log_path}:\n" + "\n".join(new[:10]) + "\n--- tail ---\n" + log_tail(text, 40))
    if problems:
        pytest.fail("wasm panic/trap in Envoy log during this test:\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def make_envoy(wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Callable[..., FilterEnvoy]]:
    """Start a fresh Envoy for one test: make_envoy(config, concurrency=2,
    envoy_cls=FilterEnvoy, ...)."""
    started: list[FilterEnvoy] = []

    def make(cfg: Any, **kw: Any) -> FilterEnvoy:
        e = _start(wasm, key_server, echo, cfg, name=kw.pop("name", "fresh"), **kw)
        started.append(e)
        return e

    yield make
    for e in started:
        _stop(e)


@pytest.fixture(scope="module")
def make_envoy_module(wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Callable[..., FilterEnvoy]]:
    """Like make_envoy, but the FilterEnvoys live until the end of the module."""
    started: list[FilterEnvoy] = []

    def make(cfg: Any, **kw: Any) -> FilterEnvoy:
        e = _start(wasm, key_server, echo, cfg, name=kw.pop("name", "module"), **kw)
        started.append(e)
        return e

    yield make
    for e in started:
        _stop(e)


def _shared(
    request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer, cfg: Any, name: str, **kw: Any
) -> Iterator[FilterEnvoy]:
    e = _start(wasm, key_server, echo, cfg, name=name, **kw)
    yield e
    _stop(e)


@pytest.fixture(scope="session", params=["host", "rust"])
def envoy_backend(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[FilterEnvoy]:
    """The standard config, once per forced signature backend."""
    e = _start(wasm, key_server, echo, config(signature_backend=request.param), name=f"backend-{request.param}")
    e.backend = request.param  # type: ignore[attr-defined]
    yield e
    _stop(e)


@pytest.fixture(scope="session")
def envoy_main(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[FilterEnvoy]:
    """The standard config with the default (auto) signature backend."""
    yield from _shared(request, wasm, key_server, echo, config(), "main")


@pytest.fixture(scope="module")
def envoy_fault(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[FilterEnvoy]:
    yield from _shared(request, wasm, key_server, echo, dict(FAULT_CONFIG), "fault")


# ---------------------------------------------------------------- tokens --


@pytest.fixture
def new_minter(key_server: KeyServer) -> Callable[..., Minter]:
    """new_minter(signer=ARN): a fresh P-256 key with a fresh kid, served by the key server."""

    def make(signer: str = ARN, register: bool = True) -> Minter:
        k = Key.generate()
        if register:
            key_server.add_key(k.kid, k.pem)
        return Minter(k, signer=signer)

    return make


@pytest.fixture
def minter(new_minter: Callable[..., Minter]) -> Minter:
    return new_minter()
