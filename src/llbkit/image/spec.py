"""The typed image IR: what a ``container_image`` target asks for, as frozen data.

A frontend (the Pants backend, a test, a CLI) builds an :class:`ImageSpec`; :func:`validate_spec`
checks every field the way Docker would and raises :class:`~llbkit.image.errors.ImageSpecError`
naming the image, the field, the value and the fix; :func:`llbkit.image.lower.lower` turns a valid
spec into one LLB graph per platform.

Sequences given as lists are stored as tuples and mappings as ordered ``(key, value)`` tuples,
so specs are hashable and compare by value. Nothing here touches the network or a daemon.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from llbkit.image.errors import ImageSpecError
from llbkit.llb.errors import LLBError
from llbkit.oci.imageconfig import parse_port
from llbkit.platforms import format_platform, parse_platform
from llbkit.reference import normalize_image_reference

__all__ = [
    "ImageSpec",
    "Base",
    "ScratchBase",
    "RegistryBase",
    "SpecBase",
    "LayoutBase",
    "ContextSource",
    "PlatformSource",
    "ImageSource",
    "CopyStep",
    "EnvStep",
    "UserStep",
    "WorkdirStep",
    "RunStep",
    "Step",
    "CacheMount",
    "SecretMount",
    "TmpfsMount",
    "BindMount",
    "SshMount",
    "MountSource",
    "RunMount",
    "AddStep",
    "UrlSource",
    "OUTPUT_FORMATS",
    "NETWORK_MODES",
    "SECURITY_MODES",
    "image_graph",
    "validate_spec",
    "parse_port",
    "parse_signal",
    "parse_user",
    "parse_chmod",
    "normalize_platforms",
    "image_sources",
]

Pairs = Tuple[Tuple[str, str], ...]
OUTPUT_FORMATS = ("oci", "docker")
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
CACHE_SHARING = ("shared", "private", "locked")


def _pairs(value: Any) -> Any:
    """A mapping or a sequence of pairs as an ordered tuple of pairs (anything else unchanged)."""
    if isinstance(value, Mapping):
        return tuple((k, v) for k, v in value.items())
    if isinstance(value, (list, tuple)) and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in value):
        return tuple((x[0], x[1]) for x in value)
    return value


def _tuple(value: Any) -> Any:
    """Lists become tuples; strings and ``None`` stay as they are (validation rejects them)."""
    if isinstance(value, list):
        return tuple(value)
    return value


def _freeze(obj: Any, *, tuples: Sequence[str] = (), pairs: Sequence[str] = ()) -> None:
    for name in tuples:
        object.__setattr__(obj, name, _tuple(getattr(obj, name)))
    for name in pairs:
        object.__setattr__(obj, name, _pairs(getattr(obj, name)))


# -- bases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScratchBase:
    """The empty filesystem and an empty config (Docker's ``FROM scratch``)."""


@dataclass(frozen=True)
class RegistryBase:
    """A registry image: ``ref`` is ``[registry/]name[:tag][@sha256:...]`` (``busybox`` means
    ``docker.io/library/busybox:latest``). Its config is inherited as Docker does for ``FROM``."""

    ref: str

    @property
    def normalized(self) -> str:
        """The fully qualified reference; raises :class:`ImageSpecError` if ``ref`` is malformed."""
        try:
            return normalize_image_reference(self.ref, op="base")
        except LLBError as e:
            fix = "use e.g. 'docker.io/library/python:3.12-slim' or 'name@sha256:<64 hex digits>'"
            raise ImageSpecError(f"invalid base image reference {self.ref!r}: {e} ({fix})",
                                 field="base", value=self.ref, problem=str(e), fix=fix) from None


@dataclass(frozen=True)
class SpecBase:
    """Another image spec, composed directly under this one (no registry round trip): its
    filesystem is the starting point and its config is inherited."""

    spec: "ImageSpec"


@dataclass(frozen=True)
class LayoutBase:
    """An image built elsewhere (e.g. by a Dockerfile frontend, whose LLB the client never
    sees), read by buildkitd from the OCI layout the client serves as content store ``name``
    (an ``oci-layout://`` source). Its manifest digest and config per platform are passed in
    ``base_configs[(base.key, platform)]`` as a ``ResolvedBase(config, digest)``; the config is
    inherited and the base's layers are kept as they are, as for a registry base."""

    name: str

    @property
    def key(self) -> str:
        return f"oci-layout://{self.name}"


Base = Union[ScratchBase, RegistryBase, SpecBase, LayoutBase]


# -- copy sources and steps -----------------------------------------------------------------------


@dataclass(frozen=True)
class ContextSource:
    """A file or directory ``path`` (relative, inside the context) of the build context sent to
    buildkitd under ``context_name``. A directory's contents are copied, as Docker's ``COPY``;
    symlinks inside it are copied as symlinks.

    ``files`` says what the frontend knows of the files under ``path``: ``(relative path,
    executable)`` pairs, ``(("", executable),)`` when ``path`` is a file. With it, copied modes
    are deterministic whatever the files' modes where the context is staged: files are 0755 when
    executable and 0644 otherwise, directories 0755 (what a checkout with umask 022 gives
    Docker). Without it (``None``), the context's own modes are kept, as Docker keeps them.
    """

    context_name: str
    path: str
    files: Optional[Tuple[Tuple[str, bool], ...]] = None

    def __post_init__(self) -> None:
        if isinstance(self.files, list):
            object.__setattr__(self, "files", tuple(tuple(f) if isinstance(f, list) else f for f in self.files))

    @property
    def is_file(self) -> bool:
        return self.files is not None and len(self.files) == 1 and self.files[0][0] == ""


@dataclass(frozen=True)
class ImageSource:
    """A file or directory ``path`` (absolute) in another image's filesystem, like Docker's
    ``COPY --from``: ``image`` is another :class:`ImageSpec` (lowered for the same platform and
    composed in LLB, no registry round trip) or a registry reference pinned by digest
    (``name@sha256:...``). Files keep their modes and owners unless the copy sets them."""

    image: Union["ImageSpec", str]
    path: str


@dataclass(frozen=True)
class PlatformSource:
    """A build-context source that differs per platform: ``sources`` holds ``(platform,
    ContextSource)`` pairs, and the image's variant for a platform copies that platform's source
    (e.g. a PEX built for each platform's interpreter). Every platform the image is lowered for
    must have one; two platforms may share one path (the same bytes serve both)."""

    sources: Tuple[Tuple[str, ContextSource], ...]

    def __post_init__(self) -> None:
        if isinstance(self.sources, (list, dict)):
            items = self.sources.items() if isinstance(self.sources, dict) else self.sources
            object.__setattr__(self, "sources", tuple(tuple(x) for x in items))

    def for_platform(self, platform: str) -> Optional[ContextSource]:
        for p, src in self.sources:
            if p == platform:
                return src
        return None


CopySource = Union[ContextSource, ImageSource, PlatformSource]


@dataclass(frozen=True)
class CopyStep:
    """Copy ``source`` to ``dest``. A relative ``dest`` is relative to the working directory; a
    ``dest`` ending in ``/`` (or ``.``) means "into that directory"; missing parent directories
    are created, as Docker creates them (0755; with an octal ``chmod``, that mode: BuildKit's
    rule). ``dest``, ``chown`` and ``chmod`` expand ``$VAR`` against the environment so far.

    ``chmod`` is an octal mode (``"0644"``, ``"755"`` or the int ``0o644``) applied to every
    file and directory copied, or a symbolic one (``"u+x,go-w"``) applied to each one's mode;
    ``chown`` is ``user``, ``uid``, ``user:group`` or ``uid:gid`` (names are looked up in the
    image's /etc/passwd and /etc/group). Without ``chown``, files copied from the context
    belong to 0:0, whoever sent them, and files copied from an image keep their owners."""

    source: CopySource
    dest: str
    chmod: Union[str, int, None] = None
    chown: Optional[str] = None


@dataclass(frozen=True)
class EnvStep:
    """Set environment variables from here on (Dockerfile ``ENV``): for later steps and the
    config. Values expand ``$VAR`` against the environment before this step (all pairs of one
    step see the same environment, as in one ``ENV`` line)."""

    env: Pairs

    def __post_init__(self) -> None:
        _freeze(self, pairs=("env",))


@dataclass(frozen=True)
class UserStep:
    """Run later steps, and the container, as ``user`` (Dockerfile ``USER``; ``$VAR`` expands)."""

    user: str


@dataclass(frozen=True)
class WorkdirStep:
    """Change the working directory (Dockerfile ``WORKDIR``): created, if missing, like Docker
    does (0755, owned by the current user); relative to the previous one; ``$VAR`` expands."""

    path: str


@dataclass(frozen=True)
class CacheMount:
    """A cache directory at ``target`` kept by buildkitd between builds (``id`` defaults to
    ``target``); ``sharing`` is ``shared``, ``private`` or ``locked``.

    ``uid``, ``gid`` and ``mode`` (an int or an octal string) set the owner and mode of the cache
    directory when it is first made (Docker's ``uid=``/``gid=``/``mode=``; default 0:0 and 0755).
    ``source`` seeds a new cache with the files at ``path`` of another image or of the build
    context (Docker's ``from=``/``source=``); it cannot be combined with ``uid``/``gid``/``mode``."""

    target: str
    id: Optional[str] = None
    sharing: str = "shared"
    uid: Optional[int] = None
    gid: Optional[int] = None
    mode: Union[int, str, None] = None
    source: Optional["MountSource"] = None
    path: str = "/"

    @property
    def sets_owner(self) -> bool:
        return self.uid is not None or self.gid is not None or self.mode is not None


@dataclass(frozen=True)
class SecretMount:
    """Secret ``id`` from the client, as a file at ``target`` (default ``/run/secrets/<id>``)
    and/or as the environment variable ``env`` of the run. As Docker's
    ``--mount=type=secret,env=NAME``: with ``env`` and no ``target``, only the variable is set."""

    id: str
    target: Optional[str] = None
    required: bool = False
    mode: int = 0o400
    uid: int = 0
    gid: int = 0
    env: Optional[str] = None

    @property
    def path(self) -> str:
        return self.target or f"/run/secrets/{self.id}"

    @property
    def as_file(self) -> bool:
        """Whether the secret is mounted as a file (else it is only an environment variable)."""
        return self.target is not None or self.env is None


@dataclass(frozen=True)
class TmpfsMount:
    """An in-memory filesystem at ``target``; ``size`` in bytes (0: the kernel's default)."""

    target: str
    size: int = 0


MountSource = Union[ContextSource, RegistryBase, SpecBase]
"""What a bind or cache mount reads: build-context files, a registry image pinned by digest, or
another image spec's filesystem (composed in the same graph, no registry)."""


@dataclass(frozen=True)
class BindMount:
    """The files at ``path`` of ``source`` at ``target`` for one run (Docker's
    ``--mount=type=bind,from=...,source=...``). Read-only unless ``readwrite``; as in Docker, what
    a run writes to a read-write bind mount is discarded after the run. For a
    :class:`ContextSource` the path is the source's own and ``path`` stays ``/``."""

    target: str
    source: MountSource
    path: str = "/"
    readwrite: bool = False


@dataclass(frozen=True)
class SshMount:
    """The client's SSH agent ``id`` (``default`` unless named) as a socket at ``target``
    (default ``/run/buildkit/ssh_agent.N``); ``SSH_AUTH_SOCK`` points at the first one."""

    id: str = "default"
    target: Optional[str] = None
    required: bool = False
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


RunMount = Union[CacheMount, SecretMount, TmpfsMount, BindMount, SshMount]


@dataclass(frozen=True)
class RunStep:
    """Run a command: ``command`` is an argv list (exec form) or a string run by the image's
    shell (``/bin/sh -c`` unless the base config sets ``Shell``). The image's env, working
    directory and user apply. ``network`` is ``default``, ``none`` or ``host``; ``security`` is
    ``sandbox`` or ``insecure`` (privileged); ``host`` and ``insecure`` need the daemon to grant the
    ``network.host`` / ``security.insecure`` entitlement (see :func:`required_entitlements`).
    ``secrets`` are secret mounts (the same as listing them in ``mounts``)."""

    command: Union[str, Tuple[str, ...]]
    mounts: Tuple[RunMount, ...] = ()
    network: str = "default"
    secrets: Tuple[SecretMount, ...] = ()
    security: str = "sandbox"

    def __post_init__(self) -> None:
        _freeze(self, tuples=("command", "mounts", "secrets"))

    @property
    def all_mounts(self) -> Tuple[RunMount, ...]:
        return tuple(self.mounts) + tuple(self.secrets)


@dataclass(frozen=True)
class UrlSource:
    """A file downloaded over HTTP(S); ``checksum`` (``sha256:<64 hex>``) is required, so the
    download is verified and the image stays a function of its content."""

    url: str
    checksum: str


@dataclass(frozen=True)
class AddStep:
    """Docker's ``ADD``: like :class:`CopyStep`, but a build-context tar archive (plain, gzip,
    bzip2 or xz) is unpacked into ``dest`` (other files are copied as they are), and a
    :class:`UrlSource` is downloaded (never unpacked; mode 0600 unless ``chmod``, as Docker).
    ``dest`` expands ``$VAR`` against the environment so far, as a copy's does."""

    source: Union[ContextSource, UrlSource, PlatformSource]
    dest: str
    chmod: Union[str, int, None] = None
    chown: Optional[str] = None


Step = Union[CopyStep, RunStep, AddStep, EnvStep, UserStep, WorkdirStep]


# -- the image --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    """One image. ``name`` (e.g. the target address) only appears in messages and progress.

    ``env``, ``user`` and ``workdir`` are the simple form of the ordered steps: they act as
    ``EnvStep(env)``, ``UserStep(user)`` and ``WorkdirStep(workdir)`` placed, in that order,
    before ``steps`` (so the working directory is created owned by ``user``); steps may change
    them later, and the last values are the config's. ``platforms`` is the order of the output index (empty: the caller's
    default). ``labels`` go into the config; ``annotations`` onto the manifests and index.
    """

    name: str
    base: Base = ScratchBase()
    steps: Tuple[Step, ...] = ()
    env: Pairs = ()
    workdir: Optional[str] = None
    user: Optional[str] = None
    entrypoint: Optional[Tuple[str, ...]] = None
    cmd: Optional[Tuple[str, ...]] = None
    labels: Pairs = ()
    annotations: Pairs = ()
    exposed_ports: Tuple[str, ...] = ()
    volumes: Tuple[str, ...] = ()
    stop_signal: Optional[str] = None
    platforms: Tuple[str, ...] = ()
    repository: Optional[str] = None
    tags: Tuple[str, ...] = ()
    registries: Tuple[str, ...] = ()
    output_format: str = "oci"

    def __post_init__(self) -> None:
        _freeze(
            self,
            tuples=("steps", "entrypoint", "cmd", "exposed_ports", "volumes", "platforms", "tags", "registries"),
            pairs=("env", "labels", "annotations"),
        )

    @property
    def env_dict(self) -> Dict[str, str]:
        return dict(self.env)

    def base_chain(self) -> List["ImageSpec"]:
        """This spec, then each :class:`SpecBase` below it (nearest first)."""
        out: List[ImageSpec] = []
        spec: Optional[ImageSpec] = self
        while spec is not None:
            if any(s is spec for s in out) or (spec.name and spec.name in [s.name for s in out]):
                names = " -> ".join([s.name for s in out] + [spec.name])
                fix = "point one of them at a registry image or scratch"
                raise ImageSpecError(
                    f"{self.name}: field 'base': cyclic base chain {names}: an image cannot be built "
                    f"on itself; {fix}", spec_name=self.name, field="base", value=names,
                    problem="cyclic base chain", fix=fix)
            out.append(spec)
            spec = spec.base.spec if isinstance(spec.base, SpecBase) else None
        return out


# -- field parsers (Docker's rules) ------------------------------------------------------------------


_err = ImageSpecError.for_field


# moby/sys/signal's SignalMap for Linux (names without the SIG prefix).
_SIGNALS = {
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
}
_SIGNALS |= {f"RTMIN+{i}" for i in range(1, 16)} | {f"RTMAX-{i}" for i in range(1, 15)}


def parse_signal(value: str) -> str:
    """Docker's ``ParseSignal``: a positive number (``15``), or a name with or without ``SIG``,
    in any case (``SIGTERM``, ``term``). Returns the value unchanged; raises ``ValueError``."""
    if not isinstance(value, str) or not value:
        raise ValueError("a stop signal must be a non-empty string")
    if value.isdigit():
        if not 0 < int(value) <= 64:
            raise ValueError("signal numbers are 1..64")
        return value
    name = value.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in _SIGNALS:
        raise ValueError("unknown signal")
    return value


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


def _user_part(part: str, what: str) -> None:
    if part.isdigit():
        if int(part) > 4294967294:
            raise ValueError(f"{what} id {part} is out of range 0..4294967294")
        return
    if not _NAME_RE.match(part):
        raise ValueError(f"{what} {part!r} is neither a number nor a valid name")


def parse_user(value: str) -> Tuple[str, Optional[str]]:
    """``name``, ``uid``, ``name:group``, ``uid:gid`` (or mixed) -> ``(user, group or None)``."""
    if not isinstance(value, str) or not value:
        raise ValueError("a user must be a non-empty string")
    user, sep, group = value.partition(":")
    if not user or (sep and not group) or ":" in group:
        raise ValueError("expected USER or USER:GROUP")
    _user_part(user, "user")
    if sep:
        _user_part(group, "group")
    return user, (group if sep else None)


_SYMBOLIC_CLAUSE = r"[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+"
_SYMBOLIC_RE = re.compile(rf"^{_SYMBOLIC_CLAUSE}(?:,{_SYMBOLIC_CLAUSE})*$")


def parse_chmod(value: Union[str, int]) -> Union[int, str]:
    """A copy's mode, as Docker's ``COPY --chmod`` reads it: an octal string (``"0644"``,
    ``"755"``) or an int (``0o644``) -> the mode as an int; a symbolic mode (``"u+x,go-w"``,
    ``"a=rX"``, chmod(1)'s syntax) -> the string. ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError("a mode must be an octal string, a symbolic mode or an int")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"[0-7]+", value):
        mode = int(value, 8)
    elif isinstance(value, str) and _SYMBOLIC_RE.match(value):
        return value
    else:
        raise ValueError("expected an octal mode such as '0644' or '0755', or a symbolic one such as 'u+x,go-w'")
    if not 0 <= mode <= 0o7777:
        raise ValueError("modes are 0..0o7777")
    return mode


def normalize_platforms(platforms: Iterable[str], *, spec_name: str = "") -> Tuple[str, ...]:
    """Parse and normalize each platform (``linux/x86_64`` -> ``linux/amd64``), keeping the order;
    raise :class:`ImageSpecError` for a malformed or repeated one."""
    out: List[str] = []
    for p in platforms:
        try:
            norm = format_platform(parse_platform(p, op="platforms"))
        except LLBError as e:
            reason = str(e).split(": ", 2)[-1]
            raise _err(spec_name, "platforms", p, "invalid platform",
                       f"{reason}; use os/arch[/variant], e.g. 'linux/amd64' or 'linux/arm64'") from None
        if norm in out:
            raise _err(spec_name, "platforms", p, "repeated platform",
                       f"it is the same as {norm!r}; list each platform once")
        out.append(norm)
    return tuple(out)


_ENV_BAD = re.compile(r"[=\s\0]")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY_RE = re.compile(r"^(?:" + _LABEL + r"(?:\." + _LABEL + r")*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


def _check_str_list(spec: "ImageSpec", name: str, value: Any, example: str) -> None:
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, tuple) or not all(isinstance(x, str) for x in value):
        raise _err(spec.name, name, value, "expected a list of strings, got", f"write it as a list, e.g. {example}")


def _check_pairs(spec: "ImageSpec", name: str, value: Any) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(kv, tuple) and len(kv) == 2 and isinstance(kv[0], str) and isinstance(kv[1], str) for kv in value
    ):
        raise _err(spec.name, name, value, "expected a mapping of strings to strings, got",
                   'write it as {"key": "value"}')
    keys = [k for k, _ in value]
    for k in keys:
        if keys.count(k) > 1:
            raise _err(spec.name, name, k, "repeated key", "give each key once")
        if not k:
            raise _err(spec.name, name, k, "empty key", "give every entry a name")


