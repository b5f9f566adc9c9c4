"""File metadata as fsutil sends it: Go's ``os.FileMode`` bits and the ``fsutil.types.Stat`` record.

Go's mode is not POSIX ``st_mode``: the permission bits (0o777) are the same, but the file type
and the setuid/setgid/sticky bits live in the high bits (``MODE_DIR`` = 1<<31 ...).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
from typing import Dict, Optional, Tuple

from llbkit._proto import fsutil_types_pb2 as fpb

__all__ = [
    "MODE_DIR",
    "MODE_SYMLINK",
    "MODE_DEVICE",
    "MODE_NAMED_PIPE",
    "MODE_SOCKET",
    "MODE_SETUID",
    "MODE_SETGID",
    "MODE_CHAR_DEVICE",
    "MODE_STICKY",
    "MODE_IRREGULAR",
    "MODE_TYPE",
    "MODE_PERM",
    "go_mode",
    "posix_permissions",
    "is_dir",
    "is_symlink",
    "can_request_data",
    "make_stat",
]

MODE_DIR = 1 << 31
MODE_APPEND = 1 << 30
MODE_EXCLUSIVE = 1 << 29
MODE_TEMPORARY = 1 << 28
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19
MODE_TYPE = (
    MODE_DIR | MODE_SYMLINK | MODE_NAMED_PIPE | MODE_SOCKET | MODE_DEVICE | MODE_CHAR_DEVICE
    | MODE_IRREGULAR
)
MODE_PERM = 0o777


def go_mode(st_mode: int) -> int:
    """Go's ``os.FileMode`` for a POSIX ``st_mode`` (as ``os.Lstat`` computes it on Linux)."""
    mode = st_mode & MODE_PERM
    fmt = _stat.S_IFMT(st_mode)
    if fmt == _stat.S_IFBLK:
        mode |= MODE_DEVICE
    elif fmt == _stat.S_IFCHR:
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    elif fmt == _stat.S_IFDIR:
        mode |= MODE_DIR
    elif fmt == _stat.S_IFIFO:
        mode |= MODE_NAMED_PIPE
    elif fmt == _stat.S_IFLNK:
        mode |= MODE_SYMLINK
    elif fmt == _stat.S_IFSOCK:
        mode |= MODE_SOCKET
    if st_mode & _stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & _stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & _stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def posix_permissions(mode: int) -> int:
    """The chmod bits (permissions plus setuid/setgid/sticky) of a Go mode."""
    perm = mode & MODE_PERM
    if mode & MODE_SETUID:
        perm |= _stat.S_ISUID
    if mode & MODE_SETGID:
        perm |= _stat.S_ISGID
    if mode & MODE_STICKY:
        perm |= _stat.S_ISVTX
    return perm


def is_dir(mode: int) -> bool:
    return bool(mode & MODE_DIR)


def is_symlink(mode: int) -> bool:
    return bool(mode & MODE_SYMLINK)


def can_request_data(mode: int) -> bool:
    """Whether a receiver may ask for this entry's content: regular files only (fsutil's rule)."""
    return mode & MODE_TYPE == 0


def _xattrs(path: str) -> Dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.EPERM):
            return {}
        raise
    out: Dict[str, bytes] = {}
    for name in names:
        if name.startswith("com.apple."):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def make_stat(
    abs_path: str,
    rel_path: str,
    st: os.stat_result,
    hardlinks: Optional[Dict[Tuple[int, int], str]] = None,
    xattrs: bool = True,
) -> "fpb.Stat":
    """The ``Stat`` fsutil sends for ``abs_path`` (``st`` is its lstat), named ``rel_path``.

    ``hardlinks`` maps (device, inode) to the first path sent with that inode; a later regular
    file with the same inode is sent as a hardlink to it (``linkname`` set, size 0).
    """
    mode = go_mode(st.st_mode) & ~MODE_SOCKET
    out = fpb.Stat(
        path=rel_path,
        mode=mode,
        uid=st.st_uid,
        gid=st.st_gid,
        modTime=st.st_mtime_ns,
    )
    if not is_dir(mode):
        out.size = st.st_size
        if is_symlink(mode):
            out.linkname = os.readlink(abs_path)
        fmt = _stat.S_IFMT(st.st_mode)
        if fmt in (_stat.S_IFBLK, _stat.S_IFCHR):
            out.devmajor = os.major(st.st_rdev)
            out.devminor = os.minor(st.st_rdev)
        if hardlinks is not None and not is_symlink(mode):
            key = (st.st_dev, st.st_ino)
            first = hardlinks.get(key) if st.st_nlink > 1 else None
            if first is not None and first != rel_path:
                out.linkname = first
                out.size = 0
            elif st.st_nlink > 1:
                hardlinks[key] = rel_path
    if xattrs:
        for k, v in _xattrs(abs_path).items():
            out.xattrs[k] = v
    return out
