from __future__ import annotations

import os

import pytest

from llbkit._proto import control_pb2, fsutil_types_pb2 as fpb
from llbkit.buildkit.session import wire
from llbkit.buildkit.session.diffcopy import Sender


@pytest.mark.parametrize("file_id", [0, 1, 300, 2**31])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 70000])
def test_data_packet_is_what_protobuf_makes(file_id, size):
    data = os.urandom(size)
    raw = wire.data_packet(file_id, memoryview(data))
    assert raw == fpb.Packet(type=fpb.Packet.PACKET_DATA, ID=file_id, data=data).SerializeToString()


@pytest.mark.parametrize("size", [0, 1, 200, 1 << 20])
def test_bytes_message_round_trip(size):
    data = os.urandom(size)
    raw = wire.bytes_message(data)
    assert raw == control_pb2.BytesMessage(data=data).SerializeToString()
    view = wire.bytes_message_data(raw)
    assert isinstance(view, memoryview) and bytes(view) == data


def test_bytes_message_data_falls_back_to_the_parser():
    # an unknown field before the data: not the one-field form, parsed the slow way
    raw = b"\x10\x05" + control_pb2.BytesMessage(data=b"abc").SerializeToString()
    assert bytes(wire.bytes_message_data(raw)) == b"abc"


def test_data_frames_read_a_file_in_chunks(tmp_path):
    path = tmp_path / "f"
    content = os.urandom(2500)
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        frames = list(Sender.data_frames(7, fd, bytearray(1000)))
    finally:
        os.close(fd)
    assert [n for _, n in frames] == [1000, 1000, 500, 0]  # then the empty packet that ends the file
    packets = [fpb.Packet.FromString(f) for f, _ in frames]
    assert b"".join(p.data for p in packets) == content and {p.ID for p in packets} == {7}
    assert list(Sender.data_frames(7, None, bytearray(10))) == [(wire.data_packet(7, b""), 0)]
