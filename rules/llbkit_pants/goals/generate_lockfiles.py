"""`pants generate-lockfiles --resolve=container-images`: lock the registry bases of images.

Registered the way Pants' own backends register theirs: a `KnownUserResolveNamesRequest` lists
the resolves of `[base-images].resolves`, a `RequestedUserResolveNames` turns the requested ones
into one `GenerateLockfile` each, and the generation is a build process (`lock-bases`) that asks
each registry what the tags name now. For every `container_image` of a resolve, the registry
base at the root of its base chain (when named by tag) is locked for every platform the image
builds; images built on another image target lock that target's registry base for their own
platforms too. For every `dockerfile_image`, each registry image its `FROM` and `COPY --from`
lines name by tag (after build-argument expansion), and its frontend image, are locked for its
platforms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from pants.core.goals.generate_lockfiles import (
    GenerateLockfile,
    GenerateLockfileResult,
    GenerateLockfilesSubsystem,
    KnownUserResolveNames,
    KnownUserResolveNamesRequest,
    LockfileDiff,
    RequestedUserResolveNames,
    UserGenerateLockfiles,
)
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, PathGlobs
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from llbkit_pants.dockerfile.job import DockerfilePlan, DockerfilePlanRequest
from llbkit_pants.dockerfile.target_types import DockerfileImageSourceField
from llbkit_pants.subsystems.base_images import BaseImagesSubsystem
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.target_types import ContainerImageBaseField, ContainerImagePlatformsField
from llbkit_pants.util_rules.base_chain import ContainerImageChain, ContainerImageChainRequest, field_error
from llbkit_pants.util_rules.base_lock import ImageResolve, ImageResolveRequest, regenerate_command
from llbkit_pants.util_rules.bases import is_pinned
from llbkit_pants.util_rules.lowering import declared_platforms
from llbkit_pants.util_rules.machine import MachineChannel, MachineChannelRequest
from llbkit_pants.util_rules.process_errors import process_failure
from llbkit_pants.util_rules.solver import SolverCode

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.builder.base_lock import LockedBase

SCRATCH = "scratch"


class BaseLockGenerationError(Exception):
    """The registry could not say what a tag names (the message names the reference and why)."""


class KnownContainerImageResolveNamesRequest(KnownUserResolveNamesRequest):
    pass


class RequestedContainerImageResolveNames(RequestedUserResolveNames):
    pass


@dataclass(frozen=True)
class GenerateContainerImageLockfile(GenerateLockfile):
    bases: Tuple[Tuple[str, Tuple[str, ...]], ...]  # (normalized NAME:TAG, platforms), sorted


@rule
def known_container_image_resolves(_: KnownContainerImageResolveNamesRequest,
                                   base_images: BaseImagesSubsystem) -> KnownUserResolveNames:
    return KnownUserResolveNames(names=tuple(base_images.resolves.keys()), option_name="[base-images].resolves",
                                 requested_resolve_names_cls=RequestedContainerImageResolveNames)


@rule(desc="Find the registry bases of container_image targets")
async def container_image_lockfile_requests(
    requested: RequestedContainerImageResolveNames, all_targets: AllTargets,
    base_images: BaseImagesSubsystem, buildkit: BuildKitSubsystem,
) -> UserGenerateLockfiles:
    from llbkit.builder.base_lock import merge_requests
    from llbkit.image import ImageSpecError, RegistryBase

    images = [t for t in all_targets if t.has_field(ContainerImageBaseField)]
    chains = await MultiGet(Get(ContainerImageChain, ContainerImageChainRequest(t.address)) for t in images)
    resolves = await MultiGet(Get(ImageResolve, ImageResolveRequest(t.address)) for t in images)
    wanted: Dict[str, List[Tuple[str, Tuple[str, ...]]]] = {name: [] for name in requested}
    for tgt, chain, resolve in zip(images, chains, resolves):
        root = chain.root_base
        if resolve.name not in wanted or not root or root == SCRATCH or chain.dockerfile_base is not None:
            continue  # (a dockerfile_image base's own FROMs are locked below)
        try:
            ref = RegistryBase(root).normalized
        except ImageSpecError as e:
            raise field_error(chain.targets[-1].address, "base", f"{e.problem} {root!r}: {e.fix}") from None
        if is_pinned(ref):
            continue  # a digest names the same image forever
        platforms = declared_platforms(tgt.address, tgt[ContainerImagePlatformsField].value or (), buildkit)
        wanted[resolve.name].append((ref, platforms))
    # dockerfile_image targets: every registry image their FROM / COPY --from lines name by tag
    # (and a custom frontend image), as the build pins them (see llbkit_pants.dockerfile.job).
    dockerfiles = [t for t in all_targets if t.has_field(DockerfileImageSourceField)]
    df_resolves = await MultiGet(Get(ImageResolve, ImageResolveRequest(t.address)) for t in dockerfiles)
    wanted_dockerfiles = [(t, r) for t, r in zip(dockerfiles, df_resolves) if r.name in wanted]
    plans = await MultiGet(Get(DockerfilePlan, DockerfilePlanRequest(t.address)) for t, _ in wanted_dockerfiles)
    for (tgt, resolve), plan in zip(wanted_dockerfiles, plans):
        wanted[resolve.name].extend((ref, plan.platforms) for ref in plan.refs if not is_pinned(ref))
    return UserGenerateLockfiles(
        GenerateContainerImageLockfile(resolve_name=name, lockfile_dest=base_images.resolves[name], diff=False,
                                       bases=merge_requests(requests))
        for name, requests in sorted(wanted.items()))


class _Digest(str):
    """A locked digest as a lockfile diff's "version": any change shows as an upgrade (a tag
    that moved), since digests have no order."""

    def __lt__(self, other: object) -> bool:
        return str(self) != str(other)

    def __gt__(self, other: object) -> bool:
        return False


def lockfile_diff(path: str, resolve: str, before_text: Optional[bytes], locked: Sequence["LockedBase"]) -> LockfileDiff:
    """What `generate-lockfiles --diff` prints: references added, removed, and moved (a tag that
    names another digest shows as upgraded)."""
    from llbkit.builder.base_lock import BaseLock, BaseLockError

    try:
        before = BaseLock.parse(before_text, path).bases if before_text is not None else ()
    except BaseLockError:
        before = ()  # a damaged lockfile: everything shows as added
    return LockfileDiff.create(
        path, resolve,
        {b.reference: _Digest(b.digest) for b in before},  # type: ignore[arg-type]
        {b.reference: _Digest(b.digest) for b in locked})  # type: ignore[arg-type]


@rule(desc="Generate a base-image lockfile", level=LogLevel.DEBUG)
async def generate_container_image_lockfile(
    request: GenerateContainerImageLockfile, generate: GenerateLockfilesSubsystem,
) -> GenerateLockfileResult:
    from llbkit.builder.base_lock import BaseLock, LockedBase

    locked: Tuple[LockedBase, ...] = ()
    if request.bases:
        channel = await Get(MachineChannel, MachineChannelRequest())
        code = await Get(SolverCode)
        argv = ("lock-bases", *(f"{ref}={','.join(platforms)}" for ref, platforms in request.bases))
        result = await Get(FallibleProcessResult, Process, channel.process(
            code, argv, input_digest=code.digest, cache_scope=ProcessCacheScope.PER_SESSION,
            description=f"Lock the registry bases of resolve `{request.resolve_name}`", level=LogLevel.INFO))
        if result.exit_code != 0:
            raise BaseLockGenerationError(
                f"cannot generate the lockfile of resolve `{request.resolve_name}`: {process_failure(result).message}")
        locked = tuple(LockedBase.from_doc(d) for d in json.loads(result.stdout))
    lock = BaseLock(request.resolve_name, locked)
    command = generate.custom_command or regenerate_command(request.resolve_name)
    digest = await Get(Digest, CreateDigest([FileContent(request.lockfile_dest, lock.render(command).encode())]))
    diff = None
    if request.diff:
        old = await Get(DigestContents, PathGlobs([request.lockfile_dest]))
        diff = lockfile_diff(request.lockfile_dest, request.resolve_name, old[0].content if old else None, locked)
    return GenerateLockfileResult(digest, request.resolve_name, request.lockfile_dest, diff)


def rules():
    return [
        *collect_rules(),
        UnionRule(GenerateLockfile, GenerateContainerImageLockfile),
        UnionRule(KnownUserResolveNamesRequest, KnownContainerImageResolveNamesRequest),
        UnionRule(RequestedUserResolveNames, RequestedContainerImageResolveNames),
    ]
