"""Build one solve job into its outputs: an OCI layout tar (or docker archive) and its
``image.json`` record.

::

    job = SolveJob.of("//app:img", plan(spec, base_configs=bases, ...), ExportOptions())
    with LazyPool([parse_worker("unix:///run/buildkit/buildkitd.sock")]) as workers:
        record = build_job(job, workers, "out/image.tar", "out/image.json", context_dir="ctx/")

:func:`llbkit.buildkit.build_multiplatform` solves every platform in parallel on the worker the
pool picks (native first, then the least loaded), retries a platform on another worker when its
worker is unreachable or dies (at most ``max_attempts`` tries, each reported through ``log``),
and assembles the index in the declared platform order. ``image.json`` records which worker
built which platform. Both outputs are written atomically: an interrupted build leaves neither.

Caching is not done here: a build's outputs are a function of the job, the build context and
this code, so the caller caches them by those (the Pants backend runs this as a Pants process).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from llbkit.builder.job import SolveJob
from llbkit.builder.lazy_pool import LazyPool
from llbkit.errors import LlbkitError

__all__ = ["BuildOptions", "DiskFullError", "MissingInputError", "build_job"]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = re.compile(r"no space left on device|disk quota exceeded", re.I)
MiB = 1 << 20


class DiskFullError(LlbkitError):
    """The file system holding a build's outputs filled up. ``path`` is the directory written
    to, ``written`` the bytes of this build's outputs there when it filled, ``free`` the bytes
    free there afterwards (its partial outputs deleted)."""

    def __init__(self, target: str, path: str, written: int, free: Optional[int]) -> None:
        free_text = f"{free / MiB:.1f} MiB are free there now" if free is not None else "its free space is unknown"
        # What was written is known when this code wrote it; the session's writer removes a
        # partial export itself before the error arrives here.
        needed = (f"the image needs more than the {written / MiB:.1f} MiB written when it filled"
                  if written else "the image needs more space than there was")
        super().__init__(
            f"{target}: no space left on the device holding {path} while writing the image: {needed}, "
            f"and {free_text}. Free some space there (or point the outputs elsewhere) and build again; "
            "nothing was written.")
        self.target = target
        self.path = path
        self.written = written
        self.free = free


def _is_disk_full(e: BaseException) -> bool:
    """ENOSPC/EDQUOT raised here, or reported by the session's writer inside another error."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            return True
        if _DISK_FULL_TEXT.search(str(e)):
            return True
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return False


def _size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _free(path: Path) -> Optional[int]:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


@dataclass(frozen=True)
class BuildOptions:
    """How to schedule a build; none of it changes the result."""

    cache_from: Tuple[Any, ...] = ()  # llbkit.buildkit.CacheOption values
    cache_to: Tuple[Any, ...] = ()
    allow_emulation: bool = True  # False: a platform with no native worker fails
    max_attempts: int = 3  # tries of a platform, each on another worker
    secrets: Mapping[str, Any] = field(default_factory=dict, repr=False)  # id -> SecretSource
    ssh: Mapping[str, str] = field(default_factory=dict)  # agent id -> socket path
    entitlements: Tuple[str, ...] = ()  # asked of the daemon (network.host, security.insecure)
    progress: Optional[Callable[[str, str], Any]] = field(default=None, compare=False)  # (platform, worker) -> handler
    log: Optional[Callable[[str], None]] = field(default=None, compare=False)  # scheduling events, one line each


