"""Registry credentials (Docker's config.json and credential helpers) and auth challenges.

Lookup order for a registry host, as the docker CLI does: ``credHelpers[host]``, then
``auths[host]`` (``auth`` = base64 ``user:password``, or ``username``/``password``, or
``identitytoken``), then the global ``credsStore`` helper. The config is
``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``. A helper is run as
``docker-credential-<name> get`` with the server address on stdin.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional

from llbkit.oci.errors import RegistryAuthError

DOCKER_HUB = "docker.io"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"


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


ANONYMOUS = Credentials(source="anonymous")


def docker_config_path(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def _normalize(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key.strip())
    key = key.split("/", 1)[0]
    return DOCKER_HUB if key in ("index.docker.io", "registry-1.docker.io") else key


def _run_helper(helper: str, server: str, where: str) -> Optional[Credentials]:
    exe = f"docker-credential-{helper}"
    try:
        res = subprocess.run([exe, "get"], input=server.encode(), capture_output=True,
                             timeout=60)
    except FileNotFoundError:
        raise RegistryAuthError(
            f"{where} names the credential helper {helper!r} but {exe} is not on PATH; install "
            "it or remove it from the config"
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryAuthError(f"{exe} get {server} did not answer within 60s") from None
    if res.returncode != 0:
        out = (res.stdout or res.stderr).decode(errors="replace").strip()
        if "credentials not found" in out.lower():
            return None
        raise RegistryAuthError(f"{exe} get {server} failed ({res.returncode}): {out}")
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise RegistryAuthError(f"{exe} get {server} printed invalid JSON") from None
    user, secret = str(data.get("Username", "")), str(data.get("Secret", ""))
    source = f"credential helper {exe}"
    if user == "<token>":
        return Credentials(identity_token=secret, source=source)
    return Credentials(user, secret, source=source)


def lookup_credentials(
    registry: str, env: Optional[Mapping[str, str]] = None
) -> Credentials:
    """Credentials for ``registry`` (``host[:port]``) from Docker's config; ANONYMOUS if none."""
    path = docker_config_path(env)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return Credentials(source=f"anonymous (no {path})")
    except (OSError, ValueError) as e:
        raise RegistryAuthError(f"cannot read {path}: {e}; fix or remove the file") from e
    host = _normalize(registry)
    server = DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host
    helpers: Dict[str, str] = {_normalize(k): v for k, v in
                               (config.get("credHelpers") or {}).items()}
    if host in helpers:
        found = _run_helper(helpers[host], server, f"{path} credHelpers[{host}]")
        if found is not None:
            return found
    for key, entry in (config.get("auths") or {}).items():
        if _normalize(key) != host or not isinstance(entry, dict):
            continue
        source = f"{path} auths[{key}]"
        if entry.get("identitytoken"):
            return Credentials(identity_token=str(entry["identitytoken"]), source=source)
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise RegistryAuthError(f"{source}: \"auth\" is not base64 of user:password; "
                                        f"run `docker login {registry}` again") from None
            return Credentials(user, password, source=source)
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")),
                               source=source)
    if config.get("credsStore"):
        found = _run_helper(str(config["credsStore"]), server, f"{path} credsStore")
        if found is not None:
            return found
    return Credentials(source=f"anonymous (no entry for {host} in {path})")


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
