"""State values consumed by ``run``: env, working directory, user, hostname, network, security...

As in Go's ``client/llb/meta.go`` these are not ops: they ride along on a :class:`~llbkit.llb.state.State`
and only reach the wire inside the ``ExecOp`` of a later ``run`` (or, for the directory, as the base
that relative file-action paths are resolved against). :class:`StateMeta` is immutable; every
setter returns a new one.
"""

from __future__ import annotations

import enum
import ipaddress
import posixpath
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Optional, Tuple, Union

from llbkit.llb.errors import InvalidArgumentError, InvalidPathError
from llbkit.platforms import Platform

__all__ = [
    "NetMode",
    "SecurityMode",
    "HostIP",
    "Ulimit",
    "StateMeta",
    "EnvLike",
    "as_net_mode",
    "as_security_mode",
    "env_pairs",
]


class NetMode(enum.IntEnum):
    """Network namespace of a run (values are ``pb.NetMode`` numbers)."""

    SANDBOX = 0  # the worker's default, isolated network with outbound access
    HOST = 1
    NONE = 2  # loopback only


class SecurityMode(enum.IntEnum):
    """Privileges of a run (values are ``pb.SecurityMode`` numbers)."""

    SANDBOX = 0
    INSECURE = 1  # privileged; buildkitd must allow the security.insecure entitlement


def _as_enum(enum_type, value, *, what: str, op: str):
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        key = value.strip().upper()
        if key in enum_type.__members__:
            return enum_type[key]
    choices = ", ".join(m.lower() for m in enum_type.__members__)
    raise InvalidArgumentError(f"{op}: unknown {what} {value!r} (choose one of: {choices})")


def as_net_mode(value: Union[NetMode, str], *, op: str) -> NetMode:
    return _as_enum(NetMode, value, what="network mode", op=op)


def as_security_mode(value: Union[SecurityMode, str], *, op: str) -> SecurityMode:
    return _as_enum(SecurityMode, value, what="security mode", op=op)


@dataclass(frozen=True)
class HostIP:
    """An extra ``/etc/hosts`` entry for runs."""

    host: str
    ip: str


@dataclass(frozen=True)
class Ulimit:
    """A resource limit for runs (``name`` as in ``ulimit``: nofile, nproc, core...)."""

    name: str
    soft: int
    hard: int


_ULIMIT_NAMES = frozenset(
    "core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime sigpending stack".split()
)

EnvLike = Union[Mapping[str, str], Iterable[str], Iterable[Tuple[str, str]]]


def env_pairs(env: EnvLike, *, op: str) -> Tuple[Tuple[str, str], ...]:
    """Normalize a mapping, ``["K=V", ...]`` or ``[(K, V), ...]`` to ``((K, V), ...)`` in order."""
    if isinstance(env, Mapping):
        items = list(env.items())
    elif isinstance(env, (str, bytes)):
        raise InvalidArgumentError(f"{op}: env must be a mapping or a list of 'KEY=value', got {env!r}")
    else:
        items = []
        for item in env:
            if isinstance(item, str):
                key, sep, value = item.partition("=")
                if not sep:
                    raise InvalidArgumentError(f"{op}: env entry {item!r} is not 'KEY=value'")
                items.append((key, value))
            elif isinstance(item, tuple) and len(item) == 2:
                items.append(item)
            else:
                raise InvalidArgumentError(f"{op}: env entry {item!r} is not 'KEY=value' or (key, value)")
    out = []
    for key, value in items:
        _check_env_key(key, op=op)
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{op}: env value for {key!r} must be a string, got {value!r}")
        out.append((key, value))
    return tuple(out)


def _check_env_key(key: object, *, op: str) -> None:
    if not isinstance(key, str) or not key or "=" in key or "\0" in key:
        raise InvalidArgumentError(f"{op}: invalid environment variable name {key!r}")


def _set_env(env: Tuple[Tuple[str, str], ...], key: str, value: str) -> Tuple[Tuple[str, str], ...]:
    # Go's EnvList orders keys by their latest assignment, so re-adding a key moves it last.
    return tuple(kv for kv in env if kv[0] != key) + ((key, value),)


