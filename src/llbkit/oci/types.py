"""OCI descriptors, media types, and digest helpers.

``to_dict`` methods emit keys in the Go declaration order of the image-spec v1.1 structs
(``Descriptor``: mediaType, digest, size, urls, annotations, data, platform, artifactType;
and :class:`llbkit.platforms.Platform` for platforms), so that :mod:`llbkit.gojson` reproduces the bytes BuildKit and containerd write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from llbkit.oci.errors import LayoutError
from llbkit.gojson import sorted_map
from llbkit.platforms import Platform

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_DOCKER_LIST})
MANIFEST_TYPES = frozenset({MT_OCI_MANIFEST, MT_DOCKER_MANIFEST})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

_DIGEST_RE = re.compile(r"^(sha256|sha384|sha512):([a-f0-9]+)$")
_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def split_digest(digest: str, where: str, error: Callable[[str], Exception] = LayoutError) -> Tuple[str, str]:
    """``sha256:<hex>`` -> ``("sha256", hex)`` (sha384 and sha512 too, as containerd's store
    accepts them); ``error`` naming ``where`` for anything else."""
    m = _DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if not m or len(m.group(2)) != _HEX_LEN[m.group(1)]:
        raise error(f"{where}: invalid digest {digest!r}; expected sha256:<64 lowercase hex digits>")
    return m.group(1), m.group(2)


def check_digest(digest: str, where: str) -> str:
    """``digest`` if it is ``sha256:<64 hex>``: the only algorithm llbkit's layouts read or write."""
    if split_digest(digest, where)[0] != "sha256":
        raise LayoutError(f"{where}: invalid digest {digest!r}; expected sha256:<64 lowercase hex digits>")
    return digest


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Optional[Platform] = None
    urls: Tuple[str, ...] = ()
    artifact_type: str = ""

    @classmethod
    def of(cls, data: bytes, media_type: str, **kw: Any) -> "Descriptor":
        return cls(media_type, sha256_digest(data), len(data), **kw)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> "Descriptor":
        if not isinstance(d, Mapping):
            raise LayoutError(f"{where}: a descriptor must be a JSON object, got {d!r}")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LayoutError(f"{where}: descriptor size {size!r} is not a non-negative integer")
        plat = d.get("platform")
        return cls(
            media_type=str(d.get("mediaType", "")),
            digest=check_digest(d.get("digest"), where),  # type: ignore[arg-type]
            size=size,
            annotations=dict(d.get("annotations") or {}),
            platform=Platform.from_dict(plat) if isinstance(plat, Mapping) else None,
            urls=tuple(d.get("urls") or ()),
            artifact_type=str(d.get("artifactType", "")),
        )

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = sorted_map(dict(self.annotations))
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    def replace(self, **changes: Any) -> "Descriptor":
        return dataclasses.replace(self, **changes)

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    @property
    def blob_path(self) -> str:
        """``blobs/sha256/<hex>``: where the blob sits in a layout."""
        return f"blobs/sha256/{self.hex}"
