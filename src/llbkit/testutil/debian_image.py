"""A deterministic multi-platform OCI image made by unpacking Debian packages (no maintainer scripts).

``debian_image(name, debs_by_arch, config)`` merges the data of the .debs of each architecture
into one layer (every entry mtime 0, the packages' own modes and owners, documentation left out),
adds the few files a package manager would have made (``/etc/passwd``, ``/etc/group``, ``/tmp``,
``/root``) and writes an OCI layout whose ``index.json`` names one index, tagged ``latest``, with
a manifest per architecture. The same .debs always give the same digests. The layout is cached
under ``$LLBKIT_CACHE/testimages/<name>-<key>`` with the key made of the .debs' sha256.

The sample monorepo's ``llbkit/python3`` base image is made this way from Debian's python3 and its
dependency closure (see :mod:`llbkit.testutil.debian_debs` and :mod:`llbkit.testutil.testregistry`).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.testutil.busybox_image import (
    EPOCH,
    MT_CONFIG,
    MT_INDEX,
    MT_LAYER,
    MT_MANIFEST,
    PLATFORMS,
    _Blobs,
    _deb_member,
    _entry,
    _gzip,
    _json,
    _digest,
    _platform,
)
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.tools import cache_dir

GENERATOR_VERSION = 2  # bump when the layout's contents change: it is part of the cache key
TAG = "latest"
# Left out, as Debian's slim images do: nothing at run time reads them.
DROPPED_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/lintian/")
BASE_FILES: Dict[str, Tuple[bytes, int]] = {
    "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\n"
                   b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644),
    "etc/group": (b"root:x:0:\nnogroup:x:65534:\n", 0o644),
}
BASE_DIRS: Dict[str, int] = {"etc": 0o755, "root": 0o700, "tmp": 0o1777}


def _normalize(name: str) -> str:
    """``./usr/bin/`` -> ``usr/bin``; the root itself (``./``, ``.``) -> ``""``."""
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _dropped(name: str) -> bool:
    return any((name + "/").startswith(p) for p in DROPPED_PREFIXES)


def merge_debs(debs: Sequence[Path]) -> bytes:
    """One uncompressed layer tar holding the data of ``debs`` (in the given order) and the
    base files; a path shipped by two packages is kept from the first (directories always
    are; two different files at one path are an error naming both packages)."""
    seen: Dict[str, Tuple[tarfile.TarInfo, str]] = {}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        def add(info: tarfile.TarInfo, data: Optional[bytes], origin: str) -> None:
            prior = seen.get(info.name)
            if prior is not None:
                if prior[0].isdir() and info.isdir():
                    return
                raise FixtureError(f"{info.name} is in both {prior[1]} and {origin}; "
                                   "unpacking both would depend on their order")
            seen[info.name] = (info, origin)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)

        for deb in debs:
            with _deb_member(Path(deb), "data") as src:
                for m in src.getmembers():
                    name = _normalize(m.name)
                    if not name or _dropped(name):
                        continue
                    info = tarfile.TarInfo(name)
                    info.type, info.mode, info.uid, info.gid = m.type, m.mode, m.uid, m.gid
                    info.uname = info.gname = ""
                    info.mtime = 0
                    if m.islnk():
                        info.linkname = _normalize(m.linkname)
                    elif m.issym():
                        info.linkname = m.linkname
                    data = None
                    if m.isreg():
                        data = src.extractfile(m).read()  # type: ignore[union-attr]
                        info.size = len(data)
                    add(info, data, Path(deb).name)
        for name, mode in BASE_DIRS.items():
            if name not in seen:
                add(_entry(name, tarfile.DIRTYPE, mode), None, "llbkit")
        for name, (data, mode) in BASE_FILES.items():
            if name not in seen:
                add(_entry(name, tarfile.REGTYPE, mode, len(data)), data, "llbkit")
    return out.getvalue()


def build_layout(debs_by_arch: Mapping[str, Sequence[Path]], dest: Path, config: Mapping[str, object],
                 created_by: str) -> str:
    """Write the OCI layout into the empty dir ``dest``; returns the index digest."""
    blobs = _Blobs(Path(dest))
    descriptors = []
    for arch in sorted(debs_by_arch, key=lambda a: list(PLATFORMS).index(a)):
        raw = merge_debs(debs_by_arch[arch])
        layer = blobs.put(_gzip(raw), MT_LAYER)
        plat = _platform(arch)
        image_config: Dict[str, object] = dict(plat)
        image_config.update({
            "created": EPOCH,
            "config": dict(config),
            "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
            "history": [{"created": EPOCH, "created_by": f"{created_by} ({arch})"}],
        })
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": blobs.put(_json(image_config), MT_CONFIG), "layers": [layer]}
        desc = blobs.put(_json(manifest), MT_MANIFEST)
        desc["platform"] = plat
        descriptors.append(desc)
    index_desc = blobs.put(_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": descriptors}),
                           MT_INDEX)
    index_desc["annotations"] = {"org.opencontainers.image.ref.name": TAG}
    (Path(dest) / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    (Path(dest) / "index.json").write_bytes(
        _json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [index_desc]}))
    return str(index_desc["digest"])


def _layout_ok(layout: Path) -> bool:
    try:
        for blob in (layout / "blobs" / "sha256").iterdir():
            if hashlib.sha256(blob.read_bytes()).hexdigest() != blob.name:
                return False
        return (layout / "index.json").is_file()
    except OSError:
        return False


def _key(debs_by_arch: Mapping[str, Sequence[Path]], config: Mapping[str, object]) -> str:
    h = hashlib.sha256(f"v{GENERATOR_VERSION}\n".encode() + _json(dict(config)))
    for arch in sorted(debs_by_arch):
        for deb in debs_by_arch[arch]:
            h.update(f"{arch} {Path(deb).name} ".encode())
            h.update(hashlib.sha256(Path(deb).read_bytes()).digest())
    return h.hexdigest()[:20]


def debian_image(name: str, debs_by_arch: Mapping[str, Sequence[Path]], config: Mapping[str, object],
                 created_by: str = "", cache: Optional[Path] = None) -> Path:
    """The OCI layout dir for these .debs (built once, then reused from the cache)."""
    unknown = sorted(set(debs_by_arch) - set(PLATFORMS))
    if unknown:
        raise FixtureError(f"unknown Debian architecture(s) {unknown}; known: {sorted(PLATFORMS)}")
    root = Path(cache) if cache is not None else cache_dir() / "testimages"
    final = root / f"{name}-{_key(debs_by_arch, config)}"
    if _layout_ok(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build_layout(debs_by_arch, work, config, created_by or name)
        os.chmod(work, 0o755)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(work, final)
        except OSError:  # another process renamed its (identical) copy first
            if not _layout_ok(final):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def tar_names(layer: bytes) -> List[str]:
    """The entry names of a layer tar, in order (for tests and debugging)."""
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:") as tf:
        return [m.name for m in tf.getmembers()]

