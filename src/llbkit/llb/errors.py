"""Errors raised by the LLB compiler, all subclasses of :class:`llbkit.errors.LLBError`.

Every message names the op (``image``, ``run``, ``file.copy``, ``marshal``...) and the bad value,
so a frontend can wrap it with its own context (a target address, a field alias) and the user
still sees what to fix.
"""

from __future__ import annotations

from llbkit.errors import InvalidArgumentError, InvalidPlatformError, InvalidReferenceError, LLBError

__all__ = [
    "LLBError",
    "InvalidArgumentError",
    "InvalidPathError",
    "InvalidPlatformError",
    "InvalidReferenceError",
    "InvalidMountError",
    "ConflictingOptionsError",
    "InvalidDefinitionError",
]


class InvalidPathError(InvalidArgumentError):
    """A path that must be absolute (a mount destination, a secret target) is relative or empty."""


class InvalidMountError(InvalidArgumentError):
    """An unknown mount type, or a mount option that does not apply to that type."""


class ConflictingOptionsError(InvalidArgumentError):
    """Two options that cannot be combined (e.g. a tmpfs mount with a source state)."""


class InvalidDefinitionError(LLBError):
    """Bytes that do not decode to a well-formed ``pb.Definition`` (``load``)."""
