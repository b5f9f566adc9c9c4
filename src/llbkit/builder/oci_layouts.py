"""Images built elsewhere as bases: an OCI layout tar served to buildkitd from the client.

A ``container_image`` whose base is an image another build produced (a Dockerfile image: its
LLB exists only inside the frontend that made it) starts from BuildKit's ``oci-layout://`` source
rather than from a registry: the client serves the built OCI layout tar through the session's
content service, as content store ``oci:NAME``, and the child's LLB names the image by digest::

    spec = ImageSpec(name="//app:img", base=image.LayoutBase("app-base"), steps=(...))
    bases = layout_base_configs("app-base", "base.oci.tar", spec.platforms)   # digest + config per platform
    job = SolveJob.of(spec.name, plan(spec, base_configs=bases), export, oci_layouts=["app-base"])
    build_job(job, workers, ..., oci_layouts={"app-base": "base.oci.tar"})

The source is what Go's ``llb.OCILayout("NAME@DIGEST", llb.OCIStore("", "NAME"))`` marshals:
identifier ``oci-layout://NAME@DIGEST`` and attr ``oci.store`` = NAME, no session id (the daemon
uses the build's own session, and a session id would change the op's digest on every run). The
child's export gets the base's config as ``containerimage.base.config``, as registry bases do,
so the base's layers are kept exactly as they are in the tar.
"""

from __future__ import annotations

import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

from llbkit.errors import LlbkitError

__all__ = ["LayoutBase", "LayoutBaseError", "STORE_PREFIX", "layout_base", "layout_base_configs", "layout_store",
           "oci_layout_state", "store_id"]

STORE_PREFIX = "oci:"  # the session content store id BuildKit asks for: "oci:" + the oci.store attr
_BLOB = re.compile(r"blobs/sha256/[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


class LayoutBaseError(LlbkitError):
    """An OCI layout tar given as a base is missing, damaged or lacks the platform."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"the OCI layout {path} cannot be used as a base: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class LayoutBase:
    """One platform of a layout: its manifest digest and config bytes (the base config)."""

    platform: str
    digest: str
    config: bytes = field(repr=False)


def layout_base(tar: "str | os.PathLike[str]", platform: str) -> LayoutBase:
    """The image for ``platform`` in the OCI layout ``tar`` (an index of platforms, or one manifest)."""
    from llbkit.errors import OCIError
    from llbkit.oci import open_layout, split
    from llbkit.platforms import format_platform, parse_platform

    want = format_platform(parse_platform(platform))
    try:
        with open_layout(tar) as layout:
            images = [im for im in split(layout) if format_platform(parse_platform(str(im.platform))) == want]
            if not images:
                raise LayoutBaseError(str(tar), f"it has no {want} image; build the base for {want} too")
            image = images[0]
            from llbkit.oci.layout import read_verified

            return LayoutBase(want, image.manifest.digest, read_verified(layout, image.config))
    except OCIError as e:
        raise LayoutBaseError(str(tar), str(e)) from None


def layout_base_configs(name: str, tar: "str | os.PathLike[str]", platforms: Sequence[str]) -> Dict[Tuple[str, str], Any]:
    """What lowering needs for an image whose base is ``LayoutBase(name)`` read from ``tar``:
    ``{(base.key, platform): ResolvedBase(config, manifest digest)}`` for each platform."""
    from llbkit.image import LayoutBase, ResolvedBase

    key = LayoutBase(name).key
    out: Dict[Tuple[str, str], Any] = {}
    for p in platforms:
        b = layout_base(tar, p)
        out[(key, p)] = ResolvedBase(b.config, b.digest)
    return out


def oci_layout_state(name: str, base: LayoutBase, constraints: Any = None) -> Any:
    """The LLB state of ``base`` read from layout store ``name``, for ``base.platform``."""
    from llbkit.llb.source import oci_layout

    if not _NAME.fullmatch(name):
        raise LayoutBaseError(name, "its store name must be lowercase letters, digits and . _ - "
                                    "(a valid image name component)")
    return oci_layout(f"{name}@{base.digest}", store_id=name, platform=base.platform, constraints=constraints)


def layout_store(tar: "str | os.PathLike[str]", directory: Path) -> Any:
    """An :class:`~llbkit.oci.store.OCIStore` over ``tar`` unpacked into ``directory`` (only the
    layout's own files: ``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``, never links
    or paths outside), keyed for the session as ``oci:NAME`` by the caller."""
    from llbkit.oci.store import OCIStore

    path = str(tar)
    directory.mkdir(parents=True, exist_ok=False)
    (directory / "blobs" / "sha256").mkdir(parents=True)
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                name = m.name[2:] if m.name.startswith("./") else m.name
                if not m.isfile() or not (name in ("oci-layout", "index.json") or _BLOB.fullmatch(name)):
                    continue
                src = tf.extractfile(m)
                assert src is not None
                with src, open(directory / name, "wb") as out:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
    except (OSError, tarfile.TarError) as e:
        raise LayoutBaseError(path, f"it is not a readable tar ({e})") from None
    if not (directory / "index.json").is_file():
        raise LayoutBaseError(path, "it has no index.json: is it an OCI image layout tar?")
    return OCIStore(str(directory))


def store_id(name: str) -> str:
    return STORE_PREFIX + name
