"""Registry credentials from the user's docker ``config.json`` and its credential helpers.

Lookup order for a registry host, as the docker CLI does it: ``credHelpers`` for that host, then
``credsStore`` (a helper for every host), then the ``auths`` entries of the file (``auth``
base64 ``user:password``, or ``username``/``password``, or ``identitytoken``). Docker Hub's
names (``docker.io``, ``index.docker.io``, ``registry-1.docker.io``) all use the key
``https://index.docker.io/v1/``. A host with no credentials is anonymous.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from llbkit.errors import SessionError

__all__ = [
    "Credentials",
    "AuthProvider",
    "DockerAuthProvider",
    "StaticAuthProvider",
    "docker_config_dir",
    "DOCKER_HUB_KEY",
]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}


class AuthError(SessionError):
    """The docker config or a credential helper could not give a host's credentials."""


@dataclass(frozen=True)
class Credentials:
    """``username`` and ``secret`` (a password, or an identity token when username is empty)."""

    username: str = ""
    secret: str = ""

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, secret={'***' if self.secret else ''!r})"


class AuthProvider:
    """Answers buildkitd's ``Auth.Credentials`` requests; subclass and override :meth:`credentials`."""

    def credentials(self, host: str) -> Credentials:
        return Credentials()


class StaticAuthProvider(AuthProvider):
    """Fixed credentials per host (``{"127.0.0.1:5000": Credentials("u", "p")}``)."""

    def __init__(self, creds: Mapping[str, Credentials]) -> None:
        self._creds = {_hostname(k): v for k, v in creds.items()}

    def credentials(self, host: str) -> Credentials:
        return self._creds.get(_hostname(host), Credentials())


def docker_config_dir(env: Optional[Mapping[str, str]] = None) -> str:
    """``$DOCKER_CONFIG``, else ``~/.docker``."""
    env = os.environ if env is None else env
    d = env.get("DOCKER_CONFIG")
    if d:
        return d
    return os.path.join(os.path.expanduser("~"), ".docker")


def _hostname(server: str) -> str:
    """docker's ConvertToHostname: drop the scheme and any path; Hub names map to one key."""
    s = server
    for prefix in ("http://", "https://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
            break
    s = s.split("/", 1)[0]
    return "index.docker.io" if s in _HUB_HOSTS else s


def _server_key(host: str) -> str:
    return DOCKER_HUB_KEY if _hostname(host) == "index.docker.io" else host


Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


class DockerAuthProvider(AuthProvider):
    """Credentials from ``<config_dir>/config.json`` (re-read on each request).

    ``config_dir`` defaults to :func:`docker_config_dir` at construction time. A missing file
    means anonymous access everywhere; a malformed one raises :class:`AuthError` on use.
    """

    def __init__(
        self,
        config_dir: Optional[str] = None,
        *,
        env: Optional[Mapping[str, str]] = None,
        run: Optional[Runner] = None,
    ) -> None:
        self.config_dir = config_dir if config_dir is not None else docker_config_dir(env)
        self._run: Runner = run or subprocess.run

    @property
    def config_path(self) -> str:
        return os.path.join(self.config_dir, "config.json")

    def _load(self) -> Dict[str, Any]:
        try:
            with open(self.config_path, "rb") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise AuthError(
                f"cannot read docker config {self.config_path}: {e}; fix the file or point "
                f"DOCKER_CONFIG at another directory"
            ) from None
        if not isinstance(data, dict):
            raise AuthError(f"docker config {self.config_path} is not a JSON object")
        return data

    def credentials(self, host: str) -> Credentials:
        config = self._load()
        key = _server_key(host)
        helpers = config.get("credHelpers") or {}
        if isinstance(helpers, dict):
            for name in (key, host, _hostname(host)):
                helper = helpers.get(name)
                if helper:
                    return self._from_helper(str(helper), key)
        store = config.get("credsStore")
        if store:
            return self._from_helper(str(store), key)
        return self._from_file(config, host)

    def _from_file(self, config: Mapping[str, Any], host: str) -> Credentials:
        auths = config.get("auths") or {}
        if not isinstance(auths, dict):
            return Credentials()
        wanted = _hostname(host)
        entry = None
        for k in (_server_key(host), host):
            if isinstance(auths.get(k), dict):
                entry = auths[k]
                break
        if entry is None:
            for k, v in auths.items():
                if isinstance(v, dict) and _hostname(k) == wanted:
                    entry = v
                    break
        if entry is None:
            return Credentials()
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        encoded = entry.get("auth")
        if encoded:
            try:
                decoded = base64.b64decode(str(encoded), validate=False).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise AuthError(
                    f"docker config {self.config_path}: the auth entry for {wanted} is not "
                    f"base64 of user:password"
                ) from None
            if ":" not in decoded:
                raise AuthError(
                    f"docker config {self.config_path}: the auth entry for {wanted} is not "
                    f"of the form user:password"
                )
            username, password = decoded.split(":", 1)
        token = entry.get("identitytoken")
        if token:
            return Credentials("", str(token))
        return Credentials(username, password)

    def _from_helper(self, helper: str, server: str) -> Credentials:
        exe = f"docker-credential-{helper}"
        try:
            res = self._run(
                [exe, "get"], input=server.encode(), capture_output=True, timeout=60
            )
        except FileNotFoundError:
            raise AuthError(
                f"credential helper {exe} named in {self.config_path} is not on PATH; install "
                f"it or remove it from the config"
            ) from None
        except subprocess.TimeoutExpired:
            raise AuthError(f"credential helper {exe} did not answer within 60s") from None
        out = res.stdout.decode("utf-8", "replace").strip()
        if res.returncode != 0:
            if "credentials not found" in out.lower() or "credentials not found" in (
                res.stderr or b""
            ).decode("utf-8", "replace").lower():
                return Credentials()
            raise AuthError(
                f"credential helper {exe} failed for {server} (exit {res.returncode}): "
                f"{out or (res.stderr or b'').decode('utf-8', 'replace').strip()}"
            )
        try:
            data = json.loads(out)
        except ValueError:
            raise AuthError(f"credential helper {exe} printed something that is not JSON") from None
        username = str(data.get("Username") or "")
        secret = str(data.get("Secret") or "")
        if username == "<token>":
            return Credentials("", secret)
        return Credentials(username, secret)
