"""`pants package` for `container_image`: lower, solve on the buildkitd worker pool, write the
OCI layout tar (or docker archive) and `<name>.image.json` into `dist/<path>/`.

Caching is by content: the outputs are keyed by the LLB definitions (which hold the build
context's digest and every registry base pinned by digest), the export options and llbkit's own
code (see `llbkit.builder.cache`), and kept in `$LLBKIT_CACHE/images/`. Worker addresses,
credentials and secrets are not in the key. Registry bases given by tag are resolved from the
registry directly, so a cached image needs no buildkitd at all: the pool is contacted (and the
local buildkitd started) only when something must be solved.

Every platform of an image is solved in parallel on the worker the pool picks (native first,
then the least busy: one pool is shared by all the images of a run, so they spread over the
workers), and retried on another worker when its worker is unreachable or dies; each scheduling
event is logged, and `<name>.image.json` records which worker built which platform.

Large files never pass through Python memory: the build context is staged on disk by a `cp`
process copying out of its sandbox, and the image file reaches the Pants store by a `cp` process
whose output Pants stores from disk.
"""

from __future__ import annotations

import logging
import posixpath
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.core.util_rules import system_binaries
from pants.core.util_rules.system_binaries import BashBinary, CpBinary
from pants.engine.fs import EMPTY_DIGEST, CreateDigest, Digest, Directory, FileContent, MergeDigests
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from llbkit.builder import (
    BuildOptions,
    ImageCache,
    LazyPool,
    build_outputs,
    cached_outputs,
    outputs_key,
    resolve_bases,
    secrets_for,
)
from llbkit.buildkit.errors import NoWorkerError
from llbkit.buildkit.options import parse_cache_export, parse_cache_import
from llbkit.buildkit.pool import WorkerConfig
from llbkit.errors import LlbkitError
from llbkit.image import ImageSpecError, normalize_platforms, plan
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.target_types import (
    ContainerImageBaseField,
    ContainerImageOutputFormatField,
    ContainerImageRegistriesField,
    ContainerImageRepositoryField,
    ContainerImageTagsField,
)
from llbkit_pants.util_rules.image_spec import ContainerImageSpec, ContainerImageSpecRequest

logger = logging.getLogger(__name__)


class ContainerImageBuildError(Exception):
    """A container image could not be built (the message says which, where and why)."""


@dataclass(frozen=True)
class ContainerImagePackageFieldSet(PackageFieldSet):
    required_fields = (ContainerImageBaseField,)

    base: ContainerImageBaseField
    output_format: ContainerImageOutputFormatField
    repository: ContainerImageRepositoryField
    tags: ContainerImageTagsField
    registries: ContainerImageRegistriesField

    def output_paths(self) -> Tuple[str, str]:
        """`<path>/<name>.oci.tar` (or `.docker.tar`) and `<path>/<name>.image.json`, under dist/."""
        ext = "docker.tar" if self.output_format.value == "docker" else "oci.tar"
        base = posixpath.join(self.address.spec_path, self.address.target_name)
        if self.address.generated_name:
            base += "-" + self.address.generated_name.replace("/", "_")
        return f"{base}.{ext}", f"{base}.image.json"


def image_references(repository: str, tags: Tuple[str, ...], registries: Tuple[str, ...]) -> Tuple[str, ...]:
    """`REGISTRY/REPOSITORY:TAG` for each registry and tag (`REPOSITORY:TAG` without registries)."""
    prefixes = [f"{r}/{repository}" for r in registries] or [repository]
    return tuple(f"{p}:{t}" for p in prefixes for t in tags)


# One pool per worker configuration, shared by every image of a run, so that the pool's
# load-aware choice spreads the images over the workers and each worker is checked once.
_pools: Dict[Tuple[Tuple[WorkerConfig, ...], bool], LazyPool] = {}
_pools_lock = threading.Lock()


def shared_pool(buildkit: BuildKitSubsystem) -> LazyPool:
    key = (buildkit.worker_configs(), bool(buildkit.auto_start))
    with _pools_lock:
        if key not in _pools:
            _pools[key] = LazyPool(key[0], auto_start=key[1])
        return _pools[key]


def explain_no_worker(e: NoWorkerError, allow_emulation: bool) -> str:
    """The pool's error, with the `[buildkit]` settings that fix it."""
    reasons = [r for _, r in e.workers]
    hints = []
    if any(r.startswith("unreachable") for r in reasons):
        hints.append("check the addresses in [buildkit].workers and that those buildkitd daemons are running "
                     "(`./pants buildkit-workers` shows what each one answers)")
    if not allow_emulation and any("emulation is disallowed" in r for r in reasons):
        hints.append(f"add a worker native to {e.platform} to [buildkit].workers, or set "
                     "[buildkit].allow_emulation = true")
    if any(r.startswith("cannot build") for r in reasons):
        hints.append(f"add a worker that can build {e.platform} to [buildkit].workers "
                     "(emulation needs qemu binfmt handlers on the worker's host)")
    return str(e) + ("\nTo fix: " + "; ".join(hints) + "." if hints else "")


