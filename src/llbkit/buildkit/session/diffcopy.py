"""fsutil's file-transfer protocol ("diffcopy") as two sans-IO state machines.

The sender walks its tree and sends one ``STAT`` packet per entry (in fsutil's order), then an
empty ``STAT``. The receiver asks for the content of regular files with ``REQ`` (the ID is the
entry's index in the listing); the sender answers with ``DATA`` chunks and an empty ``DATA``.
When the receiver has everything it sends ``FIN``, and the sender answers ``FIN``. Either side
may send ``ERR`` with a message.

:class:`Sender` is the client's side of ``FileSync.DiffCopy`` (uploading a local directory);
:class:`Receiver` is the client's side of ``FileSend.DiffCopy`` for the ``local`` exporter.
Neither does IO: they take packets in and return the packets to send; file contents come from
and go to the caller (:class:`Sink` for the receiver).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import BinaryIO, Dict, Generic, Iterator, List, Optional, Protocol, Set, Tuple, TypeVar

from llbkit._proto import fsutil_types_pb2 as fpb
from llbkit.buildkit.session import wire
from llbkit.buildkit.session.patterns import go_clean
from llbkit.buildkit.session.stat import can_request_data, is_dir
from llbkit.errors import SessionError

__all__ = [
    "Packet",
    "Sender",
    "FileRequest",
    "SenderFinished",
    "Receiver",
    "Sink",
    "OrderValidator",
    "compare_path",
    "DATA_CHUNK_SIZE",
]

Packet = fpb.Packet
STAT = fpb.Packet.PACKET_STAT
REQ = fpb.Packet.PACKET_REQ
DATA = fpb.Packet.PACKET_DATA
FIN = fpb.Packet.PACKET_FIN
ERR = fpb.Packet.PACKET_ERR

# fsutil sends 32 KiB chunks; larger ones cost Python fewer packets and stay far below the
# session's message limit (16 MiB in buildkitd).
DATA_CHUNK_SIZE = 512 * 1024

K = TypeVar("K")


class ProtocolError(SessionError):
    """The peer broke the file-transfer protocol, or reported an error with ERR."""


@dataclass(frozen=True)
class FileRequest(Generic[K]):
    """The receiver asked for the content of the entry registered with ``key``."""

    id: int
    key: K


@dataclass(frozen=True)
class SenderFinished:
    """The receiver sent FIN: answer with :meth:`Sender.fin` and end the stream."""


class Sender(Generic[K]):
    """The sending side. Thread-safe: listing and answering requests may run concurrently.

    Call :meth:`stat` for each entry in order, then :meth:`end_of_listing`; feed every packet
    from the receiver to :meth:`receive`, which returns a :class:`FileRequest` (send the file
    with :meth:`data_frames`), :class:`SenderFinished`, or None.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: Dict[int, K] = {}
        self._next = 0
        self.listing_done = False
        self.finished = False

    def stat(self, stat: "fpb.Stat", key: K) -> "fpb.Packet":
        """The STAT packet for the next entry; ``key`` names its content for later requests."""
        with self._lock:
            if self.listing_done:
                raise ProtocolError("stat after the end of the listing")
            if can_request_data(stat.mode):
                self._files[self._next] = key
            self._next += 1
        return fpb.Packet(type=STAT, stat=stat)

    def end_of_listing(self) -> "fpb.Packet":
        with self._lock:
            self.listing_done = True
        return fpb.Packet(type=STAT)

    def receive(self, packet: "fpb.Packet") -> "Optional[FileRequest[K] | SenderFinished]":
        if packet.type == ERR:
            raise ProtocolError(f"error from receiver: {packet.data.decode('utf-8', 'replace')}")
        if packet.type == REQ:
            with self._lock:
                key = self._files.pop(packet.ID, None)
            if key is None:
                raise ProtocolError(f"invalid file id {packet.ID}")
            return FileRequest(packet.ID, key)
        if packet.type == FIN:
            self.finished = True
            return SenderFinished()
        return None  # fsutil's sender ignores anything else

    @staticmethod
    def data_frames(file_id: int, fd: Optional[int], buf: bytearray) -> Iterator[Tuple[bytes, int]]:
        """DATA packets with the content of ``fd`` (None: an unreadable file, sent empty), then
        the empty DATA packet that ends the file; serialized, with the data's length: ``(packet, n)``.
        Reads the file descriptor ``fd`` into a reused buffer ``buf`` (its size is the chunk
        size): one copy of the data per packet, the one that makes the message."""
        view = memoryview(buf)
        if fd is not None:
            while True:
                n = os.readv(fd, [view])
                if not n:
                    break
                yield wire.data_packet(file_id, view[:n]), n
        yield wire.data_packet(file_id, b""), 0

    @staticmethod
    def fin() -> "fpb.Packet":
        return fpb.Packet(type=FIN)

    @staticmethod
    def error(message: str) -> "fpb.Packet":
        return fpb.Packet(type=ERR, data=message.encode("utf-8", "replace"))


