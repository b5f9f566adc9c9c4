"""The session's gRPC server, on :mod:`.h2` over the ``Control.Session`` byte stream itself.

buildkitd calls the session's services over an HTTP/2 connection carried by the session stream.
Serving them with ``grpc.server`` meant a second gRPC stack behind a local socket: every file of
an upload crossed grpc-python's server (its completion queue, thread pool, locks and queues)
as several messages, and that per-message cost bounded uploads of many small files. Here the
bytes from buildkitd go straight into an :class:`~.h2.H2Connection`; each call runs its handler
(:class:`llbkit.buildkit.rpc.handlers.Service` objects, see :mod:`.services`) in a thread of its own with a
small servicer context; responses are framed (5-byte gRPC prefix, HTTP/2 DATA within the peer's
windows) into one output buffer, which the tunnel sends as few, large ``BytesMessage``s.

Threads: the tunnel's receiving thread calls :meth:`GrpcOverH2.feed`; handler threads send;
the tunnel's sending side iterates :meth:`GrpcOverH2.outgoing`. One lock guards the connection.
"""

from __future__ import annotations

import base64
import collections
import logging
import queue
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from llbkit.buildkit.rpc import h2
from llbkit.buildkit.rpc.status import RpcError, StatusCode, percent_encode

__all__ = ["GrpcOverH2"]

log = logging.getLogger(__name__)

_RESERVED = {"content-type", "te", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
             "grpc-message-type"}
_OUT_CHUNK = 1024 * 1024  # bytes per message to buildkitd, at most
_OUT_HIGH_WATER = 8 * 1024 * 1024  # senders wait while this much is queued for the tunnel
_END = object()
_QUEUED_MAX = h2.RECEIVE_WINDOW  # whole messages waiting for a handler before we stop acknowledging

OK, CANCELLED, UNKNOWN, UNIMPLEMENTED, INTERNAL, UNAVAILABLE = (
    StatusCode.OK, StatusCode.CANCELLED, StatusCode.UNKNOWN, StatusCode.UNIMPLEMENTED, StatusCode.INTERNAL,
    StatusCode.UNAVAILABLE)


class _Aborted(RpcError):
    """A handler's ``context.abort()`` (or a request the server cannot take): the call ends with
    ``status``. An RpcError, so a handler reading requests sees it as the call's end."""


class _Gone(Exception):
    """The call was reset by the peer, or the connection ended."""


def _status_code(code: Any) -> StatusCode:
    return StatusCode.of(int(code))


class _HandlerCallDetails:
    def __init__(self, method: str, metadata: Tuple[Tuple[str, Any], ...]) -> None:
        self.method = method
        self.invocation_metadata = metadata


class _Context:
    """The handlers' :class:`llbkit.buildkit.rpc.handlers.ServicerContext`."""

    def __init__(self, call: "_Call") -> None:
        self._call = call
        self._callbacks: List[Callable[[], None]] = []
        self.code: Optional[int] = None
        self.details = ""

    def invocation_metadata(self) -> Tuple[Tuple[str, Any], ...]:
        return self._call.metadata

    def is_active(self) -> bool:
        return not self._call.gone

    def abort(self, code: Any, details: str) -> None:
        raise _Aborted(_status_code(code), details)

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self._callbacks.append(callback)
        return True

    def set_code(self, code: Any) -> None:
        self.code = _status_code(code)

    def set_details(self, details: str) -> None:
        self.details = details

    def time_remaining(self) -> Optional[float]:
        return None

    def peer(self) -> str:
        return "buildkitd"

    def send(self, message: Any) -> None:
        """Send one response now, from any thread (what a handler would otherwise yield);
        raises once the call is over. Responses sent so are never reordered among themselves."""
        serialize = self._serialize
        self._call.server._send_message(self._call, serialize(message) if serialize is not None else message)

    _serialize: Optional[Callable[[Any], bytes]] = None

    def _done(self) -> None:
        for cb in self._callbacks:
            try:
                cb()
            except Exception:  # a callback's failure must not stop the others
                log.debug("session call callback failed", exc_info=True)


