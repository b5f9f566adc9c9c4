"""Tiny deterministic images for the oci tests: layers from small tars, written as layouts."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, Sequence, Tuple, Union

from llbkit import gojson
from llbkit.platforms import Platform, parse_platform
from llbkit.oci.types import (
    MT_OCI_CONFIG,
    MT_OCI_INDEX,
    MT_OCI_LAYER_GZIP,
    MT_OCI_MANIFEST,
    Descriptor,
    sha256_digest,
)


def layer(files: Dict[str, bytes]) -> Tuple[bytes, str]:
    """(gzip layer bytes, diff_id) holding ``files``; same input, same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size = len(files[name])
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(files[name]))
    raw = buf.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw)
    return out.getvalue(), sha256_digest(raw)


class LayoutBuilder:
    """Writes blobs into ``root/blobs/sha256`` and finally oci-layout + index.json."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, media_type: str) -> Descriptor:
        desc = Descriptor.of(data, media_type)
        (self.root / desc.blob_path).write_bytes(data)
        return desc

    def image(self, platform: Union[str, Platform], layers: Sequence[Dict[str, bytes]]) -> Descriptor:
        """A manifest descriptor (with platform) for an image with ``layers``."""
        plat = parse_platform(platform) if isinstance(platform, str) else platform
        layer_descs, diff_ids = [], []
        for files in layers:
            data, diff_id = layer(files)
            layer_descs.append(self.put(data, MT_OCI_LAYER_GZIP))
            diff_ids.append(diff_id)
        config = {"architecture": plat.architecture, "os": plat.os,
                  "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        if plat.variant:
            config["variant"] = plat.variant
        cfg = self.put(json.dumps(config, sort_keys=True).encode(), MT_OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST, "config": cfg.to_dict(),
                    "layers": [d.to_dict() for d in layer_descs]}
        return self.put(gojson.indent(manifest), MT_OCI_MANIFEST).replace(platform=plat)

    def finish(self, manifests: Sequence[Descriptor], nested: bool = False) -> Path:
        descs = [d.to_dict() for d in manifests]
        if nested:
            idx = self.put(gojson.indent({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                                          "manifests": descs}), MT_OCI_INDEX)
            descs = [idx.to_dict()]
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (self.root / "index.json").write_bytes(gojson.compact(
            {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": descs}))
        return self.root


def two_platform_layout(root: Path, nested: bool = True) -> Path:
    """amd64 and arm64/v8 images sharing their first layer."""
    b = LayoutBuilder(root)
    shared = {"etc/shared.txt": b"shared\n"}
    amd = b.image("linux/amd64", [shared, {"arch": b"amd64\n"}])
    # As written by tools that keep arm64's default variant (data, so not normalized).
    arm = b.image(Platform("linux", "arm64", "v8"), [shared, {"arch": b"arm64\n"}])
    return b.finish([amd, arm], nested=nested)
