"""A tiny, deterministic multi-platform busybox image (OCI layout) built from Debian's .debs.

``busybox_image()`` returns an OCI image layout whose ``index.json`` names one image index
(tag ``latest``) with a manifest for linux/amd64 and one for linux/arm64 (variant v8). Each image
has one layer: ``/bin/busybox`` (static), ``/bin/<applet>`` symlinks to it, ``/usr/bin/env``,
``/etc/passwd``, ``/etc/group``, ``/root`` and ``/tmp``; every entry owned by 0:0 with mtime 0,
gzip with mtime 0, JSON with sorted keys, so the same .debs always give the same digests. The
layout is cached under ``$LLBKIT_CACHE/testimages/`` keyed by the .debs' sha256 (a temp dir is
used when the cache is not writable).

``BusyboxImage.push("127.0.0.1:PORT/busybox:latest")`` copies it to a registry with skopeo.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from llbkit.testutil import skopeo
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import make_temp_dir
from llbkit.testutil.tools import busybox_debs, cache_dir, find_tool

GENERATOR_VERSION = 2  # bump when the layout's contents change: it is part of the cache key
TAG = "latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"
APPLETS = (
    "[", "ash", "awk", "basename", "cat", "chmod", "chown", "cmp", "cp", "cut", "date", "dd",
    "df", "diff", "dirname", "du", "echo", "env", "expr", "false", "find", "grep", "gunzip",
    "gzip", "head", "hostname", "id", "kill", "ln", "ls", "md5sum", "mkdir", "mktemp", "mv",
    "nproc", "od", "printf", "ps", "pwd", "readlink", "realpath", "rm", "rmdir", "sed", "seq",
    "sh", "sha256sum", "sleep", "sort", "stat", "tail", "tar", "tee", "test", "touch", "tr",
    "true", "uname", "uniq", "wc", "wget", "which", "whoami", "xargs",
)
# Debian architecture -> OCI platform (os, architecture, variant)
PLATFORMS: Dict[str, Tuple[str, str, str]] = {
    "amd64": ("linux", "amd64", ""),
    "arm64": ("linux", "arm64", "v8"),
}
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class BusyboxImage:
    """An OCI layout holding the busybox index; ``manifests`` maps ``linux/arm64`` -> digest."""

    layout: Path
    index_digest: str
    manifests: Dict[str, str] = field(default_factory=dict)
    version: str = ""
    tag: str = TAG

    @property
    def oci_ref(self) -> str:
        """The skopeo source reference, ``oci:LAYOUT:latest``."""
        return f"oci:{self.layout}:{self.tag}"

    @property
    def platforms(self) -> list:
        return list(self.manifests)

    def push(self, dest_ref: str, creds: Optional[Sequence[str]] = None) -> None:
        """Copy the whole index to ``dest_ref`` (``HOST:PORT/REPO:TAG``) over plain HTTP."""
        skopeo.copy(self.oci_ref, f"docker://{dest_ref}", all_platforms=True, dest_creds=creds)


# -- .deb reading ---------------------------------------------------------------------------

def _ar_members(data: bytes) -> Dict[str, bytes]:
    if not data.startswith(b"!<arch>\n"):
        raise FixtureError("not a Debian package (no ar header)")
    out: Dict[str, bytes] = {}
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        out[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    return out


def _open_tar(member: str, blob: bytes) -> tarfile.TarFile:
    if member.endswith(".xz"):
        blob = lzma.decompress(blob)
    elif member.endswith(".gz"):
        blob = gzip.decompress(blob)
    elif not member.endswith(".tar"):
        raise ValueError(member)
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:")


def _deb_member(deb: Path, kind: str) -> tarfile.TarFile:
    """The ``control`` or ``data`` tar of a .deb (``dpkg-deb`` for compressions we cannot read)."""
    members = _ar_members(deb.read_bytes())
    for name, blob in members.items():
        if name.startswith(f"{kind}.tar"):
            try:
                return _open_tar(name, blob)
            except ValueError:
                flag = "--fsys-tarfile" if kind == "data" else "--ctrl-tarfile"
                out = subprocess.run([str(find_tool("dpkg-deb")), flag, str(deb)],
                                     check=True, capture_output=True).stdout
                return tarfile.open(fileobj=io.BytesIO(out), mode="r:")
    raise FixtureError(f"{deb}: no {kind}.tar member")


def read_busybox_deb(deb: Path) -> Tuple[bytes, str, str]:
    """``(busybox binary, package version, Debian architecture)`` from a busybox-static .deb."""
    deb = Path(deb)
    with _deb_member(deb, "control") as tf:
        member = next((m for m in tf.getmembers() if m.name.lstrip("./") == "control"), None)
        if member is None:
            raise FixtureError(f"{deb}: no control file")
        fields = {}
        for line in tf.extractfile(member).read().decode().splitlines():  # type: ignore[union-attr]
            if ":" in line and not line.startswith(" "):
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
    with _deb_member(deb, "data") as tf:
        names = {m.name.lstrip("."): m for m in tf.getmembers() if m.isfile()}
        member = names.get("/bin/busybox") or names.get("/usr/bin/busybox")
        if member is None:
            raise FixtureError(f"{deb}: no bin/busybox in the package")
        binary = tf.extractfile(member).read()  # type: ignore[union-attr]
    return binary, fields.get("Version", ""), fields.get("Architecture", "")


# -- deterministic layer, config, manifests -------------------------------------------------

def _entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.linkname = link
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def layer_tar(busybox: bytes) -> bytes:
    """The uncompressed layer: same bytes for the same binary on every Python version."""
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
    }
    entries = [
        (_entry("bin", tarfile.DIRTYPE, 0o755), b""),
        (_entry("bin/busybox", tarfile.REGTYPE, 0o755, len(busybox)), busybox),
        (_entry("etc", tarfile.DIRTYPE, 0o755), b""),
        (_entry("root", tarfile.DIRTYPE, 0o700), b""),
        (_entry("tmp", tarfile.DIRTYPE, 0o1777), b""),
        (_entry("usr", tarfile.DIRTYPE, 0o755), b""),
        (_entry("usr/bin", tarfile.DIRTYPE, 0o755), b""),
        (_entry("usr/bin/env", tarfile.SYMTYPE, 0o777, link="/bin/busybox"), b""),
    ]
    entries += [(_entry(n, tarfile.REGTYPE, 0o644, len(d)), d) for n, d in files.items()]
    entries += [(_entry(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox"), b"") for a in APPLETS]
    entries.sort(key=lambda e: e[0].name)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _platform(arch: str) -> Dict[str, str]:
    os_, architecture, variant = PLATFORMS[arch]
    out = {"os": os_, "architecture": architecture}
    if variant:
        out["variant"] = variant
    return out


class _Blobs:
    def __init__(self, layout: Path) -> None:
        self.dir = layout / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, media_type: str) -> Dict[str, object]:
        digest = _digest(data)
        (self.dir / digest.split(":", 1)[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}


def build_layout(debs: Mapping[str, Path], dest: Path) -> BusyboxImage:
    """Write the OCI layout for ``debs`` (Debian arch -> .deb) into the empty dir ``dest``."""
    dest = Path(dest)
    blobs = _Blobs(dest)
    descriptors = []
    manifests: Dict[str, str] = {}
    versions = set()
    for arch in sorted(debs, key=lambda a: list(PLATFORMS).index(a)):
        binary, version, deb_arch = read_busybox_deb(Path(debs[arch]))
        if deb_arch and deb_arch != arch:
            raise FixtureError(f"{debs[arch]} is a {deb_arch} package, expected {arch}")
        versions.add(version)
        raw = layer_tar(binary)
        layer = blobs.put(_gzip(raw), MT_LAYER)
        plat = _platform(arch)
        config = dict(plat)
        config.update({
            "created": EPOCH,
            "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
            "history": [{"created": EPOCH, "created_by": f"busybox-static {version} ({arch})"}],
        })
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": blobs.put(_json(config), MT_CONFIG),
            "layers": [layer],
        }
        desc = blobs.put(_json(manifest), MT_MANIFEST)
        desc["platform"] = plat
        descriptors.append(desc)
        manifests[f"{plat['os']}/{plat['architecture']}"] = str(desc["digest"])
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": descriptors}
    index_desc = blobs.put(_json(index), MT_INDEX)
    index_desc["annotations"] = {"org.opencontainers.image.ref.name": TAG}
    (dest / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    (dest / "index.json").write_bytes(
        _json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [index_desc]})
    )
    (dest / "image.json").write_bytes(_json({
        "index_digest": index_desc["digest"], "manifests": manifests,
        "version": " ".join(sorted(versions)),
    }))
    return BusyboxImage(dest, str(index_desc["digest"]), manifests, " ".join(sorted(versions)))


def load_layout(layout: Path) -> Optional[BusyboxImage]:
    """A layout written by :func:`build_layout`, or None if it is missing or any blob is corrupt."""
    layout = Path(layout)
    try:
        meta = json.loads((layout / "image.json").read_text())
        blob_dir = layout / "blobs" / "sha256"
        for blob in blob_dir.iterdir():
            if hashlib.sha256(blob.read_bytes()).hexdigest() != blob.name:
                return None
        index = json.loads((layout / "index.json").read_text())
        if index["manifests"][0]["digest"] != meta["index_digest"]:
            return None
        return BusyboxImage(layout, meta["index_digest"], dict(meta["manifests"]), meta["version"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def busybox_image(
    debs: Optional[Mapping[str, Path]] = None, cache: Optional[Path] = None
) -> BusyboxImage:
    """The busybox layout for ``debs`` (default: provision.sh's), built once and cached."""
    debs = dict(debs) if debs is not None else busybox_debs()
    key_src = f"v{GENERATOR_VERSION}\n" + "".join(
        f"{arch} {_sha256_file(debs[arch])}\n" for arch in sorted(debs)
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    root = Path(cache) if cache is not None else cache_dir() / "testimages"
    final = root / f"busybox-{key}"
    found = load_layout(final)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".busybox-{key}-", dir=root))
    except OSError:  # read-only cache: build into a temp dir removed at exit
        tmp = make_temp_dir("busybox") / "layout"
        tmp.mkdir()
        return build_layout(debs, tmp)
    try:
        build_layout(debs, work)
        os.chmod(work, 0o755)
        if final.exists():  # a corrupt old copy (load_layout refused it) or a concurrent writer
            found = load_layout(final)
            if found is not None:
                return found
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(work, final)
        except OSError:  # another session renamed its copy first
            found = load_layout(final)
            if found is None:
                raise
            return found
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    image = load_layout(final)
    if image is None:
        raise FixtureError(f"the busybox image just written to {final} does not verify")
    return image
