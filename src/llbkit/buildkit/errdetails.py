"""BuildKit's typed error details, read from a failed call's ``grpc-status-details-bin`` trailer.

buildkitd (``util/grpcerrors``) packs the typed errors wrapped around a failure into the
``details`` of the gRPC status, each an ``Any`` whose value is the JSON of a BuildKit message and
whose type URL names it: ``github.com/moby/buildkit/errdefs.Vertex+json`` (the failing vertex's
digest), ``errdefs.Source+json`` (a source file with line ranges), ``errdefs.Solve+json`` (the
failing op and its description), ``gatewayapi.ExitMessage+json`` (a process' exit code) and more.
Go stack traces (``stack.Stack+json``) are skipped. These give the failing step and exit code from
the daemon's own data, rather than from its English message.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["ErrorDetails", "SourceRange", "decode_details", "details_from_rpc_error"]

TRAILER = "grpc-status-details-bin"


@dataclass(frozen=True)
class SourceRange:
    """A source location (1-based lines, as BuildKit reports them)."""

    filename: str
    start_line: int
    end_line: int
    lines: Tuple[str, ...] = ()  # the lines of the range, when the source's data came along

    def __str__(self) -> str:
        where = f"{self.filename or '<source>'}:{self.start_line}"
        return where + (f"-{self.end_line}" if self.end_line > self.start_line else "")


@dataclass(frozen=True)
class ErrorDetails:
    """What the daemon said about a failure, beyond its message."""

    vertex: Optional[str] = None  # digest of the failing vertex
    exit_code: Optional[int] = None
    op_args: Tuple[str, ...] = ()  # the failing exec op's command line
    op_kind: Optional[str] = None  # "exec", "file", "source", ...
    description: Mapping[str, str] = field(default_factory=dict)
    sources: Tuple[SourceRange, ...] = ()
    frontend_cap: Optional[str] = None
    subrequest: Optional[str] = None
    types: Tuple[str, ...] = ()  # every detail type seen, for debugging

    @property
    def empty(self) -> bool:
        return not (self.vertex or self.exit_code is not None or self.op_kind or self.sources
                    or self.frontend_cap or self.subrequest)


def _json(value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return None


def _source(obj: Mapping[str, Any]) -> List[SourceRange]:
    info = obj.get("info") or {}
    filename = str(info.get("filename") or "")
    text: List[str] = []
    if info.get("data"):
        try:
            text = base64.b64decode(info["data"]).decode("utf-8", "replace").splitlines()
        except (ValueError, TypeError):
            text = []
    out = []
    for r in obj.get("ranges") or ():
        start = int(((r.get("start") or {}).get("line")) or 0)
        end = int(((r.get("end") or {}).get("line")) or start)
        snippet = tuple(text[max(start - 1, 0):max(end, start)]) if text and start else ()
        out.append(SourceRange(filename, start, end, snippet))
    return out


def _op(op: Mapping[str, Any]) -> Tuple[Optional[str], Tuple[str, ...]]:
    """The kind of a pb.Op in Go's JSON (``{"Op": {"Exec": {...}}}``) and an exec's args."""
    inner = op.get("Op") or {}
    for key, value in inner.items() if isinstance(inner, dict) else ():
        kind = key.lower()
        if kind == "exec":
            args = ((value or {}).get("meta") or {}).get("args") or ()
            return kind, tuple(str(a) for a in args)
        return kind, ()
    return None, ()


def decode_details(details: Sequence[Tuple[str, bytes]]) -> ErrorDetails:
    """``(type_url, value)`` pairs of a status' details, as :class:`ErrorDetails`."""
    fields: Dict[str, Any] = {"types": []}
    sources: List[SourceRange] = []
    for type_url, value in details:
        name = type_url.rsplit("/", 1)[-1]
        fields["types"].append(name)
        if not name.endswith("+json"):
            continue  # an older daemon's binary encoding: the message text still says it all
        obj = _json(value)
        if not isinstance(obj, dict):
            continue
        name = name[: -len("+json")]
        if name == "errdefs.Vertex" and obj.get("digest"):
            fields.setdefault("vertex", str(obj["digest"]))
        elif name == "gatewayapi.ExitMessage":
            fields.setdefault("exit_code", int(obj.get("Code") or obj.get("code") or 0))
        elif name == "errdefs.Source":
            sources.extend(_source(obj))
        elif name == "errdefs.Solve":
            kind, args = _op(obj.get("op") or {})
            fields.setdefault("op_kind", kind)
            fields.setdefault("op_args", args)
            fields.setdefault("description", dict(obj.get("description") or {}))
        elif name == "errdefs.FrontendCap":
            fields.setdefault("frontend_cap", obj.get("name"))
        elif name == "errdefs.Subrequest":
            fields.setdefault("subrequest", obj.get("name"))
    fields["types"] = tuple(fields["types"])
    return ErrorDetails(sources=tuple(sources), **fields)


def details_from_rpc_error(err: Any) -> ErrorDetails:
    """The typed details of an :class:`~llbkit.buildkit.rpc.status.RpcError` (empty when it carries none)."""
    from llbkit._proto import rpc_status_pb2

    try:
        trailers = err.trailing_metadata() or ()
    except Exception:  # not a call error (e.g. a local failure): nothing to read
        return ErrorDetails()
    for key, value in trailers:
        if key == TRAILER and isinstance(value, bytes):
            status = rpc_status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:
                return ErrorDetails()
            return decode_details([(d.type_url, d.value) for d in status.details])
    return ErrorDetails()
