"""Errors of the image IR (``llbkit.image``): a bad :class:`~llbkit.image.spec.ImageSpec` or a
lowering that cannot proceed. Messages name the image, the field, the bad value and the fix."""

from __future__ import annotations

from llbkit.errors import LlbkitError

__all__ = ["ImageSpecError", "MissingBaseConfigError"]


class ImageSpecError(LlbkitError, ValueError):
    """An invalid image spec: a malformed field value, a bad path, a cyclic base chain..."""


class MissingBaseConfigError(ImageSpecError):
    """Lowering needs the resolved config of a registry base image that the caller did not pass."""
