"""The deployment files against the real schemas, strictly (as `kubectl apply
--validate=strict` and `docker compose config` would check them):

* Istio resources (WasmPlugin x2, ServiceEntry, DestinationRule x2) against
  Istio's CRD schemas from @kubernetes-models/istio, made strict by
  deploy/schema-check.mjs (node; skipped without it);
* Kubernetes resources (Namespace, ServiceAccount, Deployment, Service, Secret)
  against Kubernetes' OpenAPI schemas with kubernetes-validate in strict mode;
* envoy/docker-compose.yaml against the compose-spec schema.

Every validator is also shown to refuse a copy with a misspelled field.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import kubernetes_validate
import pytest
import yaml
from requires import missing

REPO = harness.REPO
ISTIO = REPO / "deploy" / "istio"
WASM_PLUGIN = ISTIO / "wasmplugin.yaml"
GATEWAY_API_PLUGIN = ISTIO / "gateway-api" / "wasmplugin.yaml"
ISTIO_FILES = sorted(ISTIO.glob("*.yaml")) + sorted(
    (ISTIO / "gateway-api").glob("*.yaml")
)
COMPOSE_FILE = REPO / "envoy" / "docker-compose.yaml"
SCHEMA_CHECK = REPO / "deploy" / "schema-check.mjs"
NODE_MODULES_STAMP = REPO / "node_modules" / ".installed"
# Oldest and newest Kubernetes the manifests are meant for (gRPC probes are GA since 1.27).
K8S_VERSIONS = ["1.29", "1.37"]
K8S_KINDS = {"Namespace", "ServiceAccount", "Deployment", "Service", "Secret"}


# ------------------------------------------------------------------ helpers --


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        missing("node is not installed: the Istio and compose schema checks need it")
    if not NODE_MODULES_STAMP.exists():
        pytest.fail("node_modules not installed: run `make node-tools`")
    return exe


def schema_check(node: str, mode: str, *files: Path) -> subprocess.CompletedProcess:
    """Runs deploy/schema-check.mjs from the repo root (repo files named relative to it)."""
    names = [
        str(f.relative_to(REPO)) if f.is_relative_to(REPO) else str(f) for f in files
    ]
    return subprocess.run(
        [node, str(SCHEMA_CHECK), mode, *names],
        check=False,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
    )


def docs_of(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def broken_copy(
    tmp_path: Path, src: Path, kind: str, change: Callable[[dict], Any]
) -> Path:
    """`src` with `change` applied to its (single) document of `kind`, written to tmp_path."""
    docs = docs_of(src)
    (target,) = [d for d in docs if d["kind"] == kind]
    change(target)
    out = tmp_path / src.name
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


def rename(obj: dict, old: str, new: str) -> None:
    obj[new] = obj.pop(old)


# -------------------------------------------------------------------- istio --


def test_istio_resources_match_istio_crds(node: str) -> None:
    out = schema_check(node, "istio", *ISTIO_FILES)
    assert out.returncode == 0, out.stdout + out.stderr
    ok = sorted(
        line.split(" ", 1)[1]
        for line in out.stdout.splitlines()
        if line.startswith("OK ")
    )
    rel = lambda p: str(p.relative_to(REPO))
    assert ok == sorted(
        [
            f"{rel(ISTIO / 'key-endpoint.yaml')} ServiceEntry/alb-public-keys",
            f"{rel(ISTIO / 'key-endpoint.yaml')} DestinationRule/alb-public-keys",
            f"{rel(ISTIO / 'user-service.yaml')} DestinationRule/alb-oidc-user-service",
            f"{rel(WASM_PLUGIN)} WasmPlugin/alb-oidc",
            f"{rel(GATEWAY_API_PLUGIN)} WasmPlugin/alb-oidc",
        ]
    ), out.stdout
    # Everything else is a Kubernetes resource (checked below) or the Kustomization.
    skipped = [
        line.split()[2] for line in out.stdout.splitlines() if line.startswith("SKIP ")
    ]
    assert sorted(skipped) == sorted(
        [
            "Kustomization",
            "Secret",
            "Namespace",
            "ServiceAccount",
            "Deployment",
            "Service",
        ]
    ), out.stdout


@pytest.mark.parametrize(
    "src, kind, change, pointer",
    [
        (
            WASM_PLUGIN,
            "WasmPlugin",
            lambda d: rename(d["spec"], "failStrategy", "failStratgy"),
            "/spec/failStratgy",
        ),
        (
            WASM_PLUGIN,
            "WasmPlugin",
            lambda d: rename(d["spec"]["selector"], "matchLabels", "labels"),
            "/spec/selector/labels",
        ),
        (
            WASM_PLUGIN,
            "WasmPlugin",
            lambda d: rename(d["metadata"], "namespace", "namepsace"),
            "/metadata/namepsace",
        ),
        (
            GATEWAY_API_PLUGIN,
            "WasmPlugin",
            lambda d: rename(d["spec"]["targetRefs"][0], "name", "nmae"),
            "/spec/targetRefs/0/nmae",
        ),
        (
            ISTIO / "key-endpoint.yaml",
            "ServiceEntry",
            lambda d: rename(d["spec"], "resolution", "resolutoin"),
            "/spec/resolutoin",
        ),
        (
            ISTIO / "key-endpoint.yaml",
            "DestinationRule",
            lambda d: rename(d["spec"]["trafficPolicy"]["tls"], "sni", "sniHost"),
            "/spec/trafficPolicy/tls/sniHost",
        ),
    ],
    ids=[
        "wasmplugin-failStratgy",
        "selector-labels",
        "metadata-namepsace",
        "targetRefs-nmae",
        "serviceentry-resolutoin",
        "destinationrule-sniHost",
    ],
)
def test_istio_check_refuses_unknown_fields(
    node: str,
    tmp_path: Path,
    src: Path,
    kind: str,
    change: Callable[[dict], Any],
    pointer: str,
) -> None:
    broken = broken_copy(tmp_path, src, kind, change)
    out = schema_check(node, "istio", broken)
    assert out.returncode == 1, out.stdout + out.stderr
    (error,) = [line for line in out.stdout.splitlines() if line.startswith("ERROR ")]
    assert f"{kind}/" in error and f"{pointer}: unknown field" in error, error


def test_istio_check_uses_the_crd_types_and_enums(node: str, tmp_path: Path) -> None:
    broken = broken_copy(
        tmp_path,
        WASM_PLUGIN,
        "WasmPlugin",
        lambda d: d["spec"].update(failStrategy="FAIL_CLOSED"),
    )
    out = schema_check(node, "istio", broken)
    assert out.returncode == 1
    assert (
        "data/spec/failStrategy must be equal to one of the allowed values"
        in out.stdout
    ), out.stdout
    broken = broken_copy(
        tmp_path,
        ISTIO / "key-endpoint.yaml",
        "ServiceEntry",
        lambda d: d["spec"]["ports"][0].update(number="443"),
    )
    out = schema_check(node, "istio", broken)
    assert out.returncode == 1
    assert "data/spec/ports/0/number must be integer" in out.stdout, out.stdout


def test_plugin_config_is_free_form_as_in_the_crd(node: str, tmp_path: Path) -> None:
    # pluginConfig is x-kubernetes-preserve-unknown-fields: the filter's parser, not the CRD, checks it.
    ok = broken_copy(
        tmp_path,
        WASM_PLUGIN,
        "WasmPlugin",
        lambda d: d["spec"]["pluginConfig"].update(any_key=1),
    )
    out = schema_check(node, "istio", ok)
    assert out.returncode == 0 and out.stdout.startswith("OK "), out.stdout


def test_gateway_api_plugin_is_the_same_plugin() -> None:
    (main,) = docs_of(WASM_PLUGIN)
    (gw,) = docs_of(GATEWAY_API_PLUGIN)
    assert gw["metadata"]["name"] == main["metadata"]["name"]
    assert gw["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "alb-ingress"}
    ]
    assert "selector" not in gw["spec"] and "targetRefs" not in main["spec"]
    rest = lambda spec: {
        k: v for k, v in spec.items() if k not in ("selector", "targetRefs")
    }
    assert rest(gw["spec"]) == rest(main["spec"])


# --------------------------------------------------------------- kubernetes --


def k8s_docs() -> list[tuple[str, dict]]:
    out = []
    for path in ISTIO_FILES:
        for doc in docs_of(path):
            if doc["kind"] in K8S_KINDS:
                out.append((path.name, doc))
    return out


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_resources_match_kubernetes_schemas(version: str) -> None:
    docs = k8s_docs()
    assert sorted(d["kind"] for _, d in docs) == sorted(K8S_KINDS)
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(
                f"{name} {doc['kind']}: {'.'.join(map(str, e.path))}: {e.message}"
            )


def _k8s(kind: str) -> dict:
    (doc,) = [d for _, d in k8s_docs() if d["kind"] == kind]
    return copy.deepcopy(doc)


@pytest.mark.parametrize(
    "kind, change, path",
    [
        (
            "Deployment",
            lambda d: rename(
                d["spec"]["template"]["spec"]["containers"][0], "image", "imag"
            ),
            "spec.template.spec.containers.0",
        ),
        (
            "Deployment",
            lambda d: rename(
                d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"],
                "periodSeconds",
                "periodSecond",
            ),
            "spec.template.spec.containers.0.readinessProbe",
        ),
        (
            "Service",
            lambda d: rename(d["spec"]["ports"][0], "targetPort", "targetPrt"),
            "spec.ports.0",
        ),
        ("Secret", lambda d: rename(d, "stringData", "stringdata"), ""),
    ],
    ids=[
        "container-imag",
        "probe-periodSecond",
        "service-targetPrt",
        "secret-stringdata",
    ],
)
def test_kubernetes_check_refuses_unknown_fields(
    kind: str, change: Callable[[dict], Any], path: str
) -> None:
    doc = _k8s(kind)
    change(doc)
    with pytest.raises(kubernetes_validate.ValidationError) as err:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    assert ".".join(map(str, err.value.path)) == path
    assert "Additional properties are not allowed" in err.value.message, (
        err.value.message
    )


# ------------------------------------------------------------------ compose --


def test_compose_file_matches_the_compose_spec(node: str) -> None:
    out = schema_check(node, "compose", COMPOSE_FILE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        out.stdout.strip()
        == f"OK {COMPOSE_FILE.relative_to(REPO)} compose/alb-oidc-demo"
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda d: rename(d["services"]["alb-sim"], "command", "comand"),
            "/services/alb-sim: must NOT have additional properties (comand)",
        ),
        (
            lambda d: rename(d, "volumes", "volumez"),
            "/: must NOT have additional properties (volumez)",
        ),
        (
            lambda d: rename(
                d["services"]["alb-sim"]["build"], "dockerfile", "docker_file"
            ),
            "/services/alb-sim/build: must NOT have additional properties (docker_file)",
        ),
    ],
    ids=["service-comand", "top-volumez", "build-docker_file"],
)
def test_compose_check_refuses_unknown_fields(
    node: str, tmp_path: Path, change: Callable[[dict], Any], expected: str
) -> None:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    change(doc)
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = schema_check(node, "compose", broken)
    assert out.returncode == 1
    assert expected in out.stdout, out.stdout


def test_envoy_compose_yaml_is_not_a_compose_file(node: str) -> None:
    # envoy/compose.yaml is Envoy's bootstrap for the compose demo (validated by test_deploy_files.py).
    out = schema_check(node, "compose", REPO / "envoy" / "compose.yaml")
    assert out.returncode == 1 and "(static_resources)" in out.stdout
