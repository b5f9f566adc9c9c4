"""The references an image is known by: `REGISTRY/REPOSITORY:TAG`, one definition for every goal."""

from __future__ import annotations

from typing import Sequence, Tuple


def image_references(repository: str, tags: Sequence[str], registries: Sequence[str]) -> Tuple[str, ...]:
    """`REGISTRY/REPOSITORY:TAG` for each registry (in order) and tag, each once;
    `REPOSITORY:TAG` without registries. No tags: no references (the image has its digest only)."""
    prefixes = [f"{r}/{repository}" for r in dict.fromkeys(registries)] or [repository]
    return tuple(f"{p}:{t}" for p in prefixes for t in dict.fromkeys(tags))
