"""Find the programs the test environment runs, or say exactly how to install them.

BuildKit's binaries (``buildkitd``, ``buildctl``) are looked up in ``$LLBKIT_BUILDKIT_BIN`` when it
is set (and only there: an explicit setting that is wrong is an error, not a reason to pick some
other build), else in the project cache (``$LLBKIT_CACHE/buildkit-v0.32.2/bin``), else on ``PATH``.
Debian tools (``runc``, ``docker-registry``, ``skopeo``, ``openssl``, ``htpasswd``) are looked up
on ``PATH`` and in the usual system directories (``runc`` lives in ``/usr/sbin``, which a test
sandbox's ``PATH`` may lack).
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Mapping, Optional, Sequence

from llbkit.testutil.errors import PROVISION_HINT, FixtureError

BUILDKIT_VERSION = "v0.32.2"
BUILDKIT_TOOLS = ("buildkitd", "buildctl")
BUILDKIT_BIN_ENV = "LLBKIT_BUILDKIT_BIN"

# Tool -> Debian package that provides it.
DEBIAN_TOOLS = {
    "runc": "runc",
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "openssl": "openssl",
    "htpasswd": "apache2-utils",
    "dpkg-deb": "dpkg",
}
_SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_BINFMT_AARCH64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


def cache_dir(env: Optional[Mapping[str, str]] = None) -> Path:
    """``$LLBKIT_CACHE``, else ``${XDG_CACHE_HOME:-$HOME/.cache}/llbkit`` (as provision.sh)."""
    env = os.environ if env is None else env
    if env.get("LLBKIT_CACHE"):
        return Path(env["LLBKIT_CACHE"])
    xdg = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(xdg) / "llbkit"


def buildkit_search_dirs(env: Optional[Mapping[str, str]] = None) -> list[Path]:
    """Where buildkitd/buildctl are looked for, in order (``PATH`` comes after these)."""
    env = os.environ if env is None else env
    if env.get(BUILDKIT_BIN_ENV):
        return [Path(env[BUILDKIT_BIN_ENV])]
    return [cache_dir(env) / f"buildkit-{BUILDKIT_VERSION}" / "bin"]


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_tool(
    name: str,
    search_dirs: Optional[Sequence[Path]] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Path:
    """Return the absolute path of ``name``, or raise :class:`FixtureError` saying how to get it.

    ``search_dirs`` replaces the default search (useful in tests and for pinned layouts).
    """
    env = os.environ if env is None else env
    if search_dirs is not None:
        dirs = [Path(d) for d in search_dirs]
        use_path = False
    elif name in BUILDKIT_TOOLS:
        dirs = buildkit_search_dirs(env)
        use_path = not env.get(BUILDKIT_BIN_ENV)
    else:
        dirs = []
        use_path = True
    for d in dirs:
        if _executable(d / name):
            return (d / name).absolute()
    if use_path:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return Path(found).absolute()
        if name not in BUILDKIT_TOOLS:
            for d in _SYSTEM_DIRS:
                if _executable(Path(d) / name):
                    return Path(d) / name
    raise FixtureError(_missing_message(name, dirs, use_path, env))


def _missing_message(
    name: str, dirs: Sequence[Path], use_path: bool, env: Mapping[str, str]
) -> str:
    where = [str(d) for d in dirs]
    if name in BUILDKIT_TOOLS and env.get(BUILDKIT_BIN_ENV) and dirs:
        where = [f"{d} (from ${BUILDKIT_BIN_ENV})" for d in where]
    if use_path:
        where.append("PATH")
        if name not in BUILDKIT_TOOLS:
            where.extend(_SYSTEM_DIRS)
    if name in BUILDKIT_TOOLS:
        what = f"{name} (BuildKit {BUILDKIT_VERSION})"
        fix = PROVISION_HINT
    else:
        pkg = DEBIAN_TOOLS.get(name, name)
        what = f"{name} (Debian package {pkg})"
        fix = f"apt-get install {pkg}, or {PROVISION_HINT}"
    return f"{what} not found (looked in: {', '.join(where)}); to install it: {fix}"


def busybox_debs(env: Optional[Mapping[str, str]] = None) -> dict[str, Path]:
    """The Debian ``busybox-static`` packages for amd64 and arm64 that provision.sh downloads."""
    debs_dir = cache_dir(env) / "debs"
    out = {arch: debs_dir / f"busybox-static_{arch}.deb" for arch in ("amd64", "arm64")}
    missing = [str(p) for p in out.values() if not p.is_file()]
    if missing:
        raise FixtureError(
            f"busybox-static .deb not found: {', '.join(missing)} (the tiny test base image is "
            f"built from them); to download them: {PROVISION_HINT}"
        )
    return out


def check_arm64_emulation() -> None:
    """Raise unless this host runs linux/arm64 binaries (natively, or qemu-aarch64 flag F)."""
    if platform.machine() in ("aarch64", "arm64"):
        return
    try:
        text = _BINFMT_AARCH64.read_text()
    except OSError:
        text = ""
    flags = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("flags:")]
    if text.startswith("enabled") and flags and "F" in flags[0]:
        return
    raise FixtureError(
        f"arm64 emulation is not available: {_BINFMT_AARCH64} is missing, disabled or lacks flag F "
        f"(Debian packages qemu-user-static and binfmt-support, then "
        f"`update-binfmts --enable qemu-aarch64`); {PROVISION_HINT}"
    )
