"""Protobuf wire-format pieces written by hand where the generated code would cost a copy or an
ordering we must control: the LLB marshaler (oneof bodies last, as Go writes them) and the
session's data packets (framed around file bytes without copying them into a message)."""

from __future__ import annotations


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a base-128 varint."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
