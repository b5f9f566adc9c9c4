"""Constraints and op metadata: what every op carries besides its own fields.

``Constraints`` says where an op may run (platform, worker filters) and carries its metadata
(custom name, ignore-cache, progress group, export-cache, resource limits, source locations,
required caps). Metadata lives beside the op bytes in ``pb.Definition.metadata``: changing it never
changes an op's digest. ``marshal_constraints`` is Go's ``MarshalConstraints``: it merges the
marshal-wide constraints with one op's own and starts the ``pb.Op`` every op kind fills in.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import FrozenSet, Iterable, Mapping, Optional, Tuple

from llbkit._proto import ops_pb2 as pb
from llbkit.llb.errors import InvalidArgumentError
from llbkit.platforms import Platform, PlatformLike, as_platform, default_platform

__all__ = [
    "CUSTOM_NAME_KEY",
    "ProgressGroup",
    "LinuxResources",
    "Position",
    "Range",
    "SourceMap",
    "SourceLocation",
    "OpMetadata",
    "Constraints",
    "op_constraints",
]

CUSTOM_NAME_KEY = "llb.customname"
"""The description key buildkitd shows as a vertex's name in progress output."""

_EMPTY_MAP: Mapping[str, str] = types.MappingProxyType({})


@dataclass(frozen=True)
class ProgressGroup:
    """Groups vertices under one heading in progress output."""

    id: str
    name: str = ""
    weak: bool = False


@dataclass(frozen=True)
class LinuxResources:
    """Cgroup limits for one run. Metadata: they do not change the cache key."""

    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""


@dataclass(frozen=True)
class Position:
    line: int
    character: int = 0


@dataclass(frozen=True)
class Range:
    start: Position
    end: Position


@dataclass(frozen=True)
class SourceMap:
    """A source file (e.g. a BUILD file) that ops can point back to, for error messages."""

    filename: str
    data: bytes = b""
    language: str = ""

    def location(self, *ranges: Range) -> "SourceLocation":
        return SourceLocation(self, tuple(ranges))


@dataclass(frozen=True)
class SourceLocation:
    source_map: SourceMap
    ranges: Tuple[Range, ...] = ()


def _freeze_map(value: Optional[Mapping[str, str]], *, op: str) -> Mapping[str, str]:
    if not value:
        return _EMPTY_MAP
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"{op}: description entries must be strings, got {k!r}: {v!r}")
        out[k] = v
    return types.MappingProxyType(dict(sorted(out.items())))


@dataclass(frozen=True)
class OpMetadata:
    """Hand-written mirror of ``pb.OpMetadata``: per-op metadata kept beside the op bytes."""

    ignore_cache: bool = False
    description: Mapping[str, str] = field(default_factory=lambda: _EMPTY_MAP, hash=False)  # 3.11 refuses unhashable defaults
    export_cache: Optional[bool] = None
    caps: FrozenSet[str] = frozenset()
    progress_group: Optional[ProgressGroup] = None
    linux_resources: Optional[LinuxResources] = None

    @property
    def custom_name(self) -> Optional[str]:
        return self.description.get(CUSTOM_NAME_KEY)

    def merge(self, other: "OpMetadata") -> "OpMetadata":
        """Go's ``mergeMetadata``: ``other`` wins where it sets something; caps are a union."""
        desc = dict(self.description)
        desc.update(other.description)
        return OpMetadata(
            ignore_cache=self.ignore_cache or other.ignore_cache,
            description=types.MappingProxyType(dict(sorted(desc.items()))) if desc else _EMPTY_MAP,
            export_cache=other.export_cache if other.export_cache is not None else self.export_cache,
            caps=self.caps | other.caps,
            progress_group=other.progress_group or self.progress_group,
            linux_resources=other.linux_resources or self.linux_resources,
        )

    def with_caps(self, *caps: str) -> "OpMetadata":
        return OpMetadata(
            self.ignore_cache, self.description, self.export_cache, self.caps | frozenset(caps),
            self.progress_group, self.linux_resources,
        )

    def _to_pb(self) -> "pb.OpMetadata":
        m = pb.OpMetadata(ignore_cache=self.ignore_cache)
        for k, v in self.description.items():
            m.description[k] = v
        if self.export_cache is not None:
            m.export_cache.Value = self.export_cache
            m.export_cache.SetInParent()
        for c in self.caps:
            m.caps[c] = True
        if self.progress_group is not None:
            pg = self.progress_group
            m.progress_group.SetInParent()
            m.progress_group.id, m.progress_group.name, m.progress_group.weak = pg.id, pg.name, pg.weak
        if self.linux_resources is not None:
            r = self.linux_resources
            lr = m.linux_resources
            lr.SetInParent()
            lr.memory, lr.memorySwap = r.memory, r.memory_swap
            lr.cpuShares, lr.cpuPeriod, lr.cpuQuota = r.cpu_shares, r.cpu_period, r.cpu_quota
            lr.cpusetCpus, lr.cpusetMems = r.cpuset_cpus, r.cpuset_mems
        return m

    @classmethod
    def _from_pb(cls, m: "pb.OpMetadata") -> "OpMetadata":
        pg = m.progress_group if m.HasField("progress_group") else None
        lr = m.linux_resources if m.HasField("linux_resources") else None
        return cls(
            ignore_cache=m.ignore_cache,
            description=types.MappingProxyType(dict(sorted(m.description.items()))) if m.description else _EMPTY_MAP,
            export_cache=m.export_cache.Value if m.HasField("export_cache") else None,
            # A cap mapped to false is not required: keep only the true ones.
            caps=frozenset(k for k, v in m.caps.items() if v),
            progress_group=ProgressGroup(pg.id, pg.name, pg.weak) if pg is not None else None,
            linux_resources=LinuxResources(
                lr.memory, lr.memorySwap, lr.cpuShares, lr.cpuPeriod, lr.cpuQuota, lr.cpusetCpus, lr.cpusetMems
            )
            if lr is not None
            else None,
        )