def _check_abs(spec: "ImageSpec", name: str, value: Any, what: str) -> None:
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise _err(spec.name, name, value, f"{what} must be an absolute path, got",
                   f"start it with '/', e.g. '/{str(value).lstrip('./')}'")


def _check_target(spec: "ImageSpec", name: str, value: Any, what: str) -> None:
    # A mount target naming a variable ($CACHE_DIR) is checked once expanded, when lowering.
    if isinstance(value, str) and value.startswith("$"):
        return
    _check_abs(spec, name, value, what)


def _check_context_path(spec: "ImageSpec", where: str, path: Any) -> None:
    if not isinstance(path, str) or not path:
        raise _err(spec.name, where, path, "a copy source path must be a non-empty string, got",
                   "name a file or directory relative to the build context")
    if path.startswith("/"):
        raise _err(spec.name, where, path, "a copy source must be relative to the build context, got",
                   f"drop the leading '/': {path.lstrip('/')!r}")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        raise _err(spec.name, where, path, "a copy source must stay inside the build context, got",
                   "copy only files under the BUILD directory (own files elsewhere with a files target)")
    if re.search(r"[*?\[\]\\\0]", path):
        raise _err(spec.name, where, path, "copy sources are exact paths, not patterns; got",
                   "name each file or directory exactly")


