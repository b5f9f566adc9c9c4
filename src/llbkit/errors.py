"""The library's errors: one root type, one subclass per pipeline stage.

Messages say what went wrong, where, and how to fix it. Wrap lower-level errors with short
lowercase context, e.g. ``failed to solve linux/arm64: ...``.
"""

from __future__ import annotations


class LlbkitError(Exception):
    """Root of every error llbkit raises on purpose."""


class LLBError(LlbkitError):
    """Invalid input to the LLB compiler (bad paths, args, platforms, options)."""


class InvalidArgumentError(LLBError, ValueError):
    """A required value is missing or has the wrong shape (empty args, negative sizes...)."""


class InvalidPlatformError(InvalidArgumentError):
    """A platform string is not ``os/arch[/variant]`` (raised by :mod:`llbkit.platforms`, which
    every stage uses, hence defined here rather than in ``llb/``)."""


class InvalidReferenceError(InvalidArgumentError):
    """An image reference, digest or URL does not parse (:mod:`llbkit.reference`)."""


class BuildKitError(LlbkitError):
    """A failure talking to buildkitd or reported by it."""


class SessionError(BuildKitError):
    """A failure serving the client side of a BuildKit session (file sync, exports, secrets, auth)."""


class OCIError(LlbkitError):
    """A malformed or unexpected OCI image, index or layout."""
