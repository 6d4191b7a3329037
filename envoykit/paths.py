"""Where things are: the repo, the Envoy binary, the filter's .wasm.

``ALB_OIDC_ENVOY`` and ``ALB_OIDC_WASM`` override the binaries (a relative
path is taken from the repo root)."""

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