def _check_user(spec: "ImageSpec", where: str, value: Any) -> None:
    try:
        parse_user(value)
    except ValueError as e:
        raise _err(spec.name, where, value, "invalid user", f"{e}; use 'name', 'uid', 'name:group' or 'uid:gid', "
                   "e.g. '1000:1000'") from None


def _check_env_pairs(spec: "ImageSpec", where: str, pairs: Any) -> None:
    _check_pairs(spec, where, pairs)
    for k, v in pairs:
        if _ENV_BAD.search(k):
            raise _err(spec.name, where, k, "invalid variable name",
                       "names may not contain '=', whitespace or NUL, e.g. 'APP_PORT'")
        if "\0" in v:
            raise _err(spec.name, where, v, f"value of {k} contains a NUL byte", "remove it")


def _check_workdir(spec: "ImageSpec", where: str, value: Any) -> None:
    if not isinstance(value, str) or not value or "\0" in value:
        raise _err(spec.name, where, value, "invalid working directory",
                   "use a path such as '/app' (a relative one is joined onto the previous one)")


def _check_user_or_variable(spec: "ImageSpec", where: str, value: Any) -> None:
    # A user naming a variable ($APP_USER) is checked once expanded, when lowering.
    if isinstance(value, str) and "$" in value:
        return
    _check_user(spec, where, value)


