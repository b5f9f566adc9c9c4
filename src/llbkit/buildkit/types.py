"""The client's own result types: workers, disk usage, solve results (no protobuf types leak)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = [
    "BuildkitVersion",
    "GCPolicy",
    "WorkerInfo",
    "DaemonInfo",
    "UsageRecord",
    "SolveResult",
]


@dataclass(frozen=True)
class BuildkitVersion:
    package: str = ""
    version: str = ""
    revision: str = ""

    def __str__(self) -> str:
        return " ".join(x for x in (self.package, self.version, self.revision) if x)


@dataclass(frozen=True)
class GCPolicy:
    """One garbage-collection rule of a worker (sizes in bytes, durations in seconds)."""

    all: bool = False
    filters: Tuple[str, ...] = ()
    keep_duration: float = 0.0
    reserved_space: int = 0
    max_used_space: int = 0
    min_free_space: int = 0


@dataclass(frozen=True)
class WorkerInfo:
    """A buildkitd worker. ``platforms[0]`` is its native platform (``os/arch[/variant]``)."""

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    platforms: Tuple[str, ...] = ()
    gc_policy: Tuple[GCPolicy, ...] = ()
    version: BuildkitVersion = BuildkitVersion()

    @property
    def native_platform(self) -> Optional[str]:
        return self.platforms[0] if self.platforms else None


@dataclass(frozen=True)
class DaemonInfo:
    version: BuildkitVersion


@dataclass(frozen=True)
class UsageRecord:
    """A build-cache record (``llbkit du``) or a record removed by ``prune``."""

    id: str
    size: int
    mutable: bool = False
    in_use: bool = False
    shared: bool = False
    parents: Tuple[str, ...] = ()
    created_at: Optional[datetime] = None
    last_used_at: Optional[datetime] = None
    usage_count: int = 0
    description: str = ""
    record_type: str = ""


@dataclass(frozen=True)
class SolveResult:
    """What the exporters reported, plus helpers for the common keys.

    ``exporter_response`` is BuildKit's map as is (``containerimage.digest``,
    ``containerimage.descriptor`` (base64 JSON), ``image.name``, ``cache.manifest``...).
    """

    ref: str
    exporter_response: Mapping[str, str] = field(default_factory=dict)

    @property
    def image_digest(self) -> Optional[str]:
        """The exported image's manifest (or index) digest, when an image was exported."""
        return self.exporter_response.get("containerimage.digest")

    @property
    def config_digest(self) -> Optional[str]:
        return self.exporter_response.get("containerimage.config.digest")

    @property
    def image_name(self) -> Optional[str]:
        return self.exporter_response.get("image.name")

    @property
    def descriptor(self) -> Optional[Dict[str, Any]]:
        """The image's OCI descriptor (``mediaType``, ``digest``, ``size``...), decoded."""
        raw = self.exporter_response.get("containerimage.descriptor")
        if not raw:
            return None
        try:
            return json.loads(base64.b64decode(raw))
        except (ValueError, TypeError):
            return None

    def metadata(self) -> Dict[str, Any]:
        """The exporter response the way ``buildctl --metadata-file`` writes it: values that are
        base64 of a non-empty JSON object are decoded, every other value is kept as is."""
        out: Dict[str, Any] = {}
        for key, value in sorted(self.exporter_response.items()):
            out[key] = value
            try:
                obj = json.loads(base64.b64decode(value, validate=True))
            except (ValueError, TypeError):
                continue
            if isinstance(obj, dict) and obj:
                out[key] = obj
        return out


def timestamp_to_datetime(ts: Any) -> Optional[datetime]:
    """A protobuf Timestamp (or None / unset) as an aware UTC datetime."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)
