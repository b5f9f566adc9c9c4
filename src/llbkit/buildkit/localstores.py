"""Client-side OCI stores of a solve: the local cache and oci/docker exports with ``tar=false``.

The same steps as Go's ``client.Solve`` (``parseCacheOptions`` and the ``OutputDir`` stores):

- ``--export-cache type=local,dest=DIR``: DIR becomes store ``local:DIR`` of the session; after a
  successful solve its ``index.json`` gets the cache manifest (``cache.manifest`` in the exporter
  response) under ``tag`` (default ``latest``).
- ``--import-cache type=local,src=DIR``: the digest to import comes from ``digest=`` or from the
  ``tag`` (default ``latest``) in DIR's ``index.json``; a missing directory, index or tag skips
  the import (a first build has no cache yet), as buildctl does.
- ``--output type=oci|docker,dest=DIR,tar=false``: DIR becomes store ``export``; after the solve its
  ``index.json`` gets the image descriptor under the image names (or ``latest``).

Directories are made absolute so that the daemon's store id and ours are the same string.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

from llbkit.buildkit.errors import ExportSpecError
from llbkit.oci.store import OCIStore, index_get, index_put
from llbkit.buildkit.options import CacheOption, Export

__all__ = ["LocalStores", "plan_local_stores"]

log = logging.getLogger(__name__)

STORE_PREFIX = "local:"
EXPORT_STORE = "export"
CACHE_MANIFEST_KEY = "cache.manifest"
IMAGE_DESCRIPTOR_KEY = "containerimage.descriptor"
IMAGE_NAME_KEY = "image.name"


@dataclass
class LocalStores:
    """What a solve needs for its local stores: the session's stores by id, the cache entries to
    send (with absolute directories and resolved digests), and the index.json updates to make."""

    stores: Dict[str, OCIStore] = field(default_factory=dict)
    cache_exports: List[CacheOption] = field(default_factory=list)
    cache_imports: List[CacheOption] = field(default_factory=list)
    cache_tags: Dict[str, str] = field(default_factory=dict)  # cache dir -> tag
    layout_dir: Optional[str] = None  # the oci/docker tar=false export's directory

    def update_indexes(self, exporter_response: Mapping[str, str]) -> None:
        """After a successful solve: record the exported cache and image in their index.json."""
        raw = exporter_response.get(CACHE_MANIFEST_KEY)
        if raw and self.cache_tags:
            desc = json.loads(raw)
            for directory, tag in self.cache_tags.items():
                index_put(directory, desc, tags=[tag])
        raw = exporter_response.get(IMAGE_DESCRIPTOR_KEY)
        if raw and self.layout_dir is not None:
            desc = json.loads(base64.b64decode(raw))
            names = [n for n in (exporter_response.get(IMAGE_NAME_KEY) or "").split(",") if n]
            if names:
                index_put(self.layout_dir, desc, names=names)
            else:
                index_put(self.layout_dir, desc, tags=["latest"])


def _directory(path: str, what: str) -> str:
    directory = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ExportSpecError(f"{what} {path!r} is not a directory: give a directory (it holds an OCI layout)")
    return directory


def plan_local_stores(exports: Sequence[Export], cache_exports: Sequence[CacheOption],
                      cache_imports: Sequence[CacheOption]) -> LocalStores:
    out = LocalStores()
    for c in cache_exports:
        if c.type != "local":
            out.cache_exports.append(c)
            continue
        if not c.attrs.get("dest"):
            raise ExportSpecError("the local cache exporter needs dest=<directory>")
        directory = _directory(c.attrs["dest"], "local cache dest")
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise ExportSpecError(f"cannot create the local cache directory {directory}: {e.strerror}") from None
        attrs = {k: v for k, v in c.attrs.items() if k != "tag"}
        attrs["dest"] = directory
        out.stores[STORE_PREFIX + directory] = OCIStore(directory)
        out.cache_tags[directory] = c.attrs.get("tag") or "latest"
        out.cache_exports.append(CacheOption("local", attrs))
    for c in cache_imports:
        if c.type != "local":
            out.cache_imports.append(c)
            continue
        if not c.attrs.get("src"):
            raise ExportSpecError("the local cache importer needs src=<directory>")
        directory = _directory(c.attrs["src"], "local cache src")
        attrs = dict(c.attrs, src=directory)
        digest = attrs.get("digest", "")
        if not digest:
            tag = attrs.pop("tag", "latest") or "latest"
            desc = index_get(directory, tag) if os.path.isdir(directory) else None
            if desc is None:
                log.warning("local cache import from %s skipped: no cache tagged %r there yet", directory, tag)
                continue
            digest = attrs["digest"] = desc.get("digest", "")
        store = OCIStore(directory)
        if not store.has(digest):
            log.warning("local cache import from %s skipped: blob %s is missing", directory, digest)
            continue
        out.stores[STORE_PREFIX + directory] = store
        out.cache_imports.append(CacheOption("local", attrs))
    layout = [e for e in exports if e.is_layout_dir]
    if len(layout) > 1:
        raise ExportSpecError("only one oci/docker export with tar=false per build (BuildKit serves one export store)")
    if layout:
        directory = _directory(layout[0].dest or "", f"{layout[0].type} export dest")
        os.makedirs(directory, exist_ok=True)
        out.stores[EXPORT_STORE] = OCIStore(directory)
        out.layout_dir = directory
    return out