@dataclass(frozen=True)
class StateMeta:
    """The run-time values a state carries. Defaults match a fresh Go ``llb.State``."""

    env: Tuple[Tuple[str, str], ...] = ()
    dir: str = "/"
    user: str = ""
    hostname: str = ""
    platform: Optional[Platform] = None
    network: NetMode = NetMode.SANDBOX
    security: SecurityMode = SecurityMode.SANDBOX
    extra_hosts: Tuple[HostIP, ...] = ()
    ulimits: Tuple[Ulimit, ...] = ()
    cgroup_parent: str = ""

    # -- env ------------------------------------------------------------------------------------

    def add_env(self, key: str, value: str, *, op: str = "add_env") -> "StateMeta":
        _check_env_key(key, op=op)
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{op}: env value for {key!r} must be a string, got {value!r}")
        return replace(self, env=_set_env(self.env, key, value))

    def add_envs(self, env: EnvLike, *, op: str) -> "StateMeta":
        new = self.env
        for key, value in env_pairs(env, op=op):
            new = _set_env(new, key, value)
        return replace(self, env=new)

    def with_env(self, env: EnvLike, *, op: str = "with_env") -> "StateMeta":
        out: Tuple[Tuple[str, str], ...] = ()
        for key, value in env_pairs(env, op=op):
            out = _set_env(out, key, value)
        return replace(self, env=out)

    def del_env(self, key: str) -> "StateMeta":
        return replace(self, env=tuple(kv for kv in self.env if kv[0] != key))

    def get_env(self, key: str) -> Optional[str]:
        for k, v in self.env:
            if k == key:
                return v
        return None

    def env_list(self) -> Tuple[str, ...]:
        return tuple(f"{k}={v}" for k, v in self.env)

    # -- paths and identity ---------------------------------------------------------------------

    def with_dir(self, path: str, *, op: str = "dir") -> "StateMeta":
        return replace(self, dir=resolve_dir(self.dir, path, op=op))

    def with_user(self, user: str, *, op: str = "user") -> "StateMeta":
        if not isinstance(user, str):
            raise InvalidArgumentError(f"{op}: user must be a string like 'app' or '1000:1000', got {user!r}")
        return replace(self, user=user)

    def with_hostname(self, hostname: str, *, op: str = "hostname") -> "StateMeta":
        if not isinstance(hostname, str):
            raise InvalidArgumentError(f"{op}: hostname must be a string, got {hostname!r}")
        return replace(self, hostname=hostname)

    def add_extra_host(self, host: str, ip: str, *, op: str = "add_extra_host") -> "StateMeta":
        if not isinstance(host, str) or not host:
            raise InvalidArgumentError(f"{op}: extra host name must be a non-empty string, got {host!r}")
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as e:
            raise InvalidArgumentError(f"{op}: invalid IP address {ip!r} for host {host!r}") from e
        # Go renders net.IP with String(): canonical form, IPv4-mapped IPv6 shown as IPv4.
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return replace(self, extra_hosts=self.extra_hosts + (HostIP(host, str(addr)),))

    def add_ulimit(self, name: str, soft: int, hard: int, *, op: str = "add_ulimit") -> "StateMeta":
        if name not in _ULIMIT_NAMES:
            raise InvalidArgumentError(
                f"{op}: unknown ulimit {name!r} (choose one of: {', '.join(sorted(_ULIMIT_NAMES))})"
            )
        for label, v in (("soft", soft), ("hard", hard)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidArgumentError(f"{op}: ulimit {name} {label} limit must be an int, got {v!r}")
        return replace(self, ulimits=self.ulimits + (Ulimit(name, soft, hard),))


def resolve_dir(current: str, path: str, *, op: str) -> str:
    """Go's ``Dir``: an absolute path replaces the directory, a relative one is joined onto it."""
    if not isinstance(path, str):
        raise InvalidPathError(f"{op}: directory must be a string, got {path!r}")
    if "\0" in path:
        raise InvalidPathError(f"{op}: directory {path!r} contains a NUL byte")
    if path.startswith("/"):
        return path
    return go_path_join(current or "/", path)


def go_path_clean(p: str) -> str:
    """Go's ``path.Clean`` (posixpath.normpath keeps a leading ``//``; Go does not)."""
    if p == "":
        return "."
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def go_path_join(*parts: str) -> str:
    """Go's ``path.Join``: join the non-empty parts with ``/`` and clean; ``""`` if all are empty."""
    nonempty = [p for p in parts if p]
    if not nonempty:
        return ""
    return go_path_clean("/".join(nonempty))
