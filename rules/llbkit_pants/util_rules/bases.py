"""Registry bases resolved by a build process: a reference's digest, and its config per platform.

`ImageBasesRequest(address, refs, platforms)` -> `ImageBases` is the one path every goal
(`package`, `publish`, `llb`) takes. A base named by tag is looked up in the image's resolve's
lockfile (`util_rules.base_lock`): a locked tag is resolved as its locked digest, by a process
Pants caches like any other (what a digest names never changes), and the config it fetches is
checked against the lock's config digest; so a locked base whose config is in Pants' cache needs
no registry. A tag the lockfile lacks follows `[base-images].unlocked_behavior`: an error, or
resolved afresh on every run (an uncached process: what a tag names may move, and pantsd must
not keep an old answer), with or without a warning. A base named by digest needs no lock entry.

The registry is asked from the process directly, with the invoking environment's Docker
credentials; a buildkitd worker only when the registry cannot be reached from here. So a build
served from the cache starts no buildkitd.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.process import FallibleProcessResult, ProcessCacheScope, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from llbkit_pants.subsystems.base_images import BaseImagesSubsystem, UnlockedBehavior
from llbkit_pants.util_rules.base_lock import (
    BaseLockRequest,
    ImageResolve,
    ImageResolveRequest,
    LoadedBaseLock,
    regenerate_command,
)
from llbkit_pants.util_rules.machine import MachineChannel, MachineChannelRequest
from llbkit_pants.util_rules.process_errors import events, process_failure
from llbkit_pants.util_rules.solver import SolverCode

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.builder.base_lock import LockedBase
    from llbkit.image import ResolvedBase


logger = logging.getLogger(__name__)


class BaseResolveError(Exception):
    """A registry base could not be resolved (the message says which and why)."""


class UnlockedBaseError(Exception):
    """A base named by tag is not in its resolve's lockfile and `unlocked_behavior = "error"`."""


class LockMismatchError(Exception):
    """What the registry serves for a locked digest is not what the lockfile recorded."""


@dataclass(frozen=True)
class RegistryBaseRequest:
    ref: str  # as llbkit.image.registry_bases normalizes it
    platforms: Tuple[str, ...]


@dataclass(frozen=True)
class RegistryBaseResolution:
    """`(platform, ResolvedBase)` per requested platform, and the events of the resolution."""

    ref: str
    bases: Tuple[Tuple[str, ResolvedBase], ...]
    events: Tuple[str, ...]


def is_pinned(ref: str) -> bool:
    return "@sha256:" in ref


@rule(desc="Resolve a registry base image", level=LogLevel.DEBUG)
async def resolve_registry_base(request: RegistryBaseRequest) -> RegistryBaseResolution:
    from llbkit.builder.bases import resolved_from_json

    channel = await Get(MachineChannel, MachineChannelRequest())
    code = await Get(SolverCode)
    argv = ("resolve-bases", request.ref, *(a for p in request.platforms for a in ("--platform", p)))
    result = await Get(FallibleProcessResult, Process, channel.process(
        code, argv, input_digest=code.digest, description=f"Resolve {request.ref}",
        cache_scope=ProcessCacheScope.SUCCESSFUL if is_pinned(request.ref) else ProcessCacheScope.PER_SESSION))
    if result.exit_code != 0:
        raise BaseResolveError(process_failure(result).message)
    resolved = resolved_from_json(result.stdout)
    return RegistryBaseResolution(request.ref, tuple((p, resolved[(request.ref, p)]) for p in request.platforms),
                                  events(result.stderr))


@dataclass(frozen=True)
class ImageBasesRequest:
    address: Address  # the container_image whose chain names the bases
    refs: Tuple[str, ...]  # as llbkit.image.registry_bases normalizes them
    platforms: Tuple[str, ...]


