"""The HTTP/2 connection, sans-IO: a client and a server connection of ours talking, and
hand-made frames for what a peer may do (CONTINUATION, GOAWAY, RST_STREAM, windows)."""

from __future__ import annotations

import struct
from typing import List, Tuple

from llbkit.buildkit.rpc import h2
from llbkit.buildkit.rpc.hpack import Decoder, encode


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return bytes(((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, kind, flags)) + sid.to_bytes(4, "big") + payload


def frames(data: bytes) -> List[Tuple[int, int, int, bytes]]:
    out = []
    while data:
        n = int.from_bytes(data[:3], "big")
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big"), data[9:9 + n]))
        data = data[9 + n:]
    return out


def pair() -> Tuple[h2.H2Connection, h2.H2Connection]:
    client, server = h2.H2Connection(client=True), h2.H2Connection()
    server.receive(client.data_to_send())
    client.receive(server.data_to_send())
    server.receive(client.data_to_send())  # the SETTINGS ACKs
    return client, server


def test_client_sends_the_preface_then_settings_and_learns_the_servers() -> None:
    client = h2.H2Connection(client=True)
    out = client.data_to_send()
    assert out.startswith(h2.PREFACE)
    kinds = [k for k, _, _, _ in frames(out[len(h2.PREFACE):])]
    assert kinds == [h2.SETTINGS, h2.WINDOW_UPDATE]
    assert not client.settings_received
    settings = struct.pack(">HIHI", h2.S_INITIAL_WINDOW, 1000, h2.S_MAX_FRAME, 20000)
    assert client.receive(frame(h2.SETTINGS, 0, 0, settings)) == []
    assert client.settings_received and client.peer_initial_window == 1000 and client.peer_max_frame == 20000
    assert frames(client.data_to_send()) == [(h2.SETTINGS, h2.ACK, 0, b"")]


def test_a_request_and_its_response_with_trailers() -> None:
    client, server = pair()
    sid = client.new_stream()
    assert (sid, client.new_stream()) == (1, 3)
    client.send_headers(sid, [(":method", "POST"), (":path", "/s/M")])
    assert client.send_data(sid, b"hello", end_stream=True) == 5
    events = server.receive(client.data_to_send())
    assert events == [h2.Request(1, ((":method", "POST"), (":path", "/s/M")), False), h2.Data(1, b"hello", True)]
    server.send_headers(1, [(":status", "200")])
    server.send_data(1, b"world")
    server.send_headers(1, [("grpc-status", "0")], end_stream=True)
    events = client.receive(server.data_to_send())
    assert events == [h2.Response(1, ((":status", "200"),), False), h2.Data(1, b"world", False),
                      h2.Trailers(1, (("grpc-status", "0"),))]
    assert not client.stream_open(1) and client.window(1) == -1


def test_trailers_only_response_ends_the_stream() -> None:
    client, server = pair()
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")], end_stream=True)
    server.receive(client.data_to_send())
    server.send_headers(sid, [(":status", "200"), ("grpc-status", "12")], end_stream=True)
    assert client.receive(server.data_to_send()) == [
        h2.Response(sid, ((":status", "200"), ("grpc-status", "12")), True)]


def test_headers_split_over_continuation_frames_decode_as_one_block() -> None:
    client = h2.H2Connection(client=True)
    client.receive(frame(h2.SETTINGS, 0, 0))
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")], end_stream=True)
    block = encode([(":status", "200"), ("x-long", "v" * 300)])
    data = (frame(h2.HEADERS, 0, sid, block[:100]) + frame(h2.CONTINUATION, 0, sid, block[100:200])
            + frame(h2.CONTINUATION, h2.END_HEADERS, sid, block[200:]))
    assert client.receive(data[:150]) == []  # any piece boundaries
    assert client.receive(data[150:]) == [h2.Response(sid, ((":status", "200"), ("x-long", "v" * 300)), False)]


def test_a_frame_between_headers_and_continuation_is_a_protocol_error() -> None:
    client = h2.H2Connection(client=True)
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")])
    client.data_to_send()
    events = client.receive(frame(h2.HEADERS, 0, sid, encode([(":status", "200")])) + frame(h2.PING, 0, 0, b"\0" * 8))
    assert len(events) == 1 and isinstance(events[0], h2.Closed) and events[0].code == h2.PROTOCOL_ERROR
    assert client.closed
    kind, _, _, payload = frames(client.data_to_send())[-1]
    assert kind == h2.GOAWAY and int.from_bytes(payload[4:8], "big") == h2.PROTOCOL_ERROR


def test_large_headers_go_out_in_continuation_frames_within_the_peers_frame_size() -> None:
    client = h2.H2Connection(client=True)  # the peer's frame size: the default 16 KiB
    client.data_to_send()
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x"), ("x-big", "y" * 40000)], end_stream=True)
    out = frames(client.data_to_send())
    assert [k for k, _, _, _ in out] == [h2.HEADERS, h2.CONTINUATION, h2.CONTINUATION]
    assert all(len(p) <= 16384 for _, _, _, p in out) and out[-1][1] & h2.END_HEADERS
    block = b"".join(p for _, _, _, p in out)
    assert Decoder().decode(block) == [(":path", "/x"), ("x-big", "y" * 40000)]


def test_send_is_bounded_by_the_peers_windows_and_resumes_on_window_update() -> None:
    client = h2.H2Connection(client=True)
    client.receive(frame(h2.SETTINGS, 0, 0, struct.pack(">HI", h2.S_INITIAL_WINDOW, 10)))
    client.data_to_send()
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")])
    assert client.window(sid) == 10
    assert client.send_data(sid, b"0123456789abcdef", end_stream=True) == 10
    assert client.window(sid) == 0 and client.send_data(sid, b"abcdef", end_stream=True) == 0
    client.receive(frame(h2.WINDOW_UPDATE, 0, sid, (100).to_bytes(4, "big")))
    assert client.window(sid) == 100  # the stream's window opened (the connection's is larger)
    assert client.send_data(sid, b"abcdef", end_stream=True) == 6
    data = [(k, f, p) for k, f, s, p in frames(client.data_to_send()) if k == h2.DATA]
    assert data == [(h2.DATA, 0, b"0123456789"), (h2.DATA, h2.END_STREAM, b"abcdef")]


def test_data_is_acknowledged_once_a_quarter_of_the_window_is_consumed() -> None:
    client = h2.H2Connection(client=True)
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")], end_stream=True)
    client.data_to_send()
    client.receive(frame(h2.HEADERS, h2.END_HEADERS, sid, encode([(":status", "200")])))
    quarter = h2.RECEIVE_WINDOW // 4
    client.consumed(sid, quarter - 1)
    assert client.data_to_send() == b""
    client.consumed(sid, 1)
    updates = [(s, int.from_bytes(p, "big")) for k, _, s, p in frames(client.data_to_send()) if k == h2.WINDOW_UPDATE]
    assert updates == [(0, quarter), (sid, quarter)]


def test_rst_stream_from_the_server_ends_the_call_and_late_frames_are_ignored() -> None:
    client = h2.H2Connection(client=True)
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")])
    client.data_to_send()
    assert client.receive(frame(h2.RST_STREAM, 0, sid, h2.CANCEL.to_bytes(4, "big"))) == [h2.Reset(sid, h2.CANCEL)]
    assert client.send_data(sid, b"x") == -1
    late = frame(h2.HEADERS, h2.END_HEADERS, sid, encode([(":status", "200")])) + frame(h2.DATA, 0, sid, b"zz")
    assert client.receive(late) == []


def test_cancel_sends_rst_stream_cancel_once() -> None:
    client = h2.H2Connection(client=True)
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")])
    client.data_to_send()
    client.reset(sid)
    client.reset(sid)
    assert frames(client.data_to_send()) == [(h2.RST_STREAM, 0, sid, h2.CANCEL.to_bytes(4, "big"))]


def test_goaway_names_the_last_stream_the_server_took_and_the_connection_reads_on() -> None:
    client = h2.H2Connection(client=True)
    for _ in range(3):
        client.send_headers(client.new_stream(), [(":path", "/x")])
    client.data_to_send()
    events = client.receive(frame(h2.GOAWAY, 0, 0, struct.pack(">II", 3, h2.NO_ERROR) + b"bye")
                            + frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 3, encode([(":status", "200")])))
    assert events == [h2.GoAway(h2.NO_ERROR, 3, b"bye"), h2.Response(3, ((":status", "200"),), True)]
    assert client.goaway_received and not client.closed


def test_ping_is_answered_and_padding_is_stripped() -> None:
    client = h2.H2Connection(client=True)
    sid = client.new_stream()
    client.send_headers(sid, [(":path", "/x")], end_stream=True)
    client.data_to_send()
    client.receive(frame(h2.HEADERS, h2.END_HEADERS, sid, encode([(":status", "200")])))
    padded = bytes([3]) + b"abc" + b"\0\0\0"
    assert client.receive(frame(h2.DATA, h2.PADDED, sid, padded) + frame(h2.PING, 0, 0, b"12345678")) == [
        h2.Data(sid, b"abc", False)]
    assert frames(client.data_to_send()) == [(h2.PING, h2.ACK, 0, b"12345678")]


def test_a_non_http2_answer_closes_the_connection() -> None:
    # What a TLS listener answers to a plain-TCP preface: an alert record, no HTTP/2 frame.
    client = h2.H2Connection(client=True)
    events = client.receive(b"\x15\x03\x01\x00\x02\x02\x0a" + b"\0" * 2)
    assert len(events) == 1 and isinstance(events[0], h2.Closed) and client.closed
