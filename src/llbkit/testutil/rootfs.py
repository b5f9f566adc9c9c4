"""Unpack image layers into a root filesystem directory, as a container runtime does.

``apply_layer(tar, rootfs)`` applies one layer (an uncompressed or gzip tar stream) on top of what
earlier layers left in ``rootfs``, following the OCI image spec's changeset rules:

- ``dir/.wh.NAME`` (a whiteout) deletes ``dir/NAME`` left by earlier layers;
- ``dir/.wh..wh..opq`` (an opaque whiteout) deletes everything earlier layers left in ``dir``;
- any other entry replaces what is at its path (a directory over a directory is merged).

Paths are resolved inside ``rootfs`` as if it were ``/``: a symlink in a layer (even an absolute
one) never leads a later entry outside it, and ``..`` cannot climb above it. Owners are applied
when running as root. Device nodes are skipped: a container runtime mounts its own ``/dev``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO, Set

from llbkit.testutil.errors import FixtureError

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_MAX_LINKS = 40  # as the kernel's limit on symlinks followed in one lookup


def _parts(name: str) -> list:
    return [p for p in name.split("/") if p not in ("", ".")]


def resolve_in_root(rootfs: Path, name: str, follow_last: bool = False) -> Path:
    """The host path of ``name`` inside ``rootfs``, with symlinks followed as in a chroot."""
    root = str(rootfs)
    todo = _parts(name)
    done: list = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if (todo or follow_last) and os.path.islink(candidate):
            links += 1
            if links > _MAX_LINKS:
                raise FixtureError(f"{name}: too many levels of symbolic links in {rootfs}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            todo = _parts(target) + todo
            continue
        done.append(part)
    return Path(root, *done)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _apply_owner_and_mode(path: Path, member: tarfile.TarInfo, is_root: bool) -> None:
    if is_root:
        os.lchown(path, member.uid, member.gid)  # before chmod: chown clears setuid bits
    if not member.issym():
        os.chmod(path, stat.S_IMODE(member.mode))


def apply_layer(stream: IO[bytes], rootfs: Path) -> None:
    """Apply one layer tar (uncompressed or gzip, read as a stream) to ``rootfs``."""
    rootfs = Path(rootfs)
    is_root = os.geteuid() == 0
    added: Set[str] = set()  # paths this layer wrote: whiteouts only hide earlier layers' files
    dirs = []
    with tarfile.open(fileobj=stream, mode="r|*") as tf:
        for member in tf:
            parts = _parts(member.name)
            if not parts or ".." in parts:
                if ".." in parts:
                    raise FixtureError(f"layer entry {member.name!r} climbs out of the image with ..")
                continue
            name = "/".join(parts)
            base = parts[-1]
            parent = resolve_in_root(rootfs, "/".join(parts[:-1]), follow_last=True)
            if base == OPAQUE_WHITEOUT:
                if parent.is_dir():
                    prefix = "/".join(parts[:-1])
                    for child in parent.iterdir():
                        if f"{prefix}/{child.name}".lstrip("/") not in added:
                            _remove(child)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                _remove(parent / base[len(WHITEOUT_PREFIX):])
                continue
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                _remove(parent)  # a later layer made a directory where a file was
            parent.mkdir(parents=True, exist_ok=True)
            path = parent / base
            added.add(name)
            if member.isdir():
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    _remove(path)
                path.mkdir(exist_ok=True)
                dirs.append((path, member))  # modes last: a read-only dir would refuse its files
                continue
            _remove(path)
            if member.isreg():
                src = tf.extractfile(member)
                with open(path, "wb") as out:
                    shutil.copyfileobj(src, out)  # type: ignore[arg-type]
            elif member.issym():
                os.symlink(member.linkname, path)
            elif member.islnk():
                target = resolve_in_root(rootfs, member.linkname)
                if not target.exists():
                    raise FixtureError(f"layer entry {name} is a hard link to {member.linkname}, "
                                       "which is not in the image")
                os.link(target, path)
                continue  # a hard link shares its target's owner and mode
            elif member.isfifo():
                os.mkfifo(path)
            else:
                continue  # character and block devices: the runtime provides /dev
            _apply_owner_and_mode(path, member, is_root)
    for path, member in reversed(dirs):
        _apply_owner_and_mode(path, member, is_root)
