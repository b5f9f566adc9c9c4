from __future__ import annotations

import queue
import socket
import threading

from llbkit._proto import control_pb2
from llbkit.buildkit.session.tunnel import Tunnel


class FakeCall:
    """A bidi call: yields queued messages (None ends it), consumes requests in a thread."""

    def __init__(self, requests, metadata):
        self.metadata = metadata
        self.incoming: "queue.Queue" = queue.Queue()
        self.sent = []
        self.cancelled = False
        self.requests_done = threading.Event()

        def consume():
            for m in requests:  # serialized BytesMessages
                self.sent.append(control_pb2.BytesMessage.FromString(m).data)
            self.requests_done.set()

        threading.Thread(target=consume, daemon=True).start()

    def __iter__(self):
        while True:
            m = self.incoming.get()
            if m is None:
                return
            # both forms the tunnel accepts: raw (the real call) and a message object
            yield control_pb2.BytesMessage(data=m).SerializeToString() if len(m) % 2 else control_pb2.BytesMessage(data=m)

    def cancel(self):
        self.cancelled = True
        self.incoming.put(None)


def _recv_all(sock):
    out = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return out
        out += d


def test_bytes_flow_both_ways_and_eof_propagates():
    a, b = socket.socketpair()
    t = Tunnel(a, chunk_size=4)
    calls = []
    t.start(lambda reqs, metadata: calls.append(FakeCall(reqs, metadata)) or calls[-1], [("k", "v")])
    call = calls[0]
    assert call.metadata == [("k", "v")]
    call.incoming.put(b"hello ")
    call.incoming.put(b"world")
    call.incoming.put(None)  # daemon ends the stream
    assert _recv_all(b) == b"hello world"  # then EOF (half-close)
    b.sendall(b"0123456789")
    b.shutdown(socket.SHUT_WR)
    assert call.requests_done.wait(5)
    assert b"".join(call.sent) == b"0123456789"
    assert all(len(x) <= 4 for x in call.sent)
    assert t.done.wait(5) and t.error is None
    assert (t.bytes_in, t.bytes_out) == (11, 10)
    t.close()
    t.close()  # idempotent
    b.close()


def test_close_cancels_the_call():
    a, b = socket.socketpair()
    t = Tunnel(a)
    calls = []
    t.start(lambda reqs, metadata: calls.append(FakeCall(reqs, metadata)) or calls[-1], [])
    t.close()
    assert calls[0].cancelled
    assert calls[0].requests_done.wait(5)
    b.close()
