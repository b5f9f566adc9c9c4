"""Marshal a state graph into a ``pb.Definition``, and load one back.

The rules are Go's ``State.Marshal``:

* inputs before users: a depth-first walk from the final state, each input in op order, each
  vertex once;
* every op is serialized deterministically, byte-for-byte as Go's ``client/llb`` does (see
  :func:`serialize_op`), and named ``sha256:<hex>`` of exactly those bytes; two vertices with the
  same bytes are one op (their metadata is merged);
* a last, terminal op with one input (the final state's output) and no body tells buildkitd which
  output is the result; its metadata declares the definition-wide caps.

The walk is iterative, so graphs deeper than Python's recursion limit marshal fine.
"""

from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple

from google.protobuf.message import DecodeError

from llbkit._proto import ops_pb2 as pb
from llbkit.wireformat import varint
from llbkit.llb import caps as _caps
from llbkit.llb.constraints import Constraints, OpMetadata, SourceLocation, SourceMap
from llbkit.llb.errors import InvalidArgumentError, InvalidDefinitionError, LLBError
from llbkit.platforms import Platform, PlatformLike, as_platform, default_platform

if TYPE_CHECKING:  # pragma: no cover
    from llbkit.llb.state import Output, State, Vertex

# serialize/serialize_op take generated messages: package-internal, hence not listed.
__all__ = ["Definition", "OpInput", "OpView", "MarshalContext", "marshal", "load", "digest_of"]


def serialize(msg: Any) -> bytes:
    """Deterministic bytes: fields in field-number order, map entries sorted by key."""
    return msg.SerializeToString(deterministic=True)


def serialize_op(op: "pb.Op") -> bytes:
    """An op's canonical bytes: exactly what Go's ``client/llb`` writes for the same op.

    Go's protobuf runtime, in deterministic mode too, writes a message's oneof fields after all its
    other fields ("historic wire output" order), while Python's writes every field in number
    order. ``pb.Op`` is the one LLB message where that differs: its oneof (``exec``, ``source``,
    ``file``... numbers 2-8) precedes ``platform`` (10) and ``constraints`` (11). Writing the oneof
    last gives ops the same digests as Go-built ones, so graphs built here and by Go frontends
    share buildkitd's cache. Everything below the op body is plain deterministic serialization.
    """
    kind = op.WhichOneof("op")
    if kind is None:
        return serialize(op)
    body = serialize(getattr(op, kind))
    head = pb.Op()
    head.CopyFrom(op)
    head.ClearField(kind)
    number = op.DESCRIPTOR.fields_by_name[kind].number
    return serialize(head) + varint(number << 3 | 2) + varint(len(body)) + body


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class MarshalContext:
    """What an op sees while marshaling: the marshal-wide constraints and its inputs' digests."""

    def __init__(self, base: Constraints, local_unique_id: Optional[str]) -> None:
        self.base = base
        self.local_unique_id = local_unique_id
        self._digests: Dict["Vertex", str] = {}

    def digest(self, vertex: "Vertex") -> str:
        try:
            return self._digests[vertex]
        except KeyError:  # pragma: no cover - the walk marshals inputs first
            raise LLBError(f"marshal: input {type(vertex).__name__} was not marshaled before its user") from None

    def input(self, output: "Output") -> "pb.Input":
        return pb.Input(digest=self.digest(output.vertex), index=output.index)


def _walk(root: "Vertex") -> Iterator["Vertex"]:
    """Post-order over the graph from ``root``: Go's recursive order, without recursion."""
    done = set()
    stack: List[Tuple["Vertex", bool]] = [(root, False)]
    while stack:
        vertex, expanded = stack.pop()
        if vertex in done:
            continue
        if expanded:
            done.add(vertex)
            yield vertex
            continue
        stack.append((vertex, True))
        for inp in reversed(list(vertex.inputs())):
            if inp.vertex not in done:
                stack.append((inp.vertex, False))


class _SourceMaps:
    """Collects source locations per op digest (Go's ``sourceMapCollector``)."""

    def __init__(self) -> None:
        self.maps: List[SourceMap] = []
        self.locations: Dict[str, List[Tuple[int, SourceLocation]]] = {}

    def add(self, digest: str, locations: Sequence[SourceLocation]) -> None:
        for loc in locations:
            try:
                index = self.maps.index(loc.source_map)
            except ValueError:
                index = len(self.maps)
                self.maps.append(loc.source_map)
            self.locations.setdefault(digest, []).append((index, loc))

    def to_pb(self) -> Optional["pb.Source"]:
        if not self.maps:
            return None
        src = pb.Source()
        for m in self.maps:
            src.infos.add(filename=m.filename, data=m.data, language=m.language)
        for digest, locs in self.locations.items():
            entry = src.locations[digest]
            for index, loc in locs:
                pl = entry.locations.add(sourceIndex=index)
                for r in loc.ranges:
                    pr = pl.ranges.add()
                    pr.start.line, pr.start.character = r.start.line, r.start.character
                    pr.end.line, pr.end.character = r.end.line, r.end.character
        return src


