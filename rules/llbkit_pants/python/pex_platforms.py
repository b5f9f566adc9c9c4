"""A `pex_binary` built for one platform of a container image, through Pants' own pex rules.

`PexForPlatformRequest` (a `PlatformPackageRequest`, see `util_rules.platform_packages`) ->
`PlatformPackage`:
the `pex_binary` package rule's own request (`PexFromTargetsRequestForBuiltPackage`: entry
point, layout, args, env, the resolve's lockfile and every other `pex_binary` field), with its
platforms replaced by the complete platform of the image's variant (see
`llbkit_pants.python.complete_platforms`), built by Pants' `Pex` rule and cached as any PEX. A
`pex_binary` that names its own `platforms` or `complete_platforms` says what it is built for:
it is built once, as its package rule builds it, and shared by every variant.

A PEX that cannot be resolved for the platform (no wheel of a requirement for that platform's
tags in the lockfile, and a source build impossible for another platform) is a
`PexPlatformError` naming the image, the `pex_binary`, the platform and the distribution.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.goals.package_pex_binary import PexBinaryFieldSet, PexFromTargetsRequestForBuiltPackage
from pants.backend.python.util_rules.pex import Pex, PexPlatforms
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.process import ProcessExecutionFailure
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule

from llbkit_pants.python.complete_platforms import ImageCompletePlatform, ImageCompletePlatformRequest
from llbkit_pants.util_rules.platform_packages import PlatformPackage, PlatformPackageRequest, describe


class PexPlatformError(Exception):
    """A PEX copied into an image cannot be built for one of the image's platforms."""

    def __init__(self, message: str, *, image: str, target: str, platform: str,
                 distributions: Tuple[str, ...]) -> None:
        super().__init__(message)
        self.image, self.target, self.platform, self.distributions = image, target, platform, distributions


@dataclass(frozen=True)
class PexForPlatformRequest(PlatformPackageRequest):
    field_set: PexBinaryFieldSet

    @classmethod
    def is_for(cls, field_set: PackageFieldSet) -> bool:
        return isinstance(field_set, PexBinaryFieldSet)


# pex's words for a requirement with no distribution for a target (pex 2.x), e.g.
# "Dependency on markupsafe not satisfied, 1 incompatible candidate found:" and
# "No pre-built wheel was available for markupsafe 3.0.2."; the one place that reads them.
_UNSATISFIED = (
    re.compile(r"Dependency on (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*) not satisfied"),
    re.compile(r"No pre-built wheel was available for (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"),
    re.compile(r"Could not find a compatible wheel for (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"),
)


def unsatisfied_distributions(stderr: str) -> Tuple[str, ...]:
    """The distributions pex says it found no compatible wheel of, in the order it names them."""
    out = []
    for line in stderr.splitlines():
        for pattern in _UNSATISFIED:
            for m in pattern.finditer(line):
                name = m.group("name").rstrip(".")
                if name.lower() not in [o.lower() for o in out]:
                    out.append(name)
    return tuple(out)


def _stderr_of(e: BaseException) -> Optional[str]:
    """pex's stderr from the engine's failure (a ProcessExecutionFailure, possibly wrapped)."""
    seen = 0
    while e is not None and seen < 5:
        if isinstance(e, ProcessExecutionFailure):
            return e.stderr.decode(errors="replace")
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
        seen += 1
    return None


@rule(desc="Build a pex_binary for a platform of a container_image")
async def pex_for_platform(request: PexForPlatformRequest) -> PlatformPackage:
    fs = request.field_set
    if fs.platforms.value or fs.complete_platforms.value:
        built = await Get(BuiltPackage, PexBinaryFieldSet, fs)
        return PlatformPackage(request.platform, built.digest, json.dumps(
            {"source": "pex_binary", "target": str(fs.address)}, sort_keys=True))
    cp = await Get(ImageCompletePlatform, ImageCompletePlatformRequest(
        request.image, request.platform, request.base, request.file))
    own = await Get(PexFromTargetsRequestForBuiltPackage, PexBinaryFieldSet, fs)
    pft = dataclasses.replace(own.request, platforms=PexPlatforms(), complete_platforms=cp.complete_platforms,
                              description=f"Building {fs.address} for {request.platform} (in {request.image})")
    try:
        pex = await Get(Pex, PexFromTargetsRequest, pft)
    except Exception as e:
        stderr = _stderr_of(e) or str(e)
        missing = unsatisfied_distributions(stderr)
        if not missing:
            raise
        names = ", ".join(missing)
        raise PexPlatformError(
            f"{request.image}: steps[{request.index}] copies {fs.address} into its {request.platform} variant, "
            f"but {names} has no wheel for that platform's interpreter ({describe(cp.origin)}) in the lockfile "
            f"of {fs.address}'s resolve, and a source distribution cannot be built for another platform. Use a "
            f"version of {names} that publishes a wheel for {request.platform} and regenerate the lockfile "
            f"(`pants generate-lockfiles`), or drop {request.platform} from the image's `platforms`.",
            image=str(request.image), target=str(fs.address), platform=request.platform,
            distributions=missing) from None
    return PlatformPackage(request.platform, pex.digest, cp.origin)


def rules():
    return [*collect_rules(), UnionRule(PlatformPackageRequest, PexForPlatformRequest)]
