"""Compare what llbkit builds with what BuildKit's Dockerfile frontend builds (the oracle).

``frontend_tree(daemon, context, dockerfile, work)`` builds a Dockerfile with
``buildctl build --frontend dockerfile.v0`` and returns its root filesystem (from the ``tar``
exporter, so owners survive) and its OCI image config; ``llbkit_tree(daemon, lowered, work)``
solves a lowered :class:`~llbkit.image.Lowered` with llbkit's own client (session services
included: build context, secrets, ssh agents) and returns the same two things.
:func:`tree_diff` and :func:`config_diff` list the differences, path by path and key by key.

A filesystem is ``{path: Entry}``: type, permission bits, owner, and content (the sha256 of a
file, a symlink's target). Modification times are left out: both builds get them from
SOURCE_DATE_EPOCH or the source, which the tests check separately when they matter.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from llbkit.testutil.buildkitd import Buildkitd, write_build_context

__all__ = ["Entry", "read_tar_tree", "read_file", "frontend_tree", "llbkit_tree", "tree_diff", "config_diff",
           "CONFIG_KEYS", "registry_config"]

CONFIG_KEYS = ("Env", "WorkingDir", "User", "Entrypoint", "Cmd", "ExposedPorts", "Volumes", "Labels",
               "StopSignal", "Shell", "OnBuild")


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink, hardlink, other
    mode: int
    uid: int
    gid: int
    content: str = ""  # sha256 of a file's bytes; a link's target


_MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
])


def registry_config(registry_url: str, repo: str, tag: str, platform: str) -> Dict[str, Any]:
    """The OCI config of ``repo:tag`` for ``platform`` from a (local, plain HTTP) registry's API,
    as lowering wants it in ``base_configs``."""
    import urllib.request

    def get(path: str) -> Dict[str, Any]:
        req = urllib.request.Request(f"{registry_url}/v2/{repo}/{path}", headers={"Accept": _MANIFEST_TYPES})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - a test registry on 127.0.0.1
            return json.loads(resp.read())

    manifest = get(f"manifests/{tag}")
    if "manifests" in manifest:
        os_name, arch = platform.split("/")[:2]
        (desc,) = [m for m in manifest["manifests"] if (m.get("platform") or {}).get("os") == os_name
                   and m["platform"].get("architecture") == arch]
        manifest = get(f"manifests/{desc['digest']}")
    return get(f"blobs/{manifest['config']['digest']}")


def read_tar_tree(path: Path) -> Dict[str, Entry]:
    out: Dict[str, Entry] = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            name = "/" + m.name.lstrip("./").rstrip("/")
            if name == "/":
                continue
            if m.isfile():
                f = tf.extractfile(m)
                data = f.read() if f else b""
                entry = Entry("file", m.mode & 0o7777, m.uid, m.gid, hashlib.sha256(data).hexdigest())
            elif m.isdir():
                entry = Entry("dir", m.mode & 0o7777, m.uid, m.gid)
            elif m.issym():
                entry = Entry("symlink", 0, m.uid, m.gid, m.linkname)
            elif m.islnk():
                entry = Entry("hardlink", m.mode & 0o7777, m.uid, m.gid, "/" + m.linkname.lstrip("./"))
            else:
                entry = Entry("other", m.mode & 0o7777, m.uid, m.gid)
            out[name] = entry
    return out


def read_file(path: Path, name: str) -> bytes:
    """The content of ``name`` (absolute) in the tar at ``path``."""
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if "/" + m.name.lstrip("./") == name:
                f = tf.extractfile(m)
                return f.read() if f else b""
    raise KeyError(name)


def _oci_config(oci_tar: Path) -> Dict[str, Any]:
    with tarfile.open(oci_tar) as tf:
        def blob(digest: str) -> Dict[str, Any]:
            f = tf.extractfile("blobs/" + digest.replace(":", "/"))
            assert f is not None
            return json.loads(f.read())

        f = tf.extractfile("index.json")
        assert f is not None
        desc = json.loads(f.read())["manifests"][0]
        doc = blob(desc["digest"])
        if "manifests" in doc:
            doc = blob(doc["manifests"][0]["digest"])
        return blob(doc["config"]["digest"])


def frontend_tree(
    daemon: Buildkitd, work: Path, dockerfile: str, files: Mapping[str, str] = {}, *,
    context: Optional[Path] = None, extra_args: Sequence[str] = (), env: Optional[Mapping[str, str]] = None,
    platform: str = "linux/amd64",
) -> Tuple[Dict[str, Entry], Dict[str, Any], Path]:
    """Build ``dockerfile`` (with ``files``, or over ``context``) with the Dockerfile frontend:
    its root filesystem, its OCI config and the path of the rootfs tar."""
    work.mkdir(parents=True, exist_ok=True)
    df_dir = write_build_context(work / "dockerfile", dockerfile, files)
    ctx = context or df_dir
    tar_path, oci_path = work / "frontend.tar", work / "frontend.oci.tar"
    for out in (f"type=tar,dest={tar_path}", f"type=oci,dest={oci_path}"):
        daemon.build_dockerfile(ctx, dockerfile_dir=df_dir, outputs=[out], platform=platform,
                                opts={"build-arg:SOURCE_DATE_EPOCH": "0"}, extra_args=extra_args, env=env)
    return read_tar_tree(tar_path), _oci_config(oci_path), tar_path


def llbkit_tree(
    daemon: Buildkitd, lowered: Any, work: Path, *, context: Optional[Path] = None,
    secrets: Optional[Mapping[str, Any]] = None, ssh: Optional[Mapping[str, Any]] = None,
    entitlements: Sequence[str] = (),
) -> Tuple[Dict[str, Entry], Dict[str, Any], Path]:
    """Solve ``lowered`` with llbkit's client: its root filesystem, full OCI config and tar path."""
    from llbkit.buildkit import Client, Export

    work.mkdir(parents=True, exist_ok=True)
    tar_path = work / "llbkit.tar"
    with Client(daemon.addr) as client:
        client.solve(lowered.definition, exports=[Export.tar(str(tar_path))],
                     local_dirs={"context": str(context)} if context else None, secrets=secrets, ssh=ssh,
                     entitlements=list(entitlements))
    return read_tar_tree(tar_path), lowered.oci_config(), tar_path


def tree_diff(ours: Mapping[str, Entry], theirs: Mapping[str, Entry], *, ignore: Iterable[str] = ()) -> List[str]:
    """One line per path that differs (present in one only, or with other type/mode/owner/content)."""
    skip = tuple(ignore)
    out = []
    for path in sorted(set(ours) | set(theirs)):
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in skip):
            continue
        a, b = ours.get(path), theirs.get(path)
        if a != b:
            out.append(f"{path}: llbkit {a} != dockerfile {b}")
    return out


def config_diff(ours: Mapping[str, Any], theirs: Mapping[str, Any], keys: Iterable[str] = CONFIG_KEYS) -> List[str]:
    a, b = ours.get("config") or {}, theirs.get("config") or {}
    return [f"config.{k}: llbkit {a.get(k)!r} != dockerfile {b.get(k)!r}"
            for k in keys if (a.get(k) or None) != (b.get(k) or None)]
