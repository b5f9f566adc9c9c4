"""One HTTP/2 connection (RFC 9113), either side, sans-IO: bytes in, events and bytes out.

Both of llbkit's HTTP/2 connections use it. The server side is what the session serves gRPC on:
buildkitd opens an HTTP/2 connection through the ``Control.Session`` stream and calls the
session's services on it (:mod:`llbkit.buildkit.session.h2grpc`). The client side
(``H2Connection(client=True)``) carries llbkit's own calls to buildkitd (:mod:`.channel`).

:meth:`H2Connection.receive` takes the bytes the peer sent and returns what happened
(:class:`Request` on a server, :class:`Response` and :class:`Trailers` on a client, :class:`Data`,
:class:`Reset`, :class:`GoAway`, :class:`Closed`); the connection answers SETTINGS and PING
itself and keeps flow control; the ``send_*`` methods queue frames, and :meth:`data_to_send`
hands out everything queued, for the caller to send in one write. No I/O and no threads here.

Flow control: what we receive is acknowledged (WINDOW_UPDATE) when the caller says it consumed
it (:meth:`consumed`), so a slow reader bounds what the peer may send; what we send is limited
by the peer's windows: :meth:`send_data` sends what the windows allow and returns how much.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Sequence, Tuple

from llbkit.buildkit.rpc.hpack import Decoder, Header, HpackError, encode
from llbkit.errors import SessionError

__all__ = ["H2Connection", "H2Error", "Request", "Response", "Trailers", "Data", "Reset", "GoAway", "Closed",
           "PREFACE"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT, S_INITIAL_WINDOW, S_MAX_FRAME, S_MAX_HEADER_LIST = range(1, 7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = (
    0x0, 0x1, 0x2, 0x3, 0x6, 0x7, 0x8)
ENHANCE_YOUR_CALM = 0xB

_DEFAULT_WINDOW = 65535
_MAX_WINDOW = (1 << 31) - 1
# What we let the peer send before it must wait for our WINDOW_UPDATE: large, as a gRPC server
# usually announces, so that exports stream without a round trip per 64 KiB.
RECEIVE_WINDOW = 16 * 1024 * 1024
OUR_MAX_FRAME = 1 << 20  # frames we accept (we announce it); the peer's limit bounds ours


class H2Error(SessionError):
    """The peer broke the protocol (the connection is then closed with GOAWAY)."""


class _Event:
    """An event of :meth:`H2Connection.receive`: plain slotted fields (no dataclasses: this is
    on every client's import path), equal when type and fields are."""

    __slots__: Tuple[str, ...] = ()

    def __init__(self, *args: object) -> None:
        for name, value in zip(self.__slots__, args):
            object.__setattr__(self, name, value)

    def _fields(self) -> Tuple[object, ...]:
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._fields() == self._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


class Request(_Event):
    """(server) A new stream's request headers."""

    __slots__ = ("stream_id", "headers", "end_stream")
    stream_id: int
    headers: Tuple[Header, ...]
    end_stream: bool


class Response(_Event):
    """(client) The response headers of one of our streams."""

    __slots__ = ("stream_id", "headers", "end_stream")
    stream_id: int
    headers: Tuple[Header, ...]
    end_stream: bool


class Trailers(_Event):
    """(client) The trailers that end one of our streams."""

    __slots__ = ("stream_id", "headers")
    stream_id: int
    headers: Tuple[Header, ...]


class Data(_Event):
    __slots__ = ("stream_id", "data", "end_stream")
    stream_id: int
    data: bytes
    end_stream: bool


class Reset(_Event):
    __slots__ = ("stream_id", "code")
    stream_id: int
    code: int


class Closed(_Event):
    """The connection is over: the peer broke the protocol (we said GOAWAY), or (server side) the
    peer said GOAWAY. The caller ends every stream."""

    __slots__ = ("code", "why")
    code: int
    why: str

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(code, why)


class GoAway(_Event):
    """(client) The peer said GOAWAY: no new streams; those up to ``last_stream_id`` may finish,
    later ones were never processed (the caller fails them)."""

    __slots__ = ("code", "last_stream_id", "debug")
    code: int
    last_stream_id: int
    debug: bytes

    def __init__(self, code: int, last_stream_id: int, debug: bytes = b"") -> None:
        super().__init__(code, last_stream_id, debug)


def _head(kind: int, flags: int, stream_id: int, n: int) -> bytes:
    return bytes(((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, kind, flags)) + stream_id.to_bytes(4, "big")


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _head(kind, flags, stream_id, len(payload)) + payload


class _Stream:
    __slots__ = ("send_window", "closed_local", "closed_remote", "unacked", "headers_seen")

    def __init__(self, window: int) -> None:
        self.send_window = window
        self.closed_local = False
        self.closed_remote = False
        self.unacked = 0  # bytes received and consumed but not yet acknowledged
        self.headers_seen = False  # (client) the response headers came: more HEADERS are trailers


class H2Connection:
    """``client=False``: the server side (waits for the client preface; streams are the peer's).
    ``client=True``: the client side (sends the preface; :meth:`new_stream` opens streams)."""

    def __init__(self, client: bool = False) -> None:
        self.client = client
        self._in = bytearray()
        self._out: List["bytes | memoryview"] = []
        self._out_size = 0
        self._preface_seen = client  # only a server reads a preface
        self._next_sid = 1
        self.goaway_received = False
        self.settings_received = False  # the peer's first SETTINGS came (it speaks HTTP/2)
        self._decoder = Decoder()
        self._streams: Dict[int, _Stream] = {}
        self._continuation: Optional[Tuple[int, int, bytearray]] = None  # (stream, flags, block)
        self.peer_initial_window = _DEFAULT_WINDOW
        self.peer_max_frame = 16384
        self.send_window = _DEFAULT_WINDOW  # the connection's, towards the peer
        self._conn_unacked = 0
        self.closed = False
        settings = struct.pack(">HIHIHI", S_ENABLE_PUSH, 0, S_INITIAL_WINDOW, RECEIVE_WINDOW,
                               S_MAX_FRAME, OUR_MAX_FRAME)
        if client:
            self._queue(PREFACE)
        self._queue(_frame(SETTINGS, 0, 0, settings))
        self._queue(_frame(WINDOW_UPDATE, 0, 0, (RECEIVE_WINDOW - _DEFAULT_WINDOW).to_bytes(4, "big")))

    # -- output ---------------------------------------------------------------------------------
    def _queue(self, data: "bytes | memoryview") -> None:
        self._out.append(data)
        self._out_size += len(data)

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        return out

    @property
    def pending_output(self) -> int:
        return self._out_size

    # -- input ----------------------------------------------------------------------------------
    def receive(self, data: bytes) -> List[object]:
        """Parse ``data`` (any piece of the byte stream); the events it completes, in order."""
        if self.closed:
            return []
        self._in += data
        events: List[object] = []
        if not self._preface_seen:
            if len(self._in) < len(PREFACE):
                return events
            if bytes(self._in[:len(PREFACE)]) != PREFACE:
                return self._fail(PROTOCOL_ERROR, "no HTTP/2 client preface", events)
            del self._in[:len(PREFACE)]
            self._preface_seen = True
        buf = self._in
        pos = 0
        try:
            while len(buf) - pos >= 9:
                length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
                if length > OUR_MAX_FRAME:
                    raise H2Error(f"a frame of {length} bytes, above the {OUR_MAX_FRAME} announced")
                if len(buf) - pos < 9 + length:
                    break
                kind, flags = buf[pos + 3], buf[pos + 4]
                stream_id = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF
                payload = bytes(buf[pos + 9:pos + 9 + length])
                pos += 9 + length
                self._on_frame(kind, flags, stream_id, payload, events)
                if self.closed:
                    break
        except (H2Error, HpackError) as e:
            del buf[:pos]
            return self._fail(PROTOCOL_ERROR, str(e), events)
        del buf[:pos]
        return events

    def _fail(self, code: int, why: str, events: List[object]) -> List[object]:
        last = 0 if self.client else max(self._streams, default=0)
        self._queue(_frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + why.encode()[:200]))
        self.closed = True
        events.append(Closed(code, why))
        return events

    # -- streams (client) -----------------------------------------------------------------------
    def new_stream(self) -> int:
        """(client) A new stream's id; its request starts with :meth:`send_headers`."""
        if not self.client:
            raise H2Error("only a client opens streams")
        sid = self._next_sid
        self._next_sid += 2
        self._streams[sid] = _Stream(self.peer_initial_window)
        return sid

    def _on_frame(self, kind: int, flags: int, sid: int, payload: bytes, events: List[object]) -> None:
        if self._continuation is not None and kind != CONTINUATION:
            raise H2Error("a frame between HEADERS and its CONTINUATION")
        if kind == DATA:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            st = self._streams.get(sid)
            if st is None or st.closed_remote:
                # a late frame of a stream we reset: count it against the connection window only
                self.consumed(0, len(payload))
                return
            if flags & END_STREAM:
                st.closed_remote = True
            events.append(Data(sid, payload, bool(flags & END_STREAM)))
            if flags & END_STREAM:
                self._close_if_done(sid, st)
        elif kind == HEADERS:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            if flags & END_HEADERS:
                self._headers(sid, flags, payload, events)
            else:
                self._continuation = (sid, flags, bytearray(payload))
        elif kind == CONTINUATION:
            if self._continuation is None or self._continuation[0] != sid:
                raise H2Error("CONTINUATION without its HEADERS")
            self._continuation[2].extend(payload)
            if flags & END_HEADERS:
                s, f, block = self._continuation
                self._continuation = None
                self._headers(s, f, bytes(block), events)
        elif kind == SETTINGS:
            if flags & ACK:
                return
            self.settings_received = True
            self._settings(payload)
            self._queue(_frame(SETTINGS, ACK, 0))
        elif kind == PING:
            if not flags & ACK:
                self._queue(_frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if sid == 0:
                self.send_window += inc
            elif sid in self._streams:
                self._streams[sid].send_window += inc
        elif kind == RST_STREAM:
            st = self._streams.pop(sid, None)
            if st is not None:
                events.append(Reset(sid, int.from_bytes(payload[:4], "big")))
        elif kind == GOAWAY:
            code = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else 0
            if self.client:  # streams the server took may still finish
                self.goaway_received = True
                last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF if len(payload) >= 4 else 0
                events.append(GoAway(code, last, bytes(payload[8:])))
            else:
                self.closed = True
                events.append(Closed(code))
        elif kind == PUSH_PROMISE:
            raise H2Error("PUSH_PROMISE, though we disabled push")
        # PRIORITY and unknown frames are ignored

    def _headers(self, sid: int, flags: int, block: bytes, events: List[object]) -> None:
        headers = tuple(self._decoder.decode(block))  # always: it keeps the HPACK table in step
        st = self._streams.get(sid)
        if self.client:
            if st is None or st.closed_remote:
                return  # a stream we reset (or a broken peer's): ignored
            end = bool(flags & END_STREAM)
            if end:
                st.closed_remote = True
                self._close_if_done(sid, st)
            if st.headers_seen:
                if not end:
                    raise H2Error(f"trailers without END_STREAM on stream {sid}")
                events.append(Trailers(sid, headers))
            else:
                st.headers_seen = True
                events.append(Response(sid, headers, end))
            return
        if st is None:  # a new request
            if sid % 2 == 0:
                raise H2Error(f"a request on stream {sid} (client streams are odd)")
            st = self._streams[sid] = _Stream(self.peer_initial_window)
            st.closed_remote = bool(flags & END_STREAM)
            events.append(Request(sid, headers, bool(flags & END_STREAM)))
        else:  # trailers from the client end its stream
            st.closed_remote = True
            events.append(Data(sid, b"", True))

    def _settings(self, payload: bytes) -> None:
        for i in range(0, len(payload) - 5, 6):
            key, value = struct.unpack_from(">HI", payload, i)
            if key == S_INITIAL_WINDOW:
                if value > _MAX_WINDOW:
                    raise H2Error("initial window size too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for st in self._streams.values():
                    st.send_window += delta
            elif key == S_MAX_FRAME:
                self.peer_max_frame = value
            elif key == S_HEADER_TABLE_SIZE:
                pass  # our encoder never indexes: any table size suits it

    # -- flow control of what we received ----------------------------------------------------
    def consumed(self, sid: int, n: int) -> None:
        """``n`` bytes of stream ``sid`` (0: none) were taken by the application: acknowledge
        them once enough add up (a quarter of the window), for the stream and the connection."""
        if n <= 0:
            return
        self._conn_unacked += n
        if self._conn_unacked >= RECEIVE_WINDOW // 4:
            self._queue(_frame(WINDOW_UPDATE, 0, 0, self._conn_unacked.to_bytes(4, "big")))
            self._conn_unacked = 0
        st = self._streams.get(sid)
        if st is not None and not st.closed_remote:
            st.unacked += n
            if st.unacked >= RECEIVE_WINDOW // 4:
                self._queue(_frame(WINDOW_UPDATE, 0, sid, st.unacked.to_bytes(4, "big")))
                st.unacked = 0

    # -- sending ------------------------------------------------------------------------------
    def window(self, sid: int) -> int:
        """How many DATA bytes may be sent on ``sid`` now (-1: the stream is gone)."""
        st = self._streams.get(sid)
        if st is None or st.closed_local:
            return -1
        return max(0, min(self.send_window, st.send_window))

    def send_headers(self, sid: int, headers: Sequence[Header], end_stream: bool = False) -> None:
        st = self._streams.get(sid)
        if st is None or st.closed_local:
            return
        block = encode(headers)
        limit = self.peer_max_frame
        first, rest = block[:limit], block[limit:]
        flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
        self._queue(_frame(HEADERS, flags, sid, first))
        while rest:
            chunk, rest = rest[:limit], rest[limit:]
            self._queue(_frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk))
        if end_stream:
            self._close_local(sid, st)

    def send_data(self, sid: int, data: "bytes | memoryview", end_stream: bool = False) -> int:
        """Queue as much of ``data`` as the windows allow (whole, with ``end_stream``, only if it
        all fits); returns the bytes queued, -1 if the stream is gone. ``data`` must not change
        until :meth:`data_to_send` (it is queued as a view)."""
        st = self._streams.get(sid)
        if st is None or st.closed_local:
            return -1
        view = memoryview(data)
        room = max(0, min(self.send_window, st.send_window))
        n = min(len(view), room)
        limit = self.peer_max_frame
        sent = 0
        while sent < n:
            k = min(limit, n - sent)
            last = end_stream and sent + k == len(view)
            # header and a view of the payload: joined (one copy) by data_to_send()
            self._queue(_head(DATA, END_STREAM if last else 0, sid, k))
            self._queue(view[sent:sent + k])
            sent += k
        if end_stream and not view:
            self._queue(_frame(DATA, END_STREAM, sid))
        self.send_window -= n
        st.send_window -= n
        if end_stream and n == len(view):
            self._close_local(sid, st)
        return n

    def reset(self, sid: int, code: int = CANCEL) -> None:
        if self._streams.pop(sid, None) is not None:
            self._queue(_frame(RST_STREAM, 0, sid, code.to_bytes(4, "big")))

    def _close_local(self, sid: int, st: _Stream) -> None:
        st.closed_local = True
        self._close_if_done(sid, st)

    def _close_if_done(self, sid: int, st: _Stream) -> None:
        if st.closed_local and st.closed_remote:
            self._streams.pop(sid, None)

    def stream_open(self, sid: int) -> bool:
        return sid in self._streams
