"""The output stage: OCI layouts, index assembly, docker archives, image records, registries.

- :mod:`~llbkit.oci.layout`: read a layout (dir or tar) with streaming digest checks; write a
  layout tar deterministically and atomically.
- :mod:`~llbkit.oci.index`: :func:`assemble` single-platform images into one index in declared
  order (BuildKit's JSON conventions, see :mod:`~llbkit.gojson`); :func:`split` one apart.
- :mod:`~llbkit.oci.docker_archive`: ``docker load`` archives of one platform.
- :mod:`~llbkit.oci.metadata`: the ``<name>.image.json`` record.
- :mod:`~llbkit.oci.registry`: push (by digest, then tags) and pull over the distribution API;
  credentials in :mod:`~llbkit.oci.auth`.
"""

from __future__ import annotations

from llbkit.oci.docker_archive import write_docker_archive
from llbkit.oci.errors import (
    ArchiveError,
    BlobVerificationError,
    LayoutError,
    OCIError,
    RegistryAuthError,
    RegistryError,
    RegistryUnreachableError,
)
from llbkit.oci.index import AssembledIndex, PlatformImage, assemble, split, write_oci_tar
from llbkit.oci.layout import MemoryBlobs, OCILayout, open_layout, write_layout_tar
from llbkit.oci.metadata import image_record, write_image_json
from llbkit.oci.registry import RegistryClient, push_layout
from llbkit.oci.types import Descriptor

__all__ = [
    "ArchiveError", "AssembledIndex", "BlobVerificationError", "Descriptor", "LayoutError",
    "MemoryBlobs", "OCIError", "OCILayout", "PlatformImage", "RegistryAuthError",
    "RegistryClient", "RegistryError", "RegistryUnreachableError", "assemble", "image_record",
    "open_layout", "push_layout", "split",
    "write_docker_archive", "write_image_json", "write_layout_tar", "write_oci_tar",
]