@dataclass(frozen=True)
class Constraints:
    """Where an op may run and the metadata it carries.

    Pass one to any builder (``constraints=``) or to ``State.marshal`` (then it applies to every op
    and is merged under each op's own constraints, as in Go).
    """

    platform: Optional[Platform] = None
    worker_constraints: Tuple[str, ...] = ()
    metadata: OpMetadata = OpMetadata()
    source_locations: Tuple[SourceLocation, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        op: str = "constraints",
        platform: Optional[PlatformLike] = None,
        worker_constraints: Iterable[str] = (),
        custom_name: Optional[str] = None,
        description: Optional[Mapping[str, str]] = None,
        ignore_cache: bool = False,
        export_cache: Optional[bool] = None,
        progress_group: Optional[ProgressGroup] = None,
        linux_resources: Optional[LinuxResources] = None,
        source_locations: Iterable[SourceLocation] = (),
        caps: Iterable[str] = (),
    ) -> "Constraints":
        """Build constraints with validation; the keyword names match the builders' options."""
        desc = dict(description or {})
        if custom_name is not None:
            if not isinstance(custom_name, str) or not custom_name:
                raise InvalidArgumentError(f"{op}: custom_name must be a non-empty string, got {custom_name!r}")
            desc[CUSTOM_NAME_KEY] = custom_name
        if isinstance(worker_constraints, str):
            worker_constraints = (worker_constraints,)
        filters = tuple(worker_constraints)
        for f in filters:
            if not isinstance(f, str) or not f:
                raise InvalidArgumentError(f"{op}: worker constraint must be a non-empty filter string, got {f!r}")
        if progress_group is not None and not isinstance(progress_group, ProgressGroup):
            raise InvalidArgumentError(f"{op}: progress_group must be a ProgressGroup, got {progress_group!r}")
        return cls(
            platform=as_platform(platform, op=op) if platform is not None else None,
            worker_constraints=filters,
            metadata=OpMetadata(
                ignore_cache=bool(ignore_cache),
                description=_freeze_map(desc, op=op),
                export_cache=export_cache,
                caps=frozenset(caps),
                progress_group=progress_group,
                linux_resources=linux_resources,
            ),
            source_locations=tuple(source_locations),
        )

    def merged(self, override: "Constraints") -> "Constraints":
        """``override`` on top of ``self``: its platform wins, filters and locations append."""
        return Constraints(
            platform=override.platform or self.platform,
            worker_constraints=self.worker_constraints + override.worker_constraints,
            metadata=self.metadata.merge(override.metadata),
            source_locations=self.source_locations + override.source_locations,
        )

    def with_caps(self, *caps: str) -> "Constraints":
        return Constraints(
            self.platform, self.worker_constraints, self.metadata.with_caps(*caps), self.source_locations
        )

    def with_platform(self, platform: Optional[Platform]) -> "Constraints":
        return Constraints(platform, self.worker_constraints, self.metadata, self.source_locations)


def op_constraints(
    op: str,
    constraints: Optional[Constraints],
    *,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    platform: Optional[PlatformLike] = None,
) -> Constraints:
    """Combine a builder's ``constraints=`` with its shortcut keywords into one op's constraints."""
    if constraints is not None and not isinstance(constraints, Constraints):
        raise InvalidArgumentError(f"{op}: constraints must be a Constraints, got {constraints!r}")
    base = constraints or Constraints()
    if custom_name is None and not ignore_cache and platform is None:
        return base
    return base.merged(Constraints.of(op=op, custom_name=custom_name, ignore_cache=ignore_cache, platform=platform))


def marshal_constraints(base: Constraints, own: Constraints) -> Tuple["pb.Op", OpMetadata]:
    """Start an op the way every op kind does: platform, worker constraints, merged metadata.

    The ``constraints`` sub-message is always present (possibly empty), exactly as Go writes it:
    its presence is part of the bytes, hence of the digest.
    """
    c = base.merged(own)
    p = c.platform or default_platform()
    op = pb.Op()
    op.platform.Architecture = p.architecture
    op.platform.OS = p.os
    op.platform.Variant = p.variant
    op.platform.OSVersion = p.os_version
    op.platform.OSFeatures.extend(p.os_features)
    op.constraints.SetInParent()
    op.constraints.filter.extend(c.worker_constraints)
    return op, c.metadata
