"""The helpers BUILD files use inside `container_image(steps=[...])`.

`copy`, `run`, `cache_mount`, `secret_mount` and `tmpfs_mount` build plain, hashable values that
the `steps` field checks; the rules turn the steps into the library's `llbkit.image` steps (whose
mount values the helpers build directly). They only
record what the user wrote: validation happens in the field (type and shape) and in the library
(paths, users, modes), so errors can name the target and the field.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Tuple, Union

# The mount values are llbkit.image's, imported when a helper makes or checks one: loading the
# plugin (every Pants run) must not load the library (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.image import CacheMount, SecretMount, TmpfsMount


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


# Mounts are the library's own values (llbkit.image): nothing in them is Pants-specific.
Mount = Union["CacheMount", "SecretMount", "TmpfsMount"]


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


Step = Union[CopyStep, RunStep]


def copy(source: str, dest: str, *, chmod: Optional[str] = None, chown: Optional[str] = None) -> CopyStep:
    """`copy(":bin", "/app/")` or `copy("config.yaml", "/etc/app/config.yaml", chmod="0644")`."""
    if not isinstance(source, str) or not isinstance(dest, str):
        raise TypeError(f"copy(source, dest) takes two strings, got copy({source!r}, {dest!r})")
    return CopyStep(source, dest, chmod, chown)


def run(
    command: Union[str, Iterable[str]],
    *,
    mounts: Iterable[Mount] = (),
    network: Optional[str] = None,
    secrets: Iterable[SecretMount] = (),
) -> RunStep:
    """`run("apt-get update", mounts=[cache_mount("/var/cache/apt")])` or `run(["/bin/app", "--check"])`."""
    mounts = tuple(mounts)
    secrets = tuple(secrets)
    if mounts or secrets:
        _check_mounts(mounts, secrets)
    return RunStep(_strings(command, "run(command)"), mounts, network, secrets)


def _check_mounts(mounts: Tuple[Any, ...], secrets: Tuple[Any, ...]) -> None:
    from llbkit.image import CacheMount, SecretMount, TmpfsMount

    for m in mounts:
        if not isinstance(m, (CacheMount, SecretMount, TmpfsMount)):
            raise TypeError(
                f"run(mounts=...) takes cache_mount(), secret_mount() and tmpfs_mount() values, got {m!r}"
            )
    for s in secrets:
        if not isinstance(s, SecretMount):
            raise TypeError(f"run(secrets=...) takes secret_mount() values, got {s!r}")


def cache_mount(target: str, *, id: Optional[str] = None, sharing: str = "shared") -> CacheMount:
    """`cache_mount("/root/.cache/pip", sharing="locked")`: sharing is shared, private or locked."""
    from llbkit.image import CacheMount

    return CacheMount(target, id, sharing)


def secret_mount(
    id: str, target: Optional[str] = None, *, required: bool = True, mode: int = 0o400, uid: int = 0, gid: int = 0
) -> SecretMount:
    """`secret_mount("token")` mounts secret `token` at /run/secrets/token (or at `target`)."""
    from llbkit.image import SecretMount

    return SecretMount(id, target, required, mode, uid, gid)


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
            default = f"0o{p.default:o}" if p.name == "mode" else repr(p.default)  # modes read as octal
            parts.append(f"{p.name}={default}")
    return f"({', '.join(parts)})"


BUILD_FILE_HELPERS = {
    name: _checked_arguments(helper)
    for name, helper in {
        "copy": copy,
        "run": run,
        "cache_mount": cache_mount,
        "secret_mount": secret_mount,
        "tmpfs_mount": tmpfs_mount,
    }.items()
}
