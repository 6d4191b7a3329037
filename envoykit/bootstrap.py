"""Building blocks of an Envoy bootstrap (plain dicts, dumped as YAML by
``process.EnvoyProcess``). Everything listens on and connects to 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
STRING_VALUE_TYPE = "type.googleapis.com/google.protobuf.StringValue"
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
TYPED_EXTENSION_CONFIG_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"


def address(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def static_cluster(name: str, port: int, *, http2: bool = False, connect_timeout: str = "1s") -> dict:
    """One STATIC endpoint on 127.0.0.1; `http2` for gRPC upstreams."""
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(port)}}]}],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "explicit_http_config": {"http2_protocol_options": {}}}
        }
    return cluster


def wasm_config(vm_id: str, wasm: Path, configuration: Any) -> dict:
    """The `envoy.extensions.filters.http.wasm.v3.Wasm` message (with its
    `@type`) running `wasm` in its own V8 VM `vm_id`; a `configuration` that
    is not a str is JSON-encoded."""
    text = configuration if isinstance(configuration, str) else json.dumps(configuration)
    return {
        "@type": WASM_TYPE,
        "config": {
            "name": vm_id,
            "configuration": {"@type": STRING_VALUE_TYPE, "value": text},
            "vm_config": {
                "vm_id": vm_id,
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": str(wasm)}},
            },
        },
    }


def wasm_filter(vm_id: str, wasm: Path, configuration: Any) -> dict:
    """The Wasm HTTP filter, its configuration inline (`wasm_config`)."""
    return {"name": "envoy.filters.http.wasm", "typed_config": wasm_config(vm_id, wasm, configuration)}


def ecds_filter(name: str, path: Path, type_url: str = WASM_TYPE) -> dict:
    """An HTTP filter whose configuration comes through ECDS (extension
    config discovery): resource `name`, of `type_url`, read from the xDS file
    `path`. Envoy watches `path`'s directory and reloads `path` when a file is
    moved onto it (`watched_directory`), so an update must be written
    elsewhere in that directory and renamed over `path` (`ecds.EcdsFile`).
    Without a default configuration the listener waits (warms) until the
    first one is accepted."""
    return {
        "name": name,
        "config_discovery": {
            "config_source": {
                "resource_api_version": "V3",
                "path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
            },
            "type_urls": [type_url],
        },
    }


def ecds_response(name: str, typed_config: dict, version: str) -> dict:
    """The DiscoveryResponse a file-based ECDS source holds: one
    `envoy.config.core.v3.TypedExtensionConfig` named `name`."""
    return {
        "version_info": version,
        "resources": [{"@type": TYPED_EXTENSION_CONFIG_TYPE, "name": name, "typed_config": typed_config}],
    }


def router_filter() -> dict:
    return {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}


def route_to_cluster(cluster: str, *, prefix: str | None = "/", path: str | None = None) -> dict:
    match = {"path": path} if path is not None else {"prefix": prefix}
    return {"match": match, "route": {"cluster": cluster}}


def direct_response(status: int, body: str, prefix: str = "/") -> dict:
    return {"match": {"prefix": prefix}, "direct_response": {"status": status, "body": {"inline_string": body}}}


def virtual_host(name: str, domains: list[str], routes: list[dict]) -> dict:
    return {"name": name, "domains": domains, "routes": routes}


def http_listener(
    name: str,
    port: int,
    *,
    routes: list[dict] | None = None,
    http_filters: list[dict],
    hcm_options: dict | None = None,
    virtual_hosts: list[dict] | None = None,
) -> dict:
    """A plain HTTP listener: the given filters, then the router, over
    `routes` for every host, or over `virtual_hosts` (by `:authority`)."""
    hosts = virtual_hosts if virtual_hosts is not None else [virtual_host("all", ["*"], routes or [])]
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": name,
        "route_config": {"name": name, "virtual_hosts": hosts},
        "http_filters": [*http_filters, router_filter()],
        **(hcm_options or {}),
    }
    return {
        "name": name,
        "address": address(port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def bootstrap(*, admin_port: int, listeners: list[dict], clusters: list[dict]) -> dict:
    return {
        "admin": {"address": address(admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def admin_port_of(boot: dict) -> int:
    return boot["admin"]["address"]["socket_address"]["port_value"]


def listener_ports_of(boot: dict) -> list[int]:
    return [ln["address"]["socket_address"]["port_value"] for ln in boot["static_resources"]["listeners"]]


def hcm_of(listener: dict) -> dict:
    """The HttpConnectionManager config of a listener's (first) filter chain."""
    return listener["filter_chains"][0]["filters"][0]["typed_config"]
