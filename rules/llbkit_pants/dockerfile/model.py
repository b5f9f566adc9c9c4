"""What llbkit needs to know of a Dockerfile, from BuildKit's parse tree: pure data, no Pants.

BuildKit's parser (run in a PEX, see `parser.py`) splits a Dockerfile into instructions; this
module reads them the way BuildKit's Dockerfile frontend does where it matters before a build:

* the stages (`FROM base [AS name]`), each base expanded against the meta `ARG`s (those before
  the first `FROM`), the build arguments and the automatic platform arguments, then classified
  as `scratch`, an earlier stage, an image target (an address, `:name` or `//path:name`, which
  a build argument holds, as Pants' `docker_image` allows) or a registry image;
* the `COPY`/`ADD` sources read from the build context (not `--from`, URLs or heredocs; those
  of `ONBUILD COPY/ADD` triggers too, which the stages built on them run, and what
  `RUN --mount=type=bind` reads from the context), which decide the dependencies and the
  context's files;
* the images `COPY --from=IMAGE` reads, which must be pinned like any `FROM`;
* the ARGs declared anywhere (a build argument naming none is an error) and the secret ids
  `RUN --mount=type=secret` reads.

Everything the frontend decides itself (instruction semantics, `$VAR` in other instructions) is
left to it: it is the oracle, and its own error messages reach the user.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

SCRATCH = "scratch"


class DockerfileProblem(Exception):
    """A Dockerfile llbkit cannot build: `path` and `line` (0 when about no line), the problem
    and how to fix it."""

    def __init__(self, path: str, line: int, problem: str, fix: str = "") -> None:
        self.path, self.line, self.problem, self.fix = path, line, problem, fix
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}" + (f"; {fix}" if fix else ""))


@dataclass(frozen=True)
class Instruction:
    cmd: str  # upper case
    flags: Tuple[str, ...]
    value: Tuple[str, ...]
    original: str
    line: int
    json: bool = False
    sub_cmd: Optional[str] = None  # ONBUILD's instruction, upper case

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "Instruction":
        sub = doc.get("sub_cmd")
        return cls(str(doc["cmd"]).upper(), tuple(doc.get("flags") or ()), tuple(doc.get("value") or ()),
                   str(doc.get("original", "")), int(doc.get("start_line", 0)), bool(doc.get("json")),
                   str(sub).upper() if sub else None)

    def flag(self, name: str) -> Optional[str]:
        """The value of `--name=value` (the last one), or None."""
        found = None
        for f in self.flags:
            key, eq, value = f.partition("=")
            if key == f"--{name}":
                found = value if eq else ""
        return found


@dataclass(frozen=True)
class Stage:
    index: int
    name: Optional[str]  # lower case, as the frontend compares them
    base: str  # as written
    line: int
    platform: Optional[str] = None  # `FROM --platform=...`, as written


@dataclass(frozen=True)
class StageBase:
    """A stage's base once expanded: `kind` is "scratch", "stage" (an earlier stage; `value` its
    name or index), "target" (an address) or "image" (a registry reference as written)."""

    stage: Stage
    kind: str
    value: str


_ADDRESS_RE = re.compile(r"^(?://[^:#@ ]*)?:[A-Za-z0-9._@#=,+-]+$|^//[^:#@ ]+$")


def is_address(value: str) -> bool:
    """A base that names a target: `:name`, `//path:name` or `//path` (as `container_image`'s
    `base`); `path/to:name` is not one, since it also reads as an image reference with a tag."""
    return bool(_ADDRESS_RE.match(value))


_VAR_RE = re.compile(r"\\\$|\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
                     r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def expand(word: str, values: Mapping[str, Optional[str]]) -> str:
    """`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}` as the
    frontend's shell lexer expands them; `\\$` is a literal `$`; unset variables are empty."""

    def sub(m: "re.Match[str]") -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group("braced") or m.group("bare")
        value = values.get(name)
        op = m.group("op")
        if not op:
            return value or ""
        word_ = expand(m.group("word") or "", values)
        if op == ":-":
            return value if value else word_
        if op == "-":
            return value if value is not None else word_
        if op == ":+":
            return word_ if value else ""
        return word_ if value is not None else ""  # "+"

    return _VAR_RE.sub(sub, word)