@dataclass(frozen=True)
class ImageBases:
    """`(ref, platform, ResolvedBase)` for every base and platform, keyed by the references as
    the request named them (a locked tag resolves to its locked digest)."""

    bases: Tuple[Tuple[str, str, ResolvedBase], ...]
    events: Tuple[str, ...]

    def configs(self) -> Dict[Tuple[str, str], ResolvedBase]:
        return {(ref, platform): b for ref, platform, b in self.bases}


def _unlocked_message(address: Address, ref: str, platforms: List[str], loaded: LoadedBaseLock) -> str:
    if loaded.lock is None:
        where = f"the lockfile {loaded.path} of resolve `{loaded.resolve}` does not exist"
    elif loaded.lock.get(ref) is None:
        where = f"it is not in the lockfile {loaded.path} (resolve `{loaded.resolve}`)"
    else:
        where = (f"the lockfile {loaded.path} (resolve `{loaded.resolve}`) does not hold it for "
                 f"{', '.join(platforms)}: it is older than the BUILD files that use it")
    return (f"container_image {address}: base image {ref} is named by tag, and {where}. Lock it with "
            f"`{regenerate_command(loaded.resolve)}` (or name the base by digest, `NAME@sha256:...`).")


def _missing_platforms(entry: Optional[LockedBase], platforms: Tuple[str, ...]) -> List[str]:
    from llbkit.platforms import canonical_platform

    if entry is None:
        return [canonical_platform(p) for p in platforms]
    return [canonical_platform(p) for p in platforms if entry.platform(p) is None]


@rule(desc="Resolve the registry bases of a container_image", level=LogLevel.DEBUG)
async def image_bases(request: ImageBasesRequest, base_images: BaseImagesSubsystem) -> ImageBases:
    tags = [ref for ref in request.refs if not is_pinned(ref)]
    locked: Dict[str, LockedBase] = {}
    resolve_name = ""
    if tags:
        resolve = await Get(ImageResolve, ImageResolveRequest(request.address))
        loaded = await Get(LoadedBaseLock, BaseLockRequest(resolve.name))
        resolve_name = resolve.name
        behavior = base_images.unlocked_behavior
        for ref in tags:
            entry = loaded.lock.get(ref) if loaded.lock is not None else None
            missing = _missing_platforms(entry, request.platforms)
            if not missing:
                assert entry is not None
                locked[ref] = entry
                continue
            if behavior == UnlockedBehavior.error:
                raise UnlockedBaseError(_unlocked_message(request.address, ref, missing, loaded))
            if behavior == UnlockedBehavior.warn:
                logger.warning(_unlocked_message(request.address, ref, missing, loaded)
                               + " Resolved it against the registry for this run.")
    asked = [locked[ref].pinned() if ref in locked else ref for ref in request.refs]
    resolutions = await MultiGet(Get(RegistryBaseResolution, RegistryBaseRequest(a, request.platforms))
                                 for a in asked)
    out: List[Tuple[str, str, ResolvedBase]] = []
    for ref, resolution in zip(request.refs, resolutions):
        entry = locked.get(ref)
        for platform, base in resolution.bases:
            if entry is not None:
                _check_locked(request.address, entry, platform, base, resolve_name)
            out.append((ref, platform, base))
    return ImageBases(tuple(out), tuple(e for r in resolutions for e in r.events))


def _check_locked(address: Address, entry: LockedBase, platform: str, base: ResolvedBase, resolve: str) -> None:
    want = entry.platform(platform)
    config = base.config if isinstance(base.config, bytes) else str(base.config).encode()
    got = "sha256:" + hashlib.sha256(config).hexdigest()
    if want is not None and got != want.config:
        raise LockMismatchError(
            f"container_image {address}: base image {entry.pinned()} ({platform}) has config {got} in its "
            f"registry, but the lockfile recorded {want.config}: the lockfile was edited or belongs to "
            f"another registry; regenerate it with `{regenerate_command(resolve)}`.")


def rules():
    return collect_rules()
