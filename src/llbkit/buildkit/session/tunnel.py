"""The session's byte tunnel: ``Control.Session`` messages <-> one stream socket.

BuildKit hijacks the ``Control.Session`` call into a byte stream (each ``BytesMessage`` carries
the next bytes of an HTTP/2 connection); buildkitd is the HTTP/2 client on it and the session
client serves gRPC. llbkit serves with a real ``grpc.server`` on a private unix socket and
copies bytes both ways between the call and one connection to that socket:

- every message buildkitd sends is written to the socket (in order, whole);
- whatever the socket yields is sent as the next message (at most ``chunk_size`` bytes each).

When either side ends, the other is half-closed, so the HTTP/2 connection sees an orderly EOF.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Tuple

import grpc

from llbkit.buildkit.session import wire

__all__ = ["Tunnel", "CHUNK_SIZE", "SESSION_METHOD"]

SESSION_METHOD = "/moby.buildkit.v1.Control/Session"
_HEADER_ROOM = 10  # a BytesMessage's tag and length varint fit in front of the data

# Larger messages mean fewer trips through gRPC's Python layer: 1 MiB instead of 64 KiB took
# uploads from ~95 to ~120 MB/s (benchmarks/client_vs_buildctl.py); well below gRPC's 4 MiB default
# message limit.
CHUNK_SIZE = 1024 * 1024

# (request iterator, metadata) -> response iterator that is also a grpc.Call (has .cancel())
StreamCall = Callable[..., Any]


class Tunnel:
    """Pumps bytes between a bidirectional ``BytesMessage`` call and a connected socket."""

    def __init__(self, sock: socket.socket, chunk_size: int = CHUNK_SIZE) -> None:
        self._sock = sock
        self._chunk = chunk_size
        self._call: Any = None
        self._thread: Optional[threading.Thread] = None
        self._closed = threading.Event()
        self.done = threading.Event()
        self.error: Optional[BaseException] = None
        self.bytes_in = 0  # from buildkitd
        self.bytes_out = 0  # to buildkitd

    def requests(self) -> Iterator[bytes]:
        """Serialized ``BytesMessage``s to send: the socket's bytes, until EOF or close.

        The socket is read into one reused buffer, behind room for the message header, so each
        message costs one copy of its data (``bytes()`` of the header and data together)."""
        buf = bytearray(_HEADER_ROOM + self._chunk)
        view = memoryview(buf)
        while True:
            try:
                n = self._sock.recv_into(view[_HEADER_ROOM:])
            except OSError:
                return
            if not n:
                return
            self.bytes_out += n
            head = wire.bytes_message_header(n)
            start = _HEADER_ROOM - len(head)
            view[start:_HEADER_ROOM] = head
            yield bytes(view[start:_HEADER_ROOM + n])

    def pump(self, responses: Iterable[Any]) -> None:
        """Write every received message (serialized, or a ``BytesMessage``) to the socket;
        half-close it when they end."""
        try:
            for msg in responses:
                data = wire.bytes_message_data(msg) if isinstance(msg, bytes) else msg.data
                if len(data):
                    self.bytes_in += len(data)
                    self._sock.sendall(data)
        except grpc.RpcError as e:
            if not self._closed.is_set() and e.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                self.error = e
        except OSError as e:
            if not self._closed.is_set():
                self.error = e
        finally:
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.done.set()

    def start(self, call: StreamCall, metadata: Sequence[Tuple[str, str]]) -> None:
        """Open the call (``call(request_iterator, metadata=...)``, a stream-stream callable
        without serializers: :data:`SESSION_METHOD` on a channel) and pump in a thread."""
        self._call = call(self.requests(), metadata=list(metadata))
        self._thread = threading.Thread(
            target=self.pump, args=(self._call,), name="llbkit-session-tunnel", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel the call and close the socket; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._call is not None:
            try:
                self._call.cancel()
            except Exception:
                pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
        self._sock.close()


class ServerTunnel:
    """Carries the ``Control.Session`` call's bytes to and from an in-process HTTP/2 gRPC
    server (:class:`~llbkit.buildkit.session.h2grpc.GrpcOverH2`): no socket in between. What the
    server has ready is sent as one message (at most 1 MiB), so many small gRPC messages cross
    grpc-python's client as a few large ones."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._call: Any = None
        self._thread: Optional[threading.Thread] = None
        self._closed = threading.Event()
        self.done = threading.Event()
        self.error: Optional[BaseException] = None
        self.bytes_in = 0
        self.bytes_out = 0

    def requests(self) -> Iterator[bytes]:
        for chunk in self._server.outgoing():
            self.bytes_out += len(chunk)
            yield wire.bytes_message_header(len(chunk)) + chunk

    def pump(self, responses: Iterable[Any]) -> None:
        try:
            for msg in responses:
                data = wire.bytes_message_data(msg) if isinstance(msg, bytes) else msg.data
                if len(data):
                    self.bytes_in += len(data)
                    self._server.feed(data)
        except grpc.RpcError as e:
            if not self._closed.is_set() and e.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                self.error = e
        finally:
            self._server.close()
            self.done.set()

    def start(self, call: StreamCall, metadata: Sequence[Tuple[str, str]]) -> None:
        self._call = call(self.requests(), metadata=list(metadata))
        self._thread = threading.Thread(
            target=self.pump, args=(self._call,), name="llbkit-session-tunnel", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._server.close()
        if self._call is not None:
            try:
                self._call.cancel()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
