"""The ``<name>.image.json`` record of a packaged image: stable, machine-readable JSON.

::

    {
      "schema": "llbkit.image.v1",
      "index": {"digest": "sha256:...", "mediaType": "...", "size": 1234},
      "platforms": [
        {"platform": "linux/amd64", "manifest": {...}, "config": {...},
         "layers": [{...}], "size": 12345, "worker": "unix:///run/buildkit.sock"}
      ],
      "tags": ["registry.example.com/acme/app:1.4.0"]
    }

``platforms`` is in the declared order. ``config.digest`` is what Docker shows as the image ID;
``manifest.digest`` is the registry digest of that platform; ``index.digest`` the digest to pull
by. ``worker`` (which worker built the platform) is filled in by the caller, ``null`` when
unknown. Keys are sorted, two-space indented, with a final newline.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from llbkit.atomic import write_bytes_atomic
from llbkit.oci.index import AssembledIndex
from llbkit.oci.types import Descriptor

SCHEMA = "llbkit.image.v1"


def _desc(d: Descriptor) -> Dict[str, Any]:
    return {"digest": d.digest, "mediaType": d.media_type, "size": d.size}


def image_record(
    assembled: AssembledIndex,
    tags: Sequence[str] = (),
    workers: Optional[Mapping[str, str]] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The record for ``assembled``; ``workers`` maps ``str(platform)`` to a worker name."""
    workers = dict(workers or {})
    platforms = []
    for image in assembled.images:
        platforms.append({
            "platform": str(image.platform),
            "manifest": _desc(image.manifest),
            "config": _desc(image.config),
            "layers": [_desc(d) for d in image.layers],
            "size": image.size,
            "worker": workers.get(str(image.platform)),
        })
    record: Dict[str, Any] = {
        "schema": SCHEMA,
        "index": _desc(assembled.descriptor),
        "platforms": platforms,
        "tags": list(tags),
    }
    record.update(extra or {})
    return record


def dumps(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def write_image_json(path: Union[str, "os.PathLike[str]"], record: Mapping[str, Any]) -> None:
    write_bytes_atomic(path, dumps(record))


def read_image_json(path: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    with open(path, "rb") as f:
        return json.loads(f.read())
