"""The session's answers to buildkitd's ``Auth.Credentials`` requests.

This module is only the gRPC-facing side: which provider answers. The credential lookup itself
(Docker's ``config.json``, its helpers, their order and host normalization) is
:mod:`llbkit.oci.auth`, the same one publish and base resolution use, so a solve and a push pick
the same credentials for a registry.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

from llbkit.oci.auth import Credentials, Runner, lookup_credentials, normalize_host

__all__ = ["Credentials", "AuthProvider", "DockerAuthProvider", "StaticAuthProvider"]


class AuthProvider:
    """Answers buildkitd's ``Auth.Credentials`` requests; subclass and override :meth:`credentials`."""

    def credentials(self, host: str) -> Credentials:
        return Credentials()


class StaticAuthProvider(AuthProvider):
    """Fixed credentials per host (``{"127.0.0.1:5000": Credentials("u", "p")}``)."""

    def __init__(self, creds: Mapping[str, Credentials]) -> None:
        self._creds = {normalize_host(k): v for k, v in creds.items()}

    def credentials(self, host: str) -> Credentials:
        return self._creds.get(normalize_host(host), Credentials())


class DockerAuthProvider(AuthProvider):
    """Credentials from Docker's config as :func:`llbkit.oci.auth.lookup_credentials` finds them
    in ``env`` (``DOCKER_CONFIG``, ``HOME``, ``PATH``), re-read on each request.

    ``env`` defaults to the process environment: a :class:`~llbkit.buildkit.session.Session`
    made with ``auth=True`` stands at the caller's edge. A malformed config raises
    :class:`~llbkit.oci.errors.RegistryAuthError` on use.
    """

    def __init__(self, env: Optional[Mapping[str, str]] = None, *, run: Optional[Runner] = None) -> None:
        self.env: Mapping[str, str] = dict(os.environ if env is None else env)
        self._run = run

    def credentials(self, host: str) -> Credentials:
        return lookup_credentials(host, self.env, run=self._run)
