"""JSON bytes as Go's ``encoding/json`` writes them for the OCI structs.

Digests name exact bytes, so the index and manifests llbkit writes are serialized the way
BuildKit's image exporter does it: ``json.MarshalIndent(v, "", "  ")`` (two-space indent,
``": "`` after keys, no trailing newline), struct fields in Go declaration order (the callers
build dicts in that order: see :mod:`llbkit.oci.types`), map keys (annotations) sorted, non-ASCII
text kept as UTF-8, and ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c``... as Go's
HTML-safe encoder does. :func:`compact` is Go's ``json.Marshal`` (no whitespace), used for the
small layout files (``oci-layout``, ``index.json``, docker ``manifest.json``) as containerd writes
them.
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _go_escape(text: str) -> str:
    # Only string contents can hold these characters (keys and values alike); JSON punctuation
    # never does, so replacing them in the whole document is safe.
    for char, escaped in _GO_ESCAPES.items():
        if char in text:
            text = text.replace(char, escaped)
    return text


def indent(value: Any) -> bytes:
    """``json.MarshalIndent(value, "", "  ")``: dict order kept (maps must be pre-sorted)."""
    text = json.dumps(value, ensure_ascii=False, indent=2, separators=(",", ": "),
                      allow_nan=False)
    return _go_escape(text).encode("utf-8")


def compact(value: Any) -> bytes:
    """``json.Marshal(value)``: no whitespace, dict order kept."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _go_escape(text).encode("utf-8")


def sorted_map(mapping: "dict[str, str] | None") -> "dict[str, str]":
    """A Go ``map[string]string`` as encoding/json writes it: keys in byte order."""
    if not mapping:
        return {}
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: k.encode("utf-8"))}
