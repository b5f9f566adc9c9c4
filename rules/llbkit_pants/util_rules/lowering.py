"""Lower a `container_image`'s spec to one LLB definition per platform, as `package` does.

The same inputs as `package`: `[buildkit].platforms` when the target lists none, registry bases
resolved through `llbkit.builder.resolve_bases` (a tag pinned to the digest the registry names
now; a base given by digest comes from the content cache), the build context's content digest,
and `[buildkit].source_date_epoch`. So what `pants llb` prints is what `package` solves. A
buildkitd (configured workers, or the auto-started local one) is reached only when a registry
cannot be asked directly.
"""

from __future__ import annotations

from typing import Tuple

from pants.engine.addresses import Address

from llbkit.builder import ImageCache, LazyPool, resolve_bases
from llbkit.errors import LlbkitError
from llbkit.image import ImageSpecError, Lowered, normalize_platforms, plan
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.util_rules.image_spec import ContainerImageSpec


class ContainerImageLoweringError(Exception):
    """A container image could not be lowered (the message says which, where and why)."""


def worker_pool(buildkit: BuildKitSubsystem) -> LazyPool:
    """The `[buildkit]` workers as a pool made on first use (so nothing is contacted when every
    base can be resolved from the registry or the cache)."""
    try:
        return buildkit.lazy_pool()
    except (ValueError, LlbkitError) as e:
        raise ContainerImageLoweringError(f"invalid [buildkit] option: {e}") from None


def image_platforms(address: Address, image: ContainerImageSpec, buildkit: BuildKitSubsystem) -> Tuple[str, ...]:
    """The target's platforms, else `[buildkit].platforms`, normalized (`linux/x86_64` -> `linux/amd64`)."""
    spec = image.spec
    try:
        return normalize_platforms(spec.platforms or buildkit.platforms, spec_name=spec.name)
    except ImageSpecError as e:
        raise ContainerImageLoweringError(f"invalid [buildkit].platforms: {e}") from None


def lower_image(address: Address, image: ContainerImageSpec, buildkit: BuildKitSubsystem) -> Tuple[Lowered, ...]:
    """One `Lowered` per platform, in the target's platform order, exactly as `package` plans it."""
    platforms = image_platforms(address, image, buildkit)
    pool = worker_pool(buildkit)
    try:
        bases = resolve_bases(image.spec, platforms, pool, ImageCache())
        return plan(image.spec, base_configs=bases, context_digest=image.context_digest,
                    source_date_epoch=buildkit.source_date_epoch, default_platforms=platforms)
    except LlbkitError as e:
        raise ContainerImageLoweringError(f"failed to lower {address}: {e}") from None
    finally:
        pool.close()
