"""gRPC status codes, the typed error of a failed call, and the text encodings gRPC's headers use.

:class:`RpcError` keeps the three methods grpc-python's error has (``code()``, ``details()``,
``trailing_metadata()``), so code written against either reads the same; ``cause`` holds the
local failure (a refused connection, an ``ssl`` error) when the call never reached the server.
"""

from __future__ import annotations

import enum
import math
from typing import Optional, Sequence, Tuple, Union

__all__ = [
    "StatusCode",
    "RpcError",
    "Metadata",
    "percent_encode",
    "percent_decode",
    "encode_timeout",
    "decode_timeout",
]

MetadataValue = Union[str, bytes]
Metadata = Tuple[Tuple[str, MetadataValue], ...]


class StatusCode(enum.IntEnum):
    """gRPC's status codes (``grpc-status``), by their numbers on the wire."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @classmethod
    def of(cls, value: object) -> "StatusCode":
        """A ``grpc-status`` value (text or number); unknown numbers are UNKNOWN, as gRPC says."""
        try:
            return cls(int(value))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return cls.UNKNOWN


class RpcError(Exception):
    """A call that ended with a status other than OK (from the server, or made up locally:
    UNAVAILABLE when the connection failed, DEADLINE_EXCEEDED, CANCELLED)."""

    def __init__(self, code: StatusCode, details: str = "", trailing_metadata: Metadata = (),
                 *, cause: Optional[BaseException] = None, local: bool = False, connecting: bool = False) -> None:
        super().__init__(f"{code.name}: {details}" if details else code.name)
        self.status = code
        self.message = details
        self.trailers = tuple(trailing_metadata)
        #: what failed locally (``OSError``, ``ssl.SSLError``, :class:`~.transport.TransportError`)
        self.cause = cause
        #: True when this side ended the call (cancel, deadline, lost connection), not the server
        self.local = local
        #: True when the call failed while connecting (socket, TLS, the HTTP/2 preface)
        self.connecting = connecting

    def code(self) -> StatusCode:
        return self.status

    def details(self) -> str:
        return self.message

    def trailing_metadata(self) -> Metadata:
        return self.trailers


def percent_encode(text: str) -> str:
    """``grpc-message``: UTF-8, then every byte outside printable ASCII (and ``%``) as ``%XX``."""
    out = []
    for b in text.encode("utf-8"):
        out.append(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}")
    return "".join(out)


def percent_decode(text: str) -> str:
    """The reverse of :func:`percent_encode`; a ``%`` not followed by two hex digits stays, as
    gRPC's decoders do (a message is never rejected for its encoding)."""
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25 and i + 3 <= n:
            try:
                out.append(int(raw[i + 1:i + 3].decode("ascii"), 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


_UNITS = (("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("S", 1.0), ("M", 60.0), ("H", 3600.0))


def encode_timeout(seconds: float) -> str:
    """``grpc-timeout``: at most 8 digits and a unit; the finest unit that fits, rounded up."""
    seconds = max(seconds, 0.0)
    for unit, scale in _UNITS:
        value = math.ceil(seconds / scale)
        if value < 100_000_000:
            return f"{value}{unit}"
    return "99999999H"


def decode_timeout(value: str) -> Optional[float]:
    """Seconds of a ``grpc-timeout`` value; None if it is malformed."""
    if len(value) < 2 or not value[:-1].isdigit() or len(value) > 9:
        return None
    scale = dict(_UNITS).get(value[-1])
    return int(value[:-1]) * scale if scale is not None else None


def metadata_pairs(md: Optional[Sequence[Tuple[str, MetadataValue]]]) -> Metadata:
    return tuple(md or ())
