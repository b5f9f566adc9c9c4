"""The base-image lockfile of a resolve, as the workspace holds it, and each image's resolve.

`ImageResolveRequest(address)` -> `ImageResolve`: the target's `resolve` field, else
`[base-images].default_resolve`, checked against `[base-images].resolves`.
`BaseLockRequest(resolve)` -> `LoadedBaseLock`: the lockfile parsed (`lock` is `None` when the
file does not exist). The file is read through the engine, so editing or regenerating it
invalidates what was built from it, with or without pantsd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from pants.engine.addresses import Address
from pants.engine.fs import DigestContents, PathGlobs
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.util.docutil import bin_name

from llbkit_pants.subsystems.base_images import BaseImagesSubsystem
from llbkit_pants.target_types import ContainerImageResolveField
from llbkit_pants.util_rules.base_chain import field_error

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.builder.base_lock import BaseLock


class BaseLockfileError(Exception):
    """A lockfile that cannot be read (the message names the file and the fix)."""


def regenerate_command(resolve: str) -> str:
    return f"{bin_name()} generate-lockfiles --resolve={resolve}"


@dataclass(frozen=True)
class ImageResolveRequest:
    address: Address


@dataclass(frozen=True)
class ImageResolve:
    name: str
    lockfile: str  # its path, relative to the build root


@dataclass(frozen=True)
class BaseLockRequest:
    resolve: str


@dataclass(frozen=True)
class LoadedBaseLock:
    resolve: str
    path: str
    lock: Optional[BaseLock]  # None: the lockfile does not exist


@rule(desc="Find a container_image's resolve")
async def image_resolve(request: ImageResolveRequest, base_images: BaseImagesSubsystem) -> ImageResolve:
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin=str(request.address)))
    name = wrapped.target[ContainerImageResolveField].value or base_images.default_resolve
    if name not in base_images.resolves:
        known = ", ".join(sorted(base_images.resolves)) or "none"
        if wrapped.target[ContainerImageResolveField].value:
            raise field_error(request.address, "resolve", (
                f"{name!r} is not a resolve of [base-images].resolves (it has: {known}): use one of "
                f"those, or add `{name} = \"PATH.lock\"` to `[base-images].resolves` in pants.toml."))
        raise BaseLockfileError(
            f"[base-images].default_resolve is {name!r}, which is not a key of [base-images].resolves "
            f"(it has: {known}): set default_resolve to one of those, or add it to resolves.")
    return ImageResolve(name, base_images.resolves[name])


@rule(desc="Read a base-image lockfile")
async def load_base_lock(request: BaseLockRequest, base_images: BaseImagesSubsystem) -> LoadedBaseLock:
    from llbkit.builder.base_lock import BaseLock, BaseLockError

    path = base_images.resolves[request.resolve]
    contents = await Get(DigestContents, PathGlobs([path]))
    if not contents:
        return LoadedBaseLock(request.resolve, path, None)
    try:
        lock = BaseLock.parse(contents[0].content, path)
    except BaseLockError as e:
        raise BaseLockfileError(f"{e}; regenerate it with `{regenerate_command(request.resolve)}`") from None
    return LoadedBaseLock(request.resolve, path, lock)


def rules():
    return collect_rules()