class _Call:
    def __init__(self, server: "GrpcOverH2", sid: int, path: str, metadata: Tuple[Tuple[str, Any], ...]) -> None:
        self.server = server
        self.sid = sid
        self.path = path
        self.metadata = metadata
        self.gone = False
        self.headers_sent = False
        # One message at a time on the stream: a send waiting for window space must not let
        # another thread's message in between its frames.
        self.send_lock = threading.Lock()
        self._buf = bytearray()  # DATA not yet a whole gRPC message
        self._messages: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        # Flow control (under the server lock): received bytes are acknowledged on arrival while
        # the handler keeps up (at most _QUEUED_MAX bytes of whole messages waiting), else held
        # until it takes messages. Acknowledging only taken messages would stall any message
        # larger than the window.
        self.queued = 0
        self.held = 0

    # fed by the receiving thread (under the server lock)
    def data(self, data: bytes, end: bool) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= 5:
            n = int.from_bytes(buf[1:5], "big")
            if len(buf) < 5 + n:
                break
            if buf[0]:
                self._messages.put(_Aborted(UNIMPLEMENTED, "compressed messages are not supported"))
            else:
                self._messages.put(bytes(buf[5:5 + n]))
                self.queued += 5 + n
            del buf[:5 + n]
        if end:
            self._messages.put(_END)

    def cancel(self) -> None:
        self.gone = True
        self._messages.put(_Gone())

    # used by the handler's thread
    def requests(self, deserialize: Optional[Callable[[bytes], Any]]) -> Iterator[Any]:
        while True:
            m = self._messages.get()
            if m is _END or isinstance(m, _Gone):  # a reset call's requests just end, as in grpc
                return
            if isinstance(m, Exception):
                raise m
            self.server._taken(self, len(m) + 5)
            yield deserialize(m) if deserialize is not None else m


