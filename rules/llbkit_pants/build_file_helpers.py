"""The helpers BUILD files use inside `container_image(steps=[...])`.

`copy`, `add`, `run`, `cache_mount`, `secret_mount`, `secret_env`, `tmpfs_mount`, `bind_mount`
and `ssh_mount` build plain, hashable values that the `steps` field checks; the rules turn the
steps into the library's `llbkit.image` steps (whose mount values the helpers build directly).
They only record what the user wrote: validation happens in the field (type and shape) and in the library
(paths, users, modes), so errors can name the target and the field.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Tuple, Union

from llbkit.image import BindMount, CacheMount, SecretMount, SshMount, TmpfsMount


def _strings(value: Union[str, Iterable[str]], what: str) -> Union[str, Tuple[str, ...]]:
    if isinstance(value, str):
        return value
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a string or a list of strings, got {value!r}") from None
    if not all(isinstance(i, str) for i in items):
        raise TypeError(f"{what} must be a string or a list of strings, got {value!r}")
    return items


# Mounts are the library's own values (llbkit.image): nothing in them is Pants-specific, except
# that the `source` of a bind or cache mount is still the string the user wrote (an address, a
# path, or an image pinned by digest); the rules resolve it.
Mount = Union[CacheMount, SecretMount, TmpfsMount, BindMount, SshMount]
_MOUNT_TYPES = (CacheMount, SecretMount, TmpfsMount, BindMount, SshMount)


@dataclass(frozen=True)
class CopyStep:
    """Copy a target's packaged output or files owned by a `files`/`resources` target."""

    source: str
    dest: str
    chmod: Optional[str] = None
    chown: Optional[str] = None


@dataclass(frozen=True)
class RunStep:
    """Run a command in the image being built (a shell string, or an argv list)."""

    command: Union[str, Tuple[str, ...]]
    mounts: Tuple[Mount, ...] = ()
    network: Optional[str] = None
    secrets: Tuple[SecretMount, ...] = ()
    security: Optional[str] = None


@dataclass(frozen=True)
class AddStep:
    """Docker's ADD: a URL (with its checksum), or a local tar archive unpacked into the image."""

    source: str
    dest: str
    checksum: Optional[str] = None
    chmod: Optional[str] = None
    chown: Optional[str] = None

    @property
    def is_url(self) -> bool:
        return is_url(self.source)


def is_url(source: str) -> bool:
    return source.startswith("http://") or source.startswith("https://")


Step = Union[CopyStep, RunStep, AddStep]


def copy(source: str, dest: str, *, chmod: Optional[str] = None, chown: Optional[str] = None) -> CopyStep:
    """`copy(":bin", "/app/")` or `copy("config.yaml", "/etc/app/config.yaml", chmod="0644")`."""
    if not isinstance(source, str) or not isinstance(dest, str):
        raise TypeError(f"copy(source, dest) takes two strings, got copy({source!r}, {dest!r})")
    return CopyStep(source, dest, chmod, chown)


def add(
    source: str, dest: str, *, checksum: Optional[str] = None, chmod: Optional[str] = None,
    chown: Optional[str] = None,
) -> AddStep:
    """`add("https://example.com/tool-1.2.tar.gz", "/opt/", checksum="sha256:...")` or `add("vendor.tar.gz", "/opt/")`."""
    if not isinstance(source, str) or not isinstance(dest, str):
        raise TypeError(f"add(source, dest) takes two strings, got add({source!r}, {dest!r})")
    if checksum is not None and not is_url(source):
        raise TypeError(f"add({source!r}, ...): checksum= applies to http:// and https:// sources only; "
                        "leave it out for files of the repo")
    return AddStep(source, dest, checksum, chmod, chown)


