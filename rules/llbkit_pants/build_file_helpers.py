"""The helpers BUILD files use inside `container_image(steps=[...])`.

`copy`, `copy_from`, `add`, `run`, `set_env`, `set_user`, `set_workdir`, `cache_mount`,
`secret_mount`, `secret_env`, `tmpfs_mount`, `bind_mount` and `ssh_mount` build plain, hashable
values that the `steps` field checks; the rules turn the steps into the library's `llbkit.image`
steps (whose mount values the helpers build directly). They only record what the user wrote:
validation happens in the field (type and shape) and in the library
(paths, users, modes), so errors can name the target and the field.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Tuple, Union

# The mount values are llbkit.image's, imported when a helper makes or checks one: loading the
# plugin (every Pants run) must not load the library (see register.py).
if TYPE_CHECKING:  # pragma: no cover
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
Mount = Union["CacheMount", "SecretMount", "TmpfsMount", "BindMount", "SshMount"]


def mount_types() -> Tuple[type, ...]:
    """The mount value types (imported on use: see the TYPE_CHECKING import above)."""
    from llbkit.image import BindMount, CacheMount, SecretMount, SshMount, TmpfsMount

    return (CacheMount, SecretMount, TmpfsMount, BindMount, SshMount)


@dataclass(frozen=True)
class CopyStep:
    """Copy a target's packaged output or files owned by a `files`/`resources` target."""

    source: str
    dest: str
    chmod: Optional[str] = None
    chown: Optional[str] = None


@dataclass(frozen=True)
class CopyFromStep:
    """Copy a path out of another image's filesystem (Dockerfile `COPY --from`)."""

    image: str
    source: str
    dest: str
    chmod: Optional[str] = None
    chown: Optional[str] = None


@dataclass(frozen=True)
class EnvStep:
    """Set environment variables for the later steps and the config (Dockerfile `ENV`)."""

    env: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class UserStep:
    """Switch the user for the later steps and the config (Dockerfile `USER`)."""

    user: str


@dataclass(frozen=True)
class WorkdirStep:
    """Change the working directory for the later steps and the config (Dockerfile `WORKDIR`)."""

    path: str


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


Step = Union[CopyStep, CopyFromStep, AddStep, RunStep, EnvStep, UserStep, WorkdirStep]
STEP_TYPES = (CopyStep, CopyFromStep, AddStep, RunStep, EnvStep, UserStep, WorkdirStep)


