"""Deployment files, checked without Docker or Kubernetes.

* envoy/docker-compose.yaml: parses, every Dockerfile / config / mount it
  references exists, ports and addresses agree with envoy/compose.yaml, the
  stand-in signs with what the filter trusts, and envoy/compose.yaml (like
  envoy/demo.yaml) passes `envoy --mode validate`.
* deploy/istio/: the WasmPlugin's pluginConfig passes the filter's REAL config
  parser (`alb-sim check-config`, which calls alb_oidc::config::parse), shows
  every setting of docs/filter-contract.md, and the manifests agree with each
  other (names, namespaces, ports, Istio cluster names, the Secret key).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from envoykit.paths import ALB_SIM_BIN, BUILD_HINT, REPO
from envoykit.process import envoy_validate, log_tail

ENVOY_DIR = REPO / "envoy"
COMPOSE_FILE = ENVOY_DIR / "docker-compose.yaml"
COMPOSE_ENVOY = ENVOY_DIR / "compose.yaml"
DEMO_ENVOY = ENVOY_DIR / "demo.yaml"
ISTIO = REPO / "deploy" / "istio"
CONTRACT = REPO / "docs" / "filter-contract.md"
ALB_SIM = ALB_SIM_BIN
WASM_REL = "target/wasm32-wasip1/release/alb_oidc.wasm"  # what `make wasm` writes


# ------------------------------------------------------------------ helpers --


def check_config(cfg: Any) -> subprocess.CompletedProcess:
    """`alb-sim check-config -` with the configuration as JSON on stdin."""
    if not ALB_SIM.exists():
        pytest.fail(f"{ALB_SIM} not built: {BUILD_HINT}")
    text = cfg if isinstance(cfg, str) else json.dumps(cfg)
    return subprocess.run([str(ALB_SIM), "check-config", "-"], input=text, capture_output=True, text=True, timeout=30)


def wasm_filter_configs(boot: dict) -> list[dict]:
    """Every alb-oidc filter configuration (parsed JSON) in an Envoy bootstrap."""
    found = []
    for listener in boot["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                for hf in f.get("typed_config", {}).get("http_filters", []):
                    if hf["name"] == "envoy.filters.http.wasm":
                        found.append(json.loads(hf["typed_config"]["config"]["configuration"]["value"]))
    return found


def wasm_filenames(boot: dict) -> list[str]:
    names = []
    for listener in boot["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                for hf in f.get("typed_config", {}).get("http_filters", []):
                    if hf["name"] == "envoy.filters.http.wasm":
                        names.append(hf["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"])
    return names


def clusters(boot: dict) -> dict[str, tuple[str, int, str]]:
    """cluster name -> (address, port, type) of its single endpoint."""
    out = {}
    for c in boot["static_resources"]["clusters"]:
        eps = [ep for group in c["load_assignment"]["endpoints"] for ep in group["lb_endpoints"]]
        assert len(eps) == 1, c["name"]
        sa = eps[0]["endpoint"]["address"]["socket_address"]
        out[c["name"]] = (sa["address"], int(sa["port_value"]), c.get("type", "STATIC"))
    return out


def listener_port(boot: dict) -> int:
    (listener,) = boot["static_resources"]["listeners"]
    return int(listener["address"]["socket_address"]["port_value"])


def admin_port(boot: dict) -> int:
    return int(boot["admin"]["address"]["socket_address"]["port_value"])


def flags(args: list[str]) -> dict[str, str]:
    """['--a=1', '--b', '2', 'run'] -> {'a': '1', 'b': '2'} (positional words ignored)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = str(args[i])
        if a.startswith("--"):
            if "=" in a:
                k, v = a[2:].split("=", 1)
            elif i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
                k, v = a[2:], str(args[i + 1])
                i += 1
            else:
                k, v = a[2:], "true"
            out[k] = v
        i += 1
    return out


def port_of(hostport: str) -> int:
    return int(hostport.rsplit(":", 1)[1])


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        out.append((instr.upper(), rest.strip()))
    return out


def validate(config: Path) -> None:
    out = envoy_validate(config, cwd=REPO)
    assert out.returncode == 0 and "OK" in out.stdout, log_tail(out.stdout, 40)
    assert "configuration accepted" in out.stdout  # the filter ran on_configure on it


