"""An image build's outputs read back from Pants' store, and checked before they reach `dist/`.

Pants' local store does not check what it reads: files of 512 KiB and more (image tars) are kept
as plain files under `<local_store_dir>/immutable/files/`, and reading one checks only its length
(a truncated file is an engine error about a "hash collision"); a flipped byte is served as is,
and materializing into `dist/` copies or links the file unread (Pants 2.17, `fs/store/src/local.rs`).
So the package rule reads the image and its record back through Pants' API, hashes them against
the digests Pants recorded for them, and parses the record; a mismatch is reported, and the image
is built again (see `goals/package.py`) instead of a damaged image reaching `dist/`.

The cost is one read and one sha256 of each image when the package rule runs (not on a no-op under
pantsd, whose rule results are memoized: damage done to the store on disk while pantsd runs is seen
once pantsd restarts or the image is rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from pants.engine.fs import AddPrefix, Digest, DigestContents, DigestEntries, FileDigest, FileEntry
from pants.engine.rules import Get, collect_rules, rule

LARGE_FILE_SIZE = 512 * 1024  # Pants' store keeps files from this size on as plain files


@dataclass(frozen=True)
class StoredImageRequest:
    output_digest: Digest  # the build process' outputs
    image_path: str
    record_path: str
    # A rebuild gives the same digests: a read after one must not be served from the engine's
    # memo of the first read, so each attempt reads through a digest of its own.
    attempt: int = 0


@dataclass(frozen=True)
class StoredImage:
    """The outputs as stored, or `problem`: what is wrong with them (then the others are None)."""

    image: Optional[FileEntry]
    record_entry: Optional[FileEntry]
    record_json: str  # the record's text (a str: dataclass fields must be hashable)
    problem: Optional[str] = None
    damaged: Tuple[FileDigest, ...] = ()  # the digests whose stored bytes are wrong (or unreadable)

    @property
    def record(self) -> Dict[str, Any]:
        return json.loads(self.record_json)


def _damaged(problem: str, *digests: FileDigest) -> StoredImage:
    return StoredImage(None, None, "", problem, tuple(digests))


def large_file_path(local_store_dir: str, digest: FileDigest) -> Optional[str]:
    """Where Pants' local store keeps the bytes of ``digest`` as a plain file (None: it is small,
    so it lives in the store's LMDB databases)."""
    if digest.serialized_bytes_length < LARGE_FILE_SIZE:
        return None
    fp = digest.fingerprint
    return os.path.join(os.path.realpath(local_store_dir), "immutable", "files", fp[:2], fp)


@rule(desc="Check a built image read back from Pants' store")
async def stored_image(request: StoredImageRequest) -> StoredImage:
    root = request.output_digest
    if request.attempt:
        root = await Get(Digest, AddPrefix(root, f".attempt-{request.attempt}"))
    entries = await Get(DigestEntries, Digest, root)
    prefix = f".attempt-{request.attempt}/" if request.attempt else ""
    by_path = {e.path[len(prefix):]: e for e in entries if isinstance(e, FileEntry)}
    missing = [p for p in (request.image_path, request.record_path) if p not in by_path]
    if missing:
        return _damaged(f"the stored outputs lack {', '.join(missing)}")
    try:
        contents = await Get(DigestContents, Digest, root)
    except Exception as e:  # the engine could not load a file back (e.g. truncated in the store)
        text = " ".join(str(e).split())
        return _damaged(f"Pants' store could not read them back ({text[:300]})",
                        *(by_path[p].file_digest for p in (request.image_path, request.record_path)))
    data = {c.path[len(prefix):]: c.content for c in contents}
    for path in (request.image_path, request.record_path):
        want = by_path[path].file_digest
        got = data.get(path, b"")
        if len(got) != want.serialized_bytes_length or hashlib.sha256(got).hexdigest() != want.fingerprint:
            return _damaged(f"{path} read back from Pants' store is {len(got)} bytes with sha256 "
                            f"{hashlib.sha256(got).hexdigest()[:16]}..., not the {want.serialized_bytes_length} "
                            f"bytes with sha256 {want.fingerprint[:16]}... it was stored as", want)
    text = data[request.record_path].decode("utf-8", errors="replace")
    try:
        record = json.loads(text)
        record["index"]["digest"], record["platforms"]
    except (ValueError, KeyError, TypeError) as e:
        return _damaged(f"its record {request.record_path} is not a valid image record ({type(e).__name__}: {e})",
                        by_path[request.record_path].file_digest)
    return StoredImage(by_path[request.image_path], by_path[request.record_path], text)


def rules():
    return collect_rules()
