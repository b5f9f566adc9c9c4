"""Per-platform copy sources: the variant of an image for one platform.

A :class:`~llbkit.image.spec.PlatformSource` names a build-context source per platform (a PEX
built for each platform's interpreter). :func:`for_platform` replaces every one of them in a
spec's graph (its base chain, the images its copies read and its runs mount) by the source of
one platform, so lowering sees only plain :class:`~llbkit.image.spec.ContextSource` values:
each platform's definition loads exactly its own files from the build context.
:func:`platform_copies` lists them, for what a frontend reports (``image.json``, ``peek``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Tuple

from llbkit.image.errors import ImageSpecError
from llbkit.image.spec import (
    AddStep,
    BindMount,
    CacheMount,
    ContextSource,
    CopyStep,
    ImageSource,
    ImageSpec,
    PlatformSource,
    RunStep,
    SpecBase,
    image_graph,
)

__all__ = ["for_platform", "platform_copies", "MissingPlatformSourceError"]


class MissingPlatformSourceError(ImageSpecError):
    """A per-platform source has nothing for the platform the image is lowered for."""


def _pick(spec: ImageSpec, where: str, src: PlatformSource, platform: str) -> ContextSource:
    chosen = src.for_platform(platform)
    if chosen is None:
        have = [p for p, _ in src.sources]
        fix = f"give it a source for {platform} too (it has {', '.join(have)}), or drop {platform} from the platforms"
        raise MissingPlatformSourceError.for_field(spec.name, where, platform, "no per-platform source for", fix)
    return chosen


def for_platform(spec: ImageSpec, platform: str) -> ImageSpec:
    """``spec`` with every per-platform source in its graph replaced by ``platform``'s (the same
    object when it has none, so specs without them lower exactly as before)."""
    memo: Dict[int, ImageSpec] = {}

    def visit(s: ImageSpec) -> ImageSpec:
        if id(s) in memo:
            return memo[id(s)]
        base = s.base
        if isinstance(base, SpecBase):
            new_base = visit(base.spec)
            if new_base is not base.spec:
                base = SpecBase(new_base)
        steps = []
        for i, step in enumerate(s.steps):
            steps.append(_step(s, i, step))
        out = s if base is s.base and all(a is b for a, b in zip(steps, s.steps)) else dataclasses.replace(
            s, base=base, steps=tuple(steps))
        memo[id(s)] = out
        return out

    def _step(s: ImageSpec, i: int, step: Any) -> Any:
        if isinstance(step, (CopyStep, AddStep)):
            src = step.source
            if isinstance(src, PlatformSource):
                return dataclasses.replace(step, source=_pick(s, f"steps[{i}].source", src, platform))
            if isinstance(src, ImageSource) and isinstance(src.image, ImageSpec):
                image = visit(src.image)
                if image is not src.image:
                    return dataclasses.replace(step, source=ImageSource(image, src.path))
            return step
        if isinstance(step, RunStep):
            mounts = list(step.mounts)
            changed = False
            for j, m in enumerate(mounts):
                if isinstance(m, (BindMount, CacheMount)) and isinstance(m.source, SpecBase):
                    image = visit(m.source.spec)
                    if image is not m.source.spec:
                        mounts[j], changed = dataclasses.replace(m, source=SpecBase(image)), True
            return dataclasses.replace(step, mounts=tuple(mounts)) if changed else step
        return step

    return visit(spec)


def platform_copies(spec: ImageSpec) -> List[Tuple[str, int, PlatformSource]]:
    """``(image name, step index, source)`` of every per-platform source in ``spec``'s graph, in
    graph order."""
    out: List[Tuple[str, int, PlatformSource]] = []
    for s in image_graph(spec):
        for i, step in enumerate(s.steps):
            if isinstance(step, (CopyStep, AddStep)) and isinstance(step.source, PlatformSource):
                out.append((s.name, i, step.source))
    return out
