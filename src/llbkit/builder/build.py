"""Build one image spec into its packaged outputs: an OCI layout tar (or docker archive) and
its ``image.json`` record, through the content cache.

::

    workers = LazyPool([parse_worker("unix:///run/buildkit/buildkitd.sock")])  # or LazyPool(): local daemon
    bases = resolve_bases(spec, platforms, workers, cache)       # tag -> digest, config per platform
    lowered = plan(spec, base_configs=bases, context_digest=..., source_date_epoch=0)
    out = build_outputs(lowered, opts, context_digest=..., context_dir=..., workers=workers, cache=ImageCache())
    out.image_path, out.record_path, out.cached

A cache hit touches no daemon: the pool is made (and the local buildkitd started) only when
something must be solved. Otherwise :func:`llbkit.buildkit.build_multiplatform` solves every
platform in parallel on the worker the pool picks (native first, then the least loaded),
retries a platform on another worker when its worker is unreachable or dies (at most
``max_attempts`` tries, each reported through ``log``), and assembles the index in the declared
platform order. ``image.json`` records which worker built which platform.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from llbkit.builder.cache import ImageCache, build_key, code_fingerprint
from llbkit.builder.lazy_pool import LazyPool
from llbkit.buildkit.local_daemon import BUILDKIT_VERSION
from llbkit.image import Lowered

__all__ = ["BuildOptions", "BuildOutputs", "build_outputs", "cached_outputs", "outputs_key"]

IMAGE_FILE = "image.tar"
RECORD_FILE = "image.json"


@dataclass(frozen=True)
class BuildOptions:
    """What to export, and how to schedule. Only the export options enter the key: never the
    workers, secrets, cache import/export, retries or progress."""

    output_format: str = "oci"  # "oci": an OCI layout tar with one index; "docker": docker load
    ref_names: Tuple[str, ...] = ()  # index.json ref names of the OCI layout (the tags)
    docker_tags: Tuple[str, ...] = ()  # NAME:TAG names of a docker archive
    record_tags: Tuple[str, ...] = ()  # the full references listed in image.json
    annotations: Tuple[Tuple[str, str], ...] = ()
    source_date_epoch: int = 0
    cache_from: Tuple[Any, ...] = ()  # llbkit.buildkit.CacheOption values
    cache_to: Tuple[Any, ...] = ()
    allow_emulation: bool = True  # False: a platform with no native worker fails
    max_attempts: int = 3  # tries of a platform, each on another worker
    secrets: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # id -> SecretSource
    progress: Optional[Callable[[str, str], Any]] = field(default=None, compare=False)  # (platform, worker) -> handler
    log: Optional[Callable[[str], None]] = field(default=None, compare=False)  # scheduling events, one line each

    def export_key(self) -> Dict[str, Any]:
        return {
            "format": self.output_format, "ref_names": list(self.ref_names),
            "docker_tags": list(self.docker_tags), "record_tags": list(self.record_tags),
            "annotations": [list(kv) for kv in self.annotations], "source_date_epoch": self.source_date_epoch,
            "rewrite_timestamp": True,
        }


@dataclass(frozen=True)
class BuildOutputs:
    key: str
    image_path: Path
    record_path: Path
    cached: bool

    @property
    def record(self) -> Dict[str, Any]:
        return json.loads(self.record_path.read_bytes())


def outputs_key(lowered: Sequence[Lowered], opts: BuildOptions, context_digest: Optional[str]) -> str:
    """The content key of building ``lowered`` (one per platform, in index order) with ``opts``."""
    return build_key(
        [(lw.platform, lw.definition.to_bytes(), lw.oci_config_bytes()) for lw in lowered],
        context_digest, opts.export_key(), f"{code_fingerprint()};buildkit-{BUILDKIT_VERSION}",
    )


def cached_outputs(cache: ImageCache, key: str) -> Optional[BuildOutputs]:
    entry = cache.get(key)
    if entry is not None and IMAGE_FILE in entry and RECORD_FILE in entry:
        return BuildOutputs(key, entry[IMAGE_FILE], entry[RECORD_FILE], True)
    return None


def build_outputs(
    lowered: Sequence[Lowered],
    opts: BuildOptions,
    *,
    context_digest: Optional[str],
    context_dir: Callable[[], Optional[Path]],
    workers: LazyPool,
    cache: ImageCache,
) -> BuildOutputs:
    """The outputs of ``lowered`` (one per platform, in index order), from ``cache`` when its key
    is there, else solved on ``workers`` (``context_dir()`` is called only then) and stored."""
    from llbkit.buildkit.multiplatform import PlatformJob, build_multiplatform
    from llbkit.oci import open_layout, split, write_docker_archive
    from llbkit.oci.metadata import dumps

    if opts.output_format not in ("oci", "docker"):
        raise ValueError(f"unknown output format {opts.output_format!r}: use 'oci' or 'docker'")
    if opts.output_format == "docker" and len(lowered) != 1:
        raise ValueError("a docker archive holds one platform: build one platform, or use the oci format")
    key = outputs_key(lowered, opts, context_digest)
    hit = cached_outputs(cache, key)
    if hit is not None:
        return hit

    ctx = context_dir()
    local_dirs = {"context": str(ctx)} if ctx is not None else None
    jobs = [PlatformJob.from_lowered(lw, local_dirs=local_dirs, secrets=dict(opts.secrets) or None)
            for lw in lowered]
    with tempfile.TemporaryDirectory(prefix="llbkit-build-") as tmpdir:
        tmp = Path(tmpdir)
        index_tar = tmp / "index.oci.tar"
        result = build_multiplatform(
            workers.get(), jobs, index_tar, source_date_epoch=opts.source_date_epoch,
            allow_emulation=opts.allow_emulation, max_attempts=opts.max_attempts,
            ref_names=opts.ref_names if opts.output_format == "oci" else (),
            annotations=dict(opts.annotations) or None,
            export_attrs={f"annotation.{k}": v for k, v in opts.annotations},
            cache_imports=opts.cache_from, cache_exports=opts.cache_to,
            log=_without_temp_paths(opts.log, str(index_tar)), progress=opts.progress,
        )
        out = index_tar
        if opts.output_format == "docker":
            out = tmp / IMAGE_FILE
            with open_layout(index_tar) as layout:
                write_docker_archive(split(layout)[0], out, opts.docker_tags)
        builds = [{"platform": b.platform, "worker": b.worker, "emulated": b.emulated,
                   "attempts": [{"worker": a.worker, "error": a.error} for a in b.attempts]}
                  for b in result.builds]
        record = result.image_record(opts.record_tags, extra={
            "format": opts.output_format, "build_key": key, "builds": builds})
        entry = cache.put(key, {IMAGE_FILE: out, RECORD_FILE: dumps(record)})
    return BuildOutputs(key, entry[IMAGE_FILE], entry[RECORD_FILE], False)


def _without_temp_paths(log: Optional[Callable[[str], None]], temp: str) -> Optional[Callable[[str], None]]:
    """``log``, minus the line naming the temporary index file (the caller reports the outputs)."""
    if log is None:
        return None
    return lambda message: None if temp in message else log(message)
