"""Exec ops: run a process over a root filesystem and mounts (Go's ``client/llb/exec.go``).

``run(state, args, ...)`` returns an :class:`ExecState`: the state after the run (its root) with
accessors for the other mounts' results. The process's env, working directory, user, network...
come from the state's values, overridable per run.

Mount outputs follow Go exactly, because they are part of the wire format: all mounts, root
included, are sorted by destination; each writable bind mount (not read-only, not cache, not tmpfs,
not ``no_output``) gets the next output index; secret and ssh mounts come after the sorted mounts
and produce no output.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from llbkit._proto import ops_pb2 as pb
from llbkit.llb import caps as _caps
from llbkit.llb.constraints import Constraints, marshal_constraints, op_constraints
from llbkit.llb.errors import ConflictingOptionsError, InvalidArgumentError, InvalidMountError, InvalidPathError
from llbkit.llb.marshal import MarshalContext
from llbkit.llb.meta import EnvLike, NetMode, SecurityMode, StateMeta, as_net_mode, as_security_mode, resolve_dir
from llbkit.platforms import Platform, PlatformLike
from llbkit.llb.state import Output, State, Vertex, new_state

__all__ = [
    "MountType",
    "CacheSharing",
    "ContentCache",
    "Mount",
    "SecretEnv",
    "ProxyEnv",
    "CDIDevice",
    "ExecOp",
    "ExecState",
    "bind",
    "cache",
    "tmpfs",
    "secret",
    "ssh",
    "mount",
    "secret_env",
    "run",
]

ROOT = "/"
_SSH_AUTH_SOCK = "SSH_AUTH_SOCK"


class MountType(enum.IntEnum):
    """Values are ``pb.MountType`` numbers."""

    BIND = 0
    SECRET = 1
    SSH = 2
    CACHE = 3
    TMPFS = 4


class CacheSharing(enum.IntEnum):
    """How concurrent runs share a cache mount (``pb.CacheSharingOpt``)."""

    SHARED = 0
    PRIVATE = 1
    LOCKED = 2


class ContentCache(enum.IntEnum):
    """Whether a bind mount's content is part of the cache key (``pb.MountContentCache``)."""

    DEFAULT = 0
    ON = 1
    OFF = 2


def _enum(enum_type, value, *, what: str, op: str):
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str) and value.upper() in enum_type.__members__:
        return enum_type[value.upper()]
    choices = ", ".join(m.lower() for m in enum_type.__members__)
    raise InvalidMountError(f"{op}: unknown {what} {value!r} (choose one of: {choices})")


@dataclass(frozen=True)
class Mount:
    """One mount of a run. Build it with :func:`bind`, :func:`cache`, :func:`tmpfs`,
    :func:`secret`, :func:`ssh` or the generic :func:`mount`."""

    dest: str
    type: MountType
    source: Optional[State] = None
    selector: str = ""
    readonly: bool = False
    no_output: bool = False
    content_cache: ContentCache = ContentCache.DEFAULT
    cache_id: str = ""
    sharing: CacheSharing = CacheSharing.SHARED
    size: int = 0
    id: str = ""
    uid: int = 0
    gid: int = 0
    mode: int = 0
    optional: bool = False


def _check_dest(dest: object, *, op: str, what: str = "mount destination") -> str:
    if not isinstance(dest, str) or not dest:
        raise InvalidPathError(f"{op}: {what} must be a non-empty absolute path, got {dest!r}")
    if not dest.startswith("/"):
        raise InvalidPathError(f"{op}: {what} {dest!r} must be an absolute path")
    if "\0" in dest:
        raise InvalidPathError(f"{op}: {what} {dest!r} contains a NUL byte")
    return dest


def _check_state(source: object, *, op: str) -> Optional[State]:
    if source is None:
        return None
    if not isinstance(source, State):
        raise InvalidMountError(f"{op}: mount source must be a State, got {type(source).__name__}")
    return source


