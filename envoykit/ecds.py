"""A file-based ECDS source, the stand-in for Istio delivering a WasmPlugin's
`pluginConfig` by xDS, and Envoy's ECDS counters.

``EcdsFile`` holds one ``TypedExtensionConfig`` in the DiscoveryResponse file
that a filter declared with ``bootstrap.ecds_filter`` reads. Envoy reloads
that file when a file is moved onto it in its watched directory, so every
write is atomic: a temporary file in the same directory, renamed over the
watched one. A reader never sees half a file, and an edit in place (which
Envoy would not notice) never happens."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

from envoykit.admin import EnvoyAdmin
from envoykit.bootstrap import ecds_response

# Envoy's counters of one ECDS resource, under
# `extension_config_discovery.<filter kind>.<resource name>.` (the HTTP
# filters' kind is `http_filter`). The subscription counts each version it
# reads (`update_attempt`) as `update_success` or `update_rejected`; the
# filter's provider counts `config_reload` and `config_fail`. Envoy 1.40
# bumps `config_reload` for a version it then rejects too (with
# `config_fail`), all in one main-thread callback, so the admin endpoint
# (same thread) never shows half of them.
ECDS_COUNTERS = (
    "update_attempt",
    "update_success",
    "update_rejected",
    "config_reload",
    "config_fail",
    "config_conflict",
)
HTTP_FILTER_STATS = "extension_config_discovery.http_filter."


class EcdsFile:
    """The xDS file of one ECDS resource `name` at `path`; `write` replaces
    the resource atomically, numbering versions 1, 2, ..."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.version = 0

    def write(self, typed_config: dict) -> None:
        self.version += 1
        text = yaml.safe_dump(ecds_response(self.name, typed_config, str(self.version)), sort_keys=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def ecds_counters(admin: EnvoyAdmin, name: str, prefix: str = HTTP_FILTER_STATS) -> dict[str, int]:
    """The ECDS counters (`ECDS_COUNTERS`) of resource `name`, 0 for one
    Envoy has not created yet."""
    base = prefix + name + "."
    stats = admin.stats("^" + re.escape(base))
    return {c: stats.get(base + c, 0) for c in ECDS_COUNTERS}