def build_job(
    job: SolveJob,
    workers: LazyPool,
    image_out: "str | os.PathLike[str]",
    record_out: "str | os.PathLike[str]",
    *,
    context_dir: "Optional[str | os.PathLike[str]]" = None,
    local_dirs: "Optional[Mapping[str, str | os.PathLike[str]]]" = None,
    oci_layouts: "Optional[Mapping[str, str | os.PathLike[str]]]" = None,
    opts: BuildOptions = BuildOptions(),
) -> Dict[str, Any]:
    """Solve ``job`` on ``workers`` and write ``image_out`` and ``record_out``; returns the record.
    ``local_dirs`` gives the directory of each local dir the job reads (``context_dir`` is
    ``local_dirs["context"]``), ``oci_layouts`` the OCI layout tar of each layout it reads.
    A full disk is a :class:`DiskFullError`; whatever way it ends, the build's temporary files
    are gone and the outputs are either both complete or untouched."""
    from llbkit.buildkit.multiplatform import PlatformJob
    from llbkit.llb import Definition

    export = job.export
    if export.output_format not in ("oci", "docker"):
        raise ValueError(f"unknown output format {export.output_format!r}: use 'oci' or 'docker'")
    if export.output_format == "docker" and len(job.platforms) != 1:
        raise ValueError("a docker archive holds one platform: build one platform, or use the oci format")
    dirs = {str(k): str(v) for k, v in (local_dirs or {}).items()}
    if context_dir is not None:
        dirs["context"] = str(context_dir)
    _check_given(job.name, "local dir", job.local_dirs, dirs, "--local NAME=DIR")
    layouts = {str(k): str(v) for k, v in (oci_layouts or {}).items()}
    _check_given(job.name, "OCI layout", job.oci_layouts, layouts, "--oci-layout NAME=TAR")
    image_out, record_out = Path(image_out), Path(record_out)
    image_out.parent.mkdir(parents=True, exist_ok=True)
    record_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".llbkit-build-", dir=image_out.parent))
    try:
        stores = _layout_stores(layouts, tmp) or None
        jobs = [PlatformJob(p.platform, Definition.from_bytes(p.definition) if p.frontend is None else None,
                            p.config or None, local_dirs=dirs or None, secrets=dict(opts.secrets) or None,
                            base_config=p.base_config or None, ssh=dict(opts.ssh) or None,
                            entitlements=tuple(opts.entitlements), frontend=p.frontend, content_stores=stores)
                for p in job.platforms]
        return _build_into(job, workers, jobs, tmp, image_out, record_out, opts)
    except BaseException as e:
        if not _is_disk_full(e):
            raise
        written = _size(tmp)
        shutil.rmtree(tmp, ignore_errors=True)  # first: what is free counts without it
        raise DiskFullError(job.name, str(image_out.parent.resolve()), written, _free(image_out.parent)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # every exit path, interrupts included


class MissingInputError(LlbkitError):
    """A job reads a local dir or an OCI layout the build was not given."""

    def __init__(self, target: str, kind: str, name: str, flag: str) -> None:
        super().__init__(f"{target}: the job reads {kind} {name!r}, which was not given: pass it ({flag})")
        self.target = target
        self.kind = kind
        self.name = name


def _check_given(target: str, kind: str, needed: Tuple[str, ...], given: Mapping[str, str], flag: str) -> None:
    for name in needed:
        if name not in given:
            raise MissingInputError(target, kind, name, flag)


def _layout_stores(layouts: Mapping[str, str], tmp: Path) -> Dict[str, Any]:
    """Each OCI layout tar, unpacked under ``tmp`` and served read-only as a session content
    store under its name (the store id its ``oci-layout://`` sources name)."""
    from llbkit.builder.oci_layouts import layout_store, store_id

    return {store_id(name): layout_store(tar, tmp / f"layout-{i}")
            for i, (name, tar) in enumerate(sorted(layouts.items()))}


def _build_into(job: SolveJob, workers: LazyPool, jobs: Any, tmp: Path, image_out: Path, record_out: Path,
                opts: BuildOptions) -> Dict[str, Any]:
    from llbkit.buildkit.multiplatform import build_multiplatform
    from llbkit.oci import open_layout, split, write_docker_archive
    from llbkit.atomic import write_bytes_atomic
    from llbkit.oci.metadata import dumps

    export = job.export
    index_tar = tmp / "index.oci.tar"
    result = build_multiplatform(
        workers.get(), jobs, index_tar, source_date_epoch=export.source_date_epoch,
        allow_emulation=opts.allow_emulation, max_attempts=opts.max_attempts,
        ref_names=export.ref_names if export.output_format == "oci" else (),
        annotations=dict(export.annotations) or None,
        export_attrs={f"annotation.{k}": v for k, v in export.annotations},
        cache_imports=opts.cache_from, cache_exports=opts.cache_to,
        log=_without_temp_paths(opts.log, str(index_tar)), progress=opts.progress,
    )
    out = index_tar
    if export.output_format == "docker":
        out = tmp / "image.docker.tar"
        with open_layout(index_tar) as layout:
            write_docker_archive(split(layout)[0], out, export.docker_tags)
    builds = [{"platform": b.platform, "worker": b.worker, "emulated": b.emulated,
               "attempts": [{"worker": a.worker, "error": a.error} for a in b.attempts]}
              for b in result.builds]
    record = result.image_record(export.record_tags, extra={"format": export.output_format, "builds": builds})
    # Both outputs are complete before either is moved into place (each move is atomic), so
    # an interrupted build leaves old outputs or new ones, never a half-written file.
    record_tmp = tmp / "image.json"
    write_bytes_atomic(record_tmp, dumps(record))
    os.replace(out, image_out)  # same directory: atomic
    if record_out.parent.resolve() == image_out.parent.resolve():
        os.replace(record_tmp, record_out)
    else:  # another directory, maybe another file system
        write_bytes_atomic(record_out, record_tmp.read_bytes())
    return record


def _without_temp_paths(log: Optional[Callable[[str], None]], temp: str) -> Optional[Callable[[str], None]]:
    """``log``, minus the line naming the temporary index file (the caller reports the outputs)."""
    if log is None:
        return None
    return lambda message: None if temp in message else log(message)