def _check_id_number(value: object, *, op: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise InvalidArgumentError(f"{op}: {what} must be an int in 0..4294967295, got {value!r}")
    return value


def _check_mode(value: object, *, op: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o7777:
        raise InvalidArgumentError(f"{op}: mode must be a permission mode 0..0o7777, got {value!r}")
    return value


def bind(
    dest: str,
    source: Optional[State],
    *,
    selector: str = "",
    readonly: bool = False,
    no_output: bool = False,
    content_cache: Union[ContentCache, str] = ContentCache.DEFAULT,
) -> Mount:
    """Mount ``source`` (``None`` or scratch: an empty directory) at ``dest``.

    ``selector`` mounts a subdirectory of ``source``. A writable bind mount is an output of the
    run (see :meth:`ExecState.get_mount`) unless ``no_output``.
    """
    op = "bind"
    return Mount(
        dest=_check_dest(dest, op=op),
        type=MountType.BIND,
        source=_check_state(source, op=op),
        selector=_selector(selector, op=op),
        readonly=bool(readonly),
        no_output=bool(no_output),
        content_cache=_enum(ContentCache, content_cache, what="content_cache", op=op),
    )


def _selector(selector: object, *, op: str) -> str:
    if not isinstance(selector, str):
        raise InvalidArgumentError(f"{op}: selector must be a path string, got {selector!r}")
    return selector


def cache(
    dest: str,
    id: Optional[str] = None,
    *,
    sharing: Union[CacheSharing, str] = CacheSharing.SHARED,
    source: Optional[State] = None,
    selector: str = "",
) -> Mount:
    """A persistent cache directory at ``dest``, kept by buildkitd between builds under ``id``
    (default: ``dest``, as Dockerfile's ``RUN --mount=type=cache``). ``source`` seeds it."""
    op = "cache"
    dest = _check_dest(dest, op=op)
    if id is None:
        id = dest
    if not isinstance(id, str) or not id:
        raise InvalidMountError(f"{op}: cache id must be a non-empty string, got {id!r}")
    return Mount(
        dest=dest,
        type=MountType.CACHE,
        source=_check_state(source, op=op),
        selector=_selector(selector, op=op),
        cache_id=id,
        sharing=_enum(CacheSharing, sharing, what="cache sharing mode", op=op),
    )


def tmpfs(dest: str, *, size: int = 0) -> Mount:
    """An in-memory filesystem at ``dest``; ``size`` in bytes (0: the kernel default)."""
    op = "tmpfs"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidMountError(f"{op}: size must be a non-negative number of bytes, got {size!r}")
    return Mount(dest=_check_dest(dest, op=op), type=MountType.TMPFS, size=size)


def secret(
    dest: str,
    id: Optional[str] = None,
    *,
    uid: int = 0,
    gid: int = 0,
    mode: int = 0o400,
    optional: bool = False,
) -> Mount:
    """A secret from the client's session, as a file at ``dest`` (``id`` defaults to ``dest``,
    as in Go). Its value never appears in the definition."""
    op = "secret"
    dest = _check_dest(dest, op=op, what="secret path")
    if id is None:
        id = dest
    if not isinstance(id, str) or not id:
        raise InvalidMountError(f"{op}: secret id must be a non-empty string, got {id!r}")
    return Mount(
        dest=dest,
        type=MountType.SECRET,
        id=id,
        uid=_check_id_number(uid, op=op, what="uid"),
        gid=_check_id_number(gid, op=op, what="gid"),
        mode=_check_mode(mode, op=op),
        optional=bool(optional),
    )


def ssh(
    dest: Optional[str] = None,
    *,
    id: str = "",
    uid: int = 0,
    gid: int = 0,
    mode: int = 0o600,
    optional: bool = False,
) -> Mount:
    """The client's SSH agent socket at ``dest`` (default ``/run/buildkit/ssh_agent.N``);
    ``SSH_AUTH_SOCK`` points at the first one unless the env sets it."""
    op = "ssh"
    if dest is not None:
        _check_dest(dest, op=op, what="ssh socket path")
    if not isinstance(id, str):
        raise InvalidMountError(f"{op}: ssh id must be a string, got {id!r}")
    return Mount(
        dest=dest or "",
        type=MountType.SSH,
        id=id,
        uid=_check_id_number(uid, op=op, what="uid"),
        gid=_check_id_number(gid, op=op, what="gid"),
        mode=_check_mode(mode, op=op),
        optional=bool(optional),
    )


_MOUNT_BUILDERS = {
    MountType.BIND: (bind, ("source", "selector", "readonly", "no_output", "content_cache")),
    MountType.CACHE: (cache, ("id", "sharing", "source", "selector")),
    MountType.TMPFS: (tmpfs, ("size",)),
    MountType.SECRET: (secret, ("id", "uid", "gid", "mode", "optional")),
    MountType.SSH: (ssh, ("id", "uid", "gid", "mode", "optional")),
}


def mount(dest: str, type: Union[MountType, str], **options: Any) -> Mount:
    """A mount by type name (``bind``, ``cache``, ``tmpfs``, ``secret``, ``ssh``), for frontends
    that read mount specs as data. Options not meaningful for the type raise :class:`InvalidMountError`."""
    mtype = _enum(MountType, type, what="mount type", op="mount")
    builder, allowed = _MOUNT_BUILDERS[mtype]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidMountError(
            f"mount: option(s) {', '.join(unknown)} do not apply to a {mtype.name.lower()} mount at {dest!r}"
            f" (allowed: {', '.join(allowed)})"
        )
    if mtype is MountType.BIND:
        return builder(dest, options.pop("source", None), **options)
    return builder(dest, **options)


@dataclass(frozen=True)
class SecretEnv:
    """A secret exposed to a run as the environment variable ``name``."""

    name: str
    id: str
    optional: bool = False


def secret_env(name: str, id: Optional[str] = None, *, optional: bool = False) -> SecretEnv:
    """Expose secret ``id`` (default: ``name``) as env var ``name`` for one run."""
    op = "secret_env"
    if not isinstance(name, str) or not name or "=" in name:
        raise InvalidArgumentError(f"{op}: invalid environment variable name {name!r}")
    if id is None:
        id = name
    if not isinstance(id, str) or not id:
        raise InvalidArgumentError(f"{op}: secret id must be a non-empty string, got {id!r}")
    return SecretEnv(name, id, bool(optional))


@dataclass(frozen=True)
class ProxyEnv:
    """Proxy settings given to a run without being part of its cache key."""

    http_proxy: str = ""
    https_proxy: str = ""
    ftp_proxy: str = ""
    no_proxy: str = ""
    all_proxy: str = ""


@dataclass(frozen=True)
class CDIDevice:
    """A Container Device Interface device (``vendor.com/class=name``)."""

    name: str
    optional: bool = False


@dataclass(frozen=True)
class _PlannedMount:
    """A mount after sorting, with its input output and its own output index (-1: none)."""

    spec: Mount
    source: Optional[Output]
    output_index: int


class ExecOp(Vertex):
    """An exec vertex. Built by :func:`run`; immutable once built."""

    __slots__ = (
        "_meta_pb",
        "_network",
        "_security",
        "_mounts",
        "_secret_mounts",
        "_ssh_mounts",
        "_secret_envs",
        "_cdi",
        "constraints",
        "_state_platform",
        "_outputs",
    )
    kind = "exec"

    def __init__(
        self,
        *,
        meta: "pb.Meta",
        network: NetMode,
        security: SecurityMode,
        mounts: Sequence[Mount],
        secret_envs: Sequence[SecretEnv],
        cdi: Sequence[CDIDevice],
        constraints: Constraints,
        state_platform: Optional[Platform],
    ) -> None:
        self._meta_pb = meta
        self._network = network
        self._security = security
        self._secret_envs = tuple(secret_envs)
        self._cdi = tuple(cdi)
        self._state_platform = state_platform
        ordinary = sorted(
            (m for m in mounts if m.type not in (MountType.SECRET, MountType.SSH)), key=lambda m: m.dest
        )
        self._secret_mounts = tuple(m for m in mounts if m.type is MountType.SECRET)
        ssh_mounts = [m for m in mounts if m.type is MountType.SSH]
        self._ssh_mounts = tuple(
            replace(m, dest=m.dest or f"/run/buildkit/ssh_agent.{i}") for i, m in enumerate(ssh_mounts)
        )
        self.constraints = constraints
        planned: List[_PlannedMount] = []
        outputs: Dict[str, Output] = {}
        next_index = 0
        for m in ordinary:
            src = m.source.output if m.source is not None else None
            produces = not (m.no_output or m.readonly or m.type in (MountType.CACHE, MountType.TMPFS))
            index = -1
            if produces:
                index = next_index
                next_index += 1
                outputs[m.dest] = Output(self, index, constraints.platform)
            elif m.readonly and m.type is MountType.BIND:
                # A read-only mount's "result" is its unchanged source, as in Go.
                outputs[m.dest] = src  # type: ignore[assignment]
            planned.append(_PlannedMount(m, src, index))
        self._mounts = tuple(planned)
        self._outputs = outputs

    def inputs(self) -> Sequence[Output]:
        seen = set()
        out = []
        for pm in self._mounts:
            if pm.source is not None and id(pm.source) not in seen:
                seen.add(id(pm.source))
                out.append(pm.source)
        return out

    def mount_output(self, dest: str) -> Optional[Output]:
        """The output a mount at ``dest`` produces; raises for mounts that produce none."""
        for pm in self._mounts:
            if pm.spec.dest != dest:
                continue
            if dest in self._outputs:
                return self._outputs[dest]
            kind = pm.spec.type.name.lower()
            why = "is marked no_output" if pm.spec.no_output else f"is a {kind} mount"
            raise InvalidMountError(f"run: mount {dest!r} {why} and can't be used as a parent")
        if any(m.dest == dest for m in self._secret_mounts + self._ssh_mounts):
            raise InvalidMountError(f"run: mount {dest!r} is a secret/ssh mount and has no output")
        raise InvalidMountError(f"run: no mount at {dest!r}")

    def marshal_op(self, ctx: MarshalContext):
        c = self.constraints
        if c.platform is None and self._state_platform is not None:
            c = c.with_platform(self._state_platform)
        op, md = marshal_constraints(ctx.base, c)
        e = op.exec
        e.meta.CopyFrom(self._meta_pb)
        e.network = int(self._network)
        e.security = int(self._security)
        keys: List[Tuple[str, int]] = []
        for pm in self._mounts:
            m = pm.spec
            pmnt = e.mounts.add()
            if pm.source is not None:
                inp = ctx.input(pm.source)
                key = (inp.digest, inp.index)
                if key in keys:
                    pmnt.input = keys.index(key)
                else:
                    pmnt.input = len(keys)
                    keys.append(key)
                    op.inputs.append(inp)
            else:
                pmnt.input = -1
            pmnt.dest = m.dest
            pmnt.readonly = m.readonly
            pmnt.output = pm.output_index
            pmnt.selector = m.selector
            if m.type is MountType.CACHE:
                pmnt.mountType = pb.CACHE
                pmnt.cacheOpt.ID = m.cache_id
                pmnt.cacheOpt.sharing = int(m.sharing)
            elif m.type is MountType.TMPFS:
                pmnt.mountType = pb.TMPFS
                pmnt.TmpfsOpt.SetInParent()
                pmnt.TmpfsOpt.size = m.size
            pmnt.contentCache = int(m.content_cache)
        for s in self._secret_envs:
            e.secretenv.add(ID=s.id, name=s.name, optional=s.optional)
        for m in self._secret_mounts:
            # Go leaves output unset (0) on secret and ssh mounts; it is part of the bytes.
            pmnt = e.mounts.add(input=-1, dest=m.dest, mountType=pb.SECRET)
            pmnt.secretOpt.SetInParent()
            so = pmnt.secretOpt
            so.ID, so.uid, so.gid, so.optional, so.mode = m.id, m.uid, m.gid, m.optional, m.mode
        for m in self._ssh_mounts:
            pmnt = e.mounts.add(input=-1, dest=m.dest, mountType=pb.SSH)
            pmnt.SSHOpt.SetInParent()
            so = pmnt.SSHOpt
            so.ID, so.uid, so.gid, so.mode, so.optional = m.id, m.uid, m.gid, m.mode, m.optional
        for d in self._cdi:
            e.cdiDevices.add(name=d.name, optional=d.optional)
        return op, md, c.source_locations


@dataclass(frozen=True, eq=False)
class ExecState(State):
    """The state after a run (its root filesystem), with access to the run's other mounts."""

    exec_op: Optional[ExecOp] = None

    def root(self) -> State:
        """The root filesystem after the run, as a plain :class:`State`."""
        return State(self.output, self.meta)

    def get_mount(self, dest: str) -> State:
        """The filesystem a writable mount at ``dest`` holds after the run (``/``: the root)."""
        assert self.exec_op is not None
        return new_state(self.exec_op.mount_output(dest))


def _split_args(args: Union[str, Sequence[str]], *, op: str) -> List[str]:
    if isinstance(args, str):
        # Like Go's llb.Shlex: split shell-style into argv; no shell runs. For a shell, pass
        # ["/bin/sh", "-c", script].
        try:
            argv = shlex.split(args)
        except ValueError as e:
            raise InvalidArgumentError(f"{op}: can't split command {args!r}: {e}") from e
    elif isinstance(args, (bytes, bytearray)):
        raise InvalidArgumentError(f"{op}: args must be a list of strings or a command string, got bytes")
    else:
        argv = list(args)
    if not argv:
        raise InvalidArgumentError(f"{op}: arguments are required, got {args!r}")
    for a in argv:
        if not isinstance(a, str):
            raise InvalidArgumentError(f"{op}: every argument must be a string, got {a!r} in {args!r}")
        if "\0" in a:
            raise InvalidArgumentError(f"{op}: argument {a!r} contains a NUL byte")
    return argv


def _mapping_or_pairs(value: Any) -> Iterable[Tuple[Any, Any]]:
    return value.items() if isinstance(value, Mapping) else value


def run(
    state: State,
    args: Union[str, Sequence[str]],
    *,
    env: Optional[EnvLike] = None,
    cwd: Optional[str] = None,
    user: Optional[str] = None,
    hostname: Optional[str] = None,
    network: Union[NetMode, str, None] = None,
    security: Union[SecurityMode, str, None] = None,
    mounts: Sequence[Mount] = (),
    secret_env: Sequence[SecretEnv] = (),
    readonly_rootfs: bool = False,
    valid_exit_codes: Optional[Sequence[int]] = None,
    extra_hosts: Optional[Union[Mapping[str, str], Sequence[Tuple[str, str]]]] = None,
    ulimits: Sequence[Tuple[str, int, int]] = (),
    cgroup_parent: Optional[str] = None,
    proxy_env: Optional[ProxyEnv] = None,
    cdi_devices: Sequence[CDIDevice] = (),
    platform: Optional[PlatformLike] = None,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> ExecState:
    """Run ``args`` with ``state`` as the root filesystem.

    ``args`` is an argv list, or a string split shell-style into one (no shell is involved).
    Without ``PATH`` in the env, buildkitd supplies the default one when it runs the process (the
    definition then stays free of it, as Go's marshals without server caps).
    ``env``, ``cwd``, ``user``, ``hostname``, ``network``, ``security``, ``extra_hosts``,
    ``ulimits`` and ``cgroup_parent`` override or extend the state's values for this run only; the
    returned state keeps the original values, as in Go. A relative ``cwd`` is joined onto the
    state's directory.
    """
    op = "run"
    if not isinstance(state, State):
        raise InvalidArgumentError(f"{op}: expected a State to run on, got {type(state).__name__}")
    argv = _split_args(args, op=op)
    meta: StateMeta = state.meta
    if env is not None:
        meta = meta.add_envs(env, op=op)
    if cwd is not None:
        meta = replace(meta, dir=resolve_dir(meta.dir, cwd, op=op))
    if user is not None:
        meta = meta.with_user(user, op=op)
    if hostname is not None:
        meta = meta.with_hostname(hostname, op=op)
    if network is not None:
        meta = replace(meta, network=as_net_mode(network, op=op))
    if security is not None:
        meta = replace(meta, security=as_security_mode(security, op=op))
    for host, ip in _mapping_or_pairs(extra_hosts or ()):
        meta = meta.add_extra_host(host, ip, op=op)
    for ul in ulimits:
        if not isinstance(ul, tuple) or len(ul) != 3:
            raise InvalidArgumentError(f"{op}: ulimits entries are (name, soft, hard), got {ul!r}")
        meta = meta.add_ulimit(*ul, op=op)
    if cgroup_parent is not None:
        meta = replace(meta, cgroup_parent=str(cgroup_parent))

    c = op_constraints(op, constraints, custom_name=custom_name, ignore_cache=ignore_cache, platform=platform)
    specs = _check_mounts(state, mounts, readonly_rootfs, op=op)
    secret_envs = tuple(secret_env)
    for s in secret_envs:
        if not isinstance(s, SecretEnv):
            raise InvalidArgumentError(f"{op}: secret_env entries must be built with secret_env(), got {s!r}")
    cdi = tuple(cdi_devices)
    for d in cdi:
        if not isinstance(d, CDIDevice) or not d.name:
            raise InvalidArgumentError(f"{op}: cdi_devices entries must be CDIDevice(name=...), got {d!r}")

    ssh_specs = [m for m in specs if m.type is MountType.SSH]
    envs = meta.env
    if ssh_specs and meta.get_env(_SSH_AUTH_SOCK) is None:
        first = ssh_specs[0].dest or "/run/buildkit/ssh_agent.0"
        envs = meta.add_env(_SSH_AUTH_SOCK, first).env

    codes: List[int] = []
    if valid_exit_codes is not None:
        codes = list(valid_exit_codes)
        if not codes or any(not isinstance(x, int) or isinstance(x, bool) or not 0 <= x <= 255 for x in codes):
            raise InvalidArgumentError(
                f"{op}: valid_exit_codes must be a non-empty list of ints 0..255, got {valid_exit_codes!r}"
            )

    pm = pb.Meta(
        args=argv,
        env=[f"{k}={v}" for k, v in envs],
        cwd=meta.dir,
        user=meta.user,
        hostname=meta.hostname,
        cgroupParent=meta.cgroup_parent,
        removeMountStubsRecursive=True,
        validExitCodes=codes,
    )
    for h in meta.extra_hosts:
        pm.extraHosts.add(Host=h.host, IP=h.ip)
    for u in meta.ulimits:
        pm.ulimit.add(Name=u.name, Soft=u.soft, Hard=u.hard)
    if proxy_env is not None:
        if not isinstance(proxy_env, ProxyEnv):
            raise InvalidArgumentError(f"{op}: proxy_env must be a ProxyEnv, got {proxy_env!r}")
        pm.proxy_env.SetInParent()
        pe = pm.proxy_env
        pe.http_proxy, pe.https_proxy, pe.ftp_proxy = proxy_env.http_proxy, proxy_env.https_proxy, proxy_env.ftp_proxy
        pe.no_proxy, pe.all_proxy = proxy_env.no_proxy, proxy_env.all_proxy

    c = c.with_caps(*_exec_caps(meta, specs, secret_envs, cdi, proxy_env, codes, c))
    exec_op = ExecOp(
        meta=pm,
        network=meta.network,
        security=meta.security,
        mounts=specs,
        secret_envs=secret_envs,
        cdi=cdi,
        constraints=c,
        state_platform=meta.platform,
    )
    root = exec_op.mount_output(ROOT)
    after = state.with_output(root)
    return ExecState(after.output, after.meta, exec_op)


def _check_mounts(state: State, mounts: Sequence[Mount], readonly_rootfs: bool, *, op: str) -> List[Mount]:
    if isinstance(mounts, Mount):
        mounts = [mounts]
    root = Mount(dest=ROOT, type=MountType.BIND, source=state, readonly=bool(readonly_rootfs))
    specs = [root]
    seen = {ROOT}
    for m in mounts:
        if not isinstance(m, Mount):
            raise InvalidMountError(
                f"{op}: unknown mount {m!r}: build mounts with bind(), cache(), tmpfs(), secret(), ssh() or mount()"
            )
        if m.type is MountType.TMPFS and m.source is not None:
            raise ConflictingOptionsError(
                f"{op}: tmpfs mount {m.dest!r} can't have a source state (tmpfs mounts must use scratch)"
            )
        if m.dest == ROOT:
            raise ConflictingOptionsError(
                f"{op}: mount at '/' conflicts with the root filesystem (the state run is called on)"
            )
        if m.dest and m.dest in seen:
            raise ConflictingOptionsError(f"{op}: two mounts at {m.dest!r}")
        if m.dest:
            seen.add(m.dest)
        specs.append(m)
    return specs


def _exec_caps(meta, specs, secret_envs, cdi, proxy_env, codes, c: Constraints) -> List[str]:
    caps = [_caps.EXEC_META_BASE]
    if codes:
        caps.append(_caps.EXEC_VALID_EXIT_CODE)
    if meta.ulimits:
        caps.append(_caps.EXEC_META_ULIMIT)
    if meta.cgroup_parent:
        caps.append(_caps.EXEC_META_CGROUP_PARENT)
    if c.metadata.linux_resources is not None:
        caps.append(_caps.EXEC_META_LINUX_RESOURCES)
    if meta.network is not NetMode.SANDBOX:
        caps.append(_caps.EXEC_META_NETWORK)
    if meta.security is SecurityMode.INSECURE:
        caps.append(_caps.EXEC_META_SECURITY)
    if proxy_env is not None:
        caps.append(_caps.EXEC_META_PROXY)
    for m in specs:
        if m.type in (MountType.SECRET, MountType.SSH):
            continue
        if m.selector:
            caps.append(_caps.EXEC_MOUNT_SELECTOR)
        if m.type is MountType.CACHE:
            caps += [_caps.EXEC_MOUNT_CACHE, _caps.EXEC_MOUNT_CACHE_SHARING]
        elif m.type is MountType.TMPFS:
            caps.append(_caps.EXEC_MOUNT_TMPFS)
            if m.size > 0:
                caps.append(_caps.EXEC_MOUNT_TMPFS_SIZE)
        elif m.source is not None and m.source.output is not None:
            caps.append(_caps.EXEC_MOUNT_BIND)
        if m.no_output and not m.readonly and m.type is MountType.BIND:
            caps.append(_caps.EXEC_MOUNT_BIND_READWRITE_NO_OUTPUT)
        if m.content_cache is not ContentCache.DEFAULT:
            caps.append(_caps.EXEC_MOUNT_CONTENT_CACHE)
    if any(m.type is MountType.SECRET for m in specs) or secret_envs:
        caps.append(_caps.EXEC_MOUNT_SECRET)
        if secret_envs:
            caps.append(_caps.EXEC_SECRET_ENV)
    if any(m.type is MountType.SSH for m in specs):
        caps.append(_caps.EXEC_MOUNT_SSH)
    if cdi:
        caps.append(_caps.EXEC_META_CDI)
    return caps
