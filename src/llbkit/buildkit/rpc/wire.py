"""gRPC over HTTP/2, the client's half, sans-IO: request headers, message framing, the status.

What `gRPC's HTTP/2 protocol <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>`_
asks of a client, as pure functions and one small parser: a request is a POST with ``:path``
``/package.Service/Method``, ``content-type: application/grpc``, ``te: trailers`` and an optional
``grpc-timeout``; every message is a 5-byte prefix (compressed flag, big-endian length) and the
bytes; the call's outcome is the ``grpc-status`` / ``grpc-message`` (percent-encoded) pair of the
trailers (or of the headers alone, "trailers-only"), with ``-bin`` metadata in unpadded base64.
"""

from __future__ import annotations

import base64
from typing import List, Optional, Sequence, Tuple

from llbkit.buildkit.rpc.status import (
    Metadata,
    MetadataValue,
    RpcError,
    StatusCode,
    encode_timeout,
    percent_decode,
)

__all__ = ["request_headers", "frame_message", "Deframer", "status_of", "metadata_of", "USER_AGENT"]

USER_AGENT = "llbkit-grpc"

# Headers that are gRPC's own, never application metadata.
_RESERVED = frozenset({"content-type", "te", "user-agent", "grpc-timeout", "grpc-encoding",
                       "grpc-accept-encoding", "grpc-status", "grpc-message", "grpc-message-type"})

# gRPC's mapping of HTTP statuses, for a response that is not gRPC (a proxy, another service).
_HTTP_STATUS = {"400": StatusCode.INTERNAL, "401": StatusCode.UNAUTHENTICATED,
                "403": StatusCode.PERMISSION_DENIED, "404": StatusCode.UNIMPLEMENTED,
                "429": StatusCode.UNAVAILABLE, "502": StatusCode.UNAVAILABLE,
                "503": StatusCode.UNAVAILABLE, "504": StatusCode.UNAVAILABLE}


def request_headers(path: str, authority: str, *, scheme: str = "http", timeout: Optional[float] = None,
                    metadata: Sequence[Tuple[str, MetadataValue]] = ()) -> List[Tuple[str, str]]:
    """A call's HEADERS; metadata keys are lowercased, ``-bin`` values (bytes) base64-encoded."""
    headers = [(":method", "POST"), (":scheme", scheme), (":path", path), (":authority", authority),
               ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", USER_AGENT)]
    if timeout is not None:
        headers.append(("grpc-timeout", encode_timeout(timeout)))
    for key, value in metadata:
        key = key.lower()
        if key.endswith("-bin"):
            raw = value if isinstance(value, (bytes, bytearray)) else str(value).encode()
            headers.append((key, base64.b64encode(bytes(raw)).decode("ascii").rstrip("=")))
        else:
            headers.append((key, value.decode() if isinstance(value, (bytes, bytearray)) else str(value)))
    return headers


def frame_message(data: "bytes | bytearray | memoryview") -> bytes:
    """One uncompressed gRPC message: the 5-byte prefix, then ``data``."""
    return b"".join((len(data).to_bytes(5, "big"), data))


class Deframer:
    """Splits a stream's DATA into gRPC messages (any piece boundaries)."""

    __slots__ = ("_buf", "max_size")

    def __init__(self, max_size: int) -> None:
        self._buf = bytearray()
        self.max_size = max_size

    @property
    def pending(self) -> int:
        """Bytes of an unfinished message."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[bytes]:
        """The messages ``data`` completes; raises :class:`RpcError` for a compressed message
        (we never ask for compression) or one above ``max_size``."""
        buf = self._buf
        if not buf and len(data) >= 5:  # the usual case, whole messages: no copy into buf
            n = int.from_bytes(data[1:5], "big")
            if len(data) == 5 + n and not data[0] and n <= self.max_size:
                return [data[5:]]
        buf += data
        out = []
        while len(buf) >= 5:
            if buf[0]:
                raise RpcError(StatusCode.INTERNAL, "the server sent a compressed message, which was never asked for")
            n = int.from_bytes(buf[1:5], "big")
            if n > self.max_size:
                raise RpcError(StatusCode.RESOURCE_EXHAUSTED,
                               f"received message larger than max ({n} vs. {self.max_size})")
            if len(buf) < 5 + n:
                break
            out.append(bytes(buf[5:5 + n]))
            del buf[:5 + n]
        return out


def metadata_of(headers: Sequence[Tuple[str, str]]) -> Metadata:
    """The application metadata among response headers or trailers (``-bin`` values as bytes)."""
    out: List[Tuple[str, MetadataValue]] = []
    for name, value in headers:
        if name.startswith(":") or name in _RESERVED:
            continue
        if name.endswith("-bin"):
            try:
                out.append((name, base64.b64decode(value + "=" * (-len(value) % 4), validate=True)))
            except ValueError:
                continue  # a malformed binary header is dropped, as gRPC does
        else:
            out.append((name, value))
    return tuple(out)


def check_response_headers(headers: Sequence[Tuple[str, str]]) -> Optional[RpcError]:
    """An error if the response headers are not a gRPC response (HTTP status, content type)."""
    h = dict(headers)
    status = h.get(":status", "")
    if status != "200":
        code = _HTTP_STATUS.get(status, StatusCode.UNKNOWN)
        return RpcError(code, f"the server answered HTTP status {status or '(none)'}, not a gRPC response")
    ctype = h.get("content-type", "")
    if not ctype.startswith("application/grpc"):
        return RpcError(StatusCode.UNKNOWN, f"the server answered content-type {ctype!r}, not application/grpc")
    return None


def status_of(headers: Sequence[Tuple[str, str]]) -> Optional[RpcError]:
    """The call's outcome from its trailers: None for OK, else the error (with the trailers as
    its metadata, so ``grpc-status-details-bin`` can be read from it)."""
    status = message = None
    for name, value in headers:
        if name == "grpc-status":
            status = value
        elif name == "grpc-message":
            message = value
    if status is None:
        return RpcError(StatusCode.UNKNOWN, "the server ended the call without a grpc-status",
                        metadata_of(headers))
    code = StatusCode.of(status)
    if code is StatusCode.OK:
        return None
    return RpcError(code, percent_decode(message or ""), metadata_of(headers))
