"""The layers of images, as an OCI layout tar holds them and as a registry serves them, to check
that an image keeps its base's layers (blob digests and diff_ids) as they are.

::

    ours = layout_images(Path("dist/app.oci.tar"))            # {platform: ImageLayers}
    base = registry_images("127.0.0.1:5050", "llbkit/busybox", "latest")
    assert ours["linux/amd64"].starts_with(base["linux/amd64"])
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

from llbkit.oci.registry import RegistryClient


@dataclass(frozen=True)
class ImageLayers:
    manifest: str  # the platform manifest's digest
    config: str  # its config's digest
    layers: Tuple[str, ...]  # layer blob digests, bottom first
    diff_ids: Tuple[str, ...]  # the config's rootfs.diff_ids

    def starts_with(self, base: "ImageLayers") -> bool:
        """Whether this image's bottom layers are ``base``'s, blob for blob and diff_id for diff_id."""
        n = len(base.layers)
        return self.layers[:n] == base.layers and self.diff_ids[:n] == base.diff_ids


def _platform(config: Dict[str, Any]) -> str:
    return "/".join(x for x in (config.get("os"), config.get("architecture"), config.get("variant"))
                    if x and x != "v8")


def layout_images(tar: Path) -> Dict[str, ImageLayers]:
    """``{platform: ImageLayers}`` of the image an OCI layout tar's index.json names."""
    with tarfile.open(tar) as t:
        def blob(digest: str) -> Any:
            f = t.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert f is not None
            return json.load(f)

        index = t.extractfile("index.json")
        assert index is not None
        top_digest = json.load(index)["manifests"][0]["digest"]
        top = blob(top_digest)
        digests = [m["digest"] for m in top["manifests"]] if "manifests" in top else [top_digest]
        out = {}
        for d in digests:
            manifest = blob(d)
            config = blob(manifest["config"]["digest"])
            out[_platform(config)] = ImageLayers(d, manifest["config"]["digest"],
                                                 tuple(l["digest"] for l in manifest["layers"]),
                                                 tuple(config["rootfs"]["diff_ids"]))
        return out


def registry_images(host: str, repo: str, reference: str) -> Tuple[str, Dict[str, ImageLayers]]:
    """What ``host/repo:reference`` names (its digest), and ``{platform: ImageLayers}`` of it."""
    client = RegistryClient(host)
    data, _, digest = client.get_manifest(repo, reference)
    doc = json.loads(data)
    digests = [m["digest"] for m in doc["manifests"]] if "manifests" in doc else [digest]
    out = {}
    for d in digests:
        manifest = json.loads(client.get_manifest(repo, d)[0])
        config = json.loads(client.get_blob(repo, manifest["config"]["digest"]))
        out[_platform(config)] = ImageLayers(d, manifest["config"]["digest"],
                                             tuple(l["digest"] for l in manifest["layers"]),
                                             tuple(config["rootfs"]["diff_ids"]))
    return digest, out
