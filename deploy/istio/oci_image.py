#!/usr/bin/env python3
"""Packs the filter's .wasm as the OCI image Istio's WasmPlugin pulls: reproducibly.

    python3 deploy/istio/oci_image.py --wasm deploy/istio/plugin.wasm --out target/istio-plugin \
        --tag 0.1.0 [--manifest deploy/istio/wasmplugin.yaml ...]

Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) holding one
image: the standard OCI image form of `FROM scratch` + `COPY plugin.wasm ./`, the
"compat" variant of the Wasm image spec that Istio's image fetcher reads
(manifest application/vnd.oci.image.manifest.v1+json, exactly one layer
application/vnd.oci.image.layer.v1.tar+gzip holding plugin.wasm, annotation
module.wasm.image/variant=compat). Istio verifies a WasmPlugin's digest against
the image MANIFEST's sha256, which this script prints and, with --manifest,
writes into each WasmPlugin's `url: oci://<repository>@sha256:<digest>` (the
repository part is kept as the user set it).

Nothing depends on the time or the machine: the tar entry has mtime 0,
uid/gid 0, mode 0644 and no user names; gzip has mtime 0 and no file name; the
config has no `created` or history; JSON is written with sorted keys. The same
.wasm gives the same digest (with the same zlib: gzip bytes are zlib's output).
Standard library only, no daemon.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_NAME = "plugin.wasm"  # the file name Istio looks for in the layer
COMPAT_ANNOTATION = {"module.wasm.image/variant": "compat"}
URL_LINE = re.compile(r"^(?P<lead>\s*url:\s*oci://)(?P<repo>[^\s@]+?)(?P<ref>@sha256:[0-9a-f]{64}|:[\w][\w.-]*)?\s*$")


def canonical_json(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(wasm: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(WASM_NAME)
        info.size = len(wasm)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    return buf.getvalue()


def gzip_fixed(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def descriptor(media_type: str, blob: bytes, **extra: object) -> dict:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        **extra,
    }


def build(wasm: bytes, out: Path, tag: str) -> str:
    """Writes the image layout to `out`; returns the manifest digest (sha256:...)."""
    tar = layer_tar(wasm)
    layer = gzip_fixed(tar)
    config = canonical_json(
        {
            # GOARCH/GOOS naming, as the image spec asks: what the content is built for.
            "architecture": "wasm",
            "os": "wasip1",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()],
            },
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor(CONFIG_TYPE, config),
            "layers": [descriptor(LAYER_TYPE, layer)],
            "annotations": COMPAT_ANNOTATION,
        }
    )
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                descriptor(
                    MANIFEST_TYPE,
                    manifest,
                    annotations={"org.opencontainers.image.ref.name": tag},
                )
            ],
        }
    )
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for old in blobs.iterdir():  # a rebuild leaves no stale blobs behind
        old.unlink()
    for blob in (layer, config, manifest):
        (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_bytes(index)
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def pin(manifest: Path, digest: str) -> str:
    """Rewrites the WasmPlugin's `url: oci://REPO[:tag|@sha256:...]` to `oci://REPO@<digest>`."""
    lines = manifest.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if URL_LINE.match(line)]
    if len(hits) != 1:
        raise SystemExit(f"{manifest}: expected exactly one `url: oci://...` line, found {len(hits)}")
    (i,) = hits
    m = URL_LINE.match(lines[i])
    assert m is not None
    url = f"oci://{m['repo']}@{digest}"
    lines[i] = f"{m['lead']}{m['repo']}@{digest}\n"
    manifest.write_text("".join(lines))
    return url


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--wasm", type=Path, required=True, help="the filter's .wasm")
    ap.add_argument(
        "--out",
        type=Path,
        required=True,
        help="OCI image layout directory to (re)write",
    )
    ap.add_argument("--tag", required=True, help="ref name in index.json (skopeo: oci:OUT:TAG)")
    ap.add_argument(
        "--manifest",
        type=Path,
        action="append",
        default=[],
        help="WasmPlugin YAML to pin (repeatable)",
    )
    args = ap.parse_args(argv)
    digest = build(args.wasm.read_bytes(), args.out, args.tag)
    print(f"image {args.out} (oci:{args.out}:{args.tag}) manifest digest {digest}")
    for manifest in args.manifest:
        print(f"{manifest}: url: {pin(manifest, digest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
