"""`pants package` for `container_image`: the image file (an OCI layout tar, or a docker archive)
and `<name>.image.json` in `dist/`, built by a Pants process cached like any other.

The solve of an image is one process (`llbkit.builder.process solve`) whose inputs are content
only: the solve job (the LLB definitions, which pin every registry base by digest and name the
build context by its digest; the image configs; the export options), the build context, and
llbkit's own code (see `util_rules.solver`). So Pants' local cache and its remote cache (REAPI)
hold built images and share them across machines, with Pants' own eviction; a cached image
starts no buildkitd. Workers, TLS files, credentials and secret values reach the process out of
band (see `util_rules.machine`), so they never enter a key.

The process solves every platform in parallel on the worker the pool picks (native first, then
the least busy across every build process of this machine) and retries a platform on another
worker when its worker is unreachable or dies; each scheduling event is logged, and
`image.json` records which worker built which platform. Processes run as many at once as
Pants' process concurrency allows; Ctrl-C kills them, which cancels their solves on the
daemons, and Pants keeps nothing of a process that did not finish.

The outputs are read back from Pants' store and checked against the digests Pants recorded for
them before they reach `dist/` (Pants' local store does not check what it reads; see
`util_rules.stored_image`): a damaged image is reported and built again under another cache key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Tuple

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.fs import (
    EMPTY_DIGEST,
    AddPrefix,
    CreateDigest,
    Digest,
    Directory,
    FileContent,
    FileEntry,
    MergeDigests,
)
from pants.engine.process import (
    FallibleProcessResult,
    Process,
    ProcessCacheScope,
    ProcessResult,
    ProcessResultMetadata,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import InvalidFieldException
from pants.engine.unions import UnionRule
from pants.option.global_options import GlobalOptions
from pants.util.logging import LogLevel

from llbkit_pants.subsystems.buildkit import BuildKitSubsystem, Progress
from llbkit_pants.target_types import (
    ContainerImageBaseField,
    ContainerImageOutputFormatField,
    ContainerImageOutputPathField,
    ContainerImageRegistriesField,
    ContainerImageRepositoryField,
    ContainerImageTagsField,
)
from llbkit_pants.util_rules.bases import BaseResolveError
from llbkit_pants.util_rules.lowering import LoweredImage, LoweredImageRequest
from llbkit_pants.util_rules.machine import MachineChannel, MachineChannelRequest
from llbkit_pants.util_rules.process_errors import ProcessFailure, build_log, events, process_failure
from llbkit_pants.util_rules.references import image_references
from llbkit_pants.util_rules.solver import SolverCode
from llbkit_pants.util_rules.stored_image import StoredImage, StoredImageRequest, large_file_path

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.builder.job import ExportOptions, SolveJob

logger = logging.getLogger(__name__)

JOB_DIR = "job"
CONTEXT_DIR = "context"
IMAGE_OUT = "out/image.tar"
RECORD_OUT = "out/image.json"


class ContainerImageBuildError(Exception):
    """A container image could not be built (the message says which, where and why)."""


@dataclass(frozen=True)
class ContainerImagePackageFieldSet(PackageFieldSet):
    required_fields = (ContainerImageBaseField,)

    base: ContainerImageBaseField
    output_format: ContainerImageOutputFormatField
    output_path: ContainerImageOutputPathField
    repository: ContainerImageRepositoryField
    tags: ContainerImageTagsField
    registries: ContainerImageRegistriesField

    def output_paths(self) -> Tuple[str, str]:
        """The image file and its `image.json`, under dist/ (see the `output_path` field)."""
        return self.output_path.image_and_record_paths(self.output_format.value or "oci")


def explain_no_worker(failure: ProcessFailure, allow_emulation: bool) -> str:
    """The pool's error, with the `[buildkit]` settings that fix it (by each worker's reason kind,
    a `llbkit.buildkit.errors.NoWorkerReason` name)."""
    from llbkit.buildkit.errors import NoWorkerReason

    kinds = {str(w[2]) for w in failure.fields.get("workers", []) if len(w) > 2}
    platform = failure.fields.get("platform", "")
    hints = []
    if kinds & {NoWorkerReason.UNREACHABLE.name, NoWorkerReason.FAILED.name}:
        hints.append("check the addresses in [buildkit].workers (or BUILDKIT_HOST), the TLS options "
                     "([buildkit].tls_dir, or tls_ca/tls_cert/tls_key, for tcp:// workers) and that those "
                     "buildkitd daemons are running (`pants buildkit-workers` shows what each one answers)")
    if not allow_emulation and NoWorkerReason.EMULATION_DISALLOWED.name in kinds:
        hints.append(f"add a worker native to {platform} to [buildkit].workers, or set "
                     "[buildkit].allow_emulation = true")
    if NoWorkerReason.WRONG_PLATFORM.name in kinds:
        hints.append(f"add a worker that can build {platform} to [buildkit].workers "
                     "(emulation needs qemu binfmt handlers on the worker's host)")
    return failure.message + ("\nTo fix: " + "; ".join(hints) + "." if hints else "")


def source_locations(failure: ProcessFailure, paths: Mapping[str, str]) -> str:
    """Where a failed build's error points (a Dockerfile's lines, from the frontend), each file
    named by its path in the repository (`paths`: the frontend's file name -> repo path)."""
    out = []
    for entry in failure.fields.get("sources", []) or []:
        try:
            name, first, last = str(entry[0]), int(entry[1]), int(entry[2])
        except (IndexError, TypeError, ValueError):
            continue
        out.append(f"{paths.get(name, name)}:{first}" + (f"-{last}" if last != first else ""))
    return f" (at {', '.join(out)})" if out else ""


def _failure_message(address: str, failure: ProcessFailure, channel: MachineChannel,
                     buildkit: BuildKitSubsystem, paths: Mapping[str, str] = {}) -> str:
    if failure.kind == "no_worker":
        return f"failed to build {address}: {explain_no_worker(failure, buildkit.allow_emulation)}"
    if failure.kind == "missing_secret":
        sid = failure.fields.get("secret", "")
        source = dict(channel.secrets_configured).get(sid)
        fix = (f"its source is {source!r} in [buildkit].secrets: fix that" if source else
               f'add it to [buildkit].secrets, e.g. "{sid}=env:VARIABLE" or "{sid}=file:PATH"')
        return f"failed to build {address}: {failure.message}: {fix} (or make the mount optional)."
    where = source_locations(failure, paths)
    return f"failed to build {address}{where}: {failure.message}"


def check_secrets(address: str, lowered: LoweredImage, channel: MachineChannel) -> Tuple[Tuple[str, bool], ...]:
    """The secrets the image mounts; a required one that is not configured, or whose variable is
    unset in the invoking environment, fails before any solve, naming target, id and option."""
    from llbkit.builder.secrets import mounted_secrets

    mounts = mounted_secrets(lowered.image.spec)
    configured = dict(channel.secrets_configured)
    for m in mounts:
        if not m.required:
            continue
        if m.id not in configured:
            raise ContainerImageBuildError(
                f"{address} mounts secret {m.id!r}, which is not configured: add it to [buildkit].secrets, "
                f'e.g. "{m.id}=env:VARIABLE" or "{m.id}=file:PATH" (or make the mount optional)')
        if m.id not in channel.secrets_available:
            var = configured[m.id][len("env:"):]
            raise ContainerImageBuildError(
                f"{address} mounts secret {m.id!r} from environment variable {var}, which is not set in "
                f"the environment Pants runs in: set it, or change the source of {m.id!r} in [buildkit].secrets")
    return tuple(sorted({m.id: m.required for m in mounts}.items()))


def export_options(address: str, output_format: str, repository: str, tags: Tuple[str, ...],
                   registries: Tuple[str, ...], platforms: Tuple[str, ...],
                   annotations: Tuple[Tuple[str, str], ...], source_date_epoch: int,
                   kind: str = "container_image") -> ExportOptions:
    """What the build process writes for an image (`container_image` or `dockerfile_image`)."""
    from llbkit.builder.job import ExportOptions

    if output_format == "docker" and len(platforms) != 1:
        raise InvalidFieldException(
            f"Invalid field `output_format` in {kind} target {address}: a docker archive holds "
            f"one platform, but it is built for {list(platforms)}; build one platform, or use "
            f'output_format="oci" (one index over all platforms).'
        )
    references = image_references(repository, tags, registries)
    return ExportOptions(
        output_format=output_format, ref_names=tags if output_format == "oci" else (),
        docker_tags=references if output_format == "docker" else (), record_tags=references,
        annotations=annotations, source_date_epoch=source_date_epoch,
    )


def _job(address: str, lowered: LoweredImage, secrets: Tuple[Tuple[str, bool], ...],
         source_date_epoch: int) -> SolveJob:
    from llbkit.builder.job import SolveJob

    spec = lowered.image.spec
    export = export_options(address, spec.output_format, spec.repository or "", spec.tags, spec.registries,
                            lowered.platforms, spec.annotations, source_date_epoch)
    return SolveJob.of(address, lowered.lowered, export, secrets, has_context=lowered.image.context_digest is not None,
                       oci_layouts=tuple(name for name, _, _ in lowered.layouts))


def _report(address: str, result: FallibleProcessResult, channel: MachineChannel,
            buildkit: BuildKitSubsystem, paths: Mapping[str, str] = {}) -> bool:
    """Log what the build process said; raise its failure. Whether it ran now (not a cache hit)."""
    # Not `metadata.source(run_id)`: asking for the RunId would make the package rule re-run on
    # every run, so a no-op under pantsd could not be served from pantsd's memory (then nothing
    # is logged for the image: nothing happened).
    solved = result.metadata._source == ProcessResultMetadata.Source.RAN.value
    if solved:
        for event in events(result.stderr):
            logger.info(f"{address}: {event}")
    if result.exit_code != 0:
        log = build_log(result.stderr).strip()
        failure = process_failure(result)
        if log and buildkit.progress == Progress.plain:
            logger.info(f"{address}: BuildKit log:\n{log}")
        raise ContainerImageBuildError(_failure_message(address, failure, channel, buildkit, paths))
    if solved and buildkit.progress == Progress.plain and build_log(result.stderr).strip():
        logger.info(f"{address}: BuildKit log:\n{build_log(result.stderr).strip()}")
    return solved


@dataclass(frozen=True)
class ImageBuildRequest:
    """One image's build process: its solve job's files, the directories it reads (`locals`:
    `(name, digest)`, each put at `name/` in the sandbox and passed as `--local name=name`; the
    `context` of a container_image is passed as `--context`, as before), and where it goes in
    dist/. Both image targets build through it: one process, one cache, the same outputs."""

    address: str
    job_files: Tuple[Tuple[str, bytes], ...]
    platforms: Tuple[str, ...]
    image_path: str
    record_path: str
    context: Digest = EMPTY_DIGEST  # a container_image's build context (`--context`)
    locals: Tuple[Tuple[str, Digest], ...] = ()
    # OCI layout tars the build reads (`--oci-layout NAME=PATH`): (name, digest holding it, path).
    oci_layouts: Tuple[Tuple[str, Digest, str], ...] = ()
    # The frontend's names of source files -> their paths in the repo, for error locations.
    source_paths: Tuple[Tuple[str, str], ...] = ()
    # What the image's copies built per platform (JSON docs, see util_rules.pex_platforms), for
    # image.json.
    copies: Tuple[str, ...] = ()


@rule(desc="Build a container image with BuildKit", level=LogLevel.DEBUG)
async def package_container_image(
    field_set: ContainerImagePackageFieldSet, buildkit: BuildKitSubsystem
) -> BuiltPackage:
    address = str(field_set.address)
    image_path, record_path = field_set.output_paths()
    try:
        lowered = await Get(LoweredImage, LoweredImageRequest(field_set.address))
    except BaseResolveError as e:
        raise ContainerImageBuildError(f"failed to build {address}: {e}") from None
    for event in lowered.events:
        logger.info(f"{address}: {event}")
    channel = await Get(MachineChannel, MachineChannelRequest())
    job = _job(address, lowered, check_secrets(address, lowered, channel), buildkit.source_date_epoch)
    has_context = lowered.image.context_digest is not None
    return await Get(BuiltPackage, ImageBuildRequest(
        address, tuple(sorted(job.files().items())), lowered.platforms, image_path, record_path,
        context=lowered.image.context if has_context else EMPTY_DIGEST, oci_layouts=lowered.layouts,
        copies=tuple(lowered.image.copies)))


@rule(desc="Build an image with BuildKit", level=LogLevel.DEBUG)
async def build_image(request: ImageBuildRequest, buildkit: BuildKitSubsystem,
                      global_options: GlobalOptions) -> BuiltPackage:
    address, image_path, record_path = request.address, request.image_path, request.record_path
    channel = await Get(MachineChannel, MachineChannelRequest())
    code = await Get(SolverCode)
    job_digest = await Get(Digest, CreateDigest(FileContent(f"{JOB_DIR}/{p}", b) for p, b in request.job_files))
    has_context = request.context != EMPTY_DIGEST
    context = await Get(Digest, AddPrefix(request.context, CONTEXT_DIR)) if has_context else EMPTY_DIGEST
    local_digests = await MultiGet(Get(Digest, AddPrefix(d, name)) for name, d in request.locals)
    # Each local dir exists even when empty (a Dockerfile that copies nothing).
    local_dirs = await Get(Digest, CreateDigest(Directory(name) for name, _ in request.locals))
    input_digest = await Get(Digest, MergeDigests([code.digest, job_digest, context, local_dirs, *local_digests,
                                                   *(d for _, d, _ in request.oci_layouts)]))
    platforms = ", ".join(request.platforms)
    command = ("solve", JOB_DIR, "--image", IMAGE_OUT, "--record", RECORD_OUT,
               *(("--context", CONTEXT_DIR) if has_context else ()),
               *(a for name, _ in request.locals for a in ("--local", f"{name}={name}")),
               *(a for name, _, path in request.oci_layouts for a in ("--oci-layout", f"{name}={path}")))
    result = await Get(FallibleProcessResult, Process, channel.process(
        code, command, input_digest=input_digest, output_files=(IMAGE_OUT, RECORD_OUT),
        description=f"Building {address} for {platforms}", level=LogLevel.INFO,
    ))
    solved = _report(address, result, channel, buildkit, dict(request.source_paths))
    stored = await Get(StoredImage, StoredImageRequest(result.output_digest, IMAGE_OUT, RECORD_OUT))
    if stored.problem is not None:
        # A damaged result in Pants' store (see util_rules.stored_image). Pants writes a file into
        # its store only when it is not there yet, so the damaged copy is removed first (Pants'
        # own files, named by digest); then the image is built again under another cache key and
        # its new outputs are stored and checked in turn.
        logger.warning(f"{address}: the stored image is damaged ({stored.problem}); building it again")
        damaged = [p for p in (large_file_path(global_options.local_store_dir, d) for d in stored.damaged) if p]
        if damaged:
            await Get(ProcessResult, Process(
                argv=("/bin/rm", "-f", *damaged), description=f"Remove the damaged copy of {address}'s image",
                level=LogLevel.DEBUG, cache_scope=ProcessCacheScope.PER_SESSION))
        result = await Get(FallibleProcessResult, Process, channel.process(
            code, command, input_digest=input_digest, output_files=(IMAGE_OUT, RECORD_OUT),
            description=f"Rebuilding {address} for {platforms}", level=LogLevel.INFO,
            extra_env={"LLBKIT_REBUILD_OF": result.output_digest.fingerprint}))
        solved = _report(address, result, channel, buildkit, dict(request.source_paths))
        stored = await Get(StoredImage, StoredImageRequest(result.output_digest, IMAGE_OUT, RECORD_OUT, attempt=1))
        if stored.problem is not None:
            raise ContainerImageBuildError(
                f"failed to build {address}: built again, its image is still damaged when read back from "
                f"Pants' store ({stored.problem}): Pants' local store ([GLOBAL].local_store_dir = "
                f"{global_options.local_store_dir}) is damaged: stop pantsd, delete that directory and run again.")
    assert stored.image is not None and stored.record_entry is not None
    record = stored.record
    record_file: object = FileEntry(record_path, stored.record_entry.file_digest)
    if request.copies:
        # What the copies built per platform (a PEX per platform, or one shared), beside what the
        # build process recorded (see util_rules.pex_platforms).
        from llbkit.oci.metadata import dumps

        record = {**record, "copies": [json.loads(c) for c in request.copies]}
        record_file = FileContent(record_path, dumps(record))
    digest = await Get(Digest, CreateDigest([FileEntry(image_path, stored.image.file_digest), record_file]))
    workers_used = sorted({p["worker"] for p in record["platforms"] if p.get("worker")})
    how = (f"solved in {result.metadata.total_elapsed_ms / 1000:.1f}s" if solved and result.metadata.total_elapsed_ms
           is not None else "solved" if solved else "from cache")
    logger.info(f"{address}: {platforms} {how} (index {record['index']['digest']})")
    return BuiltPackage(digest, (
        BuiltPackageArtifact(image_path, (
            f"index digest: {record['index']['digest']}",
            *(f"{p['platform']}: manifest {p['manifest']['digest']}" for p in record["platforms"]),
            f"built on {', '.join(workers_used)}",
        )),
        BuiltPackageArtifact(record_path),
    ))


def rules():
    return [
        *collect_rules(),
        UnionRule(PackageFieldSet, ContainerImagePackageFieldSet),
    ]
