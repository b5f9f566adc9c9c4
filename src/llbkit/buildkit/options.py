"""Exporters and cache options, and their buildctl-style CSV specs (``type=image,name=...``).

An :class:`Export` is what BuildKit calls an exporter entry: a type (``image``, ``oci``,
``docker``, ``tar``, ``local``), its attributes as BuildKit reads them, and for the exporters that
stream their result back to the client a local destination (a file for ``oci``/``docker``/``tar``,
a directory for ``local``). :class:`CacheOption` is a cache import or export entry.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.buildkit.errors import ExportSpecError

__all__ = [
    "Export",
    "CacheOption",
    "parse_csv",
    "parse_output",
    "parse_cache_export",
    "parse_cache_import",
    "EXPORTER_TYPES",
    "FILE_EXPORTERS",
]

EXPORTER_TYPES = ("image", "registry", "oci", "docker", "tar", "local")
FILE_EXPORTERS = ("oci", "docker", "tar")


def _bool(v: bool) -> str:
    return "true" if v else "false"


@dataclass(frozen=True)
class Export:
    """One exporter. ``dest`` is local (a file, or a directory for ``local``); it is not sent to
    the daemon, whose result comes back over the session (FileSend)."""

    type: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    dest: Optional[str] = None

    @classmethod
    def image(
        cls, name: str = "", *, push: bool = False, push_by_digest: bool = False,
        insecure_registry: bool = False, rewrite_timestamp: bool = False, **attrs: str,
    ) -> "Export":
        """The image exporter; ``name`` may hold several comma-separated names."""
        a: Dict[str, str] = {k.replace("_", "-"): str(v) for k, v in attrs.items()}
        if name:
            a["name"] = name
        if push:
            a["push"] = "true"
        if push_by_digest:
            a["push-by-digest"] = "true"
        if insecure_registry:
            a["registry.insecure"] = "true"
        if rewrite_timestamp:
            a["rewrite-timestamp"] = "true"
        return cls("image", a)

    @classmethod
    def oci(cls, dest: str, *, name: str = "", rewrite_timestamp: bool = False, **attrs: str) -> "Export":
        return cls._file("oci", dest, name, rewrite_timestamp, attrs)

    @classmethod
    def docker(cls, dest: str, *, name: str = "", rewrite_timestamp: bool = False, **attrs: str) -> "Export":
        return cls._file("docker", dest, name, rewrite_timestamp, attrs)

    @classmethod
    def tar(cls, dest: str, **attrs: str) -> "Export":
        return cls("tar", {k.replace("_", "-"): str(v) for k, v in attrs.items()}, dest)

    @classmethod
    def local(cls, dest: str, **attrs: str) -> "Export":
        return cls("local", {k.replace("_", "-"): str(v) for k, v in attrs.items()}, dest)

    @classmethod
    def _file(cls, typ: str, dest: str, name: str, rewrite: bool, attrs: Mapping[str, str]) -> "Export":
        a = {k.replace("_", "-"): str(v) for k, v in attrs.items()}
        if name:
            a["name"] = name
        if rewrite:
            a["rewrite-timestamp"] = "true"
        return cls(typ, a, dest)

    @property
    def is_layout_dir(self) -> bool:
        """An ``oci``/``docker`` export into an OCI layout directory (``tar=false``) rather than a
        tar file: buildkitd writes its blobs into a content store served by the session."""
        return self.type in ("oci", "docker") and self.attrs.get("tar", "true").lower() in ("false", "0")

    @property
    def to_stdout(self) -> bool:
        """A file export streamed to standard output (``dest=-``)."""
        return self.dest == "-"

    @property
    def needs_session(self) -> bool:
        """Whether the result streams back to this client (FileSend over the session)."""
        return self.dest is not None

    def with_attrs(self, **attrs: str) -> "Export":
        a = dict(self.attrs)
        a.update(attrs)
        return Export(self.type, a, self.dest)


@dataclass(frozen=True)
class CacheOption:
    """A cache import or export: ``CacheOption("registry", {"ref": "...", "mode": "max"})``."""

    type: str
    attrs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def registry(cls, ref: str, **attrs: str) -> "CacheOption":
        a = {k.replace("_", "-"): str(v) for k, v in attrs.items()}
        a["ref"] = ref
        return cls("registry", a)

    @classmethod
    def inline(cls) -> "CacheOption":
        return cls("inline", {})

    @classmethod
    def local_export(cls, dest: str, **attrs: str) -> "CacheOption":
        """The local cache exporter: an OCI layout directory on this machine (``mode=max``...)."""
        a = {k.replace("_", "-"): str(v) for k, v in attrs.items()}
        a["dest"] = dest
        return cls("local", a)

    @classmethod
    def local_import(cls, src: str, **attrs: str) -> "CacheOption":
        """The local cache importer: a directory the local cache exporter (ours or buildctl's)
        wrote; ``tag=`` picks an entry of its index.json (default ``latest``)."""
        a = {k.replace("_", "-"): str(v) for k, v in attrs.items()}
        a["src"] = src
        return cls("local", a)


def parse_csv(spec: str, what: str) -> List[Tuple[str, str]]:
    """``a=b,"c=d,e"`` -> [("a", "b"), ("c", "d,e")] (CSV quoting like buildctl)."""
    try:
        fields = next(csv.reader([spec]))
    except (csv.Error, StopIteration):
        raise ExportSpecError(f"invalid {what} {spec!r}: not a comma-separated list of key=value") from None
    out = []
    for f in fields:
        key, sep, value = f.partition("=")
        if not sep or not key.strip():
            raise ExportSpecError(f"invalid {what} {spec!r}: {f!r} is not key=value")
        out.append((key.strip().lower(), value))
    return out


def parse_output(spec: str) -> Export:
    """A ``--output`` spec: ``type=image,name=REF,push=true``, ``type=oci,dest=FILE``,
    ``type=local,dest=DIR``..."""
    typ = ""
    attrs: Dict[str, str] = {}
    for key, value in parse_csv(spec, "--output"):
        if key == "type":
            typ = value
        else:
            attrs[key] = value
    if not typ:
        raise ExportSpecError(f"invalid --output {spec!r}: type=<{'|'.join(EXPORTER_TYPES)}> is required")
    if typ not in EXPORTER_TYPES:
        raise ExportSpecError(f"invalid --output {spec!r}: unknown type {typ!r} (use one of {', '.join(EXPORTER_TYPES)})")
    if "output" in attrs:
        raise ExportSpecError(f"invalid --output {spec!r}: output= is not an option, did you mean dest={attrs['output']}?")
    if typ == "registry":
        typ, attrs["push"] = "image", "true"
    dest = attrs.pop("dest", None)
    export = Export(typ, attrs, dest)
    if typ in FILE_EXPORTERS or typ == "local":
        if not dest:
            kind = "directory" if typ == "local" or export.is_layout_dir else "file"
            raise ExportSpecError(f"invalid --output {spec!r}: the {typ} exporter needs dest=<{kind}>")
        if dest == "-" and (typ == "local" or export.is_layout_dir):
            raise ExportSpecError(f"invalid --output {spec!r}: dest=- (stdout) takes a single file; "
                                  "give a directory")
    elif dest:
        raise ExportSpecError(f"invalid --output {spec!r}: the {typ} exporter takes no dest")
    return Export(typ, attrs, dest)


def _cache(spec: str, what: str, ref_key: str) -> CacheOption:
    if "=" not in spec:  # buildctl's shorthand: a registry reference
        return CacheOption("registry", {"ref": spec})
    typ = ""
    attrs: Dict[str, str] = {}
    for key, value in parse_csv(spec, what):
        if key == "type":
            typ = value
        else:
            attrs[key] = value
    if not typ:
        raise ExportSpecError(f"invalid {what} {spec!r}: type=<registry|inline|...> is required")
    if typ == "registry" and not attrs.get("ref"):
        raise ExportSpecError(f"invalid {what} {spec!r}: the registry cache needs ref=<image reference>")
    if typ == "local":
        key = "dest" if what == "--export-cache" else "src"
        if not attrs.get(key):
            raise ExportSpecError(f"invalid {what} {spec!r}: the local cache needs {key}=<directory>")
    return CacheOption(typ, attrs)


def parse_cache_export(spec: str) -> CacheOption:
    """An ``--export-cache`` spec: ``type=registry,ref=R,mode=max``, ``type=local,dest=DIR``,
    ``type=inline`` or ``REF``."""
    return _cache(spec, "--export-cache", "ref")


def parse_cache_import(spec: str) -> CacheOption:
    """An ``--import-cache`` spec: ``type=registry,ref=R``, ``type=local,src=DIR`` or ``REF``."""
    return _cache(spec, "--import-cache", "ref")


def merge_opts(pairs: Sequence[str]) -> Dict[str, str]:
    """``--opt key=value`` flags as a dict (later wins)."""
    out: Dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ExportSpecError(f"invalid --opt {p!r}: expected key=value")
        out[key] = value
    return out
