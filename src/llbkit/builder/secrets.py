"""Secrets of a build: which ids an image's ``run`` steps mount, and where each value comes from.

A secret source is written ``ID=env:VARIABLE`` or ``ID=file:PATH`` (``~`` is expanded), e.g.
``token=env:APP_TOKEN`` or ``npmrc=file:~/.npmrc``. Only the ids an image mounts are served to
its build, and values are read when buildkitd asks for them: they never enter a cache key, a
definition, a log or an error message (errors name the id and its source, never the value).
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

from llbkit.buildkit.session.secrets import SecretSource
from llbkit.image import ImageSpec, RunStep, SecretMount, image_graph

__all__ = ["parse_secret", "parse_secrets", "mounted_secrets"]


def parse_secret(text: str) -> Tuple[str, SecretSource]:
    """``ID=env:VARIABLE`` / ``ID=file:PATH`` (``[buildkit].secrets``), or buildctl's
    ``id=ID,src=FILE`` / ``id=ID,env=VARIABLE`` (the CLI's ``--secret``) -> ``(id, source)``;
    ``ValueError`` says what to fix."""
    fields = [f.strip() for f in text.split(",")]
    if any(f.startswith(("src=", "source=", "env=", "type=")) for f in fields):
        return _parse_buildctl_secret(text, fields)
    sid, sep, source = text.partition("=")
    sid = sid.strip()
    kind, colon, where = source.partition(":")
    if not sep or not sid or "/" in sid or not colon or kind not in ("env", "file") or not where:
        raise ValueError(
            f"invalid secret {text!r}: expected ID=env:VARIABLE or ID=file:PATH, "
            "e.g. token=env:APP_TOKEN or npmrc=file:~/.npmrc")
    if kind == "env":
        return sid, SecretSource(env=where)
    return sid, SecretSource(file=os.path.expanduser(where))


def _parse_buildctl_secret(text: str, fields: Sequence[str]) -> Tuple[str, SecretSource]:
    kv = dict(f.partition("=")[::2] for f in fields if f)
    sid = kv.pop("id", "")
    src = kv.pop("src", None) or kv.pop("source", None)
    env = kv.pop("env", None)
    typ = kv.pop("type", None)
    if kv or not sid or (src is None) == (env is None) or typ not in (None, "file", "env"):
        raise ValueError(f"invalid secret {text!r}: expected id=ID,src=FILE or id=ID,env=VARIABLE")
    return sid, SecretSource(file=src) if src is not None else SecretSource(env=env)


def parse_secrets(texts: Sequence[str]) -> Dict[str, SecretSource]:
    out: Dict[str, SecretSource] = {}
    for t in texts:
        sid, src = parse_secret(t)
        if sid in out:
            raise ValueError(f"secret {sid!r} is configured twice; keep one source for it")
        out[sid] = src
    return out


def mounted_secrets(spec: ImageSpec) -> List[SecretMount]:
    """The secret mounts of every ``run`` step of ``spec``, of the images it is built on and of the
    images its runs mount."""
    out: List[SecretMount] = []
    for s in image_graph(spec):  # mounted images' runs are solved with this one
        for step in s.steps:
            if isinstance(step, RunStep):
                out.extend(m for m in step.all_mounts if isinstance(m, SecretMount))
    return out
