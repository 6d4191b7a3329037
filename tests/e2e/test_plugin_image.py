"""The plugin's OCI image (deploy/istio/oci_image.py, run by `make istio-plugin`).

Istio checks a WasmPlugin's digest against the pulled image's manifest, so the
image must be reproducible: the same .wasm, the same digest. Checked here by
reading the image layout back with nothing but the OCI image spec in hand
(index -> manifest -> config + one gzip'd tar layer holding exactly
plugin.wasm with the .wasm's bytes), and, where skopeo is installed, by skopeo.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml
from requires import missing

from envoykit.paths import REPO

SCRIPT = REPO / "deploy" / "istio" / "oci_image.py"
PLUGINS = [
    REPO / "deploy" / "istio" / "wasmplugin.yaml",
    REPO / "deploy" / "istio" / "gateway-api" / "wasmplugin.yaml",
]
# Istio's image fetcher reads a single-layer standard OCI image (the "compat" variant of the Wasm image spec).
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
TAG = "0.1.0"
# A wasm module header and some bytes: the script must not care what the module does.
FAKE_WASM = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 40


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(wasm: Path, out: Path, *manifests: Path) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        str(SCRIPT),
        "--wasm",
        str(wasm),
        "--out",
        str(out),
        "--tag",
        TAG,
    ]
    for m in manifests:
        args += ["--manifest", str(m)]
    res = subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res


def printed_digest(res: subprocess.CompletedProcess) -> str:
    m = re.search(r"manifest digest (sha256:[0-9a-f]{64})$", res.stdout.splitlines()[0])
    assert m, res.stdout
    return m.group(1)


def blob(layout: Path, descriptor: dict) -> bytes:
    algo, hexdigest = descriptor["digest"].split(":")
    assert algo == "sha256"
    data = (layout / "blobs" / "sha256" / hexdigest).read_bytes()
    assert sha256(data) == descriptor["digest"], "a blob's name is not its sha256"
    assert len(data) == descriptor["size"]
    return data


def read_image(layout: Path) -> tuple[str, dict, dict, bytes]:
    """(manifest digest, manifest, config, layer) of the layout's single image."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    (desc,) = index["manifests"]
    assert desc["mediaType"] == MANIFEST_TYPE
    assert desc["annotations"] == {"org.opencontainers.image.ref.name": TAG}
    manifest = json.loads(blob(layout, desc))
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MANIFEST_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    (layer_desc,) = manifest["layers"]
    assert layer_desc["mediaType"] == LAYER_TYPE
    config = json.loads(blob(layout, manifest["config"]))
    layer = blob(layout, layer_desc)
    names = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    assert names == sorted(d["digest"].split(":")[1] for d in (desc, manifest["config"], layer_desc))
    return desc["digest"], manifest, config, layer


def assert_layer_holds(layer: bytes, config: dict, wasm: bytes) -> None:
    assert layer[:2] == b"\x1f\x8b" and layer[4:8] == b"\x00\x00\x00\x00", "gzip with mtime 0"
    tar_bytes = gzip.decompress(layer)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256(tar_bytes)]}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        (member,) = tar.getmembers()
        assert member.name == "plugin.wasm" and member.isfile()
        assert (member.mtime, member.uid, member.gid, member.mode) == (0, 0, 0, 0o644)
        assert member.uname == "" and member.gname == ""
        f = tar.extractfile(member)
        assert f is not None and f.read() == wasm


