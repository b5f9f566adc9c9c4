"""The content key of an image build, and a persistent content-addressed cache of its outputs.

A build's outputs are a function of its content only::

    key = sha256(canonical JSON of {
        "definitions": [[platform, sha256(definition bytes), sha256(image config bytes)], ...],
        "context": the build context's content digest,
        "export": the export options (format, names, annotations, SOURCE_DATE_EPOCH...),
        "solver": llbkit's code fingerprint and the pinned BuildKit version,
    })

The definitions already hold the context digest (``local.unique``) and every registry base
pinned by digest. Worker addresses, TLS files and credentials are never part of the key, so
changing the fleet never invalidates a result. Entries live in ``$LLBKIT_CACHE/images/<key>/``,
written to a temp dir and renamed into place, so a reader sees a complete entry or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import llbkit

__all__ = ["ImageCache", "build_key", "code_fingerprint", "default_cache_root"]

KEY_SCHEMA = "llbkit.build-key.v1"
_fingerprint: Optional[str] = None


def code_fingerprint() -> str:
    """sha256 over llbkit's own non-test sources: a code change is a solver change."""
    global _fingerprint
    if _fingerprint is None:
        root = Path(llbkit.__file__).parent
        h = hashlib.sha256()
        for p in sorted(root.rglob("*.py")):
            rel = p.relative_to(root).as_posix()
            if p.name.endswith("_test.py") or rel.startswith("testutil/") or p.name == "conftest.py":
                continue
            h.update(rel.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
        _fingerprint = f"llbkit-{llbkit.__version__}+{h.hexdigest()[:16]}"
    return _fingerprint


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_key(
    definitions: Sequence[Tuple[str, bytes, bytes]],
    context_digest: Optional[str],
    export: Mapping[str, Any],
    solver: str,
) -> str:
    """The content key of a build: ``definitions`` are ``(platform, definition bytes, config
    bytes)`` in index order; ``export`` is JSON-able; ``solver`` names the solver's code."""
    doc = {
        "schema": KEY_SCHEMA,
        "definitions": [[p, _sha(d), _sha(c)] for p, d, c in definitions],
        "context": context_digest or "",
        "export": export,
        "solver": solver,
    }
    return _sha(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def default_cache_root(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    if env.get("LLBKIT_CACHE"):
        base = Path(env["LLBKIT_CACHE"])
    else:
        base = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME") or Path.home()) / ".cache") / "llbkit"
    return base / "images"


class ImageCache:
    """``root/<key hex>/<file>``: the outputs of one build (e.g. ``image.oci.tar``, ``image.json``)."""

    def __init__(self, root: Optional[Path] = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()

    def _dir(self, key: str) -> Path:
        algo, _, hexd = key.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise ValueError(f"not a build key: {key!r}")
        return self.root / hexd

    def get(self, key: str) -> Optional[Dict[str, Path]]:
        """The entry's files by name, or ``None``."""
        d = self._dir(key)
        if not (d / ".complete").exists():
            return None
        return {p.name: p for p in sorted(d.iterdir()) if p.name != ".complete"}

    def put(self, key: str, files: Mapping[str, Union[bytes, Path]]) -> Dict[str, Path]:
        """Store ``files`` (bytes, or paths to copy) under ``key`` atomically; returns the entry."""
        final = self._dir(key)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            for name, data in files.items():
                if "/" in name or name.startswith("."):
                    raise ValueError(f"invalid cache file name {name!r}")
                if isinstance(data, bytes):
                    (tmp / name).write_bytes(data)
                else:
                    shutil.copyfile(data, tmp / name)
            (tmp / ".complete").write_bytes(b"")
            try:
                os.rename(tmp, final)
            except OSError:
                if self.get(key) is None:  # not a concurrent writer of the same entry: replace
                    shutil.rmtree(final, ignore_errors=True)
                    os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        entry = self.get(key)
        assert entry is not None
        return entry
