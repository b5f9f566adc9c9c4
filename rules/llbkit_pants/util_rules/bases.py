"""Registry bases resolved by a build process: a reference's digest, and its config per platform.

A base given by tag is resolved afresh on every run (an uncached process: what a tag names may
move, and pantsd must not keep an old answer); a base given by digest is resolved once and
cached by Pants like any process (what a digest names never changes). The registry is asked
from the process directly, with the invoking environment's Docker credentials; a buildkitd
worker only when the registry cannot be reached from here. So a build served from the cache,
with an unmoved tag, starts no buildkitd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Tuple

from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, ProcessCacheScope, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from llbkit_pants.util_rules.machine import MachineChannel, MachineChannelRequest
from llbkit_pants.util_rules.process_errors import events, process_failure
from llbkit_pants.util_rules.solver import SolverCode

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.image import ResolvedBase


class BaseResolveError(Exception):
    """A registry base could not be resolved (the message says which and why)."""


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


def rules():
    return collect_rules()
