"""A gRPC client channel on llbkit's own HTTP/2 (:mod:`.h2`), one connection, one reader thread.

The protocol is sans-IO (:mod:`.h2`, :mod:`.wire`); this module adds the threads and the socket
(:mod:`.transport`). The first call connects (lazily, like a gRPC channel): socket, TLS, the
HTTP/2 preface, and the server's SETTINGS, all within the call's deadline (else
``connect_timeout``), so that a listener that never answers, or one speaking another protocol,
fails that call with UNAVAILABLE or DEADLINE_EXCEEDED and the local error as ``cause``. Then a
reader thread feeds what arrives to the connection and each call's queue; callers send from
their own threads (a stream-streaming call's requests from a thread of its own). A connection
that failed or got GOAWAY is replaced at the next call.

Flow control: what a call receives is acknowledged on arrival while the caller keeps up, and held
back once 16 MiB of messages wait for it, so a slow consumer holds the server back instead of
buffering without bound; the windows are large (16 MiB) so that exports stream at full speed.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from llbkit.buildkit.rpc import h2
from llbkit.buildkit.rpc.status import Metadata, MetadataValue, RpcError, StatusCode
from llbkit.buildkit.rpc.transport import Endpoint, Transport, TransportError, dial
from llbkit.buildkit.rpc.wire import Deframer, check_response_headers, frame_message, metadata_of, request_headers, status_of

__all__ = ["Channel", "Call"]

Serializer = Optional[Callable[[Any], bytes]]
Deserializer = Optional[Callable[[bytes], Any]]
MD = Optional[Sequence[Tuple[str, MetadataValue]]]

DEFAULT_MAX_MESSAGE = 128 << 20
_QUEUED_MAX = h2.RECEIVE_WINDOW
_END = object()


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


class _Conn:
    """One HTTP/2 connection and its reader thread."""

    def __init__(self, channel: "Channel", transport: Transport) -> None:
        self.channel = channel
        self.transport = transport
        self.h2 = h2.H2Connection(client=True)
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)  # senders wait for window space
        self.wlock = threading.Lock()  # bytes go out in the order the connection made them
        self.calls: Dict[int, "Call"] = {}
        self.usable = True  # False after GOAWAY or a failure: new calls take a new connection
        self.dead: Optional[RpcError] = None
        self._thread: Optional[threading.Thread] = None

    # -- connecting ------------------------------------------------------------------------------
    def handshake(self) -> None:
        """Send our preface and wait (under the socket's timeout) for the server's SETTINGS.
        Errors are raised to the connecting call (not :meth:`fail`: the channel's lock is held)."""
        self._send_now()
        while not self.h2.settings_received:
            data = self.transport.recv()
            if not data:
                raise TransportError("the server closed the connection before its HTTP/2 settings", "closed")
            with self.lock:
                events = self.h2.receive(data)
            for ev in events:
                if isinstance(ev, h2.Closed):
                    raise TransportError(f"the server does not speak HTTP/2 ({ev.why})", "not-http2")
                if isinstance(ev, h2.GoAway):
                    raise TransportError(f"the server refused the connection (GOAWAY {ev.code}: "
                                         f"{ev.debug.decode('utf-8', 'replace')})", "closed")
            self._send_now()

    def _send_now(self) -> None:
        with self.lock:
            data = self.h2.data_to_send()
        if data:
            self.transport.send(data)

    def start(self) -> None:
        self.transport.settimeout(None)
        self._thread = threading.Thread(target=self._read, name="llbkit-grpc-reader", daemon=True)
        self._thread.start()

    # -- output ----------------------------------------------------------------------------------
    def flush(self) -> None:
        with self.wlock:
            with self.lock:
                data = self.h2.data_to_send()
            if data:
                try:
                    self.transport.send(data)
                except OSError as e:
                    self.fail(RpcError(StatusCode.UNAVAILABLE, f"connection lost while sending: {e}", cause=e,
                                       local=True))

    # -- input -----------------------------------------------------------------------------------
    def _read(self) -> None:
        err: Optional[RpcError] = None
        try:
            while True:
                data = self.transport.recv()
                if not data:
                    err = RpcError(StatusCode.UNAVAILABLE, "Socket closed", cause=TransportError(
                        "the server closed the connection", "closed"), local=True)
                    break
                finished: List[Tuple["Call", Optional[RpcError]]] = []
                with self.lock:
                    events = self.h2.receive(data)
                    for ev in events:
                        self._on_event(ev, finished)
                    self.room.notify_all()
                for call, status in finished:
                    call._finish(status)
                self.flush()
                if self.h2.closed:
                    err = err or RpcError(StatusCode.UNAVAILABLE, "the connection was closed (protocol error)",
                                          local=True)
                    break
        except OSError as e:
            err = RpcError(StatusCode.UNAVAILABLE, f"connection lost: {e}", cause=e, local=True)
        self.fail(err or RpcError(StatusCode.UNAVAILABLE, "connection closed", local=True))

    def _on_event(self, ev: object, finished: List[Tuple["Call", Optional[RpcError]]]) -> None:
        if isinstance(ev, h2.Data):
            call = self.calls.get(ev.stream_id)
            if call is None:
                self.h2.consumed(0, len(ev.data))
                return
            call._held += len(ev.data)
            try:
                for m in call._deframer.feed(ev.data):
                    call._queue.append(m)
                    call._queued += len(m) + 5
            except RpcError as e:
                self.h2.reset(ev.stream_id, h2.CANCEL)
                self.calls.pop(ev.stream_id, None)
                finished.append((call, e))
                return
            if call._queued <= _QUEUED_MAX:
                self.h2.consumed(ev.stream_id, call._held)
                call._held = 0
            call._arrived.notify_all()
            if ev.end_stream:  # no trailers: not a gRPC response
                self.calls.pop(ev.stream_id, None)
                finished.append((call, RpcError(StatusCode.INTERNAL, "the server ended the stream without trailers")))
        elif isinstance(ev, h2.Response):
            call = self.calls.get(ev.stream_id)
            if call is None:
                return
            bad = check_response_headers(ev.headers)
            call.initial_metadata = metadata_of(ev.headers)
            if bad is not None or ev.end_stream:  # trailers-only, or not gRPC at all
                self.calls.pop(ev.stream_id, None)
                if bad is None:
                    bad = status_of(ev.headers)
                elif not ev.end_stream:
                    self.h2.reset(ev.stream_id, h2.CANCEL)
                finished.append((call, bad))
        elif isinstance(ev, h2.Trailers):
            call = self.calls.pop(ev.stream_id, None)
            if call is not None:
                finished.append((call, status_of(ev.headers)))
        elif isinstance(ev, h2.Reset):
            call = self.calls.pop(ev.stream_id, None)
            if call is not None:
                code = {h2.CANCEL: StatusCode.CANCELLED, h2.REFUSED_STREAM: StatusCode.UNAVAILABLE,
                        h2.ENHANCE_YOUR_CALM: StatusCode.RESOURCE_EXHAUSTED}.get(ev.code, StatusCode.INTERNAL)
                finished.append((call, RpcError(code, f"stream reset by the server (HTTP/2 error {ev.code})")))
        elif isinstance(ev, h2.GoAway):
            self.usable = False
            for sid in [s for s in self.calls if s > ev.last_stream_id]:
                finished.append((self.calls.pop(sid), RpcError(
                    StatusCode.UNAVAILABLE, "the server is going away (GOAWAY) and did not take the call",
                    local=True)))
        elif isinstance(ev, h2.Closed):
            self.usable = False

    def fail(self, err: RpcError) -> None:
        """The connection is over: every call on it ends with ``err``."""
        with self.lock:
            self.usable = False
            if self.dead is None:
                self.dead = err
            calls, self.calls = list(self.calls.values()), {}
            self.room.notify_all()
        for call in calls:
            call._finish(err)
        self.channel._forget(self)

    def close(self) -> None:
        with self.lock:
            self.usable = False
            if self.dead is None:
                self.dead = RpcError(StatusCode.CANCELLED, "Channel closed", local=True)
        self.transport.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    # -- streams ---------------------------------------------------------------------------------
    def open(self, call: "Call", headers: List[Tuple[str, str]], first: Optional[bytes], end: bool) -> None:
        with self.lock:
            if self.dead is not None:
                raise self.dead
            sid = self.h2.new_stream()
            call._sid = sid
            self.calls[sid] = call
            self.h2.send_headers(sid, headers, end_stream=end and first is None)
        if first is not None:
            self.send(call, first, end)
        else:
            self.flush()

    def send(self, call: "Call", message: bytes, end: bool = False) -> bool:
        """Send one framed message (or just END_STREAM when ``message`` is empty and ``end``);
        False if the call is over. Waits for window space."""
        view = memoryview(message)
        off = 0
        while True:
            with self.lock:
                while True:
                    if call._status_set or self.dead is not None:
                        return False
                    n = self.h2.send_data(call._sid, view[off:], end_stream=end)
                    if n < 0:
                        return False
                    off += n
                    if off >= len(view) or self.h2.pending_output:
                        break
                    self.room.wait(1.0)  # a WINDOW_UPDATE (fed by the reader thread)
            self.flush()
            if off >= len(view):
                return True

    def reset(self, call: "Call") -> None:
        with self.lock:
            self.calls.pop(call._sid, None)
            self.h2.reset(call._sid, h2.CANCEL)  # nothing if the stream is over
        self.flush()



class Call:
    """One call: iterate it for the responses (streaming), or :meth:`result` (unary); ``cancel()``
    from any thread. A failed call raises :class:`RpcError`."""

    def __init__(self, channel: "Channel", path: str, deserialize: Deserializer, deadline: Optional[float]) -> None:
        self._channel = channel
        self._path = path
        self._deserialize = deserialize
        self._deadline = deadline
        self._conn: Optional[_Conn] = None
        self._sid = 0
        self._deframer = Deframer(channel.max_message)
        self._queue: Deque[bytes] = collections.deque()
        # Flow control (under the connection's lock): bytes received are acknowledged on arrival
        # while the caller keeps up (at most _QUEUED_MAX bytes of whole messages waiting), else
        # held until it takes messages. Acknowledging only taken messages would stall any
        # message larger than the window.
        self._queued = 0
        self._held = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(threading.Lock())  # replaced by the connection's
        self._status: Optional[RpcError] = None
        self._status_set = False
        self._done = threading.Event()
        self.initial_metadata: Metadata = ()
        self._sender: Optional[threading.Thread] = None

    # -- the connection's side -----------------------------------------------------------------
    def _finish(self, status: Optional[RpcError]) -> None:
        conn = self._conn
        lock = conn.lock if conn is not None else self._lock
        with lock:
            if self._status_set:
                return
            self._status = status
            self._status_set = True
            if conn is not None:
                self._arrived.notify_all()
                conn.room.notify_all()
        self._done.set()

    # -- the caller's side ---------------------------------------------------------------------
    def _start(self, headers: List[Tuple[str, str]], first: Optional[bytes], end: bool) -> None:
        try:
            conn = self._channel._connection(self._deadline)
        except RpcError as e:
            self._finish(e)
            return
        self._conn = conn
        self._arrived = threading.Condition(conn.lock)
        try:
            conn.open(self, headers, first, end)
        except RpcError as e:
            self._finish(e)

    def _send_all(self, requests: Iterable[Any], serialize: Serializer) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            for req in requests:
                data = serialize(req) if serialize is not None else req
                if not conn.send(self, frame_message(data)):
                    return
            conn.send(self, b"", end=True)
        except BaseException as e:  # the request iterator failed: the call is cancelled
            self._finish(RpcError(StatusCode.CANCELLED, f"the request iterator failed: {type(e).__name__}: {e}",
                                  cause=e, local=True))
            conn.reset(self)

    def _expire(self) -> None:
        self._finish(RpcError(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", local=True))
        if self._conn is not None:
            self._conn.reset(self)

    def _next_message(self) -> Any:
        """The next response, or ``_END`` when the call ended OK; raises its error."""
        conn = self._conn
        if conn is None:  # never connected
            if self._status is not None:
                raise self._status
            return _END
        with conn.lock:
            while not self._queue and not self._status_set:
                if self._deadline is None:
                    self._arrived.wait()
                else:
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.wait(left)
            if self._queue:
                m = self._queue.popleft()
                self._queued -= len(m) + 5
                if self._held and self._queued <= _QUEUED_MAX:
                    conn.h2.consumed(self._sid, self._held)
                    self._held = 0
                pending = conn.h2.pending_output
            elif self._status_set:
                if self._status is not None:
                    raise self._status
                return _END
            else:
                m = None
        if m is None:
            self._expire()
            return self._next_message()
        if pending:
            conn.flush()
        return self._deserialize(m) if self._deserialize is not None else m

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        m = self._next_message()
        if m is _END:
            raise StopIteration
        return m

    def result(self, timeout: Optional[float] = None) -> Any:
        """(unary) The response; raises :class:`RpcError`, or ``TimeoutError`` if ``timeout``
        passes first (the call goes on)."""
        if not self.wait(timeout):
            raise TimeoutError(f"{self._path} did not finish within {timeout} s")
        m = self._next_message()
        if m is _END:
            raise RpcError(StatusCode.INTERNAL, "the server sent no response message")
        return m

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the call is over (respecting its deadline); True if it is."""
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if timeout is None or left < timeout:
                if not self._done.wait(max(left, 0)):
                    self._expire()
                return True
        return self._done.wait(timeout)

    def done(self) -> bool:
        return self._done.is_set()

    def cancelled(self) -> bool:
        s = self._status
        return s is not None and s.local and s.code() is StatusCode.CANCELLED

    def cancel(self) -> bool:
        """End the call (RST_STREAM CANCEL); False if it was over already."""
        if self._status_set:
            return False
        self._finish(RpcError(StatusCode.CANCELLED, "Cancelled", local=True))
        if self._conn is not None:
            self._conn.reset(self)
        return True

    def code(self) -> Optional[StatusCode]:
        """The status, once over (None before)."""
        if not self._status_set:
            return None
        return self._status.code() if self._status is not None else StatusCode.OK


class _Method:
    def __init__(self, channel: "Channel", path: str, serialize: Serializer, deserialize: Deserializer) -> None:
        self._channel = channel
        self._path = path
        self._serialize = serialize
        self._deserialize = deserialize

    def _call(self, timeout: Optional[float]) -> Call:
        return Call(self._channel, self._path, self._deserialize, _deadline(timeout))

    def _headers(self, timeout: Optional[float], metadata: MD) -> List[Tuple[str, str]]:
        ch = self._channel
        return request_headers(self._path, ch.authority, scheme=ch.scheme, timeout=timeout, metadata=metadata or ())

    def _one(self, request: Any, timeout: Optional[float], metadata: MD) -> Call:
        call = self._call(timeout)
        data = self._serialize(request) if self._serialize is not None else request
        call._start(self._headers(timeout, metadata), frame_message(data), True)
        return call


class UnaryUnary(_Method):
    def __call__(self, request: Any, timeout: Optional[float] = None, metadata: MD = None) -> Any:
        return self._one(request, timeout, metadata).result()

    def future(self, request: Any, timeout: Optional[float] = None, metadata: MD = None) -> Call:
        return self._one(request, timeout, metadata)


class UnaryStream(_Method):
    def __call__(self, request: Any, timeout: Optional[float] = None, metadata: MD = None) -> Call:
        return self._one(request, timeout, metadata)


class StreamStream(_Method):
    def __call__(self, requests: Iterable[Any], timeout: Optional[float] = None, metadata: MD = None) -> Call:
        call = self._call(timeout)
        call._start(self._headers(timeout, metadata), None, False)
        if not call._status_set:
            call._sender = threading.Thread(target=call._send_all, args=(requests, self._serialize),
                                            name=f"llbkit-grpc-send-{self._path.rsplit('/', 1)[-1]}", daemon=True)
            call._sender.start()
        return call


class Channel:
    """Calls to one server at ``endpoint``; connects on the first call, reconnects after a
    failure or GOAWAY. ``authority`` is the ``:authority`` of every call."""

    def __init__(self, endpoint: Endpoint, *, authority: Optional[str] = None, connect_timeout: float = 20.0,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.endpoint = endpoint
        self.scheme = "https" if endpoint.tls is not None else "http"
        if authority is None:
            authority = "localhost" if endpoint.path else (
                f"[{endpoint.host}]:{endpoint.port}" if ":" in endpoint.host else f"{endpoint.host}:{endpoint.port}")
        self.authority = authority
        self.connect_timeout = connect_timeout
        self.max_message = max_message
        self._lock = threading.Lock()
        self._conn: Optional[_Conn] = None
        self._closed = False

    def unary_unary(self, path: str, request_serializer: Serializer = None,
                    response_deserializer: Deserializer = None) -> UnaryUnary:
        return UnaryUnary(self, path, request_serializer, response_deserializer)

    def unary_stream(self, path: str, request_serializer: Serializer = None,
                     response_deserializer: Deserializer = None) -> UnaryStream:
        return UnaryStream(self, path, request_serializer, response_deserializer)

    def stream_stream(self, path: str, request_serializer: Serializer = None,
                      response_deserializer: Deserializer = None) -> StreamStream:
        return StreamStream(self, path, request_serializer, response_deserializer)

    def _connection(self, deadline: Optional[float]) -> _Conn:
        with self._lock:  # one connect at a time; the others then share it
            if self._closed:
                raise RpcError(StatusCode.CANCELLED, "Channel closed", local=True)
            conn = self._conn
            if conn is not None and conn.usable:
                return conn
            timeout = self.connect_timeout
            if deadline is not None:
                timeout = min(timeout, max(deadline - time.monotonic(), 0.0))
            transport: Optional[Transport] = None
            try:
                transport = dial(self.endpoint, timeout)
                conn = _Conn(self, transport)
                conn.handshake()
            except socket.timeout as e:
                if transport is not None:
                    transport.close()
                if deadline is not None and deadline - time.monotonic() <= 0.05:
                    raise RpcError(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", cause=e, local=True,
                                   connecting=True) from None
                raise RpcError(StatusCode.UNAVAILABLE, f"connecting to {self.endpoint} timed out after "
                               f"{timeout:g} s", cause=e, local=True, connecting=True) from None
            except OSError as e:  # refused, no such socket, TLS (ssl.SSLError), TransportError
                if transport is not None:
                    transport.close()
                raise RpcError(StatusCode.UNAVAILABLE, f"failed to connect to {self.endpoint}: {e}",
                               cause=e, local=True, connecting=True) from None
            conn.start()
            self._conn = conn
            return conn

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        conn.transport.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.fail(RpcError(StatusCode.CANCELLED, "Channel closed", local=True))
            conn.close()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
