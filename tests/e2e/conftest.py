"""Fixtures for the end-to-end suite: one key server and one echo upstream per
session, Envoys per configuration (shared where tests need no isolation), and a
panic/trap check of every live Envoy's log after every test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import harness
from harness import EchoServer, Envoy, KeyServer
from configs import FAULT_CONFIG, config
from tokens import ARN, Key, Minter

# ------------------------------------------------------------ environment --


def pytest_report_header(config: Any) -> list[str]:
    return [f"alb-oidc wasm: {harness.WASM_PATH}", f"envoy: {harness.ENVOY_BIN}"]


@pytest.fixture(scope="session")
def wasm() -> Path:
    if not harness.ENVOY_BIN.exists():
        pytest.fail(f"Envoy not found at {harness.ENVOY_BIN}: run `make venv`")
    if not harness.WASM_PATH.exists():
        pytest.fail(f"filter not built: {harness.WASM_PATH} missing (run `make wasm`)")
    return harness.WASM_PATH


@pytest.fixture(scope="session", autouse=True)
def _envoy_workdirs(tmp_path_factory: Any) -> None:
    harness.WORK_ROOT = tmp_path_factory.getbasetemp() / "envoy"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """On a failure, attach the log tail of every live Envoy to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _LIVE:
        for e in _LIVE:
            rep.sections.append((f"envoy {e.name} log tail ({e.log_path})", harness.relevant_log_tail(e.log_text(), 30)))


@pytest.fixture(scope="session")
def key_server() -> Iterator[KeyServer]:
    ks = KeyServer().start()
    yield ks
    ks.stop()


@pytest.fixture(scope="session")
def echo() -> Iterator[EchoServer]:
    es = EchoServer().start()
    yield es
    es.stop()


@pytest.fixture(autouse=True)
def _reset_key_server_modes(key_server: KeyServer) -> Iterator[None]:
    yield
    key_server.clear_mode(None)
    with key_server.lock:
        key_server.modes.clear()
        key_server.delays.clear()


# ----------------------------------------------------------------- envoys --

_LIVE: list[Envoy] = []
_PANIC_OFFSETS: dict[int, int] = {}


def _start(wasm: Path, key_server: KeyServer, echo: EchoServer, cfg: Any, **kw: Any) -> Envoy:
    e = Envoy(cfg, key_port=key_server.port, echo_port=echo.port, wasm_path=wasm, **kw)
    e.start()
    _LIVE.append(e)
    return e


def _stop(e: Envoy) -> None:
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
        new = harness.scan_log_for_panics(text[start:])
        _PANIC_OFFSETS[id(e)] = len(text)
        if new:
            problems.append(f"{e.log_path}:\n" + "\n".join(new[:10]) + "\n--- tail ---\n" + harness.log_tail(text, 40))
    if problems:
        pytest.fail("wasm panic/trap in Envoy log during this test:\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def make_envoy(wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Callable[..., Envoy]]:
    """Start a fresh Envoy for one test: make_envoy(config, concurrency=2, ...)."""
    started: list[Envoy] = []

    def make(cfg: Any, **kw: Any) -> Envoy:
        e = _start(wasm, key_server, echo, cfg, name=kw.pop("name", "fresh"), **kw)
        started.append(e)
        return e

    yield make
    for e in started:
        _stop(e)


@pytest.fixture(scope="module")
def make_envoy_module(wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Callable[..., Envoy]]:
    """Like make_envoy, but the Envoys live until the end of the module."""
    started: list[Envoy] = []

    def make(cfg: Any, **kw: Any) -> Envoy:
        e = _start(wasm, key_server, echo, cfg, name=kw.pop("name", "module"), **kw)
        started.append(e)
        return e

    yield make
    for e in started:
        _stop(e)


def _shared(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer, cfg: Any, name: str, **kw: Any) -> Iterator[Envoy]:
    e = _start(wasm, key_server, echo, cfg, name=name, **kw)
    yield e
    _stop(e)


@pytest.fixture(scope="session", params=["host", "rust"])
def envoy_backend(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Envoy]:
    """The standard config, once per forced signature backend."""
    e = _start(wasm, key_server, echo, config(signature_backend=request.param), name=f"backend-{request.param}")
    e.backend = request.param  # type: ignore[attr-defined]
    yield e
    _stop(e)


@pytest.fixture(scope="session")
def envoy_main(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Envoy]:
    """The standard config with the default (auto) signature backend."""
    yield from _shared(request, wasm, key_server, echo, config(), "main")


@pytest.fixture(scope="module")
def envoy_fault(request: Any, wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[Envoy]:
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
