"""Errors of the output stage: each one says what went wrong, where, and how to fix it."""

from __future__ import annotations

from llbkit.errors import OCIError

__all__ = [
    "OCIError",
    "LayoutError",
    "BlobVerificationError",
    "ArchiveError",
    "RegistryError",
    "RegistryAuthError",
    "RegistryUnreachableError",
]


class LayoutError(OCIError):
    """An OCI image layout (directory or tar) is missing a file or holds malformed JSON."""


class BlobVerificationError(LayoutError):
    """A blob's bytes do not match the digest or size its descriptor declares."""


class ArchiveError(OCIError):
    """An image cannot be written as the requested archive (bad tag, several platforms...)."""


class RegistryError(OCIError):
    """A registry answered a request with an unexpected status."""


class RegistryAuthError(RegistryError):
    """A registry refused the credentials tried (or none were found)."""


class RegistryUnreachableError(RegistryError):
    """No connection could be made to a registry's address."""
