"""Planning a multi-platform image: what a builder solves, one :class:`Lowered` per platform.

``registry_bases(spec)`` lists the registry images whose configs the caller must resolve (per
platform) before ``plan``; ``plan`` lowers the spec for each platform in the spec's order (the
order of the output index).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from llbkit.image.errors import ImageSpecError
from llbkit.image.lower import BaseConfigs, Lowered, lower
from llbkit.image.spec import ImageSpec, RegistryBase, image_graph, normalize_platforms, validate_spec

__all__ = ["plan", "registry_bases"]


def registry_bases(spec: ImageSpec) -> List[str]:
    """The normalized references of the registry images in ``spec``'s base chain and in the chains
    of the images its copies read and its runs mount (:func:`~llbkit.image.spec.image_graph`;
    nearest first, each once): the configs ``lower`` and ``plan`` need in ``base_configs``."""
    validate_spec(spec)
    out: List[str] = []
    for s in image_graph(spec):
        if isinstance(s.base, RegistryBase) and s.base.normalized not in out:
            out.append(s.base.normalized)
    return out


def plan(
    spec: ImageSpec,
    *,
    base_configs: Optional[BaseConfigs] = None,
    context_digest: Optional[str] = None,
    source_date_epoch: Optional[int] = None,
    default_platforms: Sequence[str] = (),
) -> Tuple[Lowered, ...]:
    """Lower ``spec`` for each of its platforms (``default_platforms`` when it lists none), in
    order. ``base_configs`` is keyed by ``(ref, platform)`` for bases that differ per platform."""
    validate_spec(spec)
    platforms = normalize_platforms(spec.platforms or default_platforms, spec_name=spec.name)
    if not platforms:
        raise ImageSpecError(
            f"{spec.name}: field 'platforms': no platform to build for: list some, e.g. ['linux/amd64'], "
            f"or configure default platforms"
        )
    return tuple(
        lower(spec, p, base_configs=base_configs, context_digest=context_digest, source_date_epoch=source_date_epoch)
        for p in platforms
    )
