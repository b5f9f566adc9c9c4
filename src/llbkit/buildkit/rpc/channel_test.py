"""llbkit's gRPC channel against the session's own gRPC server on a unix socket (no daemon): the
call kinds, large messages through the flow-control windows, cancellation, deadlines, errors."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from typing import Any, Iterator, List

import pytest

from llbkit.buildkit.rpc import handlers
from llbkit.buildkit.rpc.channel import Channel
from llbkit.buildkit.rpc.status import RpcError, StatusCode
from llbkit.buildkit.rpc.transport import Endpoint, TransportError
from llbkit.buildkit.session.socket_server import SocketServer

BIG = 40 * 1024 * 1024  # above the 16 MiB windows of both sides


class Recorder:
    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.metadata: List[Any] = []


def _service(rec: Recorder) -> handlers.Service:
    def echo(req: bytes, ctx: Any) -> bytes:
        rec.metadata.append(dict(ctx.invocation_metadata()))
        return req[::-1]

    def count(req: bytes, ctx: Any) -> Iterator[bytes]:
        for i in range(int(req)):
            yield str(i).encode()

    def sizes(requests: Iterator[bytes], ctx: Any) -> Iterator[bytes]:
        for r in requests:
            yield str(len(r)).encode()

    def big(req: bytes, ctx: Any) -> bytes:
        return b"z" * int(req)

    def hang(req: bytes, ctx: Any) -> bytes:
        while ctx.is_active():  # until the client resets the stream
            time.sleep(0.01)
        rec.cancelled.set()
        return b""

    def fail(req: bytes, ctx: Any) -> bytes:
        ctx.abort(StatusCode.FAILED_PRECONDITION, "no: \u00e9t\u00e9 100%\nline two")
        return b""

    return handlers.Service("t.T", {
        "Echo": handlers.unary_unary(echo), "Count": handlers.unary_stream(count),
        "Sizes": handlers.stream_stream(sizes), "Big": handlers.unary_unary(big),
        "Hang": handlers.unary_unary(hang), "Fail": handlers.unary_unary(fail),
    })


@pytest.fixture
def served() -> Iterator[Any]:
    d = tempfile.mkdtemp(prefix="llbkit-rpc-test-")
    rec = Recorder()
    server = SocketServer([_service(rec)], os.path.join(d, "s.sock"))
    ch = Channel(Endpoint(path=os.path.join(d, "s.sock")))
    try:
        yield ch, rec
    finally:
        ch.close()
        server.close()
        shutil.rmtree(d)


def test_unary_with_metadata(served: Any) -> None:
    ch, rec = served
    echo = ch.unary_unary("/t.T/Echo")
    assert echo(b"abc", metadata=[("k", "v"), ("b-bin", b"\x00\x01")]) == b"cba"
    assert rec.metadata[0]["k"] == "v" and rec.metadata[0]["b-bin"] == b"\x00\x01"
    assert [echo(str(i).encode(), timeout=10) for i in range(20)] == [str(i).encode()[::-1] for i in range(20)]


def test_server_streaming_and_bidi_streaming(served: Any) -> None:
    ch, _ = served
    assert list(ch.unary_stream("/t.T/Count")(b"1000")) == [str(i).encode() for i in range(1000)]
    sizes = [0, 1, 5, 70_000, BIG]
    assert list(ch.stream_stream("/t.T/Sizes")(iter(b"x" * n for n in sizes))) == [str(n).encode() for n in sizes]


def test_a_large_response_streams_through_the_windows(served: Any) -> None:
    ch, _ = served
    assert ch.unary_unary("/t.T/Big")(str(BIG).encode()) == b"z" * BIG


def test_errors_carry_code_and_percent_decoded_details(served: Any) -> None:
    ch, _ = served
    with pytest.raises(RpcError) as e:
        ch.unary_unary("/t.T/Fail")(b"")
    assert e.value.code() is StatusCode.FAILED_PRECONDITION and not e.value.local
    assert e.value.details() == "no: \u00e9t\u00e9 100%\nline two"
    with pytest.raises(RpcError) as e:
        ch.unary_unary("/t.T/Nope")(b"")
    assert e.value.code() is StatusCode.UNIMPLEMENTED


def test_a_deadline_ends_the_call_and_resets_the_stream(served: Any) -> None:
    ch, rec = served
    with pytest.raises(RpcError) as e:
        ch.unary_unary("/t.T/Hang")(b"", timeout=0.5)
    assert e.value.code() is StatusCode.DEADLINE_EXCEEDED and e.value.details() == "Deadline Exceeded"
    assert rec.cancelled.wait(30)  # the server saw RST_STREAM
    assert ch.unary_unary("/t.T/Echo")(b"ok") == b"ko"  # the connection goes on


def test_cancel_from_another_thread(served: Any) -> None:
    ch, rec = served
    call = ch.unary_unary("/t.T/Hang").future(b"")
    assert not call.wait(0.2) and not call.done()
    assert call.cancel() and not call.cancel()
    with pytest.raises(RpcError) as e:
        call.result()
    assert e.value.code() is StatusCode.CANCELLED and call.cancelled()
    assert rec.cancelled.wait(30)


def test_no_server_is_unavailable_while_connecting(tmp_path: Any) -> None:
    with Channel(Endpoint(path=str(tmp_path / "none.sock"))) as ch:
        with pytest.raises(RpcError) as e:
            ch.unary_unary("/t.T/Echo")(b"")
    assert e.value.code() is StatusCode.UNAVAILABLE and e.value.connecting
    assert isinstance(e.value.cause, FileNotFoundError)


def test_a_listener_that_is_not_http2_is_unavailable() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def answer() -> None:
        conn, _ = srv.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        with Channel(Endpoint(host="127.0.0.1", port=srv.getsockname()[1])) as ch:
            with pytest.raises(RpcError) as e:
                ch.unary_unary("/t.T/Echo")(b"", timeout=10)
        assert e.value.code() is StatusCode.UNAVAILABLE and isinstance(e.value.cause, TransportError)
    finally:
        srv.close()


def test_a_silent_listener_exceeds_the_deadline() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        with Channel(Endpoint(host="127.0.0.1", port=srv.getsockname()[1])) as ch:
            with pytest.raises(RpcError) as e:
                ch.unary_unary("/t.T/Echo")(b"", timeout=0.5)
        assert e.value.code() is StatusCode.DEADLINE_EXCEEDED and e.value.connecting
    finally:
        srv.close()
