"""Errors of the image IR (``llbkit.image``): a bad :class:`~llbkit.image.spec.ImageSpec` or a
lowering that cannot proceed. Messages name the image, the field, the bad value and the fix."""

from __future__ import annotations

from typing import Any, Optional

from llbkit.errors import LlbkitError

__all__ = ["ImageSpecError", "MissingBaseConfigError"]


class ImageSpecError(LlbkitError, ValueError):
    """An invalid image spec: a malformed field value, a bad path, a cyclic base chain...

    A field error carries ``spec_name`` (the image), ``field`` (the ``ImageSpec`` field, e.g.
    ``exposed_ports`` or ``steps[2].source``), ``value`` (the bad value), ``problem`` and ``fix``,
    so a frontend can report it against its own field (Pants' ``InvalidFieldException``) without
    parsing the text; ``field`` is ``None`` for errors that are about no single field. ``str()``
    is the full message, as before.
    """

    def __init__(self, message: str, *, spec_name: str = "", field: Optional[str] = None,
                 value: Any = None, problem: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.spec_name = spec_name
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix

    @classmethod
    def for_field(cls, spec_name: str, field: str, value: Any, problem: str, fix: str) -> "ImageSpecError":
        """``<image>: field '<field>': <problem> <value!r>: <fix>``, with the parts as fields."""
        where = f"{spec_name}: " if spec_name else ""
        return cls(f"{where}field {field!r}: {problem} {value!r}: {fix}", spec_name=spec_name,
                   field=field, value=value, problem=problem, fix=fix)


class MissingBaseConfigError(ImageSpecError):
    """Lowering needs the resolved config of a registry base image that the caller did not pass."""
