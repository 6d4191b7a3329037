"""Where things are: the repo, the Envoy binary, the filter's .wasm and the
native binaries (alb-sim, the user service, the bench tools).

``ALB_OIDC_ENVOY`` and ``ALB_OIDC_WASM`` override the binaries;
``ALB_OIDC_BIN_DIR`` is where the native binaries are (default
``target/release``: ``make test`` runs the end-to-end tests with
``target/debug``, the binaries ``cargo test`` already built), and
``ALB_OIDC_ALB_SIM`` and ``ALB_OIDC_USER_SERVICE`` override one each. A
relative path is taken from the repo root."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def path_from_env(var: str, default: Path) -> Path:
    """`$var` if set (relative to the repo root), else `default`."""
    p = Path(os.environ.get(var) or default)
    return p if p.is_absolute() else REPO / p


ENVOY_BIN = path_from_env("ALB_OIDC_ENVOY", REPO / ".venv" / "bin" / "envoy")
FILTER_WASM = path_from_env("ALB_OIDC_WASM", REPO / "target" / "wasm32-wasip1" / "release" / "alb_oidc.wasm")
NATIVE_BIN_DIR = path_from_env("ALB_OIDC_BIN_DIR", REPO / "target" / "release")
ALB_SIM_BIN = path_from_env("ALB_OIDC_ALB_SIM", NATIVE_BIN_DIR / "alb-sim")
USER_SERVICE_BIN = path_from_env("ALB_OIDC_USER_SERVICE", NATIVE_BIN_DIR / "alb-oidc-user-service")
# What builds the native binaries where the tests look for them.
BUILD_HINT = (
    "run `make build`"
    if NATIVE_BIN_DIR == REPO / "target" / "release"
    else f"build them into {NATIVE_BIN_DIR} (ALB_OIDC_BIN_DIR; `make test-e2e` builds target/debug)"
)
