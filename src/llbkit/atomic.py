"""Atomic file output: a temp file beside the target, fsync, rename; nothing half-written.

``with atomic_output(path) as f: f.write(...)`` either leaves ``path`` holding everything that was
written, or (on any exception, KeyboardInterrupt included) leaves ``path`` untouched and removes
the temp file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Union

from llbkit.errors import OCIError  # the root module: atomic.py sits below every stage

PathLike = Union[str, "os.PathLike[str]"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: PathLike, mode: int = 0o644) -> Iterator[BinaryIO]:
    target = Path(path)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise OCIError(
            f"cannot create {target}: {e.strerror or e}; check that {parent} is a writable "
            "directory"
        ) from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f  # type: ignore[misc]
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(parent)


def fsync_dir(path: PathLike) -> None:
    """Make renames into ``path`` durable; best effort (not every filesystem allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: PathLike, data: bytes, mode: int = 0o644) -> None:
    with atomic_output(path, mode) as f:
        f.write(data)