# ------------------------------------------------------------------ compose --


@pytest.fixture(scope="module")
def compose() -> dict:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def compose_envoy() -> dict:
    return yaml.safe_load(COMPOSE_ENVOY.read_text())


def test_compose_services(compose: dict) -> None:
    assert set(compose["services"]) == {"alb-sim", "envoy", "user-service", "demo-upstream"}
    for name, svc in compose["services"].items():
        for dep in svc.get("depends_on", []):
            assert dep in compose["services"], f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if not src.startswith((".", "/")):
                assert src in (compose.get("volumes") or {}), f"{name}: named volume {src} not declared"
    envoy_image = compose["services"]["envoy"]["image"]
    assert envoy_image.startswith("envoyproxy/envoy:v1.40"), envoy_image


def test_compose_builds_reference_existing_files(compose: dict) -> None:
    rust = {"alb-sim", "user-service"}
    built = set()
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        built.add(name)
        context = (COMPOSE_FILE.parent / svc["build"]["context"]).resolve()
        assert context == REPO, f"{name}: build context should be the repo root, is {context}"
        dockerfile = context / svc["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        instrs = dockerfile_instructions(dockerfile)
        froms = [args for i, args in instrs if i == "FROM"]
        if name in rust:
            assert len(froms) >= 2 and froms[0].startswith("rust:1.95"), f"{name}: multi-stage from rust:1.95: {froms}"
        for instr, args in instrs:
            if instr in ("COPY", "ADD") and "--from=" not in args:
                words = [w for w in args.split() if not w.startswith("--")]
                for src in words[:-1]:
                    assert (context / src).exists(), f"{dockerfile.name}: COPY source {src} missing"
    assert built == {"alb-sim", "user-service", "demo-upstream"}


def test_dockerignore_keeps_the_workspace(compose: dict) -> None:
    patterns = [
        ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert "/target" in patterns and "/.venv" in patterns and ".git" in patterns
    members = tomllib_members()
    for keep in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "proto",
        "build.rs",
        "rust-toolchain.toml",
        "envoy/demo_upstream.py",
        "alb-sim/identities.example.json",
        *members,
    ]:
        for p in patterns:
            bare = p.lstrip("/")
            assert not (keep == bare or keep.startswith(bare.rstrip("/") + "/")), f".dockerignore drops {keep} ({p})"


def tomllib_members() -> list[str]:
    text = (REPO / "Cargo.toml").read_text()
    m = re.search(r"members\s*=\s*\[([^\]]*)\]", text)
    assert m
    return [x for x in re.findall(r'"([^"]+)"', m.group(1)) if x != "."]


def test_compose_mounts_exist(compose: dict, wasm: Path) -> None:
    envoy = compose["services"]["envoy"]
    mounts = {}
    for vol in envoy["volumes"]:
        src, dst = vol.split(":")[:2]
        assert src.startswith("."), vol
        host = (COMPOSE_FILE.parent / src).resolve()
        assert host.exists(), f"mount source {src} ({host}) missing"
        mounts[dst] = host
    # The Envoy config Envoy is started with is envoy/compose.yaml.
    cfg_path = flags(envoy["command"])["config-path"]
    assert mounts[cfg_path] == COMPOSE_ENVOY.resolve()
    # The .wasm `make wasm` writes, mounted where compose.yaml's relative filename points.
    (filename,) = wasm_filenames(yaml.safe_load(COMPOSE_ENVOY.read_text()))
    assert filename == WASM_REL
    target = str(Path(envoy["working_dir"]) / filename)
    assert mounts[target] == (REPO / WASM_REL).resolve()


def test_compose_ports_and_addresses_agree(compose: dict, compose_envoy: dict) -> None:
    svcs = compose["services"]
    cl = clusters(compose_envoy)
    assert set(cl) == {"demo_upstream", "alb_public_keys", "user_service"}
    for name, (addr, _, typ) in cl.items():
        assert addr in svcs, f"cluster {name} points at {addr}, not a compose service"
        assert typ in ("STRICT_DNS", "LOGICAL_DNS"), f"cluster {name}: a service name needs DNS, not {typ}"

    def published(svc: dict) -> set[int]:
        return {int(str(p).rsplit(":", 1)[1]) for p in svc.get("ports", [])}

    def exposed(svc: dict) -> set[int]:
        return {int(p) for p in svc.get("expose", [])} | published(svc)

    # Envoy: the stand-in forwards to its listener; listener and admin published.
    lport, aport = listener_port(compose_envoy), admin_port(compose_envoy)
    alb = flags(svcs["alb-sim"]["command"])
    up = urlparse(alb["upstream"])
    assert (up.hostname, up.port) == ("envoy", lport)
    assert {lport, aport} <= published(svcs["envoy"])
    for p in svcs["envoy"]["ports"]:
        assert str(p).startswith("127.0.0.1:"), f"publish on loopback only: {p}"
    # alb-sim: key endpoint = the filter's key cluster; the proxy is what people open.
    assert cl["alb_public_keys"] == ("alb-sim", port_of(alb["keys-listen"]), cl["alb_public_keys"][2])
    assert port_of(alb["proxy-listen"]) in published(svcs["alb-sim"])
    # The user service listens where the user_service cluster points.
    us = svcs["user-service"]
    listen = us.get("environment", {}).get("ALB_OIDC_LISTEN") or flags(us["command"]).get("listen")
    assert cl["user_service"][:2] == ("user-service", port_of(listen))
    assert port_of(listen) in exposed(us)
    # Groups from the stand-in's Cognito-style custom:groups.
    # Groups come from the verified access token's cognito:groups (envoy/compose.yaml).
    assert "groups-claim" not in flags(us["command"])
    # The demo upstream.
    du = flags(svcs["demo-upstream"]["command"])
    assert cl["demo_upstream"][:2] == ("demo-upstream", int(du["port"]))
    assert int(du["port"]) in exposed(svcs["demo-upstream"]) and du["host"] == "0.0.0.0"


def test_compose_stand_in_signs_what_the_filter_trusts(compose: dict, compose_envoy: dict) -> None:
    (cfg,) = wasm_filter_configs(compose_envoy)
    alb = flags(compose["services"]["alb-sim"]["command"])
    arns = cfg["alb_arns"] if isinstance(cfg["alb_arns"], list) else [cfg["alb_arns"]]
    assert alb["signer"] in arns
    assert alb["issuer"] == cfg["issuer"] and alb["client"] == cfg["client_id"]
    assert "/healthz" in cfg["exempt_paths"]
    assert cfg["key_cluster"] == "alb_public_keys" and cfg["user_service"]["cluster"] == "user_service"


def test_compose_is_the_demo_topology(compose_envoy: dict) -> None:
    demo = yaml.safe_load(DEMO_ENVOY.read_text())
    assert wasm_filter_configs(compose_envoy) == wasm_filter_configs(demo)
    assert {k: v[1] for k, v in clusters(compose_envoy).items()} == {k: v[1] for k, v in clusters(demo).items()}
    assert listener_port(compose_envoy) == listener_port(demo) and admin_port(compose_envoy) == admin_port(demo)


@pytest.mark.parametrize("config", [COMPOSE_ENVOY, DEMO_ENVOY], ids=lambda p: p.name)
def test_envoy_config_validates(config: Path, wasm: Path) -> None:
    validate(config)


@pytest.mark.parametrize(
    "config", sorted(p for p in ENVOY_DIR.glob("*.yaml") if p != COMPOSE_FILE), ids=lambda p: p.name
)
def test_envoy_filter_configs_pass_the_real_parser(config: Path) -> None:
    doc = yaml.safe_load(config.read_text())
    cfgs = wasm_filter_configs(doc)
    assert cfgs, f"{config.name} has no alb-oidc filter"
    for cfg in cfgs:
        out = check_config(cfg)
        assert out.returncode == 0 and out.stdout.startswith("OK"), out.stderr


# ------------------------------------------------------------------- istio --


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    docs: dict[tuple[str, str], dict] = {}
    for path in sorted(ISTIO.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") == "Kustomization":
                continue
            key = (doc["kind"], doc["metadata"].get("name", path.name))
            assert key not in docs, f"duplicate {key}"
            doc["__file__"] = path.name
            docs[key] = doc
    return docs


@pytest.fixture(scope="module")
def plugin(manifests: dict) -> dict:
    return manifests[("WasmPlugin", "alb-oidc")]


def test_istio_plugin_image(tmp_path: Path) -> None:
    instrs = dockerfile_instructions(ISTIO / "Dockerfile")
    assert instrs == [("FROM", "scratch"), ("COPY", "plugin.wasm ./")]
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/istio/plugin.wasm"], cwd=str(REPO))
    assert ignored.returncode == 0, "deploy/istio/plugin.wasm must be gitignored"
    # `make istio-plugin` copies the .wasm there and prints its sha256.
    make = (REPO / "Makefile").read_text()
    recipe = make.split("\nistio-plugin:", 1)[1].split("\n\n", 1)[0]
    assert "deploy/istio/plugin.wasm" in make and "sha256" in recipe and "cp $(WASM)" in recipe


def test_wasm_plugin_shape(plugin: dict) -> None:
    assert plugin["apiVersion"] == "extensions.istio.io/v1alpha1"
    spec = plugin["spec"]
    assert spec["phase"] == "AUTHN"
    assert spec["failStrategy"] == "FAIL_CLOSE"
    assert spec["url"].startswith("oci://")
    assert spec["selector"]["matchLabels"]


def test_plugin_config_passes_the_filter_parser(plugin: dict) -> None:
    cfg = plugin["spec"]["pluginConfig"]
    # istiod serialises pluginConfig (a protobuf Struct) to JSON; whole numbers stay integers.
    out = check_config(cfg)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK "), out.stdout
    assert f"key_cluster={cfg['key_cluster']}" in out.stdout
    assert f"user_service={cfg['user_service']['cluster']}" in out.stdout


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c.update(key_clustr=c.pop("key_cluster")), "key_clustr"),
        (lambda c: c.update(key_cache_ttl_s="3600"), "key_cache_ttl_s"),
        (lambda c: c["user_service"].update(failure_mode="open"), "user_service.failure_mode"),
        (lambda c: c.update(alb_arns=["arn:aws:s3:::bucket"]), "alb_arns[0]"),
        (lambda c: c["headers"].update(user="x-amzn-oidc-data"), "headers.user"),
    ],
    ids=["unknown-field", "string-number", "failure-mode", "not-an-alb-arn", "alb-header-name"],
)
def test_check_config_names_the_bad_field(plugin: dict, change: Any, field: str) -> None:
    cfg = copy.deepcopy(plugin["spec"]["pluginConfig"])
    change(cfg)
    out = check_config(cfg)
    assert out.returncode != 0
    assert f"field `{field}`" in out.stderr, out.stderr


