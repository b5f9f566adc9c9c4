"""Assemble one OCI index from single-platform images, and split an index back into them.

:func:`assemble` takes the images in the declared platform order (the caller stores per-platform
results by input index, never by completion order) and writes the index as BuildKit's exporter
does (:mod:`llbkit.gojson`): ``schemaVersion``, ``mediaType``, ``manifests`` (each descriptor
carrying its platform and optional annotations), then sorted ``annotations``. Same inputs, same
bytes, whichever worker built each platform. Blobs shared between platforms are kept once.

:func:`split` reads a layout (or any blob source) and returns its platform images, skipping
attestation manifests (platform ``unknown/unknown``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from llbkit import gojson
from llbkit.platforms import Platform, find_platform
from llbkit.oci.errors import LayoutError
from llbkit.oci.layout import (
    BlobEntry,
    BlobSource,
    MemoryBlobs,
    OCILayout,
    layout_files,
    read_json,
    read_verified,
    write_layout_tar,
)
from llbkit.oci.types import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MT_OCI_INDEX,
    Descriptor,
)


@dataclass(frozen=True)
class PlatformImage:
    """One single-platform image: its manifest (bytes and descriptor), config and layers.

    ``source`` is where its blobs can be read (the layout or worker output it came from).
    ``annotations`` go on its descriptor in an assembled index.
    """

    platform: Platform
    manifest: Descriptor
    manifest_bytes: bytes
    config: Descriptor
    layers: Tuple[Descriptor, ...]
    source: BlobSource
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def blobs(self) -> Tuple[Descriptor, ...]:
        """Config and layers (not the manifest)."""
        return (self.config,) + self.layers

    @property
    def size(self) -> int:
        """Manifest + config + layers, in bytes (compressed, as stored)."""
        return self.manifest.size + sum(d.size for d in self.blobs)

    def blob_entries(self) -> List[BlobEntry]:
        manifest_src = MemoryBlobs({self.manifest.digest: self.manifest_bytes})
        return [(self.manifest, manifest_src)] + [(d, self.source) for d in self.blobs]


def image_from_manifest(
    source: BlobSource,
    manifest: Descriptor,
    platform: Optional[Platform] = None,
    annotations: Optional[Mapping[str, str]] = None,
) -> PlatformImage:
    """Read and check the manifest ``manifest`` from ``source``; ``platform`` defaults to the
    descriptor's, else the config's ``os``/``architecture``/``variant``."""
    where = f"manifest {manifest.digest} in {source.describe()}"
    if manifest.media_type not in MANIFEST_TYPES:
        raise LayoutError(f"{where}: media type {manifest.media_type!r} is not an image manifest")
    data = read_verified(source, manifest)
    body = read_json(MemoryBlobs({manifest.digest: data}), manifest)
    # BuildKit writes an image without layers (`scratch` with config only) as `"layers": null`
    # (Go's nil slice), so null counts as no layers; anything else that is not a list is wrong.
    raw_layers = body.get("layers", ()) if isinstance(body, dict) else None
    if raw_layers is None and isinstance(body, dict) and "layers" in body:
        raw_layers = []
    if not isinstance(body, dict) or "config" not in body or not isinstance(raw_layers, (list, tuple)):
        raise LayoutError(f"{where}: no config or layers; is it an image manifest?")
    config = Descriptor.from_dict(body["config"], f"{where} config")
    layers = tuple(Descriptor.from_dict(d, f"{where} layers[{i}]")
                   for i, d in enumerate(raw_layers))
    plat = platform or manifest.platform
    if plat is None:
        cfg = read_json(source, config)
        plat = Platform(str(cfg.get("os", "")), str(cfg.get("architecture", "")),
                        str(cfg.get("variant", "")))
    return PlatformImage(plat, manifest.replace(platform=None, annotations={}), data, config,
                         layers, source, dict(annotations or {}))


def _is_attestation(desc: Descriptor) -> bool:
    p = desc.platform
    return (p is not None and p.os == "unknown" and p.architecture == "unknown") or \
        desc.annotations.get("vnd.docker.reference.type") == "attestation-manifest"


def _walk(source: BlobSource, desc: Descriptor, depth: int) -> List[PlatformImage]:
    if desc.media_type in MANIFEST_TYPES:
        return [] if _is_attestation(desc) else [image_from_manifest(source, desc)]
    if desc.media_type in INDEX_TYPES:
        if depth > 4:
            raise LayoutError(f"index {desc.digest} in {source.describe()}: nested too deeply")
        body = read_json(source, desc)
        out: List[PlatformImage] = []
        for i, d in enumerate(body.get("manifests") or []):
            child = Descriptor.from_dict(d, f"index {desc.digest} manifests[{i}]")
            out += _walk(source, child, depth + 1)
        return out
    return []  # other artifacts: not images


def split(
    layout: "OCILayout | BlobSource", root: Optional[Descriptor] = None
) -> List[PlatformImage]:
    """The platform images of ``root`` (default: everything ``index.json`` names), in order."""
    if root is not None:
        roots = [root]
    elif isinstance(layout, OCILayout):
        roots = layout.manifests
    else:
        raise LayoutError("split: a root descriptor is needed for a source without index.json")
    images: List[PlatformImage] = []
    for r in roots:
        images += _walk(layout, r, 0)
    if not images:
        raise LayoutError(f"{layout.describe()} holds no image manifests")
    return images


@dataclass(frozen=True)
class AssembledIndex:
    """An OCI index over ``images`` (in declared order) and everything needed to write it."""

    descriptor: Descriptor
    index_bytes: bytes
    images: Tuple[PlatformImage, ...]

    def blob_entries(self) -> List[BlobEntry]:
        """Every blob once (first occurrence wins), the index first."""
        seen: Dict[str, BlobEntry] = {}
        entries = [(self.descriptor, MemoryBlobs({self.descriptor.digest: self.index_bytes}))]
        for image in self.images:
            entries += image.blob_entries()
        for desc, src in entries:
            seen.setdefault(desc.digest, (desc, src))
        return list(seen.values())

    def image(self, platform: "str | Platform") -> PlatformImage:
        want = str(platform)
        found = find_platform(platform, [i.platform for i in self.images])
        if found is not None:
            return self.images[found]
        raise LayoutError(f"the index has no {want} image; it has "
                          f"{', '.join(str(i.platform) for i in self.images)}")


def index_bytes(
    manifests: Iterable[Descriptor], annotations: Optional[Mapping[str, str]] = None
) -> bytes:
    """The canonical index JSON over ``manifests`` (Go ``ocispec.Index`` field order)."""
    doc: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [d.to_dict() for d in manifests],
    }
    if annotations:
        doc["annotations"] = gojson.sorted_map(dict(annotations))
    return gojson.indent(doc)


def assemble(
    images: Sequence[PlatformImage], annotations: Optional[Mapping[str, str]] = None
) -> AssembledIndex:
    """One index over ``images`` in the given order; each platform at most once."""
    if not images:
        raise LayoutError("assemble: no images given; pass one PlatformImage per platform")
    seen: Dict[str, int] = {}
    descs = []
    for i, image in enumerate(images):
        key = str(image.platform)
        if key in seen:
            raise LayoutError(
                f"assemble: platform {key} given twice (inputs {seen[key]} and {i}); each "
                "platform may appear once in an index"
            )
        seen[key] = i
        descs.append(image.manifest.replace(platform=image.platform,
                                            annotations=dict(image.annotations)))
    data = index_bytes(descs, annotations)
    desc = Descriptor.of(data, MT_OCI_INDEX)
    return AssembledIndex(desc, data, tuple(images))


def write_oci_tar(
    assembled: AssembledIndex, path: "str | os.PathLike[str]", ref_names: Sequence[str] = ()
) -> None:
    """Write ``assembled`` as an OCI layout tar (index.json names the index), atomically."""
    write_layout_tar(path, layout_files(assembled.descriptor, ref_names),
                     assembled.blob_entries())
