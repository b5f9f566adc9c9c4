"""`pants package` for `dockerfile_image`: the same build process, cache and outputs as
`container_image` (an OCI layout tar, or a docker archive, and `<name>.image.json` in dist/).

The solve job holds one frontend call per platform (see `job.py`); the build process gets the
Dockerfile and the build context as the local dirs `dockerfile` and `context`. Its cache key is
the job (options, pinned bases, composed targets' LLB), those two dirs' content and llbkit's
code: an unchanged Dockerfile and context are served from Pants' cache, with no buildkitd.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Tuple

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from llbkit_pants.dockerfile.field_sets import DockerfileImagePackageFieldSet
from llbkit_pants.dockerfile.job import DockerfileJob, DockerfileJobRequest
from llbkit_pants.dockerfile.parser import DockerfileError
from llbkit_pants.goals.package import ContainerImageBuildError, ImageBuildRequest, export_options
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.util_rules.bases import BaseResolveError
from llbkit_pants.util_rules.machine import MachineChannel, MachineChannelRequest

logger = logging.getLogger(__name__)

CONTEXT_DIR = "context"
DOCKERFILE_DIR = "dockerfile"


def _secret_source(value: str) -> str:
    return value if value.startswith(("env:", "file:")) else f"file:{value}"


def check_secrets(address: str, job: DockerfileJob, channel: MachineChannel,
                  declared: Tuple[Tuple[str, str], ...]) -> None:
    """Secrets the Dockerfile's required mounts read, and those the `secrets` field declares,
    must be served by `[buildkit].secrets` (with the field's source); an error otherwise."""
    configured = dict(channel.secrets_configured)
    for sid, source in declared:
        want = _secret_source(source)
        if sid not in configured:
            raise DockerfileError(
                f"dockerfile_image {address}: secret {sid!r} (`secrets` field) is not in [buildkit].secrets: add "
                f'"{sid}={want}" there (secret values reach builds out of band, never through a target).')
        if configured[sid] != want:
            raise DockerfileError(
                f"dockerfile_image {address}: secret {sid!r} is {want!r} in its `secrets` field but "
                f"{configured[sid]!r} in [buildkit].secrets: make them the same.")
    for sid, required in job.secrets:
        if required and sid not in configured:
            raise DockerfileError(
                f"dockerfile_image {address}: the Dockerfile mounts the required secret {sid!r}, which is not "
                f'configured: add it to [buildkit].secrets, e.g. "{sid}=env:VARIABLE" or "{sid}=file:PATH".')
        if required and sid not in channel.secrets_available:
            raise DockerfileError(
                f"dockerfile_image {address}: secret {sid!r} comes from {configured[sid]!r}, which is not set "
                "in the environment Pants runs in: set it, or change its source in [buildkit].secrets.")


@rule(desc="Build a Dockerfile image with BuildKit", level=LogLevel.DEBUG)
async def package_dockerfile_image(field_set: DockerfileImagePackageFieldSet,
                                   buildkit: BuildKitSubsystem) -> BuiltPackage:
    from llbkit.builder.job import JobPlatform, SolveJob

    address = str(field_set.address)
    image_path, record_path = field_set.output_paths()
    try:
        job = await Get(DockerfileJob, DockerfileJobRequest(field_set.address))
    except BaseResolveError as e:
        raise ContainerImageBuildError(f"failed to build {address}: {e}") from None
    for event in job.events:
        logger.info(f"{address}: {event}")
    channel = await Get(MachineChannel, MachineChannelRequest())
    check_secrets(address, job, channel, tuple(sorted((field_set.secrets.value or {}).items())))
    export = export_options(address, field_set.output_format.value or "oci", field_set.repository_name(),
                            tuple(field_set.tags.value or ()), tuple(field_set.registries.value or ()),
                            job.platforms, (), buildkit.source_date_epoch, kind="dockerfile_image")
    solve_job = SolveJob(address, tuple(JobPlatform(p, b"", b"", frontend=call) for p, call in job.calls), export,
                         job.secrets, local_dirs=(CONTEXT_DIR, DOCKERFILE_DIR),
                         oci_layouts=tuple(name for name, _, _ in job.layouts))
    context = job.context.context
    if job.target_contexts:
        context = await Get(Digest, MergeDigests([context, *job.target_contexts]))
    return await Get(BuiltPackage, ImageBuildRequest(
        address, tuple(sorted(solve_job.files().items())), job.platforms, image_path, record_path,
        locals=((CONTEXT_DIR, context), (DOCKERFILE_DIR, job.context.dockerfile)),
        oci_layouts=job.layouts,
        source_paths=((posixpath.basename(job.context.parsed.path), job.context.parsed.path),)))


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, DockerfileImagePackageFieldSet)]