def test_image_layout_and_reproducibility(tmp_path: Path) -> None:
    wasm = tmp_path / "plugin.wasm"
    wasm.write_bytes(FAKE_WASM)
    first = build(wasm, tmp_path / "a")
    digest, manifest, config, layer = read_image(tmp_path / "a")
    assert printed_digest(first) == digest
    assert manifest["annotations"] == {"module.wasm.image/variant": "compat"}
    assert "created" not in config and "history" not in config
    assert (config["architecture"], config["os"]) == ("wasm", "wasip1")
    assert_layer_holds(layer, config, FAKE_WASM)

    # Again, elsewhere, later: byte-identical. Rebuilding in place leaves no stale blob.
    again = build(wasm, tmp_path / "b")
    assert printed_digest(again) == digest
    assert read_image(tmp_path / "b")[0] == digest
    for name in ("index.json", "oci-layout"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    # Another .wasm, another digest, and the old blobs are gone.
    wasm.write_bytes(FAKE_WASM + b"\x00")
    other = build(wasm, tmp_path / "a")
    assert printed_digest(other) != digest
    _, _, config, layer = read_image(tmp_path / "a")
    assert_layer_holds(layer, config, FAKE_WASM + b"\x00")


def test_the_filter_image(tmp_path: Path, wasm: Path) -> None:
    res = build(wasm, tmp_path / "img")
    digest, _, config, layer = read_image(tmp_path / "img")
    assert printed_digest(res) == digest
    assert_layer_holds(layer, config, wasm.read_bytes())
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        missing("skopeo is not installed: the image layout was checked, not skopeo's reading of it")
    ref = f"oci:{tmp_path / 'img'}:{TAG}"
    inspect = subprocess.run(
        [skopeo, "inspect", ref],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert inspect.returncode == 0, inspect.stderr
    info = json.loads(inspect.stdout)
    assert info["Digest"] == digest
    assert info["Layers"] == [sha256(layer)]
    # How docs/istio.md pushes it: a copy with --preserve-digests keeps the digest the manifest pins.
    copy_ref = f"oci:{tmp_path / 'copy'}:{TAG}"
    cp = subprocess.run(
        [skopeo, "copy", "--quiet", "--preserve-digests", ref, copy_ref],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 0, cp.stderr
    assert read_image(tmp_path / "copy")[0] == digest


def test_pinning_rewrites_only_the_url(tmp_path: Path) -> None:
    wasm = tmp_path / "plugin.wasm"
    wasm.write_bytes(FAKE_WASM)
    manifest = tmp_path / "wasmplugin.yaml"
    original = PLUGINS[0].read_text()
    # A user's own registry and a tag instead of a digest: the repository stays, the tag becomes the digest.
    user = re.sub(
        r"url: oci://\S+",
        "url: oci://registry.internal:5000/team/alb-oidc-plugin:1.2",
        original,
    )
    manifest.write_text(user)
    res = build(wasm, tmp_path / "img", manifest)
    digest = printed_digest(res)
    expected = re.sub(
        r"url: oci://\S+",
        f"url: oci://registry.internal:5000/team/alb-oidc-plugin@{digest}",
        original,
    )
    assert manifest.read_text() == expected
    assert f"url: oci://registry.internal:5000/team/alb-oidc-plugin@{digest}" in res.stdout
    build(wasm, tmp_path / "img", manifest)  # pinning again changes nothing
    assert manifest.read_text() == expected
    # A file without exactly one oci:// url is refused, not silently skipped.
    bad = tmp_path / "none.yaml"
    bad.write_text("spec:\n  url: file:///opt/plugin.wasm\n")
    res = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--wasm",
            str(wasm),
            "--out",
            str(tmp_path / "img"),
            "--tag",
            TAG,
            "--manifest",
            str(bad),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1 and "expected exactly one `url: oci://...` line, found 0" in res.stderr


def test_committed_plugins_pin_one_image_by_digest() -> None:
    urls = [yaml.safe_load(p.read_text())["spec"]["url"] for p in PLUGINS]
    assert urls[0] == urls[1]
    assert re.fullmatch(
        r"oci://registry\.example\.com/alb-oidc/alb-oidc-plugin@sha256:[0-9a-f]{64}",
        urls[0],
    )
    for p in PLUGINS:
        assert "sha256" not in yaml.safe_load(p.read_text())["spec"], "sha256: is for file:// and https:// urls"
