"""Which buildkitd solves which platform.

A worker is written ``ADDRESS`` or ``ADDRESS=PLATFORM[,PLATFORM...]`` (the platforms it serves
natively), e.g. ``tcp://10.0.0.5:1234=linux/arm64``. A platform goes to the first worker
declaring it, else to the first worker without declared platforms (which emulates what it
does not run natively), else to the first worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from llbkit.buildkit.connection import TLSConfig, parse_address
from llbkit.buildkit.errors import AddressError
from llbkit.image.spec import normalize_platforms
from llbkit.image.errors import ImageSpecError

__all__ = ["WorkerSpec", "Workers", "parse_worker"]


@dataclass(frozen=True)
class WorkerSpec:
    address: str
    platforms: Tuple[str, ...] = ()


def parse_worker(text: str) -> WorkerSpec:
    """``ADDRESS[=PLATFORM,...]`` -> :class:`WorkerSpec`; raises ``ValueError`` with the fix."""
    addr, sep, plats = text.strip().partition("=")
    try:
        parse_address(addr)
    except AddressError as e:
        raise ValueError(f"invalid worker {text!r}: {e}") from None
    platforms: Tuple[str, ...] = ()
    if sep:
        try:
            platforms = normalize_platforms([p.strip() for p in plats.split(",") if p.strip()])
        except ImageSpecError as e:
            raise ValueError(f"invalid worker {text!r}: {e}") from None
        if not platforms:
            raise ValueError(f"invalid worker {text!r}: list platforms after '=', e.g. ADDRESS=linux/arm64")
    return WorkerSpec(addr, platforms)


@dataclass(frozen=True)
class Workers:
    """The configured workers (in order) and the TLS settings for ``tcp://`` ones."""

    workers: Tuple[WorkerSpec, ...]
    tls: Optional[TLSConfig] = None

    def for_platform(self, platform: str) -> WorkerSpec:
        if not self.workers:
            raise ValueError("no buildkitd workers configured")
        for w in self.workers:
            if platform in w.platforms:
                return w
        for w in self.workers:
            if not w.platforms:
                return w
        return self.workers[0]

    def tls_for(self, worker: WorkerSpec) -> Optional[TLSConfig]:
        return self.tls if worker.address.startswith("tcp://") else None


def describe(workers: Sequence[WorkerSpec]) -> str:
    return ", ".join(w.address + ("=" + ",".join(w.platforms) if w.platforms else "") for w in workers)
