"""Run a build process's code from a per-machine copy, so its bytecode is compiled once.

A build process gets llbkit's sources in its sandbox (``.llbkit-code/``), so that Pants' cache
key covers the code that made a result. But a fresh sandbox has no ``__pycache__``, and every
process compiled every module it imports from source again: about a quarter of a small build
process's CPU. Bytecode cannot join the sources in the sandbox: ``marshal`` output is not
byte-stable across processes, so it would make the key differ between machines.

:func:`boot` instead copies the sandbox's sources once per machine into a directory named by
their content hash, in a Pants named cache (outside the key, like Pants' own pex and pip
caches), and runs the command's module from there with bytecode writes on: the first process of
a code version compiles, later ones load the ``.pyc`` files. The copy is made in a temporary
directory and renamed into place with a completion marker inside it, so a process sees a whole
copy or none; when the cache cannot be used (read-only, full) the process runs from the
sandbox, as before. This module imports only the standard library: it runs before the rest of
llbkit is importable from the copy.
"""

from __future__ import annotations

import hashlib
import os
import runpy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple

__all__ = ["code_digest", "files_digest", "install", "boot"]

COMPLETE = ".complete"


def code_digest(code_dir: Path) -> str:
    """The sha256 of the ``.py`` files under ``code_dir/llbkit``: paths and contents."""
    root = code_dir / "llbkit"
    return files_digest((p.relative_to(code_dir).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*.py")))


def files_digest(files: Iterable[Tuple[str, bytes]]) -> str:
    """:func:`code_digest` of ``(path relative to the code dir, content)`` pairs in path order:
    what the caller that wrote the files can compute without reading them back."""
    h = hashlib.sha256()
    for rel, data in files:
        path = rel.encode()
        h.update(b"%d:%s%d:" % (len(path), path, len(data)))
        h.update(data)
    return h.hexdigest()


def install(code_dir: Path, cache_dir: Path, digest: Optional[str] = None) -> Optional[Path]:
    """The directory holding a complete copy of ``code_dir``'s ``llbkit`` package in
    ``cache_dir`` (made if missing), or ``None`` when the cache cannot be used. ``digest`` is
    ``code_dir``'s :func:`code_digest` when the caller knows it (the rule that put the files in
    the sandbox does): hashing a megabyte of sources was a tenth of a small build's CPU."""
    try:
        if digest is None or not _is_sha256(digest):
            digest = code_digest(code_dir)
        dest = cache_dir / digest
        if (dest / COMPLETE).is_file():
            return dest.resolve()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name[:16]}-", dir=cache_dir))
        try:
            shutil.copytree(code_dir / "llbkit", tmp / "llbkit",
                            ignore=shutil.ignore_patterns("__pycache__"))
            (tmp / COMPLETE).write_bytes(b"")
            os.rename(tmp, dest)  # atomic; fails if another process got there first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest.resolve() if (dest / COMPLETE).is_file() else None
    except OSError:
        return None


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def boot(module: str, code_dir: str = ".llbkit-code", cache_dir: str = ".llbkit-code-cache",
         argv: Optional[Sequence[str]] = None, digest: Optional[str] = None) -> None:
    """Run ``module`` as ``__main__`` from the cached copy of ``code_dir`` (or from ``code_dir``
    itself when the cache is unusable), with ``argv`` (default: this process's arguments);
    ``digest`` as for :func:`install`."""
    code = Path(code_dir).resolve()
    copy = install(code, Path(cache_dir), digest)
    if copy is not None:
        for name in [m for m in sys.modules if m == "llbkit" or m.startswith("llbkit.")]:
            del sys.modules[name]  # this module and llbkit/__init__, loaded from the sandbox
        sys.path[:] = [str(copy)] + [p for p in sys.path if p not in (str(code), code_dir)]
        sys.dont_write_bytecode = False  # the copy is ours: its bytecode is kept for the next process
    sys.argv = [module, *(sys.argv[1:] if argv is None else argv)]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
