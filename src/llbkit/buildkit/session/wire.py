"""Hand-encoded protobuf for the session's bulk messages, to copy file data fewer times.

Every uploaded byte crosses Python twice (the session's gRPC server, then the tunnel into
``Control.Session``), and every exported byte comes back the same way. Building a protobuf
message copies its ``bytes`` field in, serializing copies it out again; these helpers write the
few header bytes themselves and join them to the data once, and read a ``BytesMessage``'s data as
a zero-copy view. The encodings are the standard ones (fields in number order, proto3 defaults
omitted), so any protobuf parser reads them.
"""

from __future__ import annotations

from typing import Union

from llbkit.wireformat import varint

__all__ = ["varint", "data_packet", "bytes_message", "bytes_message_header", "bytes_message_data"]

_BYTES_MESSAGE_DATA = 0x0A  # field 1, length-delimited
_PACKET_TYPE_DATA = b"\x08\x02"  # Packet.type (field 1) = PACKET_DATA (2)
_PACKET_ID = 0x18  # Packet.ID: field 3, varint
_PACKET_DATA = 0x22  # Packet.data: field 4, length-delimited

Buffer = Union[bytes, bytearray, memoryview]


def data_packet(file_id: int, data: Buffer) -> bytes:
    """A serialized fsutil ``Packet{type: DATA, ID: file_id, data: data}`` (one copy of data)."""
    head = _PACKET_TYPE_DATA
    if file_id:
        head += bytes((_PACKET_ID,)) + varint(file_id)
    if not len(data):
        return head
    return b"".join((head, bytes((_PACKET_DATA,)), varint(len(data)), data))


def bytes_message_header(n: int) -> bytes:
    """The bytes that precede ``n`` bytes of data in a serialized ``BytesMessage``."""
    return bytes((_BYTES_MESSAGE_DATA,)) + varint(n) if n else b""


def bytes_message(data: Buffer) -> bytes:
    """A serialized ``BytesMessage{data: data}``."""
    return b"".join((bytes_message_header(len(data)), data)) if len(data) else b""


def bytes_message_data(raw: bytes) -> memoryview:
    """The ``data`` of a serialized ``BytesMessage``, as a view into ``raw`` (no copy).

    Falls back to the protobuf parser for anything but the one-field form BuildKit sends."""
    view = memoryview(raw)
    if not raw:
        return view[:0]
    if raw[0] == _BYTES_MESSAGE_DATA:
        n = shift = 0
        pos = 1
        while pos < len(raw) and shift < 64:
            b = raw[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if pos + n == len(raw):
                    return view[pos:]
                break
    from llbkit._proto import control_pb2

    return memoryview(control_pb2.BytesMessage.FromString(raw).data)
