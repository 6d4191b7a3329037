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

import kubernetes_validate
import pytest
import yaml
from requires import missing

from envoykit.paths import REPO

ISTIO = REPO / "deploy" / "istio"
WASM_PLUGIN = ISTIO / "wasmplugin.yaml"
GATEWAY_API_PLUGIN = ISTIO / "gateway-api" / "wasmplugin.yaml"
ISTIO_FILES = sorted(ISTIO.glob("*.yaml")) + sorted((ISTIO / "gateway-api").glob("*.yaml"))
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
    names = [str(f.relative_to(REPO)) if f.is_relative_to(REPO) else str(f) for f in files]
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


def broken_copy(tmp_path: Path, src: Path, kind: str, change: Callable[[dict], Any]) -> Path:
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
    ok = sorted(line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith("OK "))

    def rel(p: Path) -> str:
        return str(p.relative_to(REPO))

    assert ok == sorted(
        [
            f"{rel(ISTIO / 'key-endpoint.yaml')} ServiceEntry/alb-public-keys",
            f"{rel(ISTIO / 'key-endpoint.yaml')} DestinationRule/alb-public-keys",
            f"{rel(ISTIO / 'idp-endpoint.yaml')} ServiceEntry/idp-jwks",
            f"{rel(ISTIO / 'idp-endpoint.yaml')} DestinationRule/idp-jwks",
            f"{rel(ISTIO / 'user-service.yaml')} DestinationRule/alb-oidc-user-service",
            f"{rel(WASM_PLUGIN)} WasmPlugin/alb-oidc",
            f"{rel(GATEWAY_API_PLUGIN)} WasmPlugin/alb-oidc",
        ]
    ), out.stdout
    # Everything else is a Kubernetes resource (checked below) or the Kustomization.
    skipped = [line.split()[2] for line in out.stdout.splitlines() if line.startswith("SKIP ")]
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


# Broken copies, all checked in one run of the script (node starts in about a second).
ISTIO_BROKEN = {
    "wasmplugin-failStratgy": (WASM_PLUGIN, "WasmPlugin",
                               lambda d: rename(d["spec"], "failStrategy", "failStratgy"),
                               "/spec/failStratgy: unknown field"),
    "selector-labels": (WASM_PLUGIN, "WasmPlugin",
                        lambda d: rename(d["spec"]["selector"], "matchLabels", "labels"),
                        "/spec/selector/labels: unknown field"),
    "metadata-namepsace": (WASM_PLUGIN, "WasmPlugin",
                           lambda d: rename(d["metadata"], "namespace", "namepsace"),
                           "/metadata/namepsace: unknown field"),
    "targetRefs-nmae": (GATEWAY_API_PLUGIN, "WasmPlugin",
                        lambda d: rename(d["spec"]["targetRefs"][0], "name", "nmae"),
                        "/spec/targetRefs/0/nmae: unknown field"),
    "serviceentry-resolutoin": (ISTIO / "key-endpoint.yaml", "ServiceEntry",
                                lambda d: rename(d["spec"], "resolution", "resolutoin"),
                                "/spec/resolutoin: unknown field"),
    "destinationrule-sniHost": (ISTIO / "key-endpoint.yaml", "DestinationRule",
                                lambda d: rename(d["spec"]["trafficPolicy"]["tls"], "sni", "sniHost"),
                                "/spec/trafficPolicy/tls/sniHost: unknown field"),
    # The CRDs' own types and enums, from the package's validators.
    "failStrategy-enum": (WASM_PLUGIN, "WasmPlugin", lambda d: d["spec"].update(failStrategy="FAIL_CLOSED"),
                          "data/spec/failStrategy must be equal to one of the allowed values"),
    "port-number-type": (ISTIO / "key-endpoint.yaml", "ServiceEntry",
                         lambda d: d["spec"]["ports"][0].update(number="443"),
                         "data/spec/ports/0/number must be integer"),
}  # fmt: skip


def run_cases(node: str, mode: str, root: Path, copies: dict[str, Path]) -> dict[str, list[str]]:
    """One run of the script over every copy: case -> the lines about its file."""
    out = schema_check(node, mode, *copies.values())
    assert not out.stderr, out.stderr
    lines: dict[str, list[str]] = {case: [] for case in copies}
    for line in out.stdout.splitlines():
        case = Path(line.split(" ", 2)[1]).relative_to(root).parts[0]
        lines[case].append(line)
    return lines


