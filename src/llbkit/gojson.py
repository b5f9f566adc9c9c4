"""JSON text as Go's ``encoding/json`` writes it, for every stage that names bytes by digest.

The LLB compiler needs it for ``local`` source attributes (Go JSON-encodes include/exclude
patterns into op bytes, so the digest depends on it) and for ``dump`` (which must equal
``buildctl debug dump-llb``); the output stage needs it because digests name exact bytes: the index and manifests llbkit writes are serialized the way
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
import re
from typing import Any

__all__ = ["go_json", "compact", "indent", "sorted_map"]

# Go writes U+FFFD for a lone surrogate (which cannot come from protobuf strings, but can from
# Python's str); UTF-8 cannot encode one at all.
_SURROGATE = re.compile("[\ud800-\udfff]")

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
    return _SURROGATE.sub("\ufffd", text)


def _no_floats(value: Any) -> None:
    # Go formats floats differently from Python; nothing llbkit marshals has one, so refuse.
    if isinstance(value, float):
        raise TypeError("go_json: cannot encode float (Go formats floats differently)")
    if isinstance(value, dict):
        for v in value.values():
            _no_floats(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _no_floats(v)


def go_json(value: Any) -> str:
    """``json.Marshal(value)`` as text: no whitespace, dict order kept (sort map keys first)."""
    _no_floats(value)
    return _go_escape(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


def indent(value: Any) -> bytes:
    """``json.MarshalIndent(value, "", "  ")``: dict order kept (maps must be pre-sorted)."""
    text = json.dumps(value, ensure_ascii=False, indent=2, separators=(",", ": "),
                      allow_nan=False)
    return _go_escape(text).encode("utf-8")


def compact(value: Any) -> bytes:
    """``json.Marshal(value)`` as UTF-8 bytes."""
    return go_json(value).encode("utf-8")


def sorted_map(mapping: "dict[str, str] | None") -> "dict[str, str]":
    """A Go ``map[string]string`` as encoding/json writes it: keys in byte order."""
    if not mapping:
        return {}
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: k.encode("utf-8"))}
