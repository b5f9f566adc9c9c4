"""A solve job: the content of one image build, as files.

::

    files = SolveJob.of(lowered, export).files()      # {path: bytes}, for a Pants digest
    job = SolveJob.load("job/")                       # in the build process

The job is everything the result depends on, and nothing else: per platform, in index order, the
LLB definition bytes (which hold the build context's digest and every registry base pinned by
digest) and the full OCI image config; the export options; the ids of the secrets the image
mounts (ids, never values). Its files are what a build process's cache key sees besides the
build context and the solver's code, so the same image gives the same job on every machine.

A platform can instead name a :class:`FrontendCall`: a frontend BuildKit runs for it (its own
Dockerfile frontend ``dockerfile.v0``, or ``gateway.v0`` with a frontend image pinned by digest),
with its options and its inputs (LLB definitions, e.g. another image's, as named contexts). The
frontend makes the image config itself, so such a platform has no definition or config of its
own; its options and inputs are in the job's files, which makes them part of the content key.
The local directories such a solve reads (``context``, ``dockerfile``) are named by
:attr:`SolveJob.local_dirs`, and the OCI layout tars it reads (``oci-layout://`` bases: images
built elsewhere, served from the client) by :attr:`SolveJob.oci_layouts`; their paths are given
when the job is built, their content reaches the key through the process's inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.errors import LlbkitError

__all__ = ["ExportOptions", "FrontendCall", "JobPlatform", "SolveJob", "JobError", "JOB_FILE"]

JOB_FILE = "job.json"
SCHEMA = "llbkit.solve-job.v3"


class JobError(LlbkitError):
    """A job directory is missing or damaged."""


@dataclass(frozen=True)
class ExportOptions:
    """What the build writes: an OCI layout tar with one index (``oci``) or a ``docker`` archive
    (one platform), the names inside it, the names ``image.json`` lists, and reproducibility."""

    output_format: str = "oci"
    ref_names: Tuple[str, ...] = ()  # index.json ref names of the OCI layout (the tags)
    docker_tags: Tuple[str, ...] = ()  # NAME:TAG names of a docker archive
    record_tags: Tuple[str, ...] = ()  # the full references listed in image.json
    annotations: Tuple[Tuple[str, str], ...] = ()
    source_date_epoch: int = 0

    def to_doc(self) -> Dict[str, Any]:
        return {"format": self.output_format, "ref_names": list(self.ref_names),
                "docker_tags": list(self.docker_tags), "record_tags": list(self.record_tags),
                "annotations": [list(kv) for kv in self.annotations],
                "source_date_epoch": self.source_date_epoch}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "ExportOptions":
        return cls(str(doc["format"]), tuple(doc["ref_names"]), tuple(doc["docker_tags"]),
                   tuple(doc["record_tags"]), tuple((str(k), str(v)) for k, v in doc["annotations"]),
                   int(doc["source_date_epoch"]))


@dataclass(frozen=True)
class FrontendCall:
    """A frontend BuildKit runs for one platform: ``name`` (``dockerfile.v0``, or ``gateway.v0``
    with attr ``source=IMAGE@sha256:...``), its options ``attrs`` (``filename``, ``target``,
    ``build-arg:K``, ``platform``, ``context:NAME``...) and its ``inputs``: name -> LLB
    definition bytes, which a named context uses as ``context:NAME=input:NAME``.
    ``entitlements`` are what its own instructions need of the daemon (``network.host`` for a
    Dockerfile's ``RUN --network=host``, ``security.insecure`` for ``--security=insecure``): a
    frontend's runs are not in any definition the client holds, so the caller reads them from
    the frontend's source, and the solve asks for them."""

    name: str
    attrs: Tuple[Tuple[str, str], ...] = ()
    inputs: Tuple[Tuple[str, bytes], ...] = field(default=(), repr=False)
    entitlements: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Sorted: the same call gives the same job files whatever order the caller listed them in.
        object.__setattr__(self, "attrs", tuple(sorted((str(k), str(v)) for k, v in self.attrs)))
        object.__setattr__(self, "inputs", tuple(sorted((str(k), bytes(v)) for k, v in self.inputs)))
        object.__setattr__(self, "entitlements", tuple(sorted({str(e) for e in self.entitlements})))
        for what, pairs in (("option", self.attrs), ("input", self.inputs)):
            names = [k for k, _ in pairs]
            dup = sorted({k for k in names if names.count(k) > 1})
            if dup:
                raise JobError(f"frontend {self.name}: {what} {dup[0]!r} is given twice; give each once")

    @property
    def opts(self) -> Dict[str, str]:
        return dict(self.attrs)


@dataclass(frozen=True)
class JobPlatform:
    """One platform: its LLB definition, its full image config and the config of the registry
    image it starts from (empty for scratch; the export keeps that image's layers as they are).
    With ``frontend`` set, the frontend makes all of that: ``definition`` and ``config`` are empty."""

    platform: str
    definition: bytes = field(repr=False)
    config: bytes = field(repr=False)
    base_config: bytes = field(default=b"", repr=False)
    frontend: Optional[FrontendCall] = None


@dataclass(frozen=True)
class SolveJob:
    """One image: ``platforms`` in index order, its export, the ids of the secrets it mounts
    (``required`` ones must be configured), whether it reads a build context (``has_context``:
    the local dir ``context``), the names of the other local dirs it reads (``local_dirs``, e.g.
    ``dockerfile``) and the names of the OCI layout tars it reads (``oci_layouts``)."""

    name: str
    platforms: Tuple[JobPlatform, ...]
    export: ExportOptions
    secrets: Tuple[Tuple[str, bool], ...] = ()  # (id, required)
    has_context: bool = False
    local_dirs: Tuple[str, ...] = ()
    oci_layouts: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        dirs = set(self.local_dirs) | ({"context"} if self.has_context else set())
        object.__setattr__(self, "local_dirs", tuple(sorted(dirs)))
        object.__setattr__(self, "has_context", "context" in dirs)
        object.__setattr__(self, "oci_layouts", tuple(sorted(set(self.oci_layouts))))

    @classmethod
    def of(cls, name: str, lowered: Sequence[Any], export: ExportOptions,
           secrets: Sequence[Tuple[str, bool]] = (), has_context: bool = False,
           oci_layouts: Sequence[str] = ()) -> "SolveJob":
        """From ``llbkit.image.plan(...)``'s ``Lowered`` values (one per platform)."""
        return cls(name, tuple(JobPlatform(lw.platform, lw.definition.to_bytes(), lw.oci_config_bytes(),
                                           lw.base_config_bytes() or b"")
                               for lw in lowered),
                   export, tuple(sorted(dict(secrets).items())), has_context, oci_layouts=tuple(oci_layouts))

    def files(self) -> Dict[str, bytes]:
        out: Dict[str, bytes] = {}
        entries = []
        for i, p in enumerate(self.platforms):
            out[f"{i}.pb"] = p.definition
            out[f"{i}.config.json"] = p.config
            entry: Dict[str, Any] = {"platform": p.platform, "definition": f"{i}.pb", "config": f"{i}.config.json"}
            if p.base_config:
                out[f"{i}.base-config.json"] = p.base_config
                entry["base_config"] = f"{i}.base-config.json"
            if p.frontend is not None:
                inputs: List[List[str]] = []
                for n, (name, data) in enumerate(p.frontend.inputs):
                    out[f"{i}.input-{n}.pb"] = data  # names may hold any character: files by position
                    inputs.append([name, f"{i}.input-{n}.pb"])
                entry["frontend"] = {"name": p.frontend.name, "attrs": [list(kv) for kv in p.frontend.attrs],
                                     "inputs": inputs}
                if p.frontend.entitlements:  # absent when none: other jobs' files stay as they were
                    entry["frontend"]["entitlements"] = list(p.frontend.entitlements)
            entries.append(entry)
        doc = {"schema": SCHEMA, "name": self.name, "platforms": entries, "export": self.export.to_doc(),
               "secrets": [[sid, req] for sid, req in self.secrets], "context": self.has_context,
               "local_dirs": list(self.local_dirs), "oci_layouts": list(self.oci_layouts)}
        out[JOB_FILE] = json.dumps(doc, sort_keys=True, indent=1).encode()
        return out

    @classmethod
    def load(cls, directory: "str | Path") -> "SolveJob":
        d = Path(directory)
        try:
            doc = json.loads((d / JOB_FILE).read_bytes())
            if doc.get("schema") != SCHEMA:
                raise ValueError(f"schema {doc.get('schema')!r}, expected {SCHEMA!r}")
            platforms = tuple(JobPlatform(str(e["platform"]), (d / e["definition"]).read_bytes(),
                                          (d / e["config"]).read_bytes(),
                                          (d / e["base_config"]).read_bytes() if e.get("base_config") else b"",
                                          _load_frontend(d, e["frontend"]) if e.get("frontend") else None)
                              for e in doc["platforms"])
            return cls(str(doc["name"]), platforms, ExportOptions.from_doc(doc["export"]),
                       tuple((str(s), bool(r)) for s, r in doc["secrets"]), bool(doc["context"]),
                       tuple(str(n) for n in doc["local_dirs"]), tuple(str(n) for n in doc["oci_layouts"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise JobError(f"the solve job in {d} is missing or damaged: {e}") from None


def _load_frontend(d: Path, doc: Mapping[str, Any]) -> FrontendCall:
    return FrontendCall(str(doc["name"]), tuple((str(k), str(v)) for k, v in doc["attrs"]),
                        tuple((str(name), (d / path).read_bytes()) for name, path in doc["inputs"]),
                        tuple(str(e) for e in doc.get("entitlements") or ()))
