"""Registry credentials from Docker's ``config.json`` and its credential helpers, and auth challenges.

The one lookup used by publish (:mod:`llbkit.oci.registry`), base resolution and the session's
``Auth`` service (:mod:`llbkit.buildkit.session.auth`), so they all pick the same credentials.
The order is the docker CLI's (``cli/config/configfile.GetCredentialsStore``): ``credHelpers``
for the host, else ``credsStore`` (a helper for every host), else the file's ``auths`` entries
(``auth`` = base64 ``user:password``, or ``username``/``password``, or ``identitytoken``). When
a store is configured, the file's ``auths`` are not consulted: that is the store's job.

Host names are normalized as docker's ``ConvertToHostname`` does: scheme and path are dropped,
and Docker Hub's names (``docker.io``, ``index.docker.io``, ``registry-1.docker.io``) are one
server, ``https://index.docker.io/v1/``, which is also what a helper is asked for.

The config is ``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``; a helper is
``docker-credential-<name> get`` found on ``$PATH``. Every lookup takes its environment as an
argument; only the outermost caller (the CLI) passes ``os.environ``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from llbkit.oci.errors import RegistryAuthError

__all__ = ["Credentials", "ANONYMOUS", "DOCKER_HUB", "DOCKER_HUB_SERVER", "docker_config_path",
           "normalize_host", "lookup_credentials", "Challenge", "parse_challenge"]

DOCKER_HUB = "docker.io"
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Credentials:
    """A username and secret (password), or an identity (refresh) token; ``source`` says where
    they came from, for error messages (never the secret itself)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    source: str = ""

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def describe(self) -> str:
        who = "an identity token" if self.identity_token else f"user {self.username!r}"
        return f"{who} from {self.source}" if self.source else who

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    def __repr__(self) -> str:  # never print secrets
        return (f"Credentials(username={self.username!r}, password={'***' if self.password else ''!r}, "
                f"identity_token={'***' if self.identity_token else ''!r}, source={self.source!r})")


ANONYMOUS = Credentials(source="anonymous")

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def docker_config_path(env: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``$HOME/.docker/config.json``."""
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def normalize_host(server: str) -> str:
    """docker's ``ConvertToHostname``, with Hub's names made one: ``https://ghcr.io/v2/`` ->
    ``ghcr.io``; ``registry-1.docker.io`` -> ``https://index.docker.io/v1/``."""
    s = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", server.strip())
    s = s.split("/", 1)[0]
    return DOCKER_HUB_SERVER if s in _HUB_HOSTS else s


def _run_helper(helper: str, server: str, where: str, env: Mapping[str, str],
                run: Optional[Runner]) -> Optional[Credentials]:
    exe = f"docker-credential-{helper}"
    path = shutil.which(exe, path=env.get("PATH", os.defpath)) if run is None else exe
    if path is None:
        raise RegistryAuthError(
            f"{where} names the credential helper {helper!r} but {exe} is not on PATH; install "
            "it or remove it from the config"
        )
    try:
        res = (run or subprocess.run)([path, "get"], input=server.encode(), capture_output=True,
                                      timeout=60, env=dict(env))
    except FileNotFoundError:
        raise RegistryAuthError(
            f"{where} names the credential helper {helper!r} but {exe} is not on PATH; install "
            "it or remove it from the config"
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryAuthError(f"{exe} get {server} did not answer within 60s") from None
    if res.returncode != 0:
        out = ((res.stdout or b"") + b" " + (res.stderr or b"")).decode(errors="replace").strip()
        if "credentials not found" in out.lower():
            return None
        raise RegistryAuthError(f"{exe} get {server} failed ({res.returncode}): {out}")
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise RegistryAuthError(f"{exe} get {server} printed invalid JSON") from None
    user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    source = f"credential helper {exe}"
    if user == "<token>":
        return Credentials(identity_token=secret, source=source)
    return Credentials(user, secret, source=source)


def _from_auths(auths: Any, host: str, path: Path, registry: str) -> Optional[Credentials]:
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if normalize_host(key) != host or not isinstance(entry, dict):
            continue
        source = f"{path} auths[{key}]"
        if entry.get("identitytoken"):
            return Credentials(identity_token=str(entry["identitytoken"]), source=source)
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"])).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            if ":" not in decoded:
                raise RegistryAuthError(f"{source}: \"auth\" is not base64 of user:password; "
                                        f"run `docker login {registry}` again")
            user, _, password = decoded.partition(":")
            return Credentials(user, password, source=source)
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")), source=source)
    return None


def lookup_credentials(registry: str, env: Mapping[str, str], *,
                       run: Optional[Runner] = None) -> Credentials:
    """Credentials for ``registry`` (``host[:port]``, or a server URL) from Docker's config, in
    Docker's order; an anonymous :class:`Credentials` (``source`` says why) if there are none.

    ``run`` replaces ``subprocess.run`` for the helpers (tests)."""
    path = docker_config_path(env)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return Credentials(source=f"anonymous (no {path})")
    except (OSError, ValueError) as e:
        raise RegistryAuthError(f"cannot read {path}: {e}; fix or remove the file, or point "
                                "DOCKER_CONFIG at another directory") from e
    if not isinstance(config, dict):
        raise RegistryAuthError(f"{path} is not a JSON object; fix or remove the file")
    host = normalize_host(registry)
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if helper and normalize_host(key) == host:
                found = _run_helper(str(helper), host, f"{path} credHelpers[{key}]", env, run)
                return found or Credentials(source=f"anonymous (credential helper {helper} has none for {host})")
    store = config.get("credsStore")
    if store:
        found = _run_helper(str(store), host, f"{path} credsStore", env, run)
        return found or Credentials(source=f"anonymous (credsStore {store} has none for {host})")
    found = _from_auths(config.get("auths"), host, path, registry)
    return found or Credentials(source=f"anonymous (no entry for {host} in {path})")


_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lowercase
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="...",service="...",scope="..."`` -> Challenge."""
    header = (header or "").strip()
    scheme, _, rest = header.partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)