def _check_platform_source(spec: "ImageSpec", where: str, src: Any) -> None:
    if not isinstance(src.sources, tuple) or not src.sources:
        raise _err(spec.name, f"{where}.sources", src.sources, "a per-platform source needs at least one platform",
                   "give (platform, ContextSource) pairs, e.g. (('linux/amd64', ContextSource('context', 'a.pex')),)")
    seen: List[str] = []
    for k, pair in enumerate(src.sources):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], ContextSource)):
            raise _err(spec.name, f"{where}.sources[{k}]", pair, "invalid per-platform source",
                       "give a (platform, ContextSource) pair")
        platform = normalize_platforms([pair[0]], spec_name=spec.name)[0]
        if platform != pair[0]:
            raise _err(spec.name, f"{where}.sources[{k}]", pair[0], "a per-platform source's platform must be normalized",
                       f"write {platform!r}")
        if platform in seen:
            raise _err(spec.name, f"{where}.sources[{k}]", platform, "two sources for one platform",
                       "give each platform one source")
        seen.append(platform)
        _check_context(spec, f"{where}.sources[{k}]", pair[1])


def _check_copy_source(spec: "ImageSpec", where: str, src: Any) -> None:
    if isinstance(src, ContextSource):
        _check_context(spec, where, src)
        return
    if isinstance(src, PlatformSource):
        _check_platform_source(spec, where, src)
        return
    if isinstance(src, ImageSource):
        image = src.image
        if isinstance(image, str):
            try:
                normalize_image_reference(image, op="copy source")
            except LLBError as e:
                raise _err(spec.name, f"{where}.image", image, "invalid image reference",
                           f"{e}; use 'registry/name@sha256:<64 hex digits>'") from None
            if "@sha256:" not in image:
                raise _err(spec.name, f"{where}.image", image, "a registry image to copy from must be pinned by digest, got",
                           f"add its digest: '{image}@sha256:<64 hex digits>' (a tag could move "
                           "under a cached build), or copy from another image target")
        elif not isinstance(image, ImageSpec):
            raise _err(spec.name, f"{where}.image", image, "unsupported image to copy from",
                       "use an ImageSpec or a registry reference pinned by digest")
        if not isinstance(src.path, str) or not src.path.startswith("/") or "\0" in src.path:
            raise _err(spec.name, f"{where}.path", src.path, "a path in an image must be absolute, got",
                       f"start it with '/', e.g. '/{str(src.path).lstrip('./')}'")
        return
    raise _err(spec.name, where, src, "unsupported copy source",
               "use ContextSource(context_name, path) or ImageSource(image, path)")
