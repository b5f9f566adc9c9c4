"""OCI image layouts: read one from a directory or a tar, write one as a tar.

Reading verifies as it goes: every blob is streamed through a :class:`VerifyingReader` that checks
its size and sha256 against the descriptor that named it, so a corrupt or truncated blob is an
error naming the blob, the layout and the fix, and large layers are never held in memory.

Writing (:func:`write_layout_tar`) is deterministic and atomic: entries sorted by name, mtime 0,
uid/gid 0 with empty owner names, fixed modes (directories 0755, blobs and ``oci-layout`` 0444,
``index.json`` and ``manifest.json`` 0644, as containerd's exporter writes them), USTAR headers;
the tar is written to a temp file beside the target, fsynced and renamed.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import (
    Any,
    BinaryIO,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from llbkit import gojson
from llbkit.atomic import atomic_output
from llbkit.jsonutil import parse_json_object
from llbkit.oci.errors import BlobVerificationError, LayoutError
from llbkit.oci.types import MT_OCI_INDEX, Descriptor

try:  # Python 3.8+: typing.Protocol
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore[assignment,misc]

LAYOUT_VERSION = "1.0.0"
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
#: The ``oci-layout`` file, as containerd writes it (Go's json.Marshal).
OCI_LAYOUT_BYTES = gojson.compact({"imageLayoutVersion": LAYOUT_VERSION})
MAX_JSON_BLOB = 16 * 1024 * 1024  # manifests, indexes and configs are read whole; layers never
_CHUNK = 1024 * 1024
_DIR_MODE = 0o755
_BLOB_MODE = 0o444
_FILE_MODES = {"oci-layout": 0o444}


class BlobSource(Protocol):
    """Where blobs come from: a layout, memory, a registry..."""

    def open_blob(self, desc: Descriptor) -> "VerifyingReader":
        ...

    def describe(self) -> str:
        ...


class VerifyingReader(io.RawIOBase):
    """A read-only stream that hashes what passes through and checks it against ``desc``.

    Reading past the declared size, or reaching EOF with the wrong size or digest, raises
    :class:`BlobVerificationError`. Call :meth:`finish` after reading exactly ``desc.size`` bytes
    (``tarfile``, ``shutil.copyfileobj`` with a length...) to check the digest and that nothing
    follows.
    """

    def __init__(self, raw: BinaryIO, desc: Descriptor, where: str) -> None:
        super().__init__()
        self._raw = raw
        self.desc = desc
        self.where = where
        self._hash = hashlib.sha256()
        self._count = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _error(self, problem: str) -> BlobVerificationError:
        return BlobVerificationError(
            f"blob {self.desc.digest} in {self.where}: {problem}; the file is corrupt or was "
            "modified: rebuild or re-download the image"
        )

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if n is None or n < 0:
            chunks = []
            while True:
                chunk = self.read(_CHUNK)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        data = self._raw.read(n) if n else b""
        if data:
            self._count += len(data)
            if self._count > self.desc.size:
                raise self._error(f"more than the declared {self.desc.size} bytes")
            self._hash.update(data)
        elif n:
            self.finish(expect_eof=False)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def finish(self, expect_eof: bool = True) -> None:
        """Check size and digest of what was read (by default also that nothing follows)."""
        if self._done:
            return
        if expect_eof and self._count == self.desc.size and self._raw.read(1):
            raise self._error(f"more than the declared {self.desc.size} bytes")
        if self._count != self.desc.size:
            raise self._error(f"{self._count} bytes, the descriptor says {self.desc.size}")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.desc.digest:
            raise self._error(f"content hashes to {actual}")
        self._done = True

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def read_verified(source: BlobSource, desc: Descriptor, limit: int = MAX_JSON_BLOB) -> bytes:
    """The whole (small) blob ``desc`` from ``source``, verified."""
    if desc.size > limit:
        raise LayoutError(
            f"blob {desc.digest} in {source.describe()} is {desc.size} bytes, more than the "
            f"{limit} allowed for a manifest or config; is its descriptor's media type "
            f"({desc.media_type}) right?"
        )
    with source.open_blob(desc) as r:
        data = r.read(desc.size)
        r.finish()
    return data


def read_json(source: BlobSource, desc: Descriptor) -> Dict[str, Any]:
    return parse_json_object(read_verified(source, desc), f"blob {desc.digest} in {source.describe()}",
                             LayoutError)


def parse_index(data: bytes, where: str) -> Dict[str, Any]:
    """An ``index.json`` (read from ``where``) as a dict; :class:`LayoutError` saying to fix or
    remove it otherwise. Readers of a layout directory and of a layout tar both use this."""
    return parse_json_object(data, where, LayoutError, fix="it must be an OCI index; fix or remove it")


class MemoryBlobs:
    """Blobs held in memory (manifests and indexes being assembled)."""

    def __init__(self, blobs: Optional[Mapping[str, bytes]] = None) -> None:
        self._blobs: Dict[str, bytes] = dict(blobs or {})

    def add(self, data: bytes, media_type: str, **kw: Any) -> Descriptor:
        desc = Descriptor.of(data, media_type, **kw)
        self._blobs[desc.digest] = data
        return desc

    def open_blob(self, desc: Descriptor) -> VerifyingReader:
        try:
            data = self._blobs[desc.digest]
        except KeyError:
            raise LayoutError(f"blob {desc.digest} is not among the assembled blobs") from None
        return VerifyingReader(io.BytesIO(data), desc, self.describe())

    def describe(self) -> str:
        return "memory"


class OCILayout:
    """An OCI image layout read from a directory or a tar; use as a context manager."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._tar: Optional[tarfile.TarFile] = None
        self._members: Dict[str, tarfile.TarInfo] = {}
        if self.path.is_dir():
            pass
        elif self.path.is_file():
            try:
                self._tar = tarfile.open(self.path, "r:*")
                for m in self._tar.getmembers():
                    name = m.name[2:] if m.name.startswith("./") else m.name
                    self._members[name.rstrip("/")] = m
            except (tarfile.TarError, OSError) as e:
                raise LayoutError(
                    f"{self.path} is not a readable tar ({e}); expected an OCI image layout "
                    "tar (oci-layout, index.json, blobs/sha256/...)"
                ) from e
        else:
            raise LayoutError(f"{self.path} does not exist; expected an OCI image layout "
                              "directory or tar")
        layout = self._read_small_json(LAYOUT_FILE)
        if layout.get("imageLayoutVersion") != LAYOUT_VERSION:
            raise LayoutError(
                f"{self.path}: oci-layout has imageLayoutVersion "
                f"{layout.get('imageLayoutVersion')!r}; only {LAYOUT_VERSION!r} is supported"
            )
        self.index = self._read_small_json(INDEX_FILE)
        manifests = self.index.get("manifests")
        if not isinstance(manifests, list):
            raise LayoutError(f"{self.path}: index.json has no \"manifests\" list")
        self.manifests: List[Descriptor] = [
            Descriptor.from_dict(d, f"{self.path} index.json manifests[{i}]")
            for i, d in enumerate(manifests)
        ]

    def describe(self) -> str:
        return str(self.path)

    def _open_file(self, name: str) -> Optional[BinaryIO]:
        if self._tar is None:
            try:
                return open(self.path / name, "rb")
            except FileNotFoundError:
                return None
        member = self._members.get(name)
        if member is None or not member.isfile():
            return None
        return self._tar.extractfile(member)  # type: ignore[return-value]

    def _read_small_json(self, name: str) -> Dict[str, Any]:
        f = self._open_file(name)
        if f is None:
            raise LayoutError(
                f"{self.path} has no {name}; is it an OCI image layout (oci-layout, index.json, "
                "blobs/sha256/...)?"
            )
        with f:
            data = f.read(MAX_JSON_BLOB + 1)
        if name == INDEX_FILE:
            return parse_index(data, f"{self.path}/{name}")
        return parse_json_object(data, f"{self.path}: {name}", LayoutError)

    def open_blob(self, desc: Descriptor) -> VerifyingReader:
        f = self._open_file(desc.blob_path)
        if f is None:
            raise LayoutError(
                f"{self.path} has no {desc.blob_path} (a {desc.media_type or 'blob'} it "
                "references); the layout is incomplete: rebuild or re-export it"
            )
        return VerifyingReader(f, desc, str(self.path))

    def has_blob(self, digest: str) -> bool:
        name = f"blobs/sha256/{digest.split(':', 1)[-1]}"
        if self._tar is None:
            return (self.path / name).is_file()
        return name in self._members

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self) -> "OCILayout":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_layout(path: Union[str, Path]) -> OCILayout:
    return OCILayout(path)


