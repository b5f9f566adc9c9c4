"""Which repositories of a registry this machine has pushed a blob to, so a later push of the
same blob to another repository mounts it there instead of uploading it again.

::

    memory = PushedBlobs(cache_dir / "pushed-blobs")
    push(client, "acme/app", root, layout, tags, memory=memory)

A registry keeps blobs per repository: a second image on the same base, pushed to its own
repository, finds none of the base's layers there, though the registry holds them. The
distribution API can link a blob from another repository of the same registry (a cross-
repository mount) if the client names one; Docker remembers where it pushed what for this, and
so does this. A mount that fails (the blob is gone, or the user may not read that repository)
falls back to an upload, so a stale memory costs one request. Appends are atomic per line, so
concurrent pushes share the memory safely.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List

__all__ = ["PushedBlobs"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_KEEP = 5  # candidates tried per blob: the most recent repositories first


class PushedBlobs:
    def __init__(self, directory: "str | os.PathLike[str]") -> None:
        self.directory = Path(directory)

    def _file(self, registry: str, digest: str) -> Path:
        return self.directory / _UNSAFE.sub("_", registry) / digest.replace(":", "-")

    def repositories(self, registry: str, digest: str) -> List[str]:
        """The repositories of ``registry`` this blob was pushed to or found in, latest first."""
        try:
            lines = self._file(registry, digest).read_text().splitlines()
        except OSError:
            return []
        out: List[str] = []
        for repo in reversed(lines):
            if repo and repo not in out:
                out.append(repo)
        return out[:_KEEP]

    def record(self, registry: str, digest: str, repository: str) -> None:
        """Remember that ``registry/repository`` holds the blob. Best effort: a memory that cannot
        be written only costs later pushes an upload."""
        if repository in self.repositories(registry, digest)[:1]:
            return
        path = self._file(registry, digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, (repository + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass
