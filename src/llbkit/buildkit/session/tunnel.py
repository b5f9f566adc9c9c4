"""The session's byte tunnel: ``Control.Session`` messages <-> the session's HTTP/2 server.

BuildKit hijacks the ``Control.Session`` call into a byte stream (each ``BytesMessage`` carries
the next bytes of an HTTP/2 connection); buildkitd is the HTTP/2 client on it and the session
client serves gRPC, here with :class:`~llbkit.buildkit.session.h2grpc.GrpcOverH2` in this
process (no socket, no second gRPC stack):

- every message buildkitd sends is fed to the server (in order, whole);
- whatever the server has ready to send goes out as the next message (at most 1 MiB each).

When buildkitd ends the stream the server closes (every call ends); closing the tunnel cancels
the call.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Tuple

from llbkit.buildkit.rpc.status import RpcError, StatusCode
from llbkit.buildkit.session import wire

__all__ = ["Tunnel", "SESSION_METHOD"]

SESSION_METHOD = "/moby.buildkit.v1.Control/Session"
# (request iterator, metadata) -> response iterator that has .cancel() (an rpc.channel.Call)
StreamCall = Callable[..., Any]


class Tunnel:
    """Carries the ``Control.Session`` call's bytes to and from an in-process HTTP/2 gRPC
    server (:class:`~llbkit.buildkit.session.h2grpc.GrpcOverH2`): no socket in between. What the
    server has ready is sent as one message (at most 1 MiB), so many small gRPC messages cross
    the client connection as a few large ones."""

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
        except RpcError as e:
            if not self._closed.is_set() and e.code() != StatusCode.CANCELLED:
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
