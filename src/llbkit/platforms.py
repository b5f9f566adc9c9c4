"""Platforms, once for every stage: the type, the parser, the normalizer and the matcher.

The LLB compiler, the worker pool, base-image resolution, the OCI index code and the test fixtures
all compare platforms; they must agree, so there is one definition here, below all of them, and
it imports nothing outside the standard library (``llbkit push`` runs without grpc/protobuf).

The rules follow containerd's ``platforms`` package, which BuildKit uses on both sides of the wire:
architecture aliases are normalized (``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``), a bare
``arm`` means ``arm/v7`` and ``arm64/v8`` is plain ``arm64``. Unlike containerd, a single component
(``linux`` or ``arm64``) is rejected: it would be completed from the host running the compiler, and
the compiler's output must not depend on where it runs.
"""

from __future__ import annotations

import platform as _host
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union
from urllib.parse import unquote

from llbkit.errors import InvalidPlatformError

__all__ = [
    "Platform",
    "PlatformLike",
    "parse_platform",
    "format_platform",
    "normalize_platform",
    "canonical_platform",
    "platform_matches",
    "find_platform",
    "default_platform",
    "as_platform",
]

# One platform component (arch, variant) and the OS component with an optional
# "(osversion+feature+feature)" suffix, as containerd accepts them.
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_OS_RE = re.compile(r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$")

_KNOWN_OS = frozenset(
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
    "solaris windows zos".split()
)
_KNOWN_ARCH = frozenset(
    "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 mips64le "
    "mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm".split()
)


@dataclass(frozen=True)
class Platform:
    """An OCI platform. Build one with :func:`parse_platform` to get validation and normalization.

    ``to_dict`` emits keys in the Go declaration order of image-spec v1.1's ``Platform``
    (architecture, os, os.version, os.features, variant, features), so the OCI JSON written from
    it has the bytes BuildKit and containerd write.
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: Tuple[str, ...] = field(default=())
    features: Tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return format_platform(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Platform":
        """An OCI ``platform`` JSON object, as written (not normalized: descriptors are data)."""
        return cls(
            os=str(d.get("os", "")),
            architecture=str(d.get("architecture", "")),
            variant=str(d.get("variant", "")),
            os_version=str(d.get("os.version", "")),
            os_features=tuple(d.get("os.features") or ()),
            features=tuple(d.get("features") or ()),
        )

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        if self.features:
            out["features"] = list(self.features)
        return out


PlatformLike = Union[Platform, str]


def _normalize_os(os_name: str) -> str:
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def _normalize_arch(arch: str, variant: str) -> Tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", ("" if variant == "v1" else variant)
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return arch, variant


def normalize_platform(p: Platform) -> Platform:
    """The canonical spelling of ``p`` (what BuildKit's workers compare against)."""
    arch, variant = _normalize_arch(p.architecture, p.variant)
    features = tuple(sorted(set(p.os_features)))
    return Platform(_normalize_os(p.os), arch, variant, p.os_version, features, p.features)


def _decode_os_option(value: str, spec: str) -> str:
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as e:
        raise InvalidPlatformError(f"platform {spec!r}: bad escape in OS option {value!r}") from e


def parse_platform(spec: str, *, op: str = "platform") -> Platform:
    """Parse ``os/arch[/variant]`` (optionally ``os(version+feature)/arch``) and normalize it.

    Raises :class:`InvalidPlatformError` naming ``op`` and the value for anything else.
    """
    if not isinstance(spec, str):
        raise InvalidPlatformError(f"{op}: platform must be a string like 'linux/amd64', got {spec!r}")
    hint = "expected os/arch[/variant], e.g. 'linux/amd64' or 'linux/arm/v7'"
    if "*" in spec:
        raise InvalidPlatformError(f"{op}: invalid platform {spec!r}: wildcards are not supported")
    parts = spec.split("/")
    if len(parts) < 2:
        raise InvalidPlatformError(
            f"{op}: invalid platform {spec!r}: both the OS and the architecture are required ({hint})"
        )
    if len(parts) > 3:
        raise InvalidPlatformError(f"{op}: invalid platform {spec!r}: too many components ({hint})")
    m = _OS_RE.match(parts[0])
    if m is None:
        raise InvalidPlatformError(f"{op}: invalid platform {spec!r}: bad OS component {parts[0]!r} ({hint})")
    for part in parts[1:]:
        if not _COMPONENT_RE.match(part):
            raise InvalidPlatformError(f"{op}: invalid platform {spec!r}: bad component {part!r} ({hint})")
    os_name = _normalize_os(m.group(1))
    os_version = _decode_os_option(m.group(2) or "", spec)
    features: Tuple[str, ...] = ()
    if m.group(3):
        features = tuple(_decode_os_option(f, spec) for f in m.group(3)[1:].split("+"))
    variant = parts[2] if len(parts) == 3 else ""
    arch, variant = _normalize_arch(parts[1], variant)
    if os_name not in _KNOWN_OS:
        raise InvalidPlatformError(f"{op}: invalid platform {spec!r}: unknown operating system {os_name!r}")
    if arch not in _KNOWN_ARCH:
        raise InvalidPlatformError(f"{op}: invalid platform {spec!r}: unknown architecture {parts[1]!r}")
    return normalize_platform(Platform(os_name, arch, variant, os_version, features))


def _encode_os_option(value: str) -> str:
    # "%" first so that the escapes added for the others are not escaped again.
    for ch, esc in (("%", "%25"), ("+", "%2B"), ("(", "%28"), (")", "%29"), ("/", "%2F")):
        value = value.replace(ch, esc)
    return value


def format_platform(p: Platform) -> str:
    """``os/arch[/variant]``, with ``os(version+features)`` when those are set."""
    if not p.os:
        return "unknown"
    head = p.os
    if p.os_version or p.os_features:
        inner = _encode_os_option(p.os_version)
        feats = "+".join(_encode_os_option(f) for f in sorted(set(p.os_features)) if f)
        if feats:
            inner += "+" + feats
        head += f"({inner})"
    return "/".join(x for x in (head, p.architecture, p.variant) if x)


def default_platform() -> Platform:
    """Linux on the host's CPU architecture: what Go's ``llb`` uses when no platform is given.

    Compilers should pass an explicit platform; this default exists for interactive use.
    """
    arch, variant = _normalize_arch(_host.machine() or "amd64", "")
    if arch not in _KNOWN_ARCH:
        arch, variant = "amd64", ""
    return Platform("linux", arch, variant)


def as_platform(value: PlatformLike, *, op: str) -> Platform:
    """Accept a :class:`Platform` or a string; always return a normalized :class:`Platform`."""
    if isinstance(value, Platform):
        if not value.os or not value.architecture:
            raise InvalidPlatformError(f"{op}: platform {value!r} needs both an OS and an architecture")
        return normalize_platform(value)
    return parse_platform(value, op=op)


def canonical_platform(spec: str, *, op: str = "platform") -> str:
    """The canonical text of ``spec`` (``linux/aarch64/v8`` -> ``linux/arm64``): what workers list
    and what results are keyed by."""
    return format_platform(parse_platform(spec.strip() if isinstance(spec, str) else spec, op=op))


def _key(p: Platform) -> Tuple[str, str, str]:
    n = normalize_platform(p)
    return n.os, n.architecture, n.variant


def platform_matches(want: PlatformLike, have: PlatformLike) -> bool:
    """Whether ``have`` is ``want``, as containerd's ``platforms.NewMatcher(want).Match(have)``:
    OS, architecture and variant equal after normalization on both sides (so ``arm64`` is
    ``arm64/v8``, ``amd64`` is ``amd64/v1``, ``arm`` is ``arm/v7``). A value that does not parse
    matches nothing; a worker lists each platform it builds, so there is no implied fallback from
    ``amd64/v3`` to ``amd64``."""
    try:
        w = want if isinstance(want, Platform) else parse_platform(want)
        h = have if isinstance(have, Platform) else parse_platform(have)
    except InvalidPlatformError:
        return False
    return bool(w.os and w.architecture) and _key(w) == _key(h)


def find_platform(want: PlatformLike, candidates: Iterable[Optional[PlatformLike]]) -> Optional[int]:
    """The index of the first of ``candidates`` that :func:`platform_matches` ``want`` (``None``
    entries, e.g. descriptors without a platform, are skipped), or ``None``."""
    for i, c in enumerate(candidates):
        if c is not None and platform_matches(want, c):
            return i
    return None