class GrpcOverH2:
    """gRPC server of ``handlers`` on one HTTP/2 connection whose bytes the caller carries."""

    def __init__(self, handlers: Sequence[Any]) -> None:
        self._handlers = list(handlers)
        self._conn = h2.H2Connection()
        self._lock = threading.Lock()
        self._has_output = threading.Condition(self._lock)  # the tunnel waits for output
        self._room = threading.Condition(self._lock)  # senders wait: output taken, window opened
        self._out: "collections.deque[bytes]" = collections.deque()  # queued for the tunnel
        self._out_size = 0
        self._calls: Dict[int, _Call] = {}
        self._threads: List[threading.Thread] = []
        self._closed = False
        with self._lock:
            self._flush_locked()  # our SETTINGS: a server speaks first too

    # -- the tunnel's side ---------------------------------------------------------------------
    def feed(self, data: "bytes | memoryview") -> None:
        """Bytes buildkitd sent (in order)."""
        start: List[_Call] = []
        with self._lock:
            if self._closed:
                return
            for ev in self._conn.receive(bytes(data)):
                if isinstance(ev, h2.Request):
                    call = self._new_call(ev)
                    if call is not None:
                        start.append(call)
                        if ev.end_stream:
                            call.data(b"", True)
                elif isinstance(ev, h2.Data):
                    call = self._calls.get(ev.stream_id)
                    if call is not None:
                        call.data(ev.data, ev.end_stream)
                        call.held += len(ev.data)
                        if call.queued <= _QUEUED_MAX:
                            self._conn.consumed(call.sid, call.held)
                            call.held = 0
                    else:
                        self._conn.consumed(0, len(ev.data))
                elif isinstance(ev, h2.Reset):
                    call = self._calls.pop(ev.stream_id, None)
                    if call is not None:
                        call.cancel()
                elif isinstance(ev, h2.Closed):
                    self._close_locked()
            self._flush_locked()
            self._room.notify_all()  # windows may have opened
        for call in start:
            t = threading.Thread(target=self._serve, args=(call,), name=f"llbkit-session-{call.sid}", daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def outgoing(self) -> Iterator[bytes]:
        """What to send to buildkitd, in as few pieces as are ready; ends when closed."""
        with self._lock:
            while True:
                while not self._out and not self._closed:
                    self._has_output.wait()
                if not self._out:
                    return
                chunk = self._take_locked()
                self._room.notify_all()
                self._lock.release()
                try:
                    yield chunk
                finally:
                    self._lock.acquire()

    def _take_locked(self) -> bytes:
        """Up to ``_OUT_CHUNK`` bytes of what is queued, joined (whole pieces while they fit)."""
        first = self._out.popleft()
        if len(first) > _OUT_CHUNK:  # a large piece goes out in chunks, the rest stays first
            self._out.appendleft(first[_OUT_CHUNK:])
            first = first[:_OUT_CHUNK]
        parts, size = [first], len(first)
        while self._out and size + len(self._out[0]) <= _OUT_CHUNK:
            piece = self._out.popleft()
            parts.append(piece)
            size += len(piece)
        self._out_size -= size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """The stream ended (or the session closes): every call ends."""
        with self._lock:
            self._close_locked()

    def join(self, timeout: float = 5.0) -> None:
        """Wait (after :meth:`close`) for the calls' handlers to finish, e.g. to remove a
        half-received export: what they leave must be gone before the session is."""
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        calls, self._calls = list(self._calls.values()), {}
        for call in calls:
            call.cancel()
        self._has_output.notify_all()
        self._room.notify_all()

    # -- calls ---------------------------------------------------------------------------------
    def _new_call(self, ev: "h2.Request") -> Optional[_Call]:
        path = ""
        metadata: List[Tuple[str, Any]] = []
        for name, value in ev.headers:
            if name == ":path":
                path = value
            elif name.startswith(":") or name in _RESERVED:
                continue
            elif name.endswith("-bin"):
                metadata.append((name, base64.b64decode(value + "=" * (-len(value) % 4))))
            else:
                metadata.append((name, value))
        call = _Call(self, ev.stream_id, path, tuple(metadata))
        self._calls[ev.stream_id] = call
        return call

    def _lookup(self, call: _Call) -> Any:
        details = _HandlerCallDetails(call.path, call.metadata)
        for h in self._handlers:
            handler = h.service(details)
            if handler is not None:
                return handler
        return None

    def _serve(self, call: _Call) -> None:
        ctx = _Context(call)
        code, details = OK, ""
        try:
            handler = self._lookup(call)
            if handler is None:
                raise _Aborted(UNIMPLEMENTED, f"method {call.path} is not served by this session")
            requests = call.requests(handler.request_deserializer)
            serialize = ctx._serialize = handler.response_serializer
            if handler.request_streaming and handler.response_streaming:
                responses = handler.stream_stream(requests, ctx)
            elif handler.request_streaming:
                responses = iter([handler.stream_unary(requests, ctx)])
            else:
                request = next(iter(requests), None)
                if request is None:
                    raise _Aborted(INTERNAL, "no request message")
                if handler.response_streaming:
                    responses = handler.unary_stream(request, ctx)
                else:
                    responses = iter([handler.unary_unary(request, ctx)])
            for resp in responses:
                self._send_message(call, serialize(resp) if serialize is not None else resp)
            if ctx.code is not None:
                code, details = ctx.code, ctx.details
        except _Aborted as e:
            code, details = e.code(), e.details()
        except _Gone:
            code = -1
        except Exception as e:  # a handler's bug: the call fails, the session goes on
            log.debug("session call %s failed", call.path, exc_info=True)
            code, details = (CANCELLED, "") if call.gone else (UNKNOWN, f"{type(e).__name__}: {e}")
        finally:
            if code >= 0:
                self._finish(call, code, details)
            ctx._done()

    def _send_message(self, call: _Call, data: bytes) -> None:
        frame = memoryview(b"".join((len(data).to_bytes(5, "big"), data)))
        with call.send_lock, self._lock:
            if not call.headers_sent:
                self._conn.send_headers(call.sid, ((":status", "200"), ("content-type", "application/grpc")))
                call.headers_sent = True
            off = 0
            while off < len(frame):
                if self._closed or call.gone:
                    raise _Gone()
                while self._out_size > _OUT_HIGH_WATER and not self._closed and not call.gone:
                    self._room.wait()
                n = self._conn.send_data(call.sid, frame[off:])
                if n < 0:
                    raise _Gone()
                off += n
                self._flush_locked()
                if off < len(frame):
                    self._room.wait()  # for a WINDOW_UPDATE (fed by the receiving thread)

    def _finish(self, call: _Call, code: int, details: str) -> None:
        with call.send_lock, self._lock:
            if self._closed or call.gone:
                return
            trailers: List[Tuple[str, str]] = []
            if not call.headers_sent:  # trailers-only response
                trailers += [(":status", "200"), ("content-type", "application/grpc")]
            trailers.append(("grpc-status", str(int(code))))
            if details:
                trailers.append(("grpc-message", percent_encode(details)))
            self._conn.send_headers(call.sid, trailers, end_stream=True)
            self._calls.pop(call.sid, None)
            if self._conn.stream_open(call.sid):  # the client has not finished sending: stop it
                self._conn.reset(call.sid, h2.NO_ERROR)
            self._flush_locked()

    def _taken(self, call: _Call, n: int) -> None:
        """The handler took a message of ``n`` bytes: acknowledge what was held back for it."""
        with self._lock:
            call.queued -= n
            if call.held and call.queued <= _QUEUED_MAX:
                self._conn.consumed(call.sid, call.held)
                call.held = 0
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._conn.pending_output:
            was_empty = not self._out
            data = self._conn.data_to_send()
            self._out.append(data)
            self._out_size += len(data)
            if was_empty:  # only then can the tunnel be waiting
                self._has_output.notify()
