"""Builds in flight per worker, counted across the processes of one machine.

A :class:`~llbkit.buildkit.pool.WorkerPool` lives in one process, but the Pants backend runs one
build process per image, many at once: for "the least busy worker first" to spread them, each
must see the others' builds. A build holds a slot file under ``DIR/<worker>/`` locked with
``flock`` for as long as it runs; the load of a worker is the number of locked slots there. A
lock dies with its process, so a build killed by Ctrl-C (or ``SIGKILL``) frees its slot at
once; unlocked slot files left behind are removed by the next count. Choosing and taking a
slot happen under one directory lock, so two processes choosing at once see each other.
:meth:`SharedLoad.count` leaves out the slots taken through the same :class:`SharedLoad`: the
pool that took them counts its own builds already (give each pool its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import IO, Callable, Iterator, Optional, Set

__all__ = ["SharedLoad", "Slot"]


class Slot:
    """A held slot: one build in flight on a worker until :meth:`release`."""

    def __init__(self, path: Path, f: IO[bytes], on_release: Optional[Callable[[Path], None]] = None) -> None:
        self._path = path
        self._f: Optional[IO[bytes]] = f
        self._on_release = on_release

    def release(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._f.close()  # drops the lock
            self._f = None
            if self._on_release is not None:
                self._on_release(self._path)


class SharedLoad:
    """Slot files under ``directory`` (created on first use)."""

    def __init__(self, directory: "str | os.PathLike[str]") -> None:
        self.directory = Path(directory)
        self._held: Set[Path] = set()  # slots taken through this object (its pool counts them)
        self._held_lock = threading.Lock()

    def _worker_dir(self, worker: str) -> Path:
        return self.directory / hashlib.sha256(worker.encode()).hexdigest()[:16]

    @contextlib.contextmanager
    def choosing(self) -> Iterator[None]:
        """Held while a process counts loads and takes a slot."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def count(self, worker: str) -> int:
        """Builds in flight on ``worker`` in every process, but for the slots taken through this
        object (stale slots are removed)."""
        d = self._worker_dir(worker)
        n = 0
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return 0
        with self._held_lock:
            mine = set(self._held)
        for name in names:
            path = d / name
            if path in mine:
                continue
            try:
                with open(path, "rb") as f:
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        n += 1  # held by a live build
                        continue
                    path.unlink()  # its process is gone
            except FileNotFoundError:
                continue
        return n

    def take(self, worker: str) -> Slot:
        d = self._worker_dir(worker)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{os.getpid()}-{os.urandom(6).hex()}"
        f = open(path, "wb")
        fcntl.flock(f, fcntl.LOCK_EX)  # taken under choosing(): nobody counts it unlocked
        with self._held_lock:
            self._held.add(path)
        return Slot(path, f, self._released)

    def _released(self, path: Path) -> None:
        with self._held_lock:
            self._held.discard(path)
