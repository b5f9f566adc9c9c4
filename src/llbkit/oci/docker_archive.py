"""``docker load``-compatible archives of one platform image.

The tar holds what ``docker save`` writes since Docker 25: the OCI layout (``oci-layout``,
``index.json`` naming the image manifest once per tag, ``blobs/sha256/...``) and the legacy
``manifest.json``: ``[{"Config": "blobs/sha256/<config>", "RepoTags": [...], "Layers":
["blobs/sha256/<layer>", ...]}]``, which older ``docker load`` reads. Layers stay compressed as
in the registry image (``docker load`` decompresses them). Docker's image ID is the config
digest, not the manifest digest a registry shows.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence, Union

from llbkit import gojson
from llbkit.oci.errors import ArchiveError
from llbkit.oci.index import PlatformImage
from llbkit.oci.layout import LAYOUT_FILE, OCI_LAYOUT_BYTES, write_layout_tar
from llbkit.oci.types import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MT_OCI_INDEX

_TAGGED = re.compile(r"^[a-z0-9][a-z0-9._/:-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _check_tag(tag: str) -> str:
    name, _, t = tag.rpartition(":")
    if not _TAGGED.match(tag) or "/" in t or not name:
        raise ArchiveError(
            f"docker archive: {tag!r} is not a tagged image name; RepoTags need NAME:TAG, "
            "e.g. acme/app:1.4.0 or registry.example.com/acme/app:latest"
        )
    return tag


def docker_manifest(image: PlatformImage, tags: Sequence[str]) -> bytes:
    """The legacy ``manifest.json`` bytes for ``image``."""
    entry: Dict[str, object] = {
        "Config": image.config.blob_path,
        "RepoTags": [_check_tag(t) for t in tags],
        "Layers": [d.blob_path for d in image.layers],
    }
    return gojson.compact([entry])


def docker_index(image: PlatformImage, tags: Sequence[str]) -> bytes:
    descs: List[dict] = []
    for tag in tags:
        name, _, ref = tag.rpartition(":")
        descs.append(image.manifest.replace(annotations={
            ANNOTATION_IMAGE_NAME: tag, ANNOTATION_REF_NAME: ref}).to_dict())
    if not descs:
        descs.append(image.manifest.to_dict())
    return gojson.compact({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": descs})


def docker_files(image: PlatformImage, tags: Sequence[str] = ()) -> Dict[str, bytes]:
    """The top-level files of a docker archive of ``image``: ``manifest.json``, ``index.json``
    and ``oci-layout`` (its blobs are the image's own)."""
    return {
        "manifest.json": docker_manifest(image, tags),
        "index.json": docker_index(image, tags),
        LAYOUT_FILE: OCI_LAYOUT_BYTES,
    }


def write_docker_archive(
    image: PlatformImage, path: Union[str, "os.PathLike[str]"], tags: Sequence[str] = ()
) -> None:
    """Write ``image`` with ``tags`` (``NAME:TAG``) as a docker archive at ``path``, atomically."""
    write_layout_tar(path, docker_files(image, tags), image.blob_entries())
