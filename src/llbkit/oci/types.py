"""OCI descriptors and platforms, media types, and digest helpers.

``to_dict`` methods emit keys in the Go declaration order of the image-spec v1.1 structs
(``Descriptor``: mediaType, digest, size, urls, annotations, data, platform, artifactType;
``Platform``: architecture, os, os.version, os.features, variant, features), so that
:mod:`llbkit.oci.gojson` reproduces the bytes BuildKit and containerd write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from llbkit.oci.errors import LayoutError
from llbkit.oci.gojson import sorted_map

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

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str, where: str) -> str:
    """``digest`` if it is ``sha256:<64 hex>``; the only algorithm llbkit reads or writes."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise LayoutError(
            f"{where}: invalid digest {digest!r}; expected sha256:<64 lowercase hex digits>"
        )
    return digest


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: Tuple[str, ...] = ()
    features: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """``linux/arm64/v8`` -> Platform; raises LayoutError on malformed text."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise LayoutError(
                f"invalid platform {text!r}; expected os/architecture[/variant], "
                "e.g. linux/arm64/v8"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Platform":
        return cls(
            os=str(d.get("os", "")),
            architecture=str(d.get("architecture", "")),
            variant=str(d.get("variant", "")),
            os_version=str(d.get("os.version", "")),
            os_features=tuple(d.get("os.features") or ()),
            features=tuple(d.get("features") or ()),
        )

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        if self.features:
            out["features"] = list(self.features)
        return out

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


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
