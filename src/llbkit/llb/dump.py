"""Human-readable renderings of a definition: buildctl's JSON and Graphviz dot.

``dump(definition)`` is byte-for-byte what ``buildctl debug dump-llb`` prints for the same
definition bytes: one JSON object per op, ``{"Op": ..., "Digest": ..., "OpMetadata": ...}``, one
per line. buildctl encodes the Go protobuf structs with ``encoding/json``, which fixes the shape:

* keys are the .proto field names (``mountType``, ``TmpfsOpt``, ``proxy_env``), in declaration order;
* zero values are omitted (``omitempty``): 0, ``""``, ``false``, empty lists and maps, unset messages;
  a set but empty message prints as ``{}``;
* enums and 64-bit integers are plain JSON numbers, bytes are standard base64;
* three types have hand-written encoders upstream: ``Op`` (the op kind nested under ``"Op"``),
  ``FileAction`` (indexes always printed, the action under ``"Action"``) and ``UserOpt``
  (``{"User": {"byName": ..., "byId": n}}``). The ``FileAction`` encoder knows no ``symlink``, so
  symlink actions print as ``"Action": {}``; :attr:`OpView.body` keeps them.

``to_dot(definition)`` is ``buildctl debug dump-llb --dot``.
"""

from __future__ import annotations

import base64
import unicodedata
from typing import TYPE_CHECKING, Any, Dict, List

from google.protobuf.descriptor import FieldDescriptor

from llbkit._proto import ops_pb2 as pb
from llbkit.gojson import go_json

if TYPE_CHECKING:  # pragma: no cover
    from llbkit.llb.marshal import Definition

__all__ = ["dump", "dump_ops", "to_dot"]

_INT_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_ENUM,
    }
)


def _is_repeated(f: FieldDescriptor) -> bool:
    # protobuf >= 5 exposes is_repeated; older runtimes only the label.
    rep = getattr(f, "is_repeated", None)
    if callable(rep):
        rep = rep()
    if rep is not None:
        return bool(rep)
    return f.label == FieldDescriptor.LABEL_REPEATED


def _scalar(f: FieldDescriptor, value: Any) -> Any:
    if f.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if f.type in _INT_TYPES:
        return int(value)
    return value