@pytest.fixture(scope="module")
def istio_broken(node: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("istio-broken")
    copies = {}
    for case, (src, kind, change, _) in ISTIO_BROKEN.items():
        (root / case).mkdir()
        copies[case] = broken_copy(root / case, src, kind, change)
    # Positive control: pluginConfig is x-kubernetes-preserve-unknown-fields (the
    # filter's parser checks it, not the CRD), so any key there passes.
    (root / "free-form").mkdir()
    copies["free-form"] = broken_copy(root / "free-form", WASM_PLUGIN, "WasmPlugin",
                                      lambda d: d["spec"]["pluginConfig"].update(any_key=1))  # fmt: skip
    return run_cases(node, "istio", root, copies)


@pytest.mark.parametrize("case", ISTIO_BROKEN)
def test_istio_check_refuses_broken_copies(istio_broken: dict[str, list[str]], case: str) -> None:
    _, kind, _, expected = ISTIO_BROKEN[case]
    errors = [line for line in istio_broken[case] if line.startswith("ERROR ")]
    assert len(errors) == 1, istio_broken[case]
    assert f" {kind}/" in errors[0] and expected in errors[0], errors[0]


def test_plugin_config_is_free_form_as_in_the_crd(
    istio_broken: dict[str, list[str]],
) -> None:
    (line,) = istio_broken["free-form"]
    assert line.startswith("OK ") and line.endswith(" WasmPlugin/alb-oidc"), line


def test_gateway_api_plugin_is_the_same_plugin() -> None:
    (main,) = docs_of(WASM_PLUGIN)
    (gw,) = docs_of(GATEWAY_API_PLUGIN)
    assert gw["metadata"]["name"] == main["metadata"]["name"]
    assert gw["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "alb-ingress"}
    ]
    assert "selector" not in gw["spec"] and "targetRefs" not in main["spec"]

    def rest(spec: dict) -> dict:
        return {k: v for k, v in spec.items() if k not in ("selector", "targetRefs")}

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
            pytest.fail(f"{name} {doc['kind']}: {'.'.join(map(str, e.path))}: {e.message}")


def _k8s(kind: str) -> dict:
    (doc,) = [d for _, d in k8s_docs() if d["kind"] == kind]
    return copy.deepcopy(doc)


@pytest.mark.parametrize(
    "kind, change, path",
    [
        (
            "Deployment",
            lambda d: rename(d["spec"]["template"]["spec"]["containers"][0], "image", "imag"),
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
def test_kubernetes_check_refuses_unknown_fields(kind: str, change: Callable[[dict], Any], path: str) -> None:
    doc = _k8s(kind)
    change(doc)
    with pytest.raises(kubernetes_validate.ValidationError) as err:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    assert ".".join(map(str, err.value.path)) == path
    assert "Additional properties are not allowed" in err.value.message, err.value.message


# ------------------------------------------------------------------ compose --


def test_compose_file_matches_the_compose_spec(node: str) -> None:
    out = schema_check(node, "compose", COMPOSE_FILE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == f"OK {COMPOSE_FILE.relative_to(REPO)} compose/alb-oidc-demo"


COMPOSE_BROKEN = {
    "service-comand": (lambda d: rename(d["services"]["alb-sim"], "command", "comand"),
                       "/services/alb-sim: must NOT have additional properties (comand)"),
    "top-volumez": (lambda d: rename(d, "volumes", "volumez"), "/: must NOT have additional properties (volumez)"),
    "build-docker_file": (lambda d: rename(d["services"]["alb-sim"]["build"], "dockerfile", "docker_file"),
                          "/services/alb-sim/build: must NOT have additional properties (docker_file)"),
}  # fmt: skip


@pytest.fixture(scope="module")
def compose_broken(node: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("compose-broken")
    copies = {}
    for case, (change, _) in COMPOSE_BROKEN.items():
        doc = yaml.safe_load(COMPOSE_FILE.read_text())
        change(doc)
        (root / case).mkdir()
        copies[case] = root / case / "docker-compose.yaml"
        copies[case].write_text(yaml.safe_dump(doc, sort_keys=False))
    # envoy/compose.yaml is Envoy's bootstrap for the compose demo, not a compose
    # file (test_deploy_files.py validates it with Envoy): the schema must say so.
    (root / "envoy-bootstrap").mkdir()
    copies["envoy-bootstrap"] = root / "envoy-bootstrap" / "compose.yaml"
    shutil.copyfile(REPO / "envoy" / "compose.yaml", copies["envoy-bootstrap"])
    return run_cases(node, "compose", root, copies)


@pytest.mark.parametrize("case", COMPOSE_BROKEN)
def test_compose_check_refuses_unknown_fields(compose_broken: dict[str, list[str]], case: str) -> None:
    (line,) = compose_broken[case]
    assert line.startswith("ERROR ") and COMPOSE_BROKEN[case][1] in line, line


def test_envoy_compose_yaml_is_not_a_compose_file(
    compose_broken: dict[str, list[str]],
) -> None:
    (line,) = compose_broken["envoy-bootstrap"]
    assert line.startswith("ERROR ") and "(static_resources)" in line, line
