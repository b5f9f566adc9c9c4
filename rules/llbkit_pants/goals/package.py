"""`pants package` for `container_image`: lower, solve on buildkitd, write the OCI layout tar (or
docker archive) and `<name>.image.json` into `dist/<path>/`.

Caching is by content: the outputs are keyed by the LLB definitions (which hold the build
context's digest and every registry base pinned by digest), the export options and llbkit's own
code (see `llbkit.builder.cache`), and kept in `$LLBKIT_CACHE/images/`. Worker addresses and
credentials are not in the key. A cached image needs no buildkitd: the local one is started only
when something must be solved (or a registry base given by tag must be resolved).
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
from typing import Any, Dict, Tuple

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from llbkit.buildkit.options import parse_cache_export, parse_cache_import
from llbkit.builder import BuildOptions, ImageCache, build_outputs, cached_outputs, outputs_key, resolve_bases
from llbkit.builder.workers import Workers
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


class _Connector:
    """`connect(platform) -> (client, worker)` for the library: configured workers, or the local
    daemon started on first use. Clients are opened lazily, once per address."""

    def __init__(self, workers: Workers, auto_start: bool) -> None:
        self.workers = workers
        self.auto_start = auto_start
        self._clients: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, platform: str) -> Tuple[Any, str]:
        from llbkit.buildkit.client import Client
        from llbkit.buildkit.local_daemon import LocalDaemon

        with self._lock:
            tls = None
            if self.workers.workers:
                worker = self.workers.for_platform(platform)
                address, tls = worker.address, self.workers.tls_for(worker)
            elif self.auto_start:
                address = LocalDaemon().ensure()
            else:
                raise ContainerImageBuildError(
                    "no buildkitd to build with: set [buildkit].workers (e.g. "
                    "workers = [\"unix:///run/buildkit/buildkitd.sock\"]) or [buildkit].auto_start = true"
                )
            if address not in self._clients:
                self._clients[address] = Client(address, tls=tls)
            return self._clients[address], address

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def _write_context(contents: DigestContents, root: Path) -> Path:
    for fc in contents:
        path = root / fc.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fc.content)
        if fc.is_executable:
            path.chmod(0o755)
    return root


@rule(desc="Build a container image with BuildKit", level=LogLevel.DEBUG)
async def package_container_image(
    field_set: ContainerImagePackageFieldSet, buildkit: BuildKitSubsystem
) -> BuiltPackage:
    image = await Get(ContainerImageSpec, ContainerImageSpecRequest(field_set.address))
    spec = image.spec
    address = field_set.address
    image_path, record_path = field_set.output_paths()
    try:
        workers = buildkit.worker_config()
        cache_from = tuple(parse_cache_import(c) for c in buildkit.cache_from)
        cache_to = tuple(parse_cache_export(c) for c in buildkit.cache_to)
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
    progress = None
    if buildkit.progress == "plain":
        from llbkit.buildkit.progress import make_printer

        progress = make_printer("plain", sys.stderr)
    opts = BuildOptions(
        output_format=spec.output_format, ref_names=spec.tags if spec.output_format == "oci" else (),
        docker_tags=references if spec.output_format == "docker" else (), record_tags=references,
        annotations=spec.annotations, source_date_epoch=buildkit.source_date_epoch,
        cache_from=cache_from, cache_to=cache_to, progress=progress,
    )
    cache = ImageCache()
    connect = _Connector(workers, buildkit.auto_start)
    started = time.monotonic()
    try:
        bases = resolve_bases(spec, platforms, connect, cache)
        lowered = plan(spec, base_configs=bases, context_digest=image.context_digest,
                       source_date_epoch=buildkit.source_date_epoch, default_platforms=platforms)
        key = outputs_key(lowered, opts, image.context_digest)
        out = cached_outputs(cache, key)
        if out is None:
            contents = await Get(DigestContents, Digest, image.context)
            with tempfile.TemporaryDirectory(prefix="llbkit-context-") as tmp:
                ctx = _write_context(contents, Path(tmp)) if image.context_digest else None
                out = build_outputs(lowered, opts, context_digest=image.context_digest,
                                    context_dir=lambda: ctx, connect=connect, cache=cache)
    except ImageSpecError as e:
        raise ContainerImageBuildError(f"failed to build {address}: {e}") from None
    except LlbkitError as e:
        raise ContainerImageBuildError(f"failed to build {address}: {e}") from None
    finally:
        connect.close()
    record = out.record
    how = "from cache" if out.cached else f"solved in {time.monotonic() - started:.1f}s"
    logger.info(f"{address}: {', '.join(platforms)} {how} (index {record['index']['digest']})")
    digest = await Get(Digest, CreateDigest([
        FileContent(image_path, out.image_path.read_bytes()),
        FileContent(record_path, out.record_path.read_bytes()),
    ]))
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
        UnionRule(PackageFieldSet, ContainerImagePackageFieldSet),
    ]