def contract_fields() -> tuple[list[str], list[str], list[str]]:
    """Top-level fields, `headers` keys and `user_service` keys from docs/filter-contract.md."""
    text = CONTRACT.read_text()
    top = re.findall(r"^\| `([a-z_]+)` \|", text, re.M)
    us_row = next(ln for ln in text.splitlines() if ln.startswith("| `user_service` |"))
    us = re.findall(r"`([a-z_]+)` \(", us_row)
    hdr = re.findall(r"`([a-z_]+)` = `x-auth-", text)
    return top, hdr, us


def test_plugin_config_shows_every_setting(plugin: dict) -> None:
    top, hdr, us = contract_fields()
    assert len(top) >= 20 and "user_service" in top and "key_cluster" in top, top
    cfg = plugin["spec"]["pluginConfig"]
    raw = (ISTIO / plugin["__file__"]).read_text()
    for field in top:
        if field not in cfg:
            # Only a setting that must stay unset for ALB tokens from Cognito
            # (no `aud`; no groups in the user claims) may be shown as a comment.
            shown = re.search(rf"^\s*# {field}:", raw, re.M)
            assert field in ("audience", "groups_claim") and shown, f"pluginConfig lacks {field}"
    assert sorted(cfg["headers"]) == sorted(hdr) and len(hdr) == 10
    assert sorted(cfg["user_service"]) == sorted(us) and "cluster" in us
    assert cfg["claim_headers"]
    assert cfg["bypass_validation"] is False and cfg["allow_missing"] is False


