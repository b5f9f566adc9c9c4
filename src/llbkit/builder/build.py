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

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from llbkit.builder.job import SolveJob
from llbkit.builder.lazy_pool import LazyPool

__all__ = ["BuildOptions", "build_job"]


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
    opts: BuildOptions = BuildOptions(),
) -> Dict[str, Any]:
    """Solve ``job`` on ``workers`` and write ``image_out`` and ``record_out``; returns the record."""
    from llbkit.buildkit.multiplatform import PlatformJob, build_multiplatform
    from llbkit.llb import Definition
    from llbkit.oci import open_layout, split, write_docker_archive
    from llbkit.atomic import write_bytes_atomic
    from llbkit.oci.metadata import dumps

    export = job.export
    if export.output_format not in ("oci", "docker"):
        raise ValueError(f"unknown output format {export.output_format!r}: use 'oci' or 'docker'")
    if export.output_format == "docker" and len(job.platforms) != 1:
        raise ValueError("a docker archive holds one platform: build one platform, or use the oci format")
    local_dirs = {"context": str(context_dir)} if context_dir is not None else None
    jobs = [PlatformJob(p.platform, Definition.from_bytes(p.definition), p.config,
                        local_dirs=local_dirs, secrets=dict(opts.secrets) or None, ssh=dict(opts.ssh) or None,
                        entitlements=tuple(opts.entitlements))
            for p in job.platforms]
    image_out, record_out = Path(image_out), Path(record_out)
    image_out.parent.mkdir(parents=True, exist_ok=True)
    record_out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".llbkit-build-", dir=image_out.parent) as tmpdir:
        tmp = Path(tmpdir)
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
