"""An OCI layout tar written once, as BuildKit's exports arrive.

BuildKit's ``oci`` exporter streams a tar of one layout: its blobs (``blobs/sha256/<hex>``,
sorted by name, so in a stable order), then ``index.json`` and ``oci-layout``. Writing that to
a file and then assembling the index into a second tar writes (and reads) every byte twice; for
a 1 GiB image that is most of the export's cost. Here each platform's stream is parsed as it
arrives (:class:`ExportReceiver`, sans-IO: it is fed bytes and writes tar members to a file):
each blob becomes a member of the output tar on the spot, with the same deterministic header
:func:`llbkit.oci.layout.write_layout_tar` writes, verified against its name while it passes.
BuildKit's ``index.json`` and the small blobs (manifests, configs) are kept in memory, to read
the platform's image from.

:class:`OnePassLayoutTar` is the output: the first platform's stream is written straight into
the output's temporary file; the others (solved in parallel) into a part file each, appended
in declared order at the end (in the kernel, ``os.copy_file_range``, skipping blobs already
written), followed by the index blob, ``index.json`` and ``oci-layout``. A single-platform
image is thus written once, sequentially. Members follow that order (blobs per platform, then
the index), not sorted by name: tar readers do not care, and the order is the same for the same
inputs. The file appears at its destination only when complete (atomically); :meth:`abort`
removes everything.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

from llbkit.atomic import _umask, fsync_dir
from llbkit.oci.errors import LayoutError
from llbkit.oci.index import AssembledIndex, PlatformImage, split
from llbkit.oci.layout import (
    _BLOB_MODE,
    _DIR_MODE,
    _FILE_MODES,
    MAX_JSON_BLOB,
    MemoryBlobs,
    _tarinfo,
    layout_files,
    parse_index,
)
from llbkit.oci.types import Descriptor

__all__ = ["ExportReceiver", "OnePassLayoutTar"]

BLOCK = 512
_RECORD = 20 * BLOCK  # tarfile pads an archive to whole records; so do we
_BLOB_PREFIX = "blobs/sha256/"


def _header(name: str, mode: int, size: int = 0, kind: bytes = tarfile.REGTYPE) -> bytes:
    return _tarinfo(name, mode, size, kind).tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


def _number(field: bytes, where: str) -> int:
    if field and field[0] & 0x80:  # base-256, for sizes of 8 GiB and more
        n = int.from_bytes(field[1:], "big")
        return n
    text = field.rstrip(b"\0 ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise LayoutError(f"{where}: damaged tar header (number field {field!r})") from None


def _pax(data: bytes) -> Dict[str, str]:
    out: Dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class ExportReceiver:
    """One platform's export stream (``write`` it, as the session does), written as tar members
    into the file ``open_file()`` returns (called when the first bytes arrive: nothing is
    created before the export starts), from its position then; ``where`` names the stream in
    errors.

    :meth:`reset` goes back to the start (a retried solve streams again); :meth:`images` is
    the platform images once the stream has ended.
    """

    def __init__(self, open_file: Callable[[], BinaryIO], where: str) -> None:
        self._open_file = open_file
        self._out: Optional[BinaryIO] = None
        self._start = 0
        self.where = where
        self.reset()

    def reset(self) -> None:
        if self._out is not None:
            self._out.seek(self._start)
            self._out.truncate()
        self._pending = bytearray()  # a header (or pax/index/small member) being collected
        self._need = BLOCK  # bytes wanted in _pending before the next step
        self._state = "header"
        self._member: Optional[Tuple[str, int]] = None  # (name, size) of the member being read
        self._left = 0  # data bytes of the member still to come
        self._pad = 0  # padding bytes after it
        self._pax: Dict[str, str] = {}
        self._hash: Optional["hashlib._Hash"] = None
        self._keep: Optional[bytearray] = None
        self._ended = False
        self.index_json: Optional[bytes] = None
        self.small: Dict[str, bytes] = {}
        #: digest -> (size, offset of its header in the file, offset past its padding)
        self.blobs: Dict[str, Tuple[int, int, int]] = {}

    # -- the stream -------------------------------------------------------------------------
    def write(self, data: "bytes | memoryview") -> int:
        if self._out is None:
            self._out = self._open_file()
            self._start = self._out.tell()
        view = memoryview(data).cast("B")
        n = len(view)
        while view:
            if self._state == "data":
                view = self._data(view)
            elif self._state == "skip":
                k = min(len(view), self._left)
                self._left -= k
                view = view[k:]
                if self._left == 0:
                    self._state, self._need = "header", BLOCK
            else:  # collecting a header, pax records or a kept member into _pending
                k = min(len(view), self._need - len(self._pending))
                self._pending += view[:k]
                view = view[k:]
                if len(self._pending) == self._need:
                    self._collected()
        return n

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    def _collected(self) -> None:
        block = bytes(self._pending)
        self._pending = bytearray()
        if self._state == "header":
            self._on_header(block)
        elif self._state == "pax":
            self._pax = _pax(block[:self._member[1]]) if self._member else {}
            self._state, self._need = "header", BLOCK
        elif self._state == "index":
            self.index_json = block[:self._member[1]] if self._member else b""
            self._state, self._need = "header", BLOCK

    def _on_header(self, block: bytes) -> None:
        if self._ended or block == bytes(BLOCK):
            self._ended = True  # end of archive: two zero blocks, then padding
            return
        where = self.where
        name = block[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        prefix = block[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape") if block[257:262] == b"ustar" else ""
        if prefix:
            name = f"{prefix}/{name}"
        size = _number(block[124:136], where)
        kind = block[156:157]
        pax, self._pax = self._pax, {}
        name = pax.get("path", name)
        size = int(pax["size"]) if "size" in pax else size
        padded = -size % BLOCK
        if kind in (b"x", b"g"):  # pax records for the next member (or global: ignored)
            self._member = (name, size)
            if kind == b"g":
                self._skip(size, padded)
            else:
                self._state, self._need = "pax", size + padded
            return
        name = name[2:] if name.startswith("./") else name
        if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) and name.startswith(_BLOB_PREFIX):
            self._start_blob(name, size, padded)
        elif kind in (tarfile.REGTYPE, tarfile.AREGTYPE) and name == "index.json":
            if size > MAX_JSON_BLOB:
                raise LayoutError(f"{where}: index.json is {size} bytes: not an export of one image")
            self._member = (name, size)
            self._state, self._need = "index", size + padded
            if size + padded == 0:
                self._collected()
        else:  # oci-layout (ours is written at the end), directories, anything else
            self._skip(size, padded)

    def _skip(self, size: int, padded: int) -> None:
        self._left = size + padded
        if self._left:
            self._state = "skip"
        else:
            self._state, self._need = "header", BLOCK

    def _start_blob(self, name: str, size: int, padded: int) -> None:
        digest = "sha256:" + name[len(_BLOB_PREFIX):]
        offset = self._out.tell()
        self._out.write(_header(name, _BLOB_MODE, size))
        self._member = (digest, size)
        self._hash = hashlib.sha256()
        self._keep = bytearray() if size <= MAX_JSON_BLOB else None
        self._left, self._pad = size, padded
        self._blob_offset = offset
        self._state = "data"
        if size == 0:
            self._end_blob()

    def _data(self, view: memoryview) -> memoryview:
        if self._left:
            k = min(len(view), self._left)
            chunk = view[:k]
            self._out.write(chunk)
            assert self._hash is not None
            self._hash.update(chunk)
            if self._keep is not None:
                self._keep += chunk
            self._left -= k
            view = view[k:]
            if self._left == 0:
                self._end_blob()
            return view
        k = min(len(view), self._pad)
        self._pad -= k
        if self._pad == 0:
            self._state, self._need = "header", BLOCK
        return view[k:]

    def _end_blob(self) -> None:
        assert self._member is not None and self._hash is not None
        digest, size = self._member
        actual = "sha256:" + self._hash.hexdigest()
        if actual != digest:
            raise LayoutError(f"{self.where}: blob {digest} hashes to {actual}: the export is damaged")
        self._out.write(bytes(-size % BLOCK))
        self.blobs[digest] = (size, self._blob_offset, self._out.tell())
        if self._keep is not None:
            self.small[digest] = bytes(self._keep)
        self._hash = self._keep = None
        if self._pad == 0:
            self._state, self._need = "header", BLOCK

    # -- the result -------------------------------------------------------------------------
    def images(self) -> List[PlatformImage]:
        """The images BuildKit's ``index.json`` names (checked: the stream ended, every blob they
        reference arrived)."""
        if not self._ended or self.index_json is None:
            raise LayoutError(f"{self.where}: the export ended early (no index.json or no end of "
                              "archive): the daemon went away or the stream was cut; build again")
        index = parse_index(self.index_json, f"index.json of {self.where}")
        roots = [Descriptor.from_dict(d, f"index.json of {self.where}") for d in index.get("manifests") or ()]
        source = MemoryBlobs(self.small)
        images: List[PlatformImage] = []
        for r in roots:
            images += split(source, r)
        for im in images:
            for d in (im.manifest,) + im.blobs:
                if d.digest not in self.blobs:
                    raise LayoutError(f"{self.where}: blob {d.digest} of the {im.platform} image is "
                                      "not in the export")
        return images


class OnePassLayoutTar:
    """The OCI layout tar at ``dest``, written as the platforms' exports arrive (see the module).

    :meth:`receiver` gives platform ``i`` (of ``count``) its :class:`ExportReceiver`;
    :meth:`commit` writes the index and moves the file into place; :meth:`abort` (or leaving
    the ``with`` with an exception) removes what was written.
    """

    def __init__(self, dest: "str | os.PathLike[str]", count: int) -> None:
        self.dest = Path(dest)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        # Files are made when a platform's export starts (a build killed before that leaves none).
        self._files: List[Optional[BinaryIO]] = [None] * count
        self._paths: List[Optional[Path]] = [None] * count
        self._committed = False
        self._written: Dict[str, Tuple[int, int, int]] = {}
        self._receivers: List[ExportReceiver] = [
            ExportReceiver(lambda i=i: self._open(i), f"the export of platform {i + 1} to {self.dest}")
            for i in range(count)]

    def _open(self, i: int) -> BinaryIO:
        """The output's temporary file (platform 1), or platform ``i``'s part file."""
        what = "" if i == 0 else f"part{i}."
        fd, path = tempfile.mkstemp(prefix=f".{self.dest.name}.{what}", suffix=".tmp", dir=self.dest.parent)
        self._paths[i] = Path(path)
        f = self._files[i] = os.fdopen(fd, "w+b")
        if i == 0:
            f.write(_header("blobs/", _DIR_MODE, kind=tarfile.DIRTYPE)
                    + _header("blobs/sha256/", _DIR_MODE, kind=tarfile.DIRTYPE))
        return f

    def receiver(self, i: int) -> ExportReceiver:
        return self._receivers[i]

    def images(self) -> List[List[PlatformImage]]:
        return [r.images() for r in self._receivers]

    def commit(self, assembled: AssembledIndex, ref_names: Sequence[str] = ()) -> None:
        """Write the index and the layout files, and move the tar into place."""
        out = self._append_blobs()
        if assembled.descriptor.digest not in self._written:
            data = assembled.index_bytes
            name = _BLOB_PREFIX + assembled.descriptor.digest.split(":", 1)[1]
            out.write(_header(name, _BLOB_MODE, len(data)) + data + bytes(-len(data) % BLOCK))
        self._finish(out, layout_files(assembled.descriptor, ref_names))

    def commit_docker(self, image: PlatformImage, tags: Sequence[str] = ()) -> None:
        """Finish the tar as a ``docker load`` archive of ``image`` (the one platform built):
        its blobs as they were written, ``manifest.json`` and an ``index.json`` naming the
        image manifest per tag (see :mod:`llbkit.oci.docker_archive`), with no index blob, so
        a docker archive is written once, like a layout."""
        from llbkit.oci.docker_archive import docker_files

        if len(self._receivers) != 1:
            raise LayoutError(f"a docker archive holds one platform, not {len(self._receivers)}")
        files = docker_files(image, tags)  # checks the tags before anything is finished
        self._finish(self._append_blobs(), files)

    def _append_blobs(self) -> BinaryIO:
        """The output file, with the later platforms' blobs appended (shared ones once)."""
        out = self._files[0] or self._open(0)
        out.seek(0, os.SEEK_END)
        written = dict(self._receivers[0].blobs)
        for f, r in zip(self._files[1:], self._receivers[1:]):
            if f is None:
                continue
            f.flush()
            for digest, (size, start, end) in sorted(r.blobs.items(), key=lambda kv: kv[1][1]):
                if digest not in written:  # shared between platforms: once
                    _copy_range(f, out, start, end - start)
                    written[digest] = (size, 0, 0)
        self._written = written
        return out

    def _finish(self, out: BinaryIO, files: Dict[str, bytes]) -> None:
        for name in sorted(files):
            data = files[name]
            out.write(_header(name, _FILE_MODES.get(name, 0o644), len(data)) + data + bytes(-len(data) % BLOCK))
        out.write(bytes(2 * BLOCK))
        out.write(bytes(-out.tell() % _RECORD))
        out.flush()
        os.fsync(out.fileno())
        self._close_files()
        tmp = self._paths[0]
        assert tmp is not None
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, self.dest)
        fsync_dir(self.dest.parent)
        self._committed = True
        self._remove_parts()

    def abort(self) -> None:
        """Remove what was written (nothing once committed)."""
        if self._committed:
            return
        self._close_files()
        for p in self._paths:
            if p is not None:
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass

    def _close_files(self) -> None:
        for f in self._files:
            if f is not None and not f.closed:
                f.close()

    def _remove_parts(self) -> None:
        for p in self._paths[1:]:
            if p is None:
                continue
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> "OnePassLayoutTar":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.abort()


def _copy_range(src: BinaryIO, dst: BinaryIO, offset: int, length: int) -> None:
    """``length`` bytes of ``src`` from ``offset`` appended to ``dst``, in the kernel if it can
    (positional calls on both descriptors; the file objects are flushed first, resynced after)."""
    src.flush()
    dst.flush()
    out_fd, in_fd = dst.fileno(), src.fileno()
    at = dst.seek(0, os.SEEK_END)
    copy = getattr(os, "copy_file_range", None)
    while length > 0:
        n = 0
        if copy is not None:
            try:
                n = copy(in_fd, out_fd, length, offset, at)
            except OSError:
                copy = None
        if not n:
            chunk = os.pread(in_fd, min(length, 1 << 20), offset)
            if not chunk:
                raise LayoutError(f"part file {src.name} is shorter than it was written")
            n = os.pwrite(out_fd, chunk, at)
        offset += n
        at += n
        length -= n
    dst.seek(0, os.SEEK_END)
