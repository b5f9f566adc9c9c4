from __future__ import annotations

import tempfile
import os
from pathlib import Path
from typing import Dict, List

import pytest

from llbkit._proto import fsutil_types_pb2 as fpb
from llbkit.buildkit.session.diffcopy import (
    FileRequest,
    OrderValidator,
    ProtocolError,
    Receiver,
    Sender,
    SenderFinished,
    compare_path,
)
from llbkit.buildkit.session.stat import MODE_DIR, MODE_SYMLINK
from llbkit.buildkit.session.walk import walk
from llbkit.buildkit.session.writers import AtomicDir

P = fpb.Packet


class MemorySink:
    def __init__(self, want=lambda st: True) -> None:
        self.entries: List[str] = []
        self.files: Dict[str, bytes] = {}
        self.finished = False
        self.want = want

    def entry(self, stat):
        self.entries.append(stat.path)
        return self.want(stat)

    def write(self, path, data):
        self.files[path] = self.files.get(path, b"") + data

    def close(self, path):
        self.files.setdefault(path, b"")

    def finish(self):
        self.finished = True


def data_packets(file_id: int, data: bytes, chunk: int = 32 * 1024) -> List[fpb.Packet]:
    """The DATA packets production sends for a file (:meth:`Sender.data_frames` over a file
    descriptor, as the FileSync service does), parsed back into packets."""
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        return [fpb.Packet.FromString(bytes(frame))
                for frame, _ in Sender.data_frames(file_id, f.fileno(), bytearray(chunk))]


def _stat(path, mode=0o644, **kw):
    return fpb.Stat(path=path, mode=mode, **kw)


def _transfer(sender_stats, contents, sink, chunk=4):
    """Run a sender and a receiver against each other in memory; returns packets sent to receiver."""
    sender: Sender[str] = Sender()
    receiver = Receiver(sink)
    to_receiver = [sender.stat(st, st.path) for st in sender_stats] + [sender.end_of_listing()]
    to_sender: List[fpb.Packet] = []
    log = []
    while to_receiver or to_sender:
        if to_receiver:
            p = to_receiver.pop(0)
            log.append(p)
            to_sender.extend(receiver.receive(p))
            continue
        ev = sender.receive(to_sender.pop(0))
        if isinstance(ev, FileRequest):
            to_receiver.extend(data_packets(ev.id, contents[ev.key], chunk))
        elif isinstance(ev, SenderFinished):
            to_receiver.append(Sender.fin())
    assert receiver.done and sender.finished
    return log


def test_round_trip_requests_only_wanted_regular_files():
    stats = [
        _stat("a", MODE_DIR | 0o755),
        _stat("a/big", size=10),
        _stat("a/empty"),
        _stat("a/link", MODE_SYMLINK | 0o777, linkname="big"),
        _stat("a/skip"),
        _stat("b"),
    ]
    contents = {"a/big": b"0123456789", "a/empty": b"", "a/skip": b"nope", "b": b"bee"}
    sink = MemorySink(want=lambda st: st.path != "a/skip")
    log = _transfer(stats, contents, sink)
    assert sink.entries == ["a", "a/big", "a/empty", "a/link", "a/skip", "b"]
    assert sink.files == {"a/big": b"0123456789", "a/empty": b"", "b": b"bee"}
    assert sink.finished
    data = [p for p in log if p.type == P.PACKET_DATA and p.data]
    assert [len(p.data) for p in data if p.ID == 1] == [4, 4, 2]  # chunked, never whole


def test_sender_rejects_unknown_ids_and_reports_errors():
    sender: Sender[str] = Sender()
    sender.stat(_stat("d", MODE_DIR | 0o755), "d")
    sender.stat(_stat("f"), "f")
    with pytest.raises(ProtocolError, match="invalid file id 0"):  # a dir has no content
        sender.receive(P(type=P.PACKET_REQ, ID=0))
    assert sender.receive(P(type=P.PACKET_REQ, ID=1)) == FileRequest(1, "f")
    with pytest.raises(ProtocolError, match="invalid file id 1"):  # asked twice
        sender.receive(P(type=P.PACKET_REQ, ID=1))
    with pytest.raises(ProtocolError, match="error from receiver: boom"):
        sender.receive(P(type=P.PACKET_ERR, data=b"boom"))


@pytest.mark.parametrize(
    "paths,error",
    [
        (["b", "a"], "out of order"),
        (["a/b"], "out of order"),  # parent never sent
        (["../x"], "escapes"),
        (["/x"], "absolute"),
        (["a//b"], "unclean"),
        (["f", "f/x"], "out of order"),  # f is a file, not a dir
    ],
)
def test_receiver_validates_paths(paths, error):
    receiver = Receiver(MemorySink())
    with pytest.raises(ProtocolError, match=error):
        for p in paths:
            receiver.receive(P(type=P.PACKET_STAT, stat=_stat(p)))


def test_receiver_errors():
    receiver = Receiver(MemorySink())
    with pytest.raises(ProtocolError, match="invalid file request 3"):
        receiver.receive(P(type=P.PACKET_DATA, ID=3, data=b"x"))
    with pytest.raises(ProtocolError, match="error from sender: bad"):
        receiver.receive(P(type=P.PACKET_ERR, data=b"bad"))


def test_validator_accepts_fsutil_order():
    v = OrderValidator()
    for p, d in [("a", True), ("a/b", False), ("a/c", True), ("a/c/d", False), ("a-b", False), ("b", False)]:
        v.check(p, d)
    assert compare_path("a/b", "a-b") < 0 and compare_path("a", "a/b") < 0 and compare_path("b", "a/z") > 0


def test_walked_tree_round_trips_into_a_directory(tmp_path):
    src = tmp_path / "src"
    (src / "d/e").mkdir(parents=True)
    (src / "d/e/f.bin").write_bytes(os.urandom(10_000))
    (src / "x.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "x.sh", 0o750)
    os.symlink("x.sh", src / "l")
    os.link(src / "x.sh", src / "y.sh")
    os.chmod(src / "d", 0o711)
    os.utime(src / "d/e/f.bin", ns=(5, 1_500_000_000_000_000_001))
    entries = list(walk(str(src)))
    target = AtomicDir(str(tmp_path / "dest"))
    contents = {e.abs_path: Path(e.abs_path).read_bytes() for e in entries if not e.is_dir and not os.path.islink(e.abs_path)}
    sender: Sender[str] = Sender()
    receiver = Receiver(target.sink)
    queue = [sender.stat(e.stat, e.abs_path) for e in entries] + [sender.end_of_listing()]
    back: List[fpb.Packet] = []
    while queue or back:
        if queue:
            back.extend(receiver.receive(queue.pop(0)))
        else:
            ev = sender.receive(back.pop(0))
            if isinstance(ev, FileRequest):
                queue.extend(data_packets(ev.id, contents[ev.key]))
            elif isinstance(ev, SenderFinished):
                queue.append(Sender.fin())
    target.commit()
    dest = tmp_path / "dest"
    assert (dest / "d/e/f.bin").read_bytes() == (src / "d/e/f.bin").read_bytes()
    assert os.stat(dest / "d/e/f.bin").st_mtime_ns == 1_500_000_000_000_000_001
    assert os.stat(dest / "x.sh").st_mode & 0o777 == 0o750
    assert os.stat(dest / "d").st_mode & 0o777 == 0o711
    assert os.readlink(dest / "l") == "x.sh"
    assert os.stat(dest / "y.sh").st_ino == os.stat(dest / "x.sh").st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "src"]