def platform_args(target: str, build: str) -> Dict[str, str]:
    """The automatic platform ARGs (TARGETPLATFORM, TARGETOS, ..., BUILDPLATFORM, ...)."""
    out: Dict[str, str] = {}
    for prefix, p in (("TARGET", target), ("BUILD", build)):
        os_, _, rest = p.partition("/")
        arch, _, variant = rest.partition("/")
        out.update({f"{prefix}PLATFORM": p, f"{prefix}OS": os_, f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    return out


def _arg_entries(ins: Instruction) -> List[Tuple[str, Optional[str]]]:
    out = []
    for v in ins.value:
        name, eq, default = v.partition("=")
        if name:
            out.append((name, default.strip("\"'") if eq else None))
    return out


def _mounts(ins: Instruction) -> List[Dict[str, str]]:
    """The `--mount=k=v,...` options of a RUN (`type` defaults to `bind`, as BuildKit's)."""
    out = []
    for f in ins.flags:
        key, _, value = f.partition("=")
        if key != "--mount":
            continue
        opts: Dict[str, str] = {}
        for part in value.split(","):
            k, eq, v = part.partition("=")
            opts[k.strip().lower()] = v.strip() if eq else "true"
        opts.setdefault("type", "bind")
        out.append(opts)
    return out


def _bind_sources(ins: Instruction) -> List[str]:
    """What a RUN's bind mounts read from the build context (those without `from=`)."""
    return [m.get("source") or m.get("src") or "." for m in _mounts(ins) if m["type"] == "bind" and not m.get("from")]


def _secret_mounts(ins: Instruction) -> List[Tuple[str, bool]]:
    out = []
    for opts in _mounts(ins):
        if opts.get("type") != "secret":
            continue
        sid = opts.get("id") or posixpath.basename(opts.get("target") or opts.get("dst") or opts.get("destination") or "")
        if sid:
            out.append((sid, opts.get("required", "false").lower() in ("true", "1")))
    return out


_REMOTE_PREFIXES = ("http://", "https://", "git@", "git://")


@dataclass(frozen=True)
class Dockerfile:
    path: str  # from the build root, for messages
    instructions: Tuple[Instruction, ...]
    _stages: Tuple[Stage, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def parse(cls, path: str, commands: Sequence[Mapping[str, Any]], text: str) -> "Dockerfile":
        instructions = tuple(Instruction.from_doc(c) for c in commands)
        stages: List[Stage] = []
        for ins in instructions:
            if ins.cmd != "FROM":
                continue
            value = ins.value
            if not value:
                raise DockerfileProblem(path, ins.line, "FROM needs an image", 'e.g. "FROM busybox:1.36 AS build"')
            name = None
            if len(value) == 3 and value[1].lower() == "as":
                name = value[2].lower()
            elif len(value) != 1:
                raise DockerfileProblem(path, ins.line, f"FROM takes an image and optionally `AS name`: {ins.original!r}")
            stages.append(Stage(len(stages), name, value[0], ins.line, ins.flag("platform")))
        if not stages:
            raise DockerfileProblem(path, 0, "no FROM instruction", "a Dockerfile starts with FROM (after ARGs)")
        return cls(path, instructions, tuple(stages))

    @property
    def stages(self) -> Tuple[Stage, ...]:
        return self._stages

    def meta_args(self) -> Tuple[Tuple[str, Optional[str]], ...]:
        """The ARGs before the first FROM (what FROM lines may use), with their defaults."""
        out: List[Tuple[str, Optional[str]]] = []
        for ins in self.instructions:
            if ins.cmd == "FROM":
                break
            if ins.cmd == "ARG":
                out.extend(_arg_entries(ins))
        return tuple(out)

    def declared_args(self) -> Tuple[str, ...]:
        names = {n for ins in self.instructions if ins.cmd == "ARG" for n, _ in _arg_entries(ins)}
        return tuple(sorted(names))

    def stage_names(self) -> Tuple[str, ...]:
        return tuple(s.name for s in self.stages if s.name)

    def copy_sources(self) -> Tuple[Tuple[str, int], ...]:
        """`(source, line)` of every COPY/ADD source read from the build context, as written, and
        of every `RUN --mount=type=bind` without `from=` (its `source`, the whole context by default)."""
        out = []
        for ins in self.instructions:
            if ins.cmd == "RUN":
                out.extend((src, ins.line) for src in _bind_sources(ins))
                continue
            if ins.cmd == "ONBUILD" and ins.sub_cmd in ("COPY", "ADD"):
                # A trigger run by the stages built on this one, from the same context. BuildKit's
                # parser keeps no flags for it, so `--from` is looked for in the text.
                if "--from" in ins.original:
                    continue
            elif ins.cmd not in ("COPY", "ADD") or ins.flag("from") is not None:
                continue
            for src in ins.value[:-1]:
                if src.startswith("<<") or src.startswith(_REMOTE_PREFIXES):
                    continue
                out.append((src, ins.line))
        return tuple(out)

    def copy_from_images(self) -> Tuple[Tuple[str, int], ...]:
        """`(image, line)` for each `COPY --from=IMAGE` that names no stage (an image reference)."""
        names = set(self.stage_names())
        out = []
        for ins in self.instructions:
            source = ins.flag("from") if ins.cmd in ("COPY", "ADD") else None
            if source and source.lower() not in names and not source.isdigit():
                out.append((source, ins.line))
        return tuple(out)

    def secret_mounts(self) -> Tuple[Tuple[str, bool], ...]:
        """`(id, required)` of every `RUN --mount=type=secret`, sorted by id."""
        found: Dict[str, bool] = {}
        for ins in self.instructions:
            if ins.cmd == "RUN":
                for sid, required in _secret_mounts(ins):
                    found[sid] = found.get(sid, False) or required
        return tuple(sorted(found.items()))

    def entitlements(self) -> Tuple[str, ...]:
        """What its RUNs need of the daemon: `network.host` for `RUN --network=host`,
        `security.insecure` for `RUN --security=insecure` (any stage's, as secrets are counted)."""
        return tuple(e for e, _ in self.entitlement_lines())

    def entitlement_lines(self) -> Tuple[Tuple[str, int], ...]:
        """`(entitlement, line)` of the first RUN needing each entitlement, sorted by entitlement:
        where an error about a disabled entitlement points."""
        found: Dict[str, int] = {}
        for ins in self.instructions:
            if ins.cmd == "RUN":
                if (ins.flag("network") or "").lower() == "host":
                    found.setdefault("network.host", ins.line)
                if (ins.flag("security") or "").lower() == "insecure":
                    found.setdefault("security.insecure", ins.line)
        return tuple(sorted(found.items()))

    def check_build_args(self, names: Iterable[str], where: str) -> None:
        """Every build argument the target sets must be declared by an ARG."""
        declared = set(self.declared_args()) | set(platform_args("linux/amd64", "linux/amd64"))
        # BuildKit's own build arguments (BUILDKIT_SYNTAX, BUILDKIT_INLINE_CACHE, ...) need no ARG.
        unknown = sorted(n for n in set(names) - declared if not n.startswith("BUILDKIT_"))
        if unknown:
            have = ", ".join(self.declared_args()) or "none"
            raise DockerfileProblem(self.path, 0, f"build argument {unknown[0]!r} ({where}) is declared by no ARG "
                                    f"(the Dockerfile declares: {have})",
                                    f"add `ARG {unknown[0]}` to the Dockerfile, or fix the name")

    def check_target_stage(self, stage: Optional[str]) -> None:
        if stage and stage.lower() not in self.stage_names():
            have = ", ".join(self.stage_names()) or "none (no `FROM ... AS NAME`)"
            raise DockerfileProblem(self.path, 0, f"target stage {stage!r} is not a stage of the Dockerfile "
                                    f"(its named stages: {have})", "set `target_stage` to one of those")

    def stage_bases(self, build_args: Mapping[str, str], platform: str, build_platform: str) -> Tuple[StageBase, ...]:
        """Each stage's base, expanded for `platform` as the frontend does."""
        values: Dict[str, Optional[str]] = dict(platform_args(platform, build_platform))
        for name, default in self.meta_args():
            values[name] = build_args.get(name, expand(default, values) if default is not None else None)
        out = []
        seen: Dict[str, int] = {}
        for st in self.stages:
            base = expand(st.base, values)
            if not base:
                raise DockerfileProblem(self.path, st.line, f"FROM {st.base} expands to nothing",
                                        "give the ARG it uses a default, or set it in `extra_build_args`")
            if base.lower() == SCRATCH:
                out.append(StageBase(st, "scratch", SCRATCH))
            elif base.lower() in seen:
                out.append(StageBase(st, "stage", base.lower()))
            elif is_address(base):
                out.append(StageBase(st, "target", base))
            else:
                out.append(StageBase(st, "image", base))
            if st.name:
                seen[st.name] = st.index
        return tuple(out)