def _check_context(spec: "ImageSpec", where: str, src: Any) -> None:
    """A build-context source of a copy, an add or a mount."""
    if not isinstance(src.context_name, str) or not src.context_name or "/" in src.context_name:
        raise _err(spec.name, f"{where}.context_name", src.context_name,
                   "invalid context name", "use a non-empty name without '/'")
    _check_context_path(spec, f"{where}.path", src.path)
    files = src.files
    if files is not None and (not isinstance(files, tuple) or not all(
            isinstance(f, tuple) and len(f) == 2 and isinstance(f[0], str) and isinstance(f[1], bool)
            and not f[0].startswith("/") for f in files)):
        raise _err(spec.name, f"{where}.files", files, "invalid file list",
                   "give (relative path, executable) pairs, or (('', executable),) for a file")


def _check_dest_chmod_chown(spec: "ImageSpec", where: str, step: Any) -> None:
    if not isinstance(step.dest, str) or not step.dest or "\0" in step.dest:
        raise _err(spec.name, f"{where}.dest", step.dest, "invalid copy destination",
                   "use an absolute path, or a path relative to workdir; end it with '/' to copy into a directory")
    if step.chmod is not None and not (isinstance(step.chmod, str) and "$" in step.chmod):
        # A mode naming a variable (COPY --chmod=$MODE) is checked once expanded, when lowering.
        try:
            parse_chmod(step.chmod)
        except ValueError as e:
            raise _err(spec.name, f"{where}.chmod", step.chmod, "invalid mode", str(e)) from None
    if step.chown is not None:
        _check_user_or_variable(spec, f"{where}.chown", step.chown)


