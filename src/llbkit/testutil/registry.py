"""Run Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1:<free port>.

Storage is a filesystem dir in a private temp dir, removed by ``stop()``. With
``auth=("user", "password")`` the registry requires HTTP basic auth (an htpasswd file, bcrypt, made
with ``htpasswd -B``); :meth:`Registry.docker_config` writes a ``config.json`` for clients that
read Docker's credentials (buildctl: point ``DOCKER_CONFIG`` at its dir).

It speaks plain HTTP: clients need ``--tls-verify=false`` (skopeo); BuildKit treats
``127.0.0.1:PORT`` registries as plain HTTP by itself.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Tuple

from llbkit.testutil.busybox_image import BusyboxImage
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import (
    Daemon,
    DaemonFixture,
    check_port_free,
    free_port,
    make_temp_dir,
)
from llbkit.testutil.tools import find_tool

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Registry(DaemonFixture):
    """A registry process; attributes ``pid``, ``host`` (``127.0.0.1:PORT``), ``log_path``..."""

    def __init__(
        self,
        *,
        port: Optional[int] = None,
        auth: Optional[Tuple[str, str]] = None,
        startup_timeout: float = 20.0,
        name: Optional[str] = None,
    ) -> None:
        self.requested_port = port
        self.auth = auth
        self.startup_timeout = startup_timeout
        self.name = name or ("docker-registry(auth)" if auth else "docker-registry")
        self.port: Optional[int] = None
        self.state_dir: Optional[Path] = None
        self._daemon: Optional[Daemon] = None
        self.busybox: Optional[BusyboxImage] = None
        self.busybox_ref = ""

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def username(self) -> Optional[str]:
        return self.auth[0] if self.auth else None

    @property
    def password(self) -> Optional[str]:
        return self.auth[1] if self.auth else None

    def ref(self, repo: str, tag: str = "latest") -> str:
        return f"{self.host}/{repo}:{tag}"

    @property
    def storage_dir(self) -> Path:
        return self._state("storage")

    @property
    def config_path(self) -> Path:
        return self._state("config.yml")

    @property
    def log_path(self) -> Path:
        return self._state("registry.log")

    def start(self) -> "Registry":
        exe = find_tool("docker-registry")
        htpasswd = find_tool("htpasswd") if self.auth else None
        attempts = 1 if self.requested_port else 3
        if self.requested_port:
            check_port_free(self.requested_port, self.name)
        for attempt in range(attempts):
            try:
                self._start_once(exe, htpasswd)
                return self
            except BaseException as e:
                self.stop()  # the log tail is in the message; remove the state dir now
                if not isinstance(e, FixtureError):
                    raise
                in_use = "address already in use" in str(e)
                if in_use and attempt + 1 < attempts:
                    continue
                if in_use:
                    raise FixtureError(
                        f"{self.name}: {self.host} is already in use by another process; choose "
                        f"another port (or port=None to pick a free one)\n{e}"
                    ) from e
                raise
        raise AssertionError("unreachable")

    def _start_once(self, exe: Path, htpasswd: Optional[Path]) -> None:
        self.stop()
        self.state_dir = make_temp_dir("registry")
        self.storage_dir.mkdir()
        self.port = self.requested_port or free_port()
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {json.dumps(str(self.storage_dir))}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: {self.host}",
            f"  secret: {secrets.token_hex(16)}",
        ]
        if self.auth:
            user, password = self.auth
            htfile = self._state("htpasswd")
            try:
                out = subprocess.run(
                    [str(htpasswd), "-nbB", user, password],
                    check=True, capture_output=True, text=True, timeout=30,
                ).stdout
            except subprocess.CalledProcessError as e:
                raise FixtureError(f"htpasswd failed: {e.stderr.strip()}") from e
            htfile.write_text(out.strip() + "\n")
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: llbkit-test",
                f"    path: {json.dumps(str(htfile))}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self._daemon = Daemon(self.name, [str(exe), "serve", str(self.config_path)], self.log_path)
        self._daemon.start()
        self._daemon.wait_ready(self._ready, self.startup_timeout, f"serving {self.url}/v2/")

    def _ready(self) -> bool:
        try:
            with _NO_PROXY.open(f"{self.url}/v2/", timeout=1) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as e:
            return e.code == 401 and bool(self.auth)


    def __repr__(self) -> str:
        pid = self._daemon.pid if self._daemon else None
        return f"<Registry {self.name} pid={pid} host={self.host if self.port else '-'}>"

    def seed_busybox(self, image: BusyboxImage, repo: str = "busybox", tag: str = "latest") -> str:
        """Push the busybox index as ``REPO:TAG``; sets and returns ``busybox_ref``."""
        ref = self.ref(repo, tag)
        image.push(ref, creds=self.auth)
        self.busybox, self.busybox_ref = image, ref
        return ref

    def docker_config(self, dest: Path) -> Path:
        """Write ``dest/config.json`` with this registry's credentials; returns ``dest``.

        Run buildctl with ``DOCKER_CONFIG=dest`` to push to an auth registry.
        """
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        auths = {}
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            auths[self.host] = {"auth": token}
        (dest / "config.json").write_text(json.dumps({"auths": auths}, indent=2) + "\n")
        return dest
