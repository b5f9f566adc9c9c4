from __future__ import annotations

import queue
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


class FakeServer:
    """What the tunnel needs of the session's server: feed, outgoing, close."""

    def __init__(self, outgoing):
        self.fed = []
        self._outgoing = outgoing
        self.closed = threading.Event()

    def feed(self, data):
        self.fed.append(bytes(data))

    def outgoing(self):
        for chunk in self._outgoing:
            yield chunk
        self.closed.wait(5)

    def close(self):
        self.closed.set()


def test_bytes_flow_both_ways_and_the_end_of_the_stream_closes_the_server():
    server = FakeServer([b"0123", b"456789"])
    t = Tunnel(server)
    calls = []
    t.start(lambda reqs, metadata: calls.append(FakeCall(reqs, metadata)) or calls[-1], [("k", "v")])
    call = calls[0]
    assert call.metadata == [("k", "v")]
    call.incoming.put(b"hello ")
    call.incoming.put(b"world")
    call.incoming.put(None)  # daemon ends the stream
    assert t.done.wait(5) and t.error is None
    assert b"".join(server.fed) == b"hello world" and server.closed.is_set()
    assert call.requests_done.wait(5)
    assert call.sent == [b"0123", b"456789"]  # each piece the server had ready: one message
    assert (t.bytes_in, t.bytes_out) == (11, 10)
    t.close()
    t.close()  # idempotent


def test_close_cancels_the_call_and_closes_the_server():
    server = FakeServer([])
    t = Tunnel(server)
    calls = []
    t.start(lambda reqs, metadata: calls.append(FakeCall(reqs, metadata)) or calls[-1], [])
    t.close()
    assert calls[0].cancelled and server.closed.is_set()
    assert calls[0].requests_done.wait(5)
