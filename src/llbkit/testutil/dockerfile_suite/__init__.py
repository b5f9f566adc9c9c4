"""A suite of Dockerfiles that llbkit's Dockerfile images must build byte-identically to BuildKit.

Each case is a directory here: a ``Dockerfile`` (or the file ``case.json`` names), its context
files and ``case.json``::

    {"about": "...", "build_args": {"K": "V"}, "target": "stage", "platforms": ["linux/amd64"],
     "secrets": {"id": "value"}, "dockerfile": "Dockerfile",
     "expect_stdout": "what running the image prints"}   (or {platform: stdout})

Every case's Dockerfile starts ``ARG BASE`` / ``FROM ${BASE}``: the base is the fixture
registry's busybox, given as the build arg ``BASE`` by :meth:`Case.build_args_with`.

:func:`buildctl_build` builds a case the reference way, ``buildctl build --frontend
dockerfile.v0 --local context=DIR --local dockerfile=DIR --opt ...`` with ``SOURCE_DATE_EPOCH``
set, ``rewrite-timestamp=true`` and an OCI tar output, always as an index
(``multi-platform=true``) so that its index digest compares with llbkit's;
:func:`frontend_call` gives the :class:`~llbkit.builder.job.FrontendCall` of one platform of a
case with the same options, and :func:`frontend_job` the whole solve job.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

__all__ = ["Case", "SUITE_DIR", "load_cases", "buildctl_build", "frontend_call", "frontend_job",
           "image_bytes_contain", "index_digest", "pinned_contexts"]

SUITE_DIR = Path(__file__).parent
BASE_ARG = "BASE"


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    about: str = ""
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: Optional[str] = None
    platforms: Tuple[str, ...] = ("linux/amd64",)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    expect_stdout: Union[None, str, Mapping[str, str]] = None
    absent_from_image: Optional[str] = field(default=None, repr=False)

    def build_args_with(self, base: str) -> Dict[str, str]:
        """The case's build args plus ``BASE`` (the registry reference of its base image)."""
        return {BASE_ARG: base, **self.build_args}

    def expected_stdout(self, platform: str) -> Optional[str]:
        if isinstance(self.expect_stdout, Mapping):
            return self.expect_stdout[platform]
        return self.expect_stdout

    def opts(self, base: str, extra: Mapping[str, str] = {}) -> Dict[str, str]:
        """The frontend options of the case (without ``platform``): what both builds are given."""
        out = {f"build-arg:{k}": v for k, v in self.build_args_with(base).items()}
        if self.dockerfile != "Dockerfile":
            out["filename"] = self.dockerfile
        if self.target:
            out["target"] = self.target
        out.update(extra)
        return out


def load_cases(directory: Path = SUITE_DIR) -> List[Case]:
    """Every case of the suite, by name."""
    out = []
    for d in sorted(p for p in directory.iterdir() if (p / "case.json").is_file()):
        doc = json.loads((d / "case.json").read_text())
        out.append(Case(d.name, d, doc.get("about", ""), doc.get("dockerfile", "Dockerfile"),
                        dict(doc.get("build_args", {})), doc.get("target"),
                        tuple(doc.get("platforms", ["linux/amd64"])), dict(doc.get("secrets", {})),
                        doc.get("expect_stdout"), doc.get("absent_from_image")))
    return out


def pinned_contexts(refs: Mapping[str, str]) -> Dict[str, str]:
    """``context:REF=docker-image://REF@DIGEST`` options: each registry FROM pinned by digest
    (``refs``: the reference as the Dockerfile names it -> its index or manifest digest)."""
    return {f"context:{ref}": f"docker-image://{ref.split('@')[0]}@{digest}" for ref, digest in refs.items()}


def buildctl_build(daemon: Any, case: Case, dest: Path, *, base: str, work: Path,
                   source_date_epoch: int = 0, extra_opts: Mapping[str, str] = {},
                   context: Optional[Path] = None) -> Path:
    """Build ``case`` with ``buildctl build --frontend dockerfile.v0`` on ``daemon`` (a
    :class:`~llbkit.testutil.buildkitd.Buildkitd`) into the OCI tar ``dest``; its secrets are
    written under ``work`` and passed as ``--secret id=ID,src=FILE``."""
    work.mkdir(parents=True, exist_ok=True)
    args: List[str] = []
    for sid, value in sorted(case.secrets.items()):
        path = work / f"secret-{sid}"
        path.write_text(value)
        args += ["--secret", f"id={sid},src={path}"]
    opts = dict(case.opts(base, extra_opts), **{"multi-platform": "true"})
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(source_date_epoch))
    daemon.build_dockerfile(context or case.directory, dockerfile_dir=case.directory,
                            platform=",".join(case.platforms), opts=opts,
                            outputs=[f"type=oci,dest={dest},rewrite-timestamp=true"], extra_args=args, env=env)
    return dest


def frontend_call(case: Case, platform: str, *, base: str, extra_opts: Mapping[str, str] = {}) -> Any:
    """The :class:`~llbkit.builder.job.FrontendCall` of ``case`` for ``platform``."""
    from llbkit.builder.job import FrontendCall

    opts = dict(case.opts(base, extra_opts), platform=platform)
    return FrontendCall("dockerfile.v0", tuple(sorted(opts.items())))


def frontend_job(case: Case, *, base: str, extra_opts: Mapping[str, str] = {}, export: Any = None) -> Any:
    """The :class:`~llbkit.builder.job.SolveJob` of ``case``: one frontend call per platform,
    reading the local dirs ``context`` and ``dockerfile`` (both the case's directory)."""
    from llbkit.builder.job import ExportOptions, JobPlatform, SolveJob

    return SolveJob(
        f"dockerfile_suite/{case.name}",
        tuple(JobPlatform(p, b"", b"", frontend=frontend_call(case, p, base=base, extra_opts=extra_opts))
              for p in case.platforms),
        export or ExportOptions(), secrets=tuple((sid, True) for sid in sorted(case.secrets)),
        local_dirs=("context", "dockerfile"))


def index_digest(oci_tar: Path) -> str:
    """The digest ``index.json`` of an OCI tar names (one image index, as both builds write)."""
    with tarfile.open(oci_tar) as tf:
        f = tf.extractfile("index.json")
        assert f is not None
        (desc,) = json.loads(f.read())["manifests"]
    return str(desc["digest"])


def image_bytes_contain(oci_tar: Path, needle: str) -> bool:
    """Whether ``needle`` occurs in any blob of the tar (layers unpacked when gzip-compressed)."""
    import gzip

    data = needle.encode()
    with tarfile.open(oci_tar) as tf:
        for m in tf.getmembers():
            if not m.isfile():
                continue
            f = tf.extractfile(m)
            assert f is not None
            blob = f.read()
            if blob[:2] == b"\x1f\x8b":
                blob = gzip.decompress(blob)
            if data in blob:
                return True
    return False
