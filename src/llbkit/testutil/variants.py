"""Move a tag in a test registry to a new image: the same layers, each config given one more label.

::

    new_digest = push_variant("127.0.0.1:5000", "busybox", "latest", label="moved-1")

What a tag names upstream changes this way when its image is rebuilt (a new config, often the
same layers): the tag's digest changes, and so does every platform's manifest and config. An
index keeps its platforms; a single manifest stays a single manifest. Plain HTTP, no auth
(the ``Registry`` fixture without ``auth``).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from typing import Any, Dict, Tuple

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _get(url: str, accept: str = _ACCEPT) -> Tuple[bytes, str]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with _OPENER.open(req, timeout=30) as resp:
        return resp.read(), resp.headers.get("Content-Type", "")


def _put_blob(base: str, repo: str, data: bytes) -> str:
    digest = _digest(data)
    start = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    with _OPENER.open(start, timeout=30) as resp:
        location = resp.headers["Location"]
    url = location if "://" in location else base + location
    url += ("&" if "?" in url else "?") + "digest=" + digest
    put = urllib.request.Request(url, method="PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    with _OPENER.open(put, timeout=30):
        pass
    return digest


def _put_manifest(base: str, repo: str, reference: str, data: bytes, media_type: str) -> str:
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{reference}", method="PUT", data=data,
                                 headers={"Content-Type": media_type})
    with _OPENER.open(req, timeout=30):
        pass
    return _digest(data)


def _variant_manifest(base: str, repo: str, manifest: Dict[str, Any], label: str) -> bytes:
    config_data, _ = _get(f"{base}/v2/{repo}/blobs/{manifest['config']['digest']}", "*/*")
    config = json.loads(config_data)
    config.setdefault("config", {}).setdefault("Labels", {})["llbkit.test.variant"] = label
    new_config = json.dumps(config, sort_keys=True).encode()
    manifest = dict(manifest, config=dict(manifest["config"], digest=_put_blob(base, repo, new_config),
                                          size=len(new_config)))
    return json.dumps(manifest, sort_keys=True).encode()


def push_variant(host: str, repo: str, tag: str, *, label: str) -> str:
    """Re-point ``host/repo:tag`` at a variant of what it names; returns the tag's new digest."""
    base = f"http://{host}"
    data, media_type = _get(f"{base}/v2/{repo}/manifests/{tag}")
    doc = json.loads(data)
    if "manifests" in doc:
        entries = []
        for desc in doc["manifests"]:
            mdata, mtype = _get(f"{base}/v2/{repo}/manifests/{desc['digest']}")
            new = _variant_manifest(base, repo, json.loads(mdata), label)
            _put_manifest(base, repo, _digest(new), new, mtype)
            entries.append(dict(desc, digest=_digest(new), size=len(new)))
        new_index = json.dumps(dict(doc, manifests=entries), sort_keys=True).encode()
        return _put_manifest(base, repo, tag, new_index, media_type)
    new = _variant_manifest(base, repo, doc, label)
    return _put_manifest(base, repo, tag, new, media_type)