def compare_path(p1: str, p2: str) -> int:
    """fsutil's path order: byte order, except that ``/`` sorts before every other byte."""
    b1, b2 = p1.encode("utf-8", "surrogateescape"), p2.encode("utf-8", "surrogateescape")
    for c1, c2 in zip(b1, b2):
        if c1 == c2:
            continue
        if c1 == 0x2F or (c2 != 0x2F and c1 < c2):
            return -1
        return 1
    return len(b1) - len(b2)


class OrderValidator:
    """Checks that received paths are clean, relative, in order and inside a sent directory."""

    def __init__(self) -> None:
        self._parents: List[List[str]] = [["", ""]]  # [dir, last child name seen]

    def check(self, path: str, directory: bool) -> None:
        if not path or go_clean(path) != path:
            raise ProtocolError(f"unclean path {path!r}")
        if path.startswith("/"):
            raise ProtocolError(f"absolute path {path!r}")
        parent, _, base = path.rpartition("/")
        if path == ".." or parent == ".." or path.startswith("../"):
            raise ProtocolError(f"path escapes the destination: {path!r}")
        i = len(self._parents) - 1
        while i > 0 and compare_path(self._parents[i][0], parent) > 0:
            i -= 1
        del self._parents[i + 1 :]
        top = self._parents[-1]
        if parent != top[0] or not _name_less(top[1], base):
            raise ProtocolError(f"changes out of order: {path!r} after {top[0]}/{top[1]}")
        top[1] = base
        if directory:
            self._parents.append([path, ""])


def _name_less(a: str, b: str) -> bool:
    return a.encode("utf-8", "surrogateescape") < b.encode("utf-8", "surrogateescape")


class Sink(Protocol):
    """Where a :class:`Receiver` puts what it receives (a directory, or memory in tests)."""

    def entry(self, stat: "fpb.Stat") -> bool:
        """Create the entry ``stat`` describes; return True to request a regular file's data."""

    def write(self, path: str, data: bytes) -> None:
        """Append ``data`` to the regular file at ``path``."""

    def close(self, path: str) -> None:
        """The file at ``path`` is complete (called even when it is empty)."""

    def finish(self) -> None:
        """Every entry and content arrived: apply what had to wait (hardlinks, dir metadata)."""


class Receiver:
    """The receiving side: :meth:`receive` takes each packet and returns the packets to send.

    ``done`` is set once the sender answered FIN (read the stream to its end, then stop).
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._validator = OrderValidator()
        self._next = 0
        self._requested: Dict[int, str] = {}
        self._open: Set[int] = set()
        self.listing_done = False
        self.fin_sent = False
        self.done = False
        self.bytes_received = 0

    def receive(self, packet: "fpb.Packet") -> List["fpb.Packet"]:
        if self.done:
            return []
        t = packet.type
        if t == ERR:
            raise ProtocolError(f"error from sender: {packet.data.decode('utf-8', 'replace')}")
        if t == STAT:
            if not packet.HasField("stat"):
                self.listing_done = True
                return self._maybe_fin()
            if self.listing_done:
                raise ProtocolError("stat after the end of the listing")
            st = packet.stat
            self._validator.check(st.path, is_dir(st.mode))
            file_id = self._next
            self._next += 1
            wants = self._sink.entry(st)
            if wants and can_request_data(st.mode) and not st.linkname:
                self._requested[file_id] = st.path
                return [fpb.Packet(type=REQ, ID=file_id)]
            return []
        if t == DATA:
            path = self._requested.get(packet.ID)
            if path is None:
                raise ProtocolError(f"invalid file request {packet.ID}")
            if packet.data:
                self.bytes_received += len(packet.data)
                self._sink.write(path, packet.data)
                return []
            self._sink.close(path)
            del self._requested[packet.ID]
            return self._maybe_fin()
        if t == FIN:
            if not self.fin_sent:
                raise ProtocolError("FIN from sender before the transfer completed")
            self.done = True
            return []
        return []

    def _maybe_fin(self) -> List["fpb.Packet"]:
        if self.listing_done and not self._requested and not self.fin_sent:
            self._sink.finish()
            self.fin_sent = True
            return [fpb.Packet(type=FIN)]
        return []

    @staticmethod
    def error(message: str) -> "fpb.Packet":
        return fpb.Packet(type=ERR, data=message.encode("utf-8", "replace"))