_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _check_url(spec: "ImageSpec", where: str, src: "UrlSource") -> None:
    from urllib.parse import urlsplit

    url = src.url
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _err(spec.name, f"{where}.url", url, "not an http:// or https:// URL",
                   "give the full URL, e.g. 'https://example.com/tool-1.2.tar.gz'")
    if not isinstance(src.checksum, str) or not _SHA256_RE.match(src.checksum):
        raise _err(spec.name, f"{where}.checksum", src.checksum, "a downloaded file needs its sha256 checksum, got",
                   "pass checksum='sha256:<64 lowercase hex digits>' (e.g. from `sha256sum FILE`), so the "
                   "image does not change when the server's file does")


def _check_mount_source(spec: "ImageSpec", mw: str, src: Any, path: Any) -> None:
    if isinstance(src, ContextSource):
        _check_context(spec, f"{mw}.source", src)
        if path not in ("/", "", None):
            raise _err(spec.name, f"{mw}.path", path, "a build-context mount takes its path from the source, got",
                       "leave path out, and name the file or directory in the source")
        return
    if isinstance(src, RegistryBase):
        try:
            norm = src.normalized
        except ImageSpecError as e:
            raise _err(spec.name, f"{mw}.source", src.ref, "invalid image reference", e.fix) from None
        if "@sha256:" not in norm:
            raise _err(spec.name, f"{mw}.source", src.ref, "a registry image mounted by a run must be pinned by digest, got",
                       f"write it as '{src.ref.split('@')[0]}@sha256:<digest>' (`skopeo inspect` shows the digest)")
    elif isinstance(src, SpecBase):
        # The mounted spec itself is validated by _validate_tree (it is one of image_sources).
        if not isinstance(src.spec, ImageSpec):
            raise _err(spec.name, f"{mw}.source", src.spec, "not an image spec", "use SpecBase(ImageSpec(...))")
    else:
        raise _err(spec.name, f"{mw}.source", src, "unsupported mount source",
                   "use ContextSource(...), RegistryBase('name@sha256:...') or SpecBase(spec)")
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise _err(spec.name, f"{mw}.path", path, "the path inside the mounted image must be absolute, got",
                   f"start it with '/', e.g. '/{str(path).lstrip('./')}'")


def _check_ids(spec: "ImageSpec", mw: str, m: Any, names: Sequence[str]) -> None:
    for label in names:
        v = getattr(m, label)
        hi = 0o7777 if label == "mode" else 4294967294
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
            raise _err(spec.name, f"{mw}.{label}", v, f"invalid {label}", f"use an int in 0..{hi}")


def _check_mount(spec: "ImageSpec", mw: str, m: Any) -> Optional[str]:
    """Check one mount; its target path (``None`` for one that occupies no path of its own)."""
    if isinstance(m, CacheMount):
        _check_target(spec, f"{mw}.target", m.target, "a cache mount target")
        if m.sharing not in CACHE_SHARING:
            raise _err(spec.name, f"{mw}.sharing", m.sharing, "unknown cache sharing mode",
                       f"choose one of {', '.join(CACHE_SHARING)}")
        if m.id is not None and (not isinstance(m.id, str) or not m.id):
            raise _err(spec.name, f"{mw}.id", m.id, "invalid cache id",
                       "use a non-empty string or leave it out")
        for label in ("uid", "gid"):
            v = getattr(m, label)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 4294967294):
                raise _err(spec.name, f"{mw}.{label}", v, f"invalid {label}", "use an int in 0..4294967294")
        if m.mode is not None:
            try:
                parse_chmod(m.mode)
            except ValueError as e:
                raise _err(spec.name, f"{mw}.mode", m.mode, "invalid mode", f"{e}, e.g. 0o755") from None
        if m.source is not None:
            if m.sets_owner:
                raise _err(spec.name, f"{mw}.source", m.source, "a seeded cache keeps its source's owners and modes; "
                           "uid/gid/mode cannot be combined with", "leave out either source or uid/gid/mode")
            _check_mount_source(spec, mw, m.source, m.path)
        elif m.path not in ("/", ""):
            raise _err(spec.name, f"{mw}.path", m.path, "a path needs a source", "add source=, or leave path out")
        return m.target
    if isinstance(m, SecretMount):
        if not isinstance(m.id, str) or not m.id or "/" in m.id:
            raise _err(spec.name, f"{mw}.id", m.id, "invalid secret id", "use a non-empty name without '/'")
        if m.target is not None:
            _check_target(spec, f"{mw}.target", m.target, "a secret mount target")
        if m.env is not None and (not isinstance(m.env, str) or not m.env or _ENV_BAD.search(m.env)):
            raise _err(spec.name, f"{mw}.env", m.env, "invalid environment variable name",
                       "names may not be empty or contain '=', whitespace or NUL, e.g. 'API_TOKEN'")
        _check_ids(spec, mw, m, ("mode", "uid", "gid"))
        return m.path if m.as_file else None
    if isinstance(m, TmpfsMount):
        _check_target(spec, f"{mw}.target", m.target, "a tmpfs mount target")
        if not isinstance(m.size, int) or isinstance(m.size, bool) or m.size < 0:
            raise _err(spec.name, f"{mw}.size", m.size, "invalid tmpfs size", "use a number of bytes >= 0")
        return m.target
    if isinstance(m, BindMount):
        _check_target(spec, f"{mw}.target", m.target, "a bind mount target")
        _check_mount_source(spec, mw, m.source, m.path)
        return m.target
    if isinstance(m, SshMount):
        if not isinstance(m.id, str) or not m.id or not re.fullmatch(r"[A-Za-z0-9_.-]+", m.id):
            raise _err(spec.name, f"{mw}.id", m.id, "invalid ssh agent id",
                       "use a name of letters, digits, '_', '.' or '-', e.g. 'default'")
        if m.target is not None:
            _check_target(spec, f"{mw}.target", m.target, "an ssh socket path")
        _check_ids(spec, mw, m, ("mode", "uid", "gid"))
        return m.target
    raise _err(spec.name, mw, m, "unsupported mount",
               "use CacheMount, SecretMount, TmpfsMount, BindMount or SshMount")


