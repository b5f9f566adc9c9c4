"""A content store in an OCI image layout directory, as buildctl keeps one for the local cache.

The layout is the one ``buildctl`` (containerd's local content store plus BuildKit's
``ociindex``) writes: ``blobs/<algorithm>/<hex>``, ``oci-layout`` and ``index.json``, with
in-progress writes under ``ingest/``. buildkitd reaches it through the session's content service
(:mod:`llbkit.buildkit.session.content`); either tool can read what the other wrote. The layout's
constants and its ``index.json`` reader are :mod:`llbkit.oci.layout`'s; digests are checked by
:func:`llbkit.oci.types.split_digest`.

Nothing partial is ever visible: a blob is written under ``ingest/``, checked against its expected
size and digest, and renamed into ``blobs/``; ``index.json`` is rewritten through a temporary file
and a rename.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from llbkit import gojson
from llbkit.atomic import fsync_dir, write_bytes_atomic
from llbkit.errors import OCIError
from llbkit.oci.layout import INDEX_FILE, LAYOUT_FILE, OCI_LAYOUT_BYTES, parse_index
from llbkit.oci.types import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MT_OCI_INDEX, split_digest

__all__ = [
    "ContentError",
    "NotFound",
    "AlreadyExists",
    "Unavailable",
    "InvalidArgument",
    "FailedPrecondition",
    "BlobInfo",
    "IngestStatus",
    "OCIStore",
    "index_get",
    "index_put",
    "reference_name",
]

class ContentError(OCIError):
    """A content store request failed; the subclass says how (it maps to a gRPC code)."""


class NotFound(ContentError):
    pass


class AlreadyExists(ContentError):
    pass


class Unavailable(ContentError):
    pass


class InvalidArgument(ContentError):
    pass


class FailedPrecondition(ContentError):
    pass


def parse_digest(digest: str) -> Tuple[str, str]:
    """``sha256:<hex>`` -> ("sha256", hex); anything else is an :class:`InvalidArgument`."""
    return split_digest(digest, "content store", InvalidArgument)


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    created_at: float
    updated_at: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class IngestStatus:
    ref: str
    offset: int
    total: int
    expected: str
    started_at: float
    updated_at: float


class _Ingest:
    """One in-progress write: a file under ``ingest/`` and the running digest of its bytes."""

    def __init__(self, path: str, ref: str, total: int, expected: str) -> None:
        self.path = path
        self.ref = ref
        self.total = total
        self.expected = expected
        self.file = open(path, "wb")
        self.offset = 0
        self.hasher = hashlib.sha256()
        self.started_at = self.updated_at = time.time()
        self.locked = False

    def status(self) -> IngestStatus:
        return IngestStatus(self.ref, self.offset, self.total, self.expected, self.started_at, self.updated_at)

    def truncate(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.offset = 0
        self.hasher = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hasher.update(data)
        self.offset += len(data)
        self.updated_at = time.time()

    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()

    def discard(self) -> None:
        try:
            self.file.close()
        finally:
            shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


class OCIStore:
    """Blobs of an OCI layout directory, with containerd's write protocol (ref, offset, commit).

    Thread-safe: buildkitd writes several blobs at once over separate streams.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._lock = threading.Lock()
        self._ingests: Dict[str, _Ingest] = {}

    def __repr__(self) -> str:
        return f"OCIStore({self.root!r})"

    # -- blobs --------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        alg, hexd = parse_digest(digest)
        return os.path.join(self.root, "blobs", alg, hexd)

    def info(self, digest: str) -> BlobInfo:
        try:
            st = os.stat(self.blob_path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found in {self.root}") from None
        return BlobInfo(digest, st.st_size, st.st_mtime, st.st_mtime)

    def has(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read(self, digest: str, offset: int = 0, size: int = 0, chunk: int = 1 << 20) -> Iterator[Tuple[int, bytes]]:
        """``(offset, data)`` chunks of a blob from ``offset`` (``size`` 0: to the end)."""
        path = self.blob_path(digest)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found in {self.root}") from None
        with f:
            total = os.fstat(f.fileno()).st_size
            offset = max(offset, 0)
            if offset > total:
                raise InvalidArgument(f"read of {digest} at {offset}: beyond its size {total}")
            end = total if size <= 0 else min(total, offset + size)
            f.seek(offset)
            while offset < end:
                data = f.read(min(chunk, end - offset))
                if not data:
                    break
                yield offset, data
                offset += len(data)

    def walk(self) -> Iterator[BlobInfo]:
        blobs = os.path.join(self.root, "blobs")
        for alg in sorted(os.listdir(blobs)) if os.path.isdir(blobs) else ():
            for hexd in sorted(os.listdir(os.path.join(blobs, alg))):
                try:
                    yield self.info(f"{alg}:{hexd}")
                except ContentError:
                    continue

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found in {self.root}") from None

    # -- writes -------------------------------------------------------------------------------
    def open_writer(self, ref: str, total: int = 0, expected: str = "") -> _Ingest:
        """Start (or resume) the write named ``ref`` and lock it for the caller."""
        if not ref:
            raise InvalidArgument("a write needs a ref")
        if expected:
            parse_digest(expected)
            if self.has(expected):
                raise AlreadyExists(f"content {expected}: already exists")
        with self._lock:
            ing = self._ingests.get(ref)
            if ing is not None and ing.locked:
                raise Unavailable(f"ref {ref} is locked: another write is in progress")
            if ing is None:
                d = os.path.join(self.root, "ingest", hashlib.sha256(ref.encode()).hexdigest())
                os.makedirs(d, exist_ok=True)
                ing = _Ingest(os.path.join(d, "data"), ref, total, expected)
                self._ingests[ref] = ing
            if total > 0:
                ing.total = total
            if expected:
                ing.expected = expected
            ing.locked = True
            return ing

    def release(self, ing: _Ingest) -> None:
        """End the caller's hold on an unfinished write (it can be resumed or aborted)."""
        with self._lock:
            ing.locked = False

    def commit(self, ing: _Ingest, total: int = 0, expected: str = "") -> str:
        """Check size and digest and move the blob into place; returns its digest."""
        total = total or ing.total
        expected = expected or ing.expected
        try:
            ing.file.flush()
            os.fsync(ing.file.fileno())
            ing.file.close()
            if total > 0 and ing.offset != total:
                raise FailedPrecondition(
                    f"commit of {ing.ref}: {ing.offset} bytes written, {total} expected")
            actual = ing.digest()
            if expected and expected != actual:
                raise FailedPrecondition(
                    f"commit of {ing.ref}: unexpected digest {actual}, {expected} expected")
            target = self.blob_path(actual)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.exists(target):
                raise AlreadyExists(f"content {actual}: already exists")
            os.chmod(ing.path, 0o444)
            os.rename(ing.path, target)
            fsync_dir(os.path.dirname(target))
            return actual
        finally:
            with self._lock:
                self._ingests.pop(ing.ref, None)
            ing.discard()

    def abort(self, ref: str) -> None:
        with self._lock:
            ing = self._ingests.pop(ref, None)
        if ing is None:
            raise NotFound(f"no write in progress for ref {ref}")
        ing.discard()

    def status(self, ref: str) -> IngestStatus:
        with self._lock:
            ing = self._ingests.get(ref)
        if ing is None:
            raise NotFound(f"no write in progress for ref {ref}")
        return ing.status()

    def statuses(self) -> List[IngestStatus]:
        with self._lock:
            return [i.status() for i in self._ingests.values()]

    def close(self) -> None:
        """Drop every unfinished write (their temporary files go)."""
        with self._lock:
            ingests, self._ingests = list(self._ingests.values()), {}
        for ing in ingests:
            ing.discard()
        try:
            os.rmdir(os.path.join(self.root, "ingest"))  # only when empty: others may write here too
        except OSError:
            pass


# ---- index.json -------------------------------------------------------------------------------


def reference_name(name: str) -> str:
    """The ``org.opencontainers.image.ref.name`` of an image name: its tag (or ``@digest``), as
    containerd's reference parser finds it after the host part; else the name itself."""
    host, sep, path = name.partition("/")
    if not sep:
        return ""
    m = re.search(r"[:@]", path)
    if not m:
        return ""
    obj = path[m.start():]
    return obj[1:] if obj.startswith(":") else obj


def _read_index(root: str) -> Dict[str, Any]:
    path = os.path.join(root, INDEX_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    return parse_index(data, path) if data else {}


def index_get(root: str, tag: str) -> Optional[Dict[str, Any]]:
    """The descriptor ``index.json`` names ``tag`` (full image name first, then ref name)."""
    manifests = _read_index(root).get("manifests") or []
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        for m in manifests:
            if (m.get("annotations") or {}).get(key) == tag:
                return m
    return None


def index_put(root: str, desc: Mapping[str, Any], names: Sequence[str] = (), tags: Sequence[str] = ()) -> None:
    """Add ``desc`` to ``index.json`` under image ``names`` and/or ``tags`` (replacing the entries
    of the same name), as buildctl's ``ociindex`` does; also writes ``oci-layout``."""
    os.makedirs(root, exist_ok=True)
    write_bytes_atomic(os.path.join(root, LAYOUT_FILE), OCI_LAYOUT_BYTES)
    idx = _read_index(root)
    idx.setdefault("schemaVersion", 2)
    idx.setdefault("mediaType", MT_OCI_INDEX)
    manifests: List[Dict[str, Any]] = list(idx.get("manifests") or [])
    entries = [(n, reference_name(n)) for n in names] + [("", t) for t in tags]
    if not entries:
        manifests.append(dict(desc))
    for img_name, ref_name in entries:
        d = dict(desc)
        ann = dict(d.get("annotations") or {})
        if img_name:
            ann[ANNOTATION_IMAGE_NAME] = img_name
        ann[ANNOTATION_REF_NAME] = ref_name
        d["annotations"] = ann
        manifests = [m for m in manifests
                     if (m.get("annotations") or {}).get(ANNOTATION_REF_NAME) != ref_name
                     or (m.get("annotations") or {}).get(ANNOTATION_IMAGE_NAME, "") != img_name]
        manifests.append(d)
    idx["manifests"] = manifests
    write_bytes_atomic(os.path.join(root, INDEX_FILE), gojson.compact(idx))
