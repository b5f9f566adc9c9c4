"""Secret values for ``Secrets.GetSecret``: each ID comes from a file, an environment variable or
bytes given in memory. Values are read when buildkitd asks, never logged, never repr'd."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Union

from llbkit.errors import SessionError

__all__ = ["SecretSource", "SecretStore", "SecretError"]


class SecretError(SessionError):
    """A secret's source cannot be read (missing file, unset environment variable)."""


@dataclass(frozen=True)
class SecretSource:
    """Where a secret's value comes from: exactly one of ``file``, ``env`` or ``value``."""

    file: Optional[str] = None
    env: Optional[str] = None
    value: Optional[bytes] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        given = [x for x in (self.file, self.env, self.value) if x is not None]
        if len(given) != 1:
            raise SecretError("a secret source needs exactly one of file=, env= or value=")

    def __repr__(self) -> str:
        if self.file is not None:
            return f"SecretSource(file={self.file!r})"
        if self.env is not None:
            return f"SecretSource(env={self.env!r})"
        return "SecretSource(value=***)"

    def read(self, secret_id: str, environ: Optional[Mapping[str, str]] = None) -> bytes:
        if self.value is not None:
            return bytes(self.value)
        if self.file is not None:
            try:
                with open(self.file, "rb") as f:
                    return f.read()
            except OSError as e:
                raise SecretError(
                    f"secret {secret_id!r}: cannot read {self.file}: {e.strerror or e}"
                ) from None
        environ = os.environ if environ is None else environ
        assert self.env is not None
        if self.env not in environ:
            raise SecretError(
                f"secret {secret_id!r}: environment variable {self.env} is not set"
            )
        return os.fsencode(environ[self.env])


SecretLike = Union[SecretSource, bytes]


class SecretStore:
    """Secret ID -> source. :meth:`get` returns None for an unknown ID."""

    def __init__(
        self,
        secrets: Optional[Mapping[str, SecretLike]] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._sources: Dict[str, SecretSource] = {}
        self._environ = environ
        for k, v in (secrets or {}).items():
            self._sources[k] = v if isinstance(v, SecretSource) else SecretSource(value=bytes(v))

    def ids(self) -> list:
        return sorted(self._sources)

    def get(self, secret_id: str) -> Optional[bytes]:
        src = self._sources.get(secret_id)
        if src is None:
            return None
        return src.read(secret_id, self._environ)

    def __repr__(self) -> str:
        return f"SecretStore(ids={self.ids()!r})"
