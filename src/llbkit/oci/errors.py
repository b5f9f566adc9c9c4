"""Errors of the output stage: each one says what went wrong, where, and how to fix it."""

from __future__ import annotations

from typing import Optional

from llbkit.errors import OCIError

__all__ = [
    "OCIError",
    "LayoutError",
    "ImageConfigError",
    "BlobVerificationError",
    "ArchiveError",
    "RegistryError",
    "RegistryAuthError",
    "RegistryUnreachableError",
]


class LayoutError(OCIError):
    """An OCI image layout (directory or tar) is missing a file or holds malformed JSON."""


class ImageConfigError(OCIError, ValueError):
    """An image config field (env, port, volume, platform...) or a base config blob is invalid."""


class BlobVerificationError(LayoutError):
    """A blob's bytes do not match the digest or size its descriptor declares."""


class ArchiveError(OCIError):
    """An image cannot be written as the requested archive (bad tag, several platforms...)."""


class RegistryError(OCIError):
    """A registry answered a request with an unexpected status.

    ``status`` is the HTTP status of that answer (404 for a missing manifest...), ``None`` when
    there was no answer (transport errors) or the error is not about one, so callers branch on
    it rather than on the message."""

    def __init__(self, message: str, *, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class RegistryAuthError(RegistryError):
    """A registry refused the credentials tried (or none were found)."""


class RegistryUnreachableError(RegistryError):
    """No connection could be made to a registry's address (``status`` is ``None``)."""
