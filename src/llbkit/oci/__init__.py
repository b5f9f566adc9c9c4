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

from typing import TYPE_CHECKING, Any

# The names below are imported on first use (PEP 562): importing one module of the package
# (``llbkit.oci.imageconfig``, as every solve does) must not load the registry client and with
# it ``http.client``, ``ssl`` and ``email`` (about 30 ms of start-up). The imports under
# TYPE_CHECKING are what type checkers and Pants' dependency inference read.
if TYPE_CHECKING:  # pragma: no cover
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

_LAZY = {
    "write_docker_archive": "llbkit.oci.docker_archive",
    **{n: "llbkit.oci.errors" for n in (
        "ArchiveError", "BlobVerificationError", "LayoutError", "OCIError", "RegistryAuthError",
        "RegistryError", "RegistryUnreachableError")},
    **{n: "llbkit.oci.index" for n in ("AssembledIndex", "PlatformImage", "assemble", "split", "write_oci_tar")},
    **{n: "llbkit.oci.layout" for n in ("MemoryBlobs", "OCILayout", "open_layout", "write_layout_tar")},
    **{n: "llbkit.oci.metadata" for n in ("image_record", "write_image_json")},
    **{n: "llbkit.oci.registry" for n in ("RegistryClient", "push_layout")},
    "Descriptor": "llbkit.oci.types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArchiveError", "AssembledIndex", "BlobVerificationError", "Descriptor", "LayoutError",
    "MemoryBlobs", "OCIError", "OCILayout", "PlatformImage", "RegistryAuthError",
    "RegistryClient", "RegistryError", "RegistryUnreachableError", "assemble", "image_record",
    "open_layout", "push_layout", "split",
    "write_docker_archive", "write_image_json", "write_layout_tar", "write_oci_tar",
]