def _check_step(spec: "ImageSpec", i: int, step: Any) -> None:
    where = f"steps[{i}]"
    if isinstance(step, CopyStep):
        _check_copy_source(spec, f"{where}.source", step.source)
        _check_dest_chmod_chown(spec, where, step)
    elif isinstance(step, EnvStep):
        _check_env_pairs(spec, f"{where}.env", step.env)
    elif isinstance(step, UserStep):
        _check_user_or_variable(spec, f"{where}.user", step.user)
    elif isinstance(step, WorkdirStep):
        _check_workdir(spec, f"{where}.path", step.path)
    elif isinstance(step, RunStep):
        cmd = step.command
        if isinstance(cmd, str):
            if not cmd.strip():
                raise _err(spec.name, f"{where}.command", cmd, "empty command", "give a shell command or an argv list")
        elif not isinstance(cmd, tuple) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise _err(spec.name, f"{where}.command", cmd, "invalid command",
                       "give a shell command string or a non-empty list of strings")
        if step.network not in NETWORK_MODES:
            raise _err(spec.name, f"{where}.network", step.network, "unknown network mode",
                       f"choose one of {', '.join(NETWORK_MODES)}")
        if step.security not in SECURITY_MODES:
            raise _err(spec.name, f"{where}.security", step.security, "unknown security mode",
                       f"choose one of {', '.join(SECURITY_MODES)}")
        targets: List[str] = []
        for j, m in enumerate(step.all_mounts):
            mw = f"{where}.mounts[{j}]"
            target = _check_mount(spec, mw, m)
            if target is None:
                continue
            norm = posixpath.normpath(target)
            if norm == "/":
                raise _err(spec.name, f"{mw}.target", target, "cannot mount over the root filesystem",
                           "choose a directory such as '/var/cache/apt'")
            if norm in targets:
                raise _err(spec.name, f"{mw}.target", target, "two mounts at the same target", "use distinct targets")
            targets.append(norm)
        envs = [m.env for m in step.all_mounts if isinstance(m, SecretMount) and m.env is not None]
        for name in envs:
            if envs.count(name) > 1:
                raise _err(spec.name, f"{where}.secrets", name, "two secrets set the same variable",
                           "give each secret its own variable name")
    elif isinstance(step, AddStep):
        src = step.source
        if isinstance(src, UrlSource):
            _check_url(spec, f"{where}.source", src)
        elif isinstance(src, ContextSource):
            _check_context(spec, f"{where}.source", src)
        elif isinstance(src, PlatformSource):
            _check_platform_source(spec, f"{where}.source", src)
        else:
            raise _err(spec.name, f"{where}.source", src, "unsupported add source",
                       "use ContextSource(context_name, path) or UrlSource(url, checksum)")
        _check_dest_chmod_chown(spec, where, step)
    else:
        raise _err(spec.name, where, step, "unsupported step",
                   "use CopyStep, AddStep, RunStep, EnvStep, UserStep or WorkdirStep")


_LAYOUT_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