# -- writing -------------------------------------------------------------------------------------

BlobEntry = Tuple[Descriptor, BlobSource]


def _tarinfo(name: str, mode: int, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def layout_files(index_desc: Descriptor, ref_names: Sequence[str] = ()) -> Dict[str, bytes]:
    """``oci-layout`` and ``index.json`` naming ``index_desc`` (once per ref name, if any)."""
    descs = [index_desc.replace(annotations={**index_desc.annotations,
                                            "org.opencontainers.image.ref.name": n})
             for n in ref_names] or [index_desc]
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
             "manifests": [d.to_dict() for d in descs]}
    return {
        LAYOUT_FILE: OCI_LAYOUT_BYTES,
        INDEX_FILE: gojson.compact(index),
    }


def write_layout_tar(
    path: Union[str, Path],
    files: Mapping[str, bytes],
    blobs: Iterable[BlobEntry],
) -> None:
    """Write a tar holding ``files`` (small, top level) and ``blobs`` under blobs/sha256/.

    Blobs are deduplicated by digest and streamed from their sources, verified on the way;
    on any error the target is left as it was.
    """
    unique: Dict[str, BlobEntry] = {}
    for desc, source in blobs:
        unique.setdefault(desc.digest, (desc, source))
    entries: List[Tuple[str, Any]] = [(name, data) for name, data in files.items()]
    entries += [(desc.blob_path, (desc, source)) for desc, source in unique.values()]
    entries += [("blobs/", None), ("blobs/sha256/", None)]
    entries.sort(key=lambda e: e[0])
    with atomic_output(path) as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for name, payload in entries:
                if payload is None:
                    tf.addfile(_tarinfo(name, _DIR_MODE, kind=tarfile.DIRTYPE))
                elif isinstance(payload, bytes):
                    tf.addfile(_tarinfo(name, _FILE_MODES.get(name, 0o644), len(payload)),
                               io.BytesIO(payload))
                else:
                    desc, source = payload
                    with source.open_blob(desc) as reader:
                        tf.addfile(_tarinfo(name, _BLOB_MODE, desc.size), reader)
                        reader.finish()
