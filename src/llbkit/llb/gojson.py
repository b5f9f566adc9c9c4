"""JSON encoded byte-for-byte like Go's ``encoding/json`` (``json.Marshal`` / ``Encoder.Encode``).

Go's output differs from Python's ``json.dumps`` in its escaping: ``<``, ``>`` and ``&`` become
``\\u003c``/``\\u003e``/``\\u0026``, U+2028 and U+2029 are escaped, other non-ASCII text is written
as raw UTF-8, and there is no whitespace. Two places need the exact Go form: ``local`` source
attributes (Go JSON-encodes include/exclude patterns into op bytes, so the digest depends on it)
and ``dump`` (which must equal ``buildctl debug dump-llb``). Dicts keep their insertion order
(Go structs have a field order); sort map keys before passing them in.
"""

from __future__ import annotations

from typing import Any, List

__all__ = ["go_json"]

_HEX = "0123456789abcdef"
_SIMPLE = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _SIMPLE:
        return _SIMPLE[ch]
    o = ord(ch)
    if o < 0x20 or ch in "<>&":
        return "\\u00" + _HEX[o >> 4] + _HEX[o & 0xF]
    if o in (0x2028, 0x2029):
        return "\\u202" + _HEX[o & 0xF]
    return ch


def _string(s: str, out: List[str]) -> None:
    out.append('"')
    for ch in s:
        o = ord(ch)
        if 0x20 <= o < 0x7F and ch not in '"\\<>&':
            out.append(ch)
        elif o >= 0x7F and o not in (0x2028, 0x2029):
            # Lone surrogates cannot come from protobuf strings; Go would write U+FFFD for them.
            out.append("\ufffd" if 0xD800 <= o <= 0xDFFF else ch)
        else:
            out.append(_escape_char(ch))
    out.append('"')


def _encode(value: Any, out: List[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, str):
        _string(value, out)
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for k, v in value.items():
            if not first:
                out.append(",")
            first = False
            _string(k, out)
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        raise TypeError(f"go_json: cannot encode {type(value).__name__}")


def go_json(value: Any) -> str:
    """Encode ``value`` (dict/list/str/int/bool/None) exactly as Go's ``json.Marshal`` would."""
    out: List[str] = []
    _encode(value, out)
    return "".join(out)