def _validate_one(spec: "ImageSpec") -> None:
    if not isinstance(spec.name, str):
        raise ImageSpecError(f"image name must be a string, got {spec.name!r}")
    base = spec.base
    if isinstance(base, RegistryBase):
        try:
            base.normalized
        except ImageSpecError as e:
            raise ImageSpecError(f"{spec.name}: field 'base': {e}", spec_name=spec.name, field="base",
                                 value=base.ref, problem=e.problem, fix=e.fix) from None
    elif isinstance(base, LayoutBase):
        if not isinstance(base.name, str) or not _LAYOUT_NAME.fullmatch(base.name):
            raise _err(spec.name, "base", base.name, "invalid OCI layout store name",
                       "use lowercase letters, digits and . _ - (an image name component)")
    elif not isinstance(base, (ScratchBase, SpecBase)):
        raise _err(spec.name, "base", base, "unsupported base",
                   "use ScratchBase(), RegistryBase(ref), SpecBase(spec) or LayoutBase(name)")
    if not isinstance(spec.steps, tuple):
        raise _err(spec.name, "steps", spec.steps, "expected a list of steps, got", "use a list of copy/run steps")
    for i, step in enumerate(spec.steps):
        _check_step(spec, i, step)
    _check_env_pairs(spec, "env", spec.env)
    _check_pairs(spec, "labels", spec.labels)
    _check_pairs(spec, "annotations", spec.annotations)
    if spec.workdir is not None:
        _check_workdir(spec, "workdir", spec.workdir)
    if spec.user is not None:
        _check_user_or_variable(spec, "user", spec.user)
    _check_str_list(spec, "entrypoint", spec.entrypoint, "['/app/bin.pex']")
    _check_str_list(spec, "cmd", spec.cmd, "['serve']")
    _check_str_list(spec, "exposed_ports", spec.exposed_ports, "['8080/tcp']")
    for p in spec.exposed_ports:
        try:
            parse_port(p)
        except ValueError as e:
            raise _err(spec.name, "exposed_ports", p, "invalid port",
                       f"{e}; use PORT[/tcp|/udp|/sctp], e.g. '8080', '8080/tcp' or '53/udp'") from None
    _check_str_list(spec, "volumes", spec.volumes, "['/data']")
    for v in spec.volumes:
        _check_abs(spec, "volumes", v, "a volume")
    if spec.stop_signal is not None:
        try:
            parse_signal(spec.stop_signal)
        except ValueError as e:
            raise _err(spec.name, "stop_signal", spec.stop_signal, "invalid stop signal",
                       f"{e}; use a name such as 'SIGTERM' (or 'TERM') or a number such as '15'") from None
    _check_str_list(spec, "platforms", spec.platforms, "['linux/amd64', 'linux/arm64']")
    normalize_platforms(spec.platforms, spec_name=spec.name)
    if spec.repository is not None:
        try:
            normalize_image_reference(spec.repository, op="repository")
        except LLBError:
            ok = False
        else:
            ok = ":" not in spec.repository.rpartition("/")[2] and "@" not in spec.repository
        if not ok:
            raise _err(spec.name, "repository", spec.repository, "invalid repository",
                       "use a lowercase name without tag or digest, e.g. 'acme/app'")
    _check_str_list(spec, "tags", spec.tags, "['1.4.0', 'latest']")
    for t in spec.tags:
        if not _TAG_RE.match(t):
            raise _err(spec.name, "tags", t, "invalid tag",
                       "tags are up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")
    _check_str_list(spec, "registries", spec.registries, "['registry.example.com']")
    for r in spec.registries:
        if not _REGISTRY_RE.match(r):
            raise _err(spec.name, "registries", r, "invalid registry",
                       "use HOST[:PORT], e.g. 'registry.example.com:5000'")
    if spec.output_format not in OUTPUT_FORMATS:
        raise _err(spec.name, "output_format", spec.output_format, "unknown output format",
                   f"choose one of {', '.join(OUTPUT_FORMATS)}")


def validate_spec(spec: "ImageSpec") -> None:
    """Check ``spec`` and every spec in its base chain; raise :class:`ImageSpecError` on the first
    problem, naming the image, the field, the value and the fix."""
    if not isinstance(spec, ImageSpec):
        raise ImageSpecError(f"expected an ImageSpec, got {type(spec).__name__}")
    _validate_tree(spec, ())


def image_sources(spec: "ImageSpec") -> List["ImageSpec"]:
    """The image specs ``spec``'s own steps read, in step order: those its copies copy from
    (``ImageSource`` of an ``ImageSpec``) and those its runs mount (a bind or cache mount's
    ``SpecBase`` source). Its base chain is not included; :func:`image_graph` walks everything."""
    out: List[ImageSpec] = []
    for st in spec.steps:
        if isinstance(st, CopyStep) and isinstance(st.source, ImageSource):
            if isinstance(st.source.image, ImageSpec):
                out.append(st.source.image)
        elif isinstance(st, RunStep):
            for m in st.all_mounts:
                src = getattr(m, "source", None)
                if isinstance(src, SpecBase) and isinstance(src.spec, ImageSpec):
                    out.append(src.spec)
    return out


def _validate_tree(spec: "ImageSpec", seen: Tuple[str, ...]) -> None:
    if spec.name in seen:
        names = " -> ".join(seen + (spec.name,))
        fix = ("an image cannot copy from (or mount) itself or an image that copies from (or mounts) it")
        raise ImageSpecError(f"{seen[0]}: field 'steps': cyclic copy sources {names}: {fix}",
                             spec_name=seen[0], field="steps", value=names, problem="cyclic copy sources", fix=fix)
    for s in spec.base_chain():
        _validate_one(s)
        for other in image_sources(s):
            _validate_tree(other, seen + (s.name,))


def image_graph(spec: "ImageSpec") -> List["ImageSpec"]:
    """Every image spec solved with ``spec``: its base chain, and the specs its copies read and
    its runs mount (:func:`image_sources`; their own chains and sources included), each once,
    ``spec`` first."""
    out: List[ImageSpec] = []
    todo = [spec]
    while todo:
        s = todo.pop(0)
        for link in s.base_chain():
            if any(link is o for o in out):
                continue
            out.append(link)
            todo.extend(image_sources(link))
    return out