def run(
    command: Union[str, Iterable[str]],
    *,
    mounts: Iterable[Mount] = (),
    network: Optional[str] = None,
    secrets: Iterable[SecretMount] = (),
    security: Optional[str] = None,
) -> RunStep:
    """`run("apt-get update", mounts=[cache_mount("/var/cache/apt")])` or `run(["/bin/app", "--check"])`."""
    mounts = tuple(mounts)
    secrets = tuple(secrets)
    for m in mounts:
        if not isinstance(m, _MOUNT_TYPES):
            raise TypeError(
                "run(mounts=...) takes cache_mount(), secret_mount(), secret_env(), tmpfs_mount(), bind_mount() "
                f"and ssh_mount() values, got {m!r}"
            )
    for s in secrets:
        if not isinstance(s, SecretMount):
            raise TypeError(f"run(secrets=...) takes secret_mount() and secret_env() values, got {s!r}")
    return RunStep(_strings(command, "run(command)"), mounts, network, secrets, security)


def cache_mount(
    target: str, *, id: Optional[str] = None, sharing: str = "shared", uid: Optional[int] = None,
    gid: Optional[int] = None, mode: Optional[int] = None, source: Optional[str] = None, path: str = "/",
) -> CacheMount:
    """`cache_mount("/root/.cache/pip", sharing="locked", uid=1000, gid=1000, mode=0o755)`: sharing is shared, private or locked."""
    return CacheMount(target, id, sharing, uid, gid, mode, source, path)  # type: ignore[arg-type]


def secret_mount(
    id: str, target: Optional[str] = None, *, required: bool = True, mode: int = 0o400, uid: int = 0, gid: int = 0,
    env: Optional[str] = None,
) -> SecretMount:
    """`secret_mount("token")` mounts secret `token` at /run/secrets/token (or at `target`)."""
    return SecretMount(id, target, required, mode, uid, gid, env)


def secret_env(name: str, id: Optional[str] = None, *, required: bool = True) -> SecretMount:
    """`secret_env("API_TOKEN", id="token")` sets $API_TOKEN to secret `token` for one run (no file)."""
    return SecretMount(id if id is not None else name, None, required, env=name)


def bind_mount(source: str, target: str, *, path: str = "/", readwrite: bool = False) -> BindMount:
    """`bind_mount(":builder", "/build", path="/out")` mounts another image's (or target's) files, read-only."""
    return BindMount(target, source, path, readwrite)  # type: ignore[arg-type]


def ssh_mount(
    id: str = "default", target: Optional[str] = None, *, required: bool = True, mode: int = 0o600,
    uid: int = 0, gid: int = 0,
) -> SshMount:
    """`ssh_mount()` forwards the ssh agent `default` of [buildkit].ssh; $SSH_AUTH_SOCK points at it."""
    return SshMount(id, target, required, mode, uid, gid)


def tmpfs_mount(target: str, *, size: int = 0) -> TmpfsMount:
    """`tmpfs_mount("/tmp", size=64 * 1024 * 1024)`; size 0 means the kernel's default."""
    return TmpfsMount(target, size)


def _checked_arguments(helper: Callable[..., Any]) -> Callable[..., Any]:
    """`helper`, but a call with a wrong argument (a misspelt keyword, one too many) says how the
    helper is called, with its example, instead of Python's bare TypeError."""
    signature = inspect.signature(helper)
    example = (helper.__doc__ or "").split("`")[1] if "`" in (helper.__doc__ or "") else ""

    @functools.wraps(helper)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(
                f"{helper.__name__}(): {e}. It is called as {helper.__name__}{_usage(signature)}"
                + (f", e.g. {example}" if example else "")
            ) from None
        return helper(*args, **kwargs)

    return checked


def _usage(signature: inspect.Signature) -> str:
    parts = []
    for p in signature.parameters.values():
        if p.kind == p.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        if p.default is p.empty:
            parts.append(p.name)
        else:
            octal = p.name == "mode" and isinstance(p.default, int)  # modes read as octal
            default = f"0o{p.default:o}" if octal else repr(p.default)
            parts.append(f"{p.name}={default}")
    return f"({', '.join(parts)})"


BUILD_FILE_HELPERS = {
    name: _checked_arguments(helper)
    for name, helper in {
        "copy": copy,
        "add": add,
        "run": run,
        "cache_mount": cache_mount,
        "secret_mount": secret_mount,
        "secret_env": secret_env,
        "tmpfs_mount": tmpfs_mount,
        "bind_mount": bind_mount,
        "ssh_mount": ssh_mount,
    }.items()
}