def marshal(
    state: "State",
    *,
    platform: Optional[PlatformLike] = None,
    constraints: Optional[Constraints] = None,
    local_unique_id: Optional[str] = None,
) -> "Definition":
    """Marshal ``state`` and everything it depends on into a :class:`Definition`.

    ``platform`` is the default for ops that do not pick one (the host's Linux platform when
    omitted, as in Go; compilers should always pass it). ``constraints`` apply to every op.
    ``local_unique_id`` is written into ``local`` sources that have no session id: pass an id
    derived from the build context (e.g. its content digest) so that equal contexts share cache
    and different clients never share a transfer; by default the attribute is omitted.
    """
    if constraints is not None and not isinstance(constraints, Constraints):
        raise InvalidArgumentError(f"marshal: constraints must be a Constraints, got {constraints!r}")
    if local_unique_id is not None and (not isinstance(local_unique_id, str) or not local_unique_id):
        raise InvalidArgumentError(f"marshal: local_unique_id must be a non-empty string, got {local_unique_id!r}")
    base = constraints or Constraints()
    p = as_platform(platform, op="marshal") if platform is not None else (base.platform or default_platform())
    base = base.with_platform(p)
    if state.output is None:
        return Definition((), {})

    ctx = MarshalContext(base, local_unique_id)
    defs: List[bytes] = []
    seen = set()
    metadata: Dict[str, OpMetadata] = {}
    sources = _SourceMaps()
    for vertex in _walk(state.output.vertex):
        op, md, locations = vertex.marshal_op(ctx)
        data = serialize_op(op)
        dgst = digest_of(data)
        ctx._digests[vertex] = dgst
        metadata[dgst] = metadata[dgst].merge(md) if dgst in metadata else md
        sources.add(dgst, locations)
        if dgst not in seen:
            seen.add(dgst)
            defs.append(data)

    terminal = pb.Op()
    terminal.inputs.append(ctx.input(state.output))
    data = serialize_op(terminal)
    dgst = digest_of(data)
    defs.append(data)
    term_caps = {_caps.CONSTRAINTS, _caps.PLATFORM}
    for md in metadata.values():
        if md.ignore_cache:
            term_caps.add(_caps.META_IGNORE_CACHE)
        if md.description:
            term_caps.add(_caps.META_DESCRIPTION)
        if md.export_cache is not None:
            term_caps.add(_caps.META_EXPORT_CACHE)
    metadata[dgst] = metadata.get(dgst, OpMetadata()).with_caps(*term_caps)
    return Definition(defs, metadata, sources.to_pb())


@dataclass(frozen=True)
class OpInput:
    """An edge: output ``index`` of op ``digest``."""

    digest: str
    index: int = 0


@dataclass(frozen=True, eq=False)
class OpView:
    """A read-only view of one marshaled op, free of generated types.

    ``body`` is the op kind's fields as plain data in the shape ``buildctl debug dump-llb`` prints
    (proto field names, enums as numbers, bytes as base64), except that nothing is dropped: file
    symlink actions appear here although buildctl's JSON omits them.
    """

    digest: str
    data: bytes
    kind: str
    inputs: Tuple[OpInput, ...]
    platform: Optional[Platform]
    worker_constraints: Tuple[str, ...]
    metadata: OpMetadata
    body: Mapping[str, Any]

    @property
    def is_terminal(self) -> bool:
        return self.kind == ""