def _message(m: Any, compat: bool) -> Dict[str, Any]:
    name = m.DESCRIPTOR.full_name
    if name == "pb.Op":
        return _op(m, compat)
    if name == "pb.FileAction":
        return _file_action(m, compat)
    if name == "pb.UserOpt":
        return _user_opt(m, compat)
    out: Dict[str, Any] = {}
    for f in m.DESCRIPTOR.fields:
        value = getattr(m, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            if len(value):
                vf = f.message_type.fields_by_name["value"]
                out[f.name] = {
                    k: (_message(value[k], compat) if vf.message_type is not None else _scalar(vf, value[k]))
                    for k in sorted(value)
                }
        elif _is_repeated(f):
            if len(value):
                if f.message_type is not None:
                    out[f.name] = [_message(v, compat) for v in value]
                else:
                    out[f.name] = [_scalar(f, v) for v in value]
        elif f.message_type is not None:
            if m.HasField(f.name):
                out[f.name] = _message(value, compat)
        elif value:
            out[f.name] = _scalar(f, value)
    return out


def _op(op: "pb.Op", compat: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if len(op.inputs):
        out["inputs"] = [_message(i, compat) for i in op.inputs]
    body: Dict[str, Any] = {}
    kind = op.WhichOneof("op")
    if kind:
        body[kind] = _message(getattr(op, kind), compat)
    out["Op"] = body
    if op.HasField("platform"):
        out["platform"] = _message(op.platform, compat)
    if op.HasField("constraints"):
        out["constraints"] = _message(op.constraints, compat)
    return out


def _file_action(a: "pb.FileAction", compat: bool) -> Dict[str, Any]:
    action: Dict[str, Any] = {}
    kind = a.WhichOneof("action")
    if kind and not (compat and kind == "symlink"):
        action[kind] = _message(getattr(a, kind), compat)
    return {"input": a.input, "secondaryInput": a.secondaryInput, "output": a.output, "Action": action}


def _user_opt(u: "pb.UserOpt", compat: bool) -> Dict[str, Any]:
    user: Dict[str, Any] = {}
    kind = u.WhichOneof("user")
    if kind == "byName":
        user["byName"] = _message(u.byName, compat)
    elif kind == "byID" and u.byID:
        user["byId"] = u.byID
    return {"User": user}


def _op_body(op: "pb.Op", *, buildctl_compat: bool = True) -> Dict[str, Any]:
    """The op kind's fields as plain data (the value under ``"Op"`` in buildctl's JSON)."""
    kind = op.WhichOneof("op")
    return _message(getattr(op, kind), buildctl_compat) if kind else {}


def dump_ops(definition: "Definition") -> List[Dict[str, Any]]:
    """buildctl's JSON records as Python data, one dict per op."""
    records = []
    for data, dgst in zip(definition.defs, definition.digests):
        op = pb.Op()
        op.ParseFromString(data)
        md = definition._metadata_pb(dgst)
        records.append(
            {
                "Op": _op(op, True),
                "Digest": dgst,
                "OpMetadata": _message(md, True) if md is not None else {},
            }
        )
    return records


def dump(definition: "Definition") -> str:
    """Exactly the text ``buildctl debug dump-llb`` prints for ``definition.to_bytes()``."""
    return "".join(go_json(r) + "\n" for r in dump_ops(definition))


# -- dot -------------------------------------------------------------------------------------------

_QUOTE_SIMPLE = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_is_print(ch: str) -> bool:
    # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    if ch == " ":
        return True
    return unicodedata.category(ch)[0] in "LMNPS"


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (what ``%q`` prints)."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif _go_is_print(ch):
            out.append(ch)
        elif ch in _QUOTE_SIMPLE:
            out.append(_QUOTE_SIMPLE[ch])
        else:
            o = ord(ch)
            if o < 0x80:
                out.append(f"\\x{o:02x}")
            elif o <= 0xFFFF:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _label_shape(dgst: str, op: "pb.Op"):
    kind = op.WhichOneof("op")
    if kind == "source":
        return op.source.identifier, "ellipse"
    if kind == "exec":
        return " ".join(op.exec.meta.args), "box"
    if kind == "build":
        return "build", "box3d"
    if kind == "merge":
        return "merge", "invtriangle"
    if kind == "diff":
        return "diff", "doublecircle"
    if kind == "file":
        names = []
        for a in op.file.actions:
            akind = a.WhichOneof("action")
            if akind == "copy":
                names.append(f"copy{{src={a.copy.src}, dest={a.copy.dest}}}")
            elif akind == "mkfile":
                names.append(f"mkfile{{path={a.mkfile.path}}}")
            elif akind == "mkdir":
                names.append(f"mkdir{{path={a.mkdir.path}}}")
            elif akind == "rm":
                names.append(f"rm{{path={a.rm.path}}}")
            elif akind == "symlink":
                names.append(f"symlink{{oldpath={a.symlink.oldpath}, newpath={a.symlink.newpath}}}")
            else:
                names.append("")
        return ",".join(names), "note"
    return dgst, "plaintext"


def to_dot(definition: "Definition") -> str:
    """The Graphviz graph ``buildctl debug dump-llb --dot`` prints: one node per op (sources as
    ellipses, runs as boxes, file ops as notes), edges labelled with mount destinations."""
    ops = []
    for data, dgst in zip(definition.defs, definition.digests):
        op = pb.Op()
        op.ParseFromString(data)
        ops.append((dgst, op))
    lines = ["digraph {"]
    for dgst, op in ops:
        label, shape = _label_shape(dgst, op)
        lines.append(f"  {go_quote(dgst)} [label={go_quote(label)} shape={go_quote(shape)}];")
    for dgst, op in ops:
        for i, inp in enumerate(op.inputs):
            label = ""
            if op.WhichOneof("op") == "exec":
                for m in op.exec.mounts:
                    if m.input == i and m.dest != "/":
                        label = m.dest
            lines.append(f"  {go_quote(inp.digest)} -> {go_quote(dgst)} [label={go_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
