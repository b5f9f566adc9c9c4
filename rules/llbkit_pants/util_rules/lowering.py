"""Lower a `container_image` to one LLB definition per platform: what `package` solves and `llb` prints.

`LoweredImageRequest(address)` -> `LoweredImage`: the target's platforms (else
`[buildkit].platforms`), its registry bases resolved (from the base-image lockfile where it
holds them, see `util_rules.bases`), the build context's content digest and
`[buildkit].source_date_epoch`, lowered by `llbkit.image.plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, Tuple

from pants.engine.addresses import Address
from pants.engine.fs import Digest
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import InvalidFieldException

from llbkit_pants.dockerfile.layout_base import DockerfileLayoutBase, DockerfileLayoutBaseRequest
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem, check_options
from llbkit_pants.util_rules.base_chain import ContainerImageChain, ContainerImageChainRequest
from llbkit_pants.util_rules.bases import ImageBases, ImageBasesRequest
from llbkit_pants.util_rules.image_spec import ContainerImageSpec, ContainerImageSpecRequest

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.image import Lowered


class ContainerImageLoweringError(Exception):
    """A container image could not be lowered (the message says which, where and why)."""


@dataclass(frozen=True)
class LoweredImageRequest:
    address: Address


@dataclass(frozen=True)
class LoweredImage:
    image: ContainerImageSpec
    platforms: Tuple[str, ...]
    lowered: Tuple[Lowered, ...]
    events: Tuple[str, ...]  # what resolving the bases reported (e.g. a worker used as fallback)
    # The OCI layouts its build reads (a dockerfile_image base): (store name, tar digest, its path).
    layouts: Tuple[Tuple[str, Digest, str], ...] = ()


def image_platforms(image: ContainerImageSpec, buildkit: BuildKitSubsystem) -> Tuple[str, ...]:
    """The target's platforms, else `[buildkit].platforms`, normalized (`linux/x86_64` -> `linux/amd64`)."""
    return declared_platforms(image.address, image.spec.platforms, buildkit)


def declared_platforms(address: Address, declared: Sequence[str], buildkit: BuildKitSubsystem) -> Tuple[str, ...]:
    """A target's `platforms` field value, else `[buildkit].platforms`, normalized."""
    from llbkit.image import ImageSpecError, normalize_platforms

    if declared:
        try:
            return tuple(normalize_platforms(declared, spec_name=str(address)))
        except ImageSpecError as e:
            raise InvalidFieldException(f"Invalid field `platforms` in container_image target {address}: {e}") from None
    check_options(buildkit)  # names the option and the bad value
    return tuple(normalize_platforms(buildkit.platforms, spec_name=str(address)))


@rule(desc="Lower a container_image to LLB")
async def lower_container_image(request: LoweredImageRequest, buildkit: BuildKitSubsystem) -> LoweredImage:
    from llbkit.errors import LlbkitError
    from llbkit.image import plan, registry_bases

    image = await Get(ContainerImageSpec, ContainerImageSpecRequest(request.address))
    platforms = image_platforms(image, buildkit)
    bases = await Get(ImageBases, ImageBasesRequest(request.address, tuple(registry_bases(image.spec)), platforms))
    configs: dict = dict(bases.configs())
    layouts: Tuple[Tuple[str, Digest, str], ...] = ()
    chain = await Get(ContainerImageChain, ContainerImageChainRequest(request.address))
    if chain.dockerfile_base is not None:
        # Built on a dockerfile_image: its packaged OCI layout, pinned by manifest digest.
        from llbkit.image import LayoutBase, ResolvedBase

        layout = await Get(DockerfileLayoutBase, DockerfileLayoutBaseRequest(chain.dockerfile_base, platforms))
        for p, digest, config in layout.bases:
            configs[(LayoutBase(layout.name).key, p)] = ResolvedBase(config, digest)
        layouts = ((layout.name, layout.tar, layout.path),)
    try:
        lowered = plan(image.spec, base_configs=configs, context_digest=image.context_digest,
                       source_date_epoch=buildkit.source_date_epoch, default_platforms=platforms)
    except LlbkitError as e:
        raise ContainerImageLoweringError(f"failed to lower {request.address}: {e}") from None
    return LoweredImage(image, platforms, tuple(lowered), bases.events, layouts)


def rules():
    return collect_rules()
