"""A solve job: the content of one image build, as files.

::

    files = SolveJob.of(lowered, export).files()      # {path: bytes}, for a Pants digest
    job = SolveJob.load("job/")                       # in the build process

The job is everything the result depends on, and nothing else: per platform, in index order, the
LLB definition bytes (which hold the build context's digest and every registry base pinned by
digest) and the full OCI image config; the export options; the ids of the secrets the image
mounts (ids, never values). Its files are what a build process's cache key sees besides the
build context and the solver's code, so the same image gives the same job on every machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Sequence, Tuple

from llbkit.errors import LlbkitError

__all__ = ["ExportOptions", "JobPlatform", "SolveJob", "JobError", "JOB_FILE"]

JOB_FILE = "job.json"
SCHEMA = "llbkit.solve-job.v2"


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
class JobPlatform:
    """One platform: its LLB definition, its full image config and the config of the registry
    image it starts from (empty for scratch; the export keeps that image's layers as they are)."""

    platform: str
    definition: bytes = field(repr=False)
    config: bytes = field(repr=False)
    base_config: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class SolveJob:
    """One image: ``platforms`` in index order, its export, the ids of the secrets it mounts
    (``required`` ones must be configured), and whether it reads a build context."""

    name: str
    platforms: Tuple[JobPlatform, ...]
    export: ExportOptions
    secrets: Tuple[Tuple[str, bool], ...] = ()  # (id, required)
    has_context: bool = False

    @classmethod
    def of(cls, name: str, lowered: Sequence[Any], export: ExportOptions,
           secrets: Sequence[Tuple[str, bool]] = (), has_context: bool = False) -> "SolveJob":
        """From ``llbkit.image.plan(...)``'s ``Lowered`` values (one per platform)."""
        return cls(name, tuple(JobPlatform(lw.platform, lw.definition.to_bytes(), lw.oci_config_bytes(),
                                           lw.base_config_bytes() or b"")
                               for lw in lowered),
                   export, tuple(sorted(dict(secrets).items())), has_context)

    def files(self) -> Dict[str, bytes]:
        out: Dict[str, bytes] = {}
        entries = []
        for i, p in enumerate(self.platforms):
            out[f"{i}.pb"] = p.definition
            out[f"{i}.config.json"] = p.config
            entry = {"platform": p.platform, "definition": f"{i}.pb", "config": f"{i}.config.json"}
            if p.base_config:
                out[f"{i}.base-config.json"] = p.base_config
                entry["base_config"] = f"{i}.base-config.json"
            entries.append(entry)
        doc = {"schema": SCHEMA, "name": self.name, "platforms": entries, "export": self.export.to_doc(),
               "secrets": [[sid, req] for sid, req in self.secrets], "context": self.has_context}
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
                                          (d / e["base_config"]).read_bytes() if e.get("base_config") else b"")
                              for e in doc["platforms"])
            return cls(str(doc["name"]), platforms, ExportOptions.from_doc(doc["export"]),
                       tuple((str(s), bool(r)) for s, r in doc["secrets"]), bool(doc["context"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise JobError(f"the solve job in {d} is missing or damaged: {e}") from None