def _chmod(value: Any, call: str) -> Optional[str]:
    """`chmod=` as written: a string, checked by the library (octal or symbolic). An int is
    refused: once Python has read a BUILD file, `0o755` and `493` are the same value and `755`
    is the decimal 755 (mode 0o1363), so an int cannot be trusted to be what the user meant."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        readings = []  # what the user may have meant, the likelier first
        if set(digits) <= set("01234567") and len(digits) <= 4:
            readings.append(f'chmod="{digits.zfill(4)}" if you meant the octal digits {digits}')
        if 0 <= value <= 0o7777:
            wrote = f'chmod="{value:04o}" if you wrote 0o{value:o}'
            readings.insert(0 if value <= 0o777 else len(readings), wrote)
        if not readings:
            readings.append('an octal one such as chmod="0755"')
        raise TypeError(
            f"{call}: chmod={value} is an int; write the mode as a string: {', or '.join(readings)}. "
            f"Symbolic modes work too, e.g. chmod=\"u+x,go-w\". Ints are refused because Python reads "
            f"755 as decimal (mode 0o1363) and cannot tell 0o755 from 493 once the BUILD file is read.")
    raise TypeError(f'{call}: chmod must be a string such as "0644" or "u+x,go-w", got {value!r}')


def copy(source: str, dest: str, *, chmod: Optional[str] = None, chown: Optional[str] = None) -> CopyStep:
    """`copy(":bin", "/app/")` or `copy("config.yaml", "/etc/app/config.yaml", chmod="0644")`."""
    if not isinstance(source, str) or not isinstance(dest, str):
        raise TypeError(f"copy(source, dest) takes two strings, got copy({source!r}, {dest!r})")
    return CopyStep(source, dest, _chmod(chmod, f"copy({source!r}, {dest!r})"), chown)


def copy_from(image: str, source: str, dest: str, *, chmod: Optional[str] = None,
              chown: Optional[str] = None) -> CopyFromStep:
    """`copy_from(":builder", "/out/app", "/usr/local/bin/")` copies a path out of another image."""
    if not all(isinstance(v, str) for v in (image, source, dest)):
        raise TypeError(f"copy_from(image, source, dest) takes three strings, got "
                        f"copy_from({image!r}, {source!r}, {dest!r})")
    return CopyFromStep(image, source, dest, _chmod(chmod, f"copy_from({image!r}, {source!r}, {dest!r})"), chown)


def set_env(env: Mapping[str, str]) -> EnvStep:
    """`set_env({"PATH": "/opt/app/bin:$PATH"})` sets variables for the later steps and the config."""
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise TypeError(f"set_env() takes a dict of strings to strings, e.g. set_env({{\"PORT\": \"8080\"}}), got {env!r}")
    return EnvStep(tuple(env.items()))


def set_user(user: str) -> UserStep:
    """`set_user("app")` runs the later steps, and the container, as `app` (or "uid:gid")."""
    if not isinstance(user, str):
        raise TypeError(f'set_user() takes a string such as "app" or "1000:1000", got {user!r}')
    return UserStep(user)


def set_workdir(path: str) -> WorkdirStep:
    """`set_workdir("/srv/app")` changes (and creates) the working directory of the later steps."""
    if not isinstance(path, str):
        raise TypeError(f'set_workdir() takes a path string such as "/srv/app", got {path!r}')
    return WorkdirStep(path)


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
    return AddStep(source, dest, checksum, _chmod(chmod, f"add({source!r}, {dest!r})"), chown)


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
    if mounts or secrets:
        _check_mounts(mounts, secrets)
    return RunStep(_strings(command, "run(command)"), mounts, network, secrets, security)


def _check_mounts(mounts: Tuple[Any, ...], secrets: Tuple[Any, ...]) -> None:
    from llbkit.image import SecretMount

    types = mount_types()
    for m in mounts:
        if not isinstance(m, types):
            raise TypeError(
                "run(mounts=...) takes cache_mount(), secret_mount(), secret_env(), tmpfs_mount(), bind_mount() "
                f"and ssh_mount() values, got {m!r}"
            )
    for s in secrets:
        if not isinstance(s, SecretMount):
            raise TypeError(f"run(secrets=...) takes secret_mount() and secret_env() values, got {s!r}")


def cache_mount(
    target: str, *, id: Optional[str] = None, sharing: str = "shared", uid: Optional[int] = None,
    gid: Optional[int] = None, mode: Optional[int] = None, source: Optional[str] = None, path: str = "/",
) -> CacheMount:
    """`cache_mount("/root/.cache/pip", sharing="locked", uid=1000, gid=1000, mode=0o755)`: sharing is shared, private or locked."""
    from llbkit.image import CacheMount

    return CacheMount(target, id, sharing, uid, gid, mode, source, path)  # type: ignore[arg-type]


def secret_mount(
    id: str, target: Optional[str] = None, *, required: bool = True, mode: int = 0o400, uid: int = 0, gid: int = 0,
    env: Optional[str] = None,
) -> SecretMount:
    """`secret_mount("token")` mounts secret `token` at /run/secrets/token (or at `target`)."""
    from llbkit.image import SecretMount

    return SecretMount(id, target, required, mode, uid, gid, env)


def secret_env(name: str, id: Optional[str] = None, *, required: bool = True) -> SecretMount:
    """`secret_env("API_TOKEN", id="token")` sets $API_TOKEN to secret `token` for one run (no file)."""
    from llbkit.image import SecretMount

    return SecretMount(id if id is not None else name, None, required, env=name)


def bind_mount(source: str, target: str, *, path: str = "/", readwrite: bool = False) -> BindMount:
    """`bind_mount(":builder", "/build", path="/out")` mounts another image's (or target's) files, read-only."""
    from llbkit.image import BindMount

    return BindMount(target, source, path, readwrite)  # type: ignore[arg-type]


def ssh_mount(
    id: str = "default", target: Optional[str] = None, *, required: bool = True, mode: int = 0o600,
    uid: int = 0, gid: int = 0,
) -> SshMount:
    """`ssh_mount()` forwards the ssh agent `default` of [buildkit].ssh; $SSH_AUTH_SOCK points at it."""
    from llbkit.image import SshMount

    return SshMount(id, target, required, mode, uid, gid)


def tmpfs_mount(target: str, *, size: int = 0) -> TmpfsMount:
    """`tmpfs_mount("/tmp", size=64 * 1024 * 1024)`; size 0 means the kernel's default."""
    from llbkit.image import TmpfsMount

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
        "copy_from": copy_from,
        "add": add,
        "run": run,
        "set_env": set_env,
        "set_user": set_user,
        "set_workdir": set_workdir,
        "cache_mount": cache_mount,
        "secret_mount": secret_mount,
        "secret_env": secret_env,
        "tmpfs_mount": tmpfs_mount,
        "bind_mount": bind_mount,
        "ssh_mount": ssh_mount,
    }.items()
}
