"""Checking, before a solve, that the daemon can build the platforms a definition asks for.

buildkitd does not say "unsupported platform": a definition for a platform none of its workers
runs fails later and obscurely (``no match for platform in manifest`` when pulling a base image,
``exec format error`` in a RUN), and a platform given only for the image config is not checked at
all. :func:`check_platforms` compares the platforms with ``ListWorkers`` first and raises
:class:`UnsupportedPlatformError`, which names the platform, the daemon and what it can build.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Sequence, Tuple

from llbkit.errors import BuildKitError
from llbkit.platforms import Platform, find_platform, format_platform, normalize_platform

__all__ = [
    "UnsupportedPlatformError",
    "definition_platforms",
    "platform_supported",
    "check_platforms",
]


class UnsupportedPlatformError(BuildKitError):
    """No worker of the daemon can build ``platform`` (``supported``: what the workers build)."""

    def __init__(self, message: str, platform: str, supported: Sequence[str]) -> None:
        super().__init__(message)
        self.platform = platform
        self.supported: Tuple[str, ...] = tuple(supported)


def definition_platforms(definition: Any) -> List[str]:
    """The platforms a definition's ops name (``llb.Definition`` or its bytes), sorted."""
    from llbkit._proto import ops_pb2

    data = definition if isinstance(definition, (bytes, bytearray)) else definition.to_bytes()
    d = ops_pb2.Definition.FromString(bytes(data))
    out = set()
    for raw in getattr(d, "def"):
        op = ops_pb2.Op.FromString(raw)
        if op.HasField("platform") and op.platform.OS:
            p = op.platform
            out.add(format_platform(normalize_platform(Platform(p.OS, p.Architecture, p.Variant))))
    return sorted(out)


def platform_supported(platform: str, worker_platforms: Iterable[str]) -> bool:
    """Whether one of ``worker_platforms`` is ``platform`` (:func:`llbkit.platforms.platform_matches`:
    ``linux/arm64/v8`` is ``linux/arm64``; ``linux/amd64/v4`` needs a worker listing it)."""
    return find_platform(platform, worker_platforms) is not None


def check_platforms(client: Any, platforms: Iterable[str]) -> None:
    """Raise :class:`UnsupportedPlatformError` unless a worker of ``client``'s daemon builds
    each of ``platforms`` (one ``ListWorkers`` request; nothing when ``platforms`` is empty)."""
    wanted = [p for p in dict.fromkeys(platforms) if p]
    if not wanted:
        return
    workers = client.list_workers()
    supported = list(dict.fromkeys(p for w in workers for p in w.platforms))
    for p in wanted:
        if platform_supported(p, supported):
            continue
        natives = ", ".join(dict.fromkeys(w.platforms[0] for w in workers if w.platforms)) or "none"
        raise UnsupportedPlatformError(
            f"cannot build for {p}: buildkitd at {client.address} has no worker for it (its workers "
            f"build {', '.join(supported) or 'nothing'}; native: {natives}). Build for one of "
            f"those platforms, use a daemon that runs on {p}, or install a QEMU emulator for it "
            "(binfmt_misc) on the daemon's host and restart buildkitd.",
            p, supported,
        )
