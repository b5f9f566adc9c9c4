"""Writing exports atomically: a file through a temp file + rename, a directory through a temp dir.

Nothing partial is ever left at the destination: a failed or interrupted export removes its
temporary file or directory, and the destination keeps its previous content.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, List, Tuple

from llbkit._proto import fsutil_types_pb2 as fpb
from llbkit.buildkit.session.stat import (
    MODE_CHAR_DEVICE,
    MODE_DEVICE,
    MODE_NAMED_PIPE,
    MODE_SOCKET,
    is_dir,
    is_symlink,
    posix_permissions,
)
from llbkit.errors import SessionError
from llbkit.atomic import fsync_dir

__all__ = ["AtomicFile", "DirSink", "AtomicDir"]

_TMP_MARK = ".llbkit-tmp-"


class AtomicFile:
    """A file written under a temporary name in the destination's directory.

    :meth:`commit` flushes, fsyncs and renames it over ``dest``; :meth:`abort` removes it.
    Used as a context manager it commits on success and aborts on an exception.
    """

    def __init__(self, dest: str) -> None:
        self.dest = os.path.abspath(dest)
        parent = os.path.dirname(self.dest)
        os.makedirs(parent, exist_ok=True)
        fd, self.temp_path = tempfile.mkstemp(
            dir=parent, prefix=f".{os.path.basename(self.dest)}{_TMP_MARK}"
        )
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        self._closed = False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        if self._closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            # mkstemp makes 0600 files; give the export the mode a new file would get
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.temp_path, 0o666 & ~umask)
            os.replace(self.temp_path, self.dest)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        fsync_dir(os.path.dirname(self.dest))

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._file.close()
        finally:
            try:
                os.unlink(self.temp_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class DirSink:
    """Creates received entries under ``root`` (a :class:`~.diffcopy.Sink`).

    Owners are not applied (as BuildKit's client does: exported files belong to the user);
    permissions and modification times are. Device nodes are skipped (they need root).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: Dict[str, "fpb.Stat"] = {}
        self._open: Dict[str, object] = {}
        self._dirs: List[Tuple[str, "fpb.Stat"]] = []
        self._links: List[Tuple[str, str]] = []

    def _abs(self, path: str) -> str:
        return os.path.join(self.root, path)

    def entry(self, stat: "fpb.Stat") -> bool:
        dest = self._abs(stat.path)
        mode = stat.mode
        if is_dir(mode):
            if not os.path.isdir(dest):
                os.mkdir(dest, 0o700)
            self._dirs.append((dest, stat))
            return False
        if is_symlink(mode):
            os.symlink(stat.linkname, dest)
            _set_mtime(dest, stat.modTime, symlink=True)
            return False
        if mode & MODE_NAMED_PIPE:
            os.mkfifo(dest, 0o600)
            os.chmod(dest, posix_permissions(mode))
            _set_mtime(dest, stat.modTime)
            return False
        if mode & (MODE_DEVICE | MODE_CHAR_DEVICE | MODE_SOCKET):
            return False
        if stat.linkname:  # a hardlink to an earlier file: made once every file is complete
            self._links.append((stat.linkname, stat.path))
            return False
        self._files[stat.path] = stat
        return True

    def write(self, path: str, data: bytes) -> None:
        f = self._open.get(path)
        if f is None:
            fd = os.open(
                self._abs(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
            )
            f = self._open[path] = os.fdopen(fd, "wb")
        f.write(data)  # type: ignore[attr-defined]

    def close(self, path: str) -> None:
        f = self._open.pop(path, None)
        if f is None:
            self.write(path, b"")
            f = self._open.pop(path)
        f.close()  # type: ignore[attr-defined]
        stat = self._files.pop(path)
        dest = self._abs(path)
        os.chmod(dest, posix_permissions(stat.mode))
        _set_mtime(dest, stat.modTime)

    def finish(self) -> None:
        for target, path in self._links:
            os.link(self._abs(target), self._abs(path), follow_symlinks=False)
        for dest, stat in reversed(self._dirs):
            os.chmod(dest, posix_permissions(stat.mode))
            _set_mtime(dest, stat.modTime)

    def abort(self) -> None:
        for f in self._open.values():
            try:
                f.close()  # type: ignore[attr-defined]
            except OSError:
                pass
        self._open.clear()


def _set_mtime(path: str, mtime_ns: int, symlink: bool = False) -> None:
    try:
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=not symlink)
    except (NotImplementedError, OSError):
        if not symlink:
            raise


class AtomicDir:
    """A directory received under a temporary name next to ``dest``, then moved into place.

    When ``dest`` does not exist or is empty, :meth:`commit` renames the temporary directory to
    it. When it has content, the new tree is merged in: each received file replaces the one at
    its path (by rename), other existing files stay (BuildKit's ``local`` exporter "copy" mode).
    """

    def __init__(self, dest: str) -> None:
        self.dest = os.path.abspath(dest)
        parent = os.path.dirname(self.dest)
        os.makedirs(parent, exist_ok=True)
        self.temp_path = tempfile.mkdtemp(
            dir=parent, prefix=f".{os.path.basename(self.dest)}{_TMP_MARK}"
        )
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temp_path, 0o777 & ~umask)
        self.sink = DirSink(self.temp_path)
        self._closed = False

    def commit(self) -> None:
        if self._closed:
            return
        try:
            if os.path.isdir(self.dest) and not os.path.islink(self.dest) and os.listdir(self.dest):
                _merge(self.temp_path, self.dest)
                shutil.rmtree(self.temp_path, ignore_errors=True)
            else:
                if os.path.lexists(self.dest) and not os.path.isdir(self.dest):
                    raise SessionError(
                        f"cannot export a directory to {self.dest}: it exists and is not a directory"
                    )
                os.replace(self.temp_path, self.dest)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sink.abort()
        shutil.rmtree(self.temp_path, ignore_errors=True)


def _merge(src: str, dest: str) -> None:
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dest, name)
        s_dir = os.path.isdir(s) and not os.path.islink(s)
        if s_dir and os.path.isdir(d) and not os.path.islink(d):
            _merge(s, d)
            st = os.stat(s)
            os.chmod(d, st.st_mode & 0o7777)
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
            continue
        if os.path.lexists(d):
            if os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d)
            elif s_dir:
                os.unlink(d)
        os.replace(s, d)