def test_key_endpoint_manifests_agree(manifests: dict, plugin: dict) -> None:
    cfg = plugin["spec"]["pluginConfig"]
    region = cfg["region"]
    host = f"public-keys.auth.elb.{region}.amazonaws.com"
    for arn in cfg["alb_arns"]:
        assert arn.split(":")[3] == region, f"ALB ARN {arn} is not in {region}"
    se = manifests[("ServiceEntry", "alb-public-keys")]["spec"]
    assert se["hosts"] == [host]
    assert se["location"] == "MESH_EXTERNAL" and se["resolution"] == "DNS"
    (port,) = se["ports"]
    assert port["number"] == 443 and port["protocol"] == "HTTPS"
    assert cfg["key_cluster"] == f"outbound|{port['number']}||{host}"
    assert cfg["key_authority"] == host and cfg["key_path_prefix"] == "/"
    dr = manifests[("DestinationRule", "alb-public-keys")]["spec"]
    assert dr["host"] == host
    tls = dr["trafficPolicy"]["tls"]
    assert tls["mode"] == "SIMPLE" and tls["sni"] == host
    ns = {manifests[(k, "alb-public-keys")]["metadata"]["namespace"] for k in ("ServiceEntry", "DestinationRule")}
    assert ns == {plugin["metadata"]["namespace"]}