class Definition:
    """A marshaled LLB graph: op bytes (inputs first, terminal op last) and per-op metadata.

    Wraps ``pb.Definition`` without exposing it. ``to_bytes()`` is deterministic; ``load`` parses
    bytes from any client (Go's included) back into a ``Definition``.
    """

    __slots__ = ("_defs", "_digests", "_metadata", "_md_pb", "_source", "_ops")

    def __init__(
        self,
        defs: Sequence[bytes],
        metadata: Mapping[str, Any],
        source: Optional["pb.Source"] = None,
    ) -> None:
        # Built by marshal() and load(); ``metadata`` values are OpMetadata or pb.OpMetadata.
        self._defs: Tuple[bytes, ...] = tuple(defs)
        self._digests: Tuple[str, ...] = tuple(digest_of(d) for d in self._defs)
        # The wire form is kept as is, so that dumping a loaded definition shows exactly what
        # another client wrote (a cap mapped to false, say); the hand-written form is derived.
        md_pb: Dict[str, pb.OpMetadata] = {}
        for dgst, md in metadata.items():
            if isinstance(md, OpMetadata):
                md_pb[dgst] = md._to_pb()
            else:
                copy = pb.OpMetadata()
                copy.CopyFrom(md)
                md_pb[dgst] = copy
        self._md_pb = md_pb
        self._metadata = types.MappingProxyType(
            {k: (v if isinstance(v, OpMetadata) else OpMetadata._from_pb(v)) for k, v in metadata.items()}
        )
        self._source = source
        self._ops: Optional[Tuple[OpView, ...]] = None

    def _metadata_pb(self, digest: str) -> Optional["pb.OpMetadata"]:
        return self._md_pb.get(digest)

    # -- raw data -------------------------------------------------------------------------------

    @property
    def defs(self) -> Tuple[bytes, ...]:
        """The serialized ops, in order."""
        return self._defs

    @property
    def digests(self) -> Tuple[str, ...]:
        """``sha256:<hex>`` of each op's bytes, in order."""
        return self._digests

    @property
    def metadata(self) -> Mapping[str, OpMetadata]:
        return self._metadata

    def __len__(self) -> int:
        return len(self._defs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Definition):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self._digests)

    def __repr__(self) -> str:
        return f"<Definition {len(self)} ops head={self.head}>"

    # -- structure -------------------------------------------------------------------------------

    @property
    def terminal(self) -> Optional[str]:
        """Digest of the terminal op (the last one), or ``None`` for an empty definition."""
        return self._digests[-1] if self._digests else None

    @property
    def head(self) -> Optional[str]:
        """Digest of the op whose output is the result (the terminal op's input)."""
        ops = self.ops
        if not ops or not ops[-1].inputs:
            return None
        return ops[-1].inputs[0].digest

    @property
    def ops(self) -> Tuple[OpView, ...]:
        if self._ops is None:
            from llbkit.llb.dump import _op_body

            views = []
            for data, dgst in zip(self._defs, self._digests):
                op = _parse_op(data, dgst)
                kind = op.WhichOneof("op") or ""
                platform = None
                if op.HasField("platform"):
                    p = op.platform
                    platform = Platform(p.OS, p.Architecture, p.Variant, p.OSVersion, tuple(p.OSFeatures))
                views.append(
                    OpView(
                        digest=dgst,
                        data=data,
                        kind=kind,
                        inputs=tuple(OpInput(i.digest, i.index) for i in op.inputs),
                        platform=platform,
                        worker_constraints=tuple(op.constraints.filter),
                        metadata=self._metadata.get(dgst, OpMetadata()),
                        body=_op_body(op, buildctl_compat=False) if kind else {},
                    )
                )
            self._ops = tuple(views)
        return self._ops

    def op(self, digest: str) -> OpView:
        for view in self.ops:
            if view.digest == digest:
                return view
        raise KeyError(digest)

    def required_caps(self) -> FrozenSet[str]:
        """Every cap any op of this definition declares."""
        out: set = set()
        for md in self._metadata.values():
            out |= md.caps
        return frozenset(out)

    # -- wire -----------------------------------------------------------------------------------

    def _to_pb(self) -> "pb.Definition":
        """The ``pb.Definition`` (for llbkit's own client code; not part of the public API)."""
        d = pb.Definition()
        getattr(d, "def").extend(self._defs)  # "def" is a Python keyword, hence getattr
        for dgst, md in self._md_pb.items():
            d.metadata[dgst].CopyFrom(md)
        if self._source is not None:
            d.Source.CopyFrom(self._source)
        return d

    def to_bytes(self) -> bytes:
        """The serialized ``pb.Definition``, deterministic like every op."""
        return serialize(self._to_pb())

    @classmethod
    def from_bytes(cls, data: bytes) -> "Definition":
        return load(data)


def _parse_op(data: bytes, dgst: str) -> "pb.Op":
    op = pb.Op()
    try:
        op.ParseFromString(data)
    except DecodeError as e:
        raise InvalidDefinitionError(f"load: op {dgst} does not decode as pb.Op: {e}") from e
    return op


def load(data: bytes) -> Definition:
    """Parse ``pb.Definition`` bytes (ours or any client's) and check the graph is well formed:
    every op decodes and every input names an earlier op."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidDefinitionError(f"load: expected bytes, got {type(data).__name__}")
    d = pb.Definition()
    try:
        d.ParseFromString(bytes(data))
    except DecodeError as e:
        raise InvalidDefinitionError(f"load: bytes do not decode as pb.Definition: {e}") from e
    defs = list(getattr(d, "def"))
    known = set()
    for raw in defs:
        dgst = digest_of(raw)
        op = _parse_op(raw, dgst)
        for i, inp in enumerate(op.inputs):
            if inp.digest not in known:
                raise InvalidDefinitionError(
                    f"load: op {dgst} input {i} names {inp.digest!r}, which is not an earlier op"
                )
            if inp.index < 0:
                raise InvalidDefinitionError(f"load: op {dgst} input {i} has negative output index {inp.index}")
        known.add(dgst)
    metadata = dict(d.metadata.items())
    source = pb.Source() if d.HasField("Source") else None
    if source is not None:
        source.CopyFrom(d.Source)
    return Definition(defs, metadata, source)