@rule(desc="Build a container image with BuildKit", level=LogLevel.DEBUG)
async def package_container_image(
    field_set: ContainerImagePackageFieldSet, buildkit: BuildKitSubsystem, cp: CpBinary, bash: BashBinary
) -> BuiltPackage:
    image = await Get(ContainerImageSpec, ContainerImageSpecRequest(field_set.address))
    spec = image.spec
    address = field_set.address
    image_path, record_path = field_set.output_paths()
    try:
        workers = shared_pool(buildkit)
        cache_from = tuple(parse_cache_import(c) for c in buildkit.cache_from)
        cache_to = tuple(parse_cache_export(c) for c in buildkit.cache_to)
        configured_secrets = buildkit.secret_sources()
        if buildkit.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {buildkit.max_attempts}")
    except (ValueError, LlbkitError) as e:
        raise ContainerImageBuildError(f"invalid [buildkit] option: {e}") from None
    try:
        platforms = normalize_platforms(spec.platforms or buildkit.platforms, spec_name=spec.name)
    except ImageSpecError as e:
        raise ContainerImageBuildError(f"invalid [buildkit].platforms: {e}") from None
    if spec.output_format == "docker" and len(platforms) != 1:
        raise ContainerImageBuildError(
            f"Invalid field `output_format` in container_image target {address}: a docker archive holds "
            f"one platform, but it is built for {list(platforms)}; build one platform, or use "
            f'output_format="oci" (one index over all platforms).'
        )
    references = image_references(spec.repository or "", spec.tags, spec.registries)
    printer = None
    if buildkit.progress == "plain":
        from llbkit.buildkit.progress import make_printer

        printer = make_printer("plain", sys.stderr)
    cache = ImageCache()
    started = time.monotonic()
    try:
        secrets = secrets_for(spec, configured_secrets, target=str(address), option="[buildkit].secrets")
        opts = BuildOptions(
            output_format=spec.output_format, ref_names=spec.tags if spec.output_format == "oci" else (),
            docker_tags=references if spec.output_format == "docker" else (), record_tags=references,
            annotations=spec.annotations, source_date_epoch=buildkit.source_date_epoch,
            cache_from=cache_from, cache_to=cache_to, allow_emulation=buildkit.allow_emulation,
            max_attempts=buildkit.max_attempts, secrets=secrets,
            progress=(lambda platform, worker: printer) if printer is not None else None,
            log=lambda message: logger.info(f"{address}: {message}"),
        )
        bases = resolve_bases(spec, platforms, workers, cache, log=lambda m: logger.info(f"{address}: {m}"))
        lowered = plan(spec, base_configs=bases, context_digest=image.context_digest,
                       source_date_epoch=buildkit.source_date_epoch, default_platforms=platforms)
        key = outputs_key(lowered, opts, image.context_digest)
        out = cached_outputs(cache, key)
        if out is None:
            with tempfile.TemporaryDirectory(prefix="llbkit-context-") as tmp:
                ctx = None
                if image.context_digest:
                    # The context reaches disk the way the image leaves it: copied by a process
                    # out of its sandbox (streamed by the engine), never through Python memory.
                    # Not cached across runs: the destination is this run's temporary directory.
                    await Get(ProcessResult, Process(
                        argv=(bash.path, "-c", 'exec "$0" -R -p -- . "$1"', cp.path, tmp),
                        input_digest=image.context, description=f"Stage the build context of {address}",
                        level=LogLevel.DEBUG, cache_scope=ProcessCacheScope.PER_SESSION,
                    ))
                    ctx = Path(tmp)
                out = build_outputs(lowered, opts, context_digest=image.context_digest,
                                    context_dir=lambda: ctx, workers=workers, cache=cache)
    except NoWorkerError as e:
        raise ContainerImageBuildError(
            f"failed to build {address}: {explain_no_worker(e, buildkit.allow_emulation)}") from None
    except (ImageSpecError, LlbkitError) as e:
        raise ContainerImageBuildError(f"failed to build {address}: {e}") from None
    record = out.record
    how = "from cache" if out.cached else f"solved in {time.monotonic() - started:.1f}s"
    logger.info(f"{address}: {', '.join(platforms)} {how} (index {record['index']['digest']})")

    # The image enters the store from disk (streamed by the engine), never through Python memory.
    # PER_SESSION: the source is a path of this machine's cache, which must not reach a shared cache.
    parent = posixpath.dirname(image_path)
    out_dir = await Get(Digest, CreateDigest([Directory(parent)])) if parent else EMPTY_DIGEST
    copied = await Get(ProcessResult, Process(
        argv=(cp.path, "--", str(out.image_path), image_path), input_digest=out_dir,
        output_files=(image_path,), description=f"Store the image of {address}",
        level=LogLevel.DEBUG, cache_scope=ProcessCacheScope.PER_SESSION,
    ))
    record_digest = await Get(Digest, CreateDigest([FileContent(record_path, out.record_path.read_bytes())]))
    digest = await Get(Digest, MergeDigests([copied.output_digest, record_digest]))
    workers_used = sorted({p["worker"] for p in record["platforms"] if p.get("worker")})
    return BuiltPackage(digest, (
        BuiltPackageArtifact(image_path, (
            f"index digest: {record['index']['digest']}",
            *(f"{p['platform']}: manifest {p['manifest']['digest']}" for p in record["platforms"]),
            f"{'from cache (built on ' + ', '.join(workers_used) + ')' if out.cached else 'built on ' + ', '.join(workers_used)}",
        )),
        BuiltPackageArtifact(record_path),
    ))


def rules():
    return [
        *collect_rules(),
        *system_binaries.rules(),
        UnionRule(PackageFieldSet, ContainerImagePackageFieldSet),
    ]