def test_user_service_manifests_agree(manifests: dict, plugin: dict) -> None:
    dep = manifests[("Deployment", "alb-oidc-user-service")]
    svc = manifests[("Service", "alb-oidc-user-service")]
    secret = manifests[("Secret", "alb-oidc-user-service-db")]
    namespaces = [m["metadata"]["name"] for (k, _), m in manifests.items() if k == "Namespace"]
    ns = svc["metadata"]["namespace"]
    assert namespaces == [ns]
    for m in (dep, secret, manifests[("ServiceAccount", "alb-oidc-user-service")]):
        assert m["metadata"]["namespace"] == ns

    # The filter's cluster is Istio's name for this Service's gRPC port.
    (sport,) = svc["spec"]["ports"]
    assert sport["name"].startswith("grpc-") and sport.get("appProtocol") == "grpc"
    cluster = plugin["spec"]["pluginConfig"]["user_service"]["cluster"]
    assert cluster == f"outbound|{sport['port']}||{svc['metadata']['name']}.{ns}.svc.cluster.local"

    # Service -> pods -> container port -> the port the service listens on and is probed on.
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pod["spec"]["serviceAccountName"] == "alb-oidc-user-service"
    (c,) = pod["spec"]["containers"]
    by_name = {p["name"]: p["containerPort"] for p in c["ports"]}
    target = sport["targetPort"]
    cport = by_name[target] if isinstance(target, str) else target
    assert cport in by_name.values()
    env = {e["name"]: e for e in c["env"]}
    assert port_of(env["ALB_OIDC_LISTEN"]["value"]) == cport
    assert c["readinessProbe"]["grpc"]["port"] in (cport, target)
    assert c["args"] == ["serve"]

    # The database URL comes from the Secret, under the key the example defines.
    ref = env["ALB_OIDC_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret.get("stringData", {}) or ref["key"] in secret.get("data", {})
    assert "value" not in env["ALB_OIDC_DATABASE_URL"]
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > int(
        env["ALB_OIDC_SHUTDOWN_TIMEOUT"]["value"]
    )


def test_kustomization_lists_the_manifests(manifests: dict) -> None:
    kust = yaml.safe_load((ISTIO / "kustomization.yaml").read_text())
    for res in kust["resources"]:
        assert (ISTIO / res).is_file(), res
    assert "user-service-secret.example.yaml" not in kust["resources"], "never apply the example Secret"
    files = {m["__file__"] for m in manifests.values()}
    assert files - set(kust["resources"]) == {"user-service-secret.example.yaml"}


def test_user_service_destination_rule_targets_the_service(manifests: dict) -> None:
    svc = manifests[("Service", "alb-oidc-user-service")]
    dr = manifests[("DestinationRule", "alb-oidc-user-service")]
    fqdn = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    assert dr["spec"]["host"] == fqdn
    assert dr["metadata"]["namespace"] == svc["metadata"]["namespace"]
    keepalive = dr["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["tcpKeepalive"]
    assert keepalive["time"] and keepalive["interval"]
