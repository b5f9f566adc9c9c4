"""Run a real buildkitd with isolated state, on a unix socket or on TCP 127.0.0.1 with mTLS.

Each daemon gets its own temp dir holding ``root/`` (``--root``), the socket, its own
``buildkitd.toml`` (own ``[otel] socketPath``, ``[cdi] disabled``, optional ``[registry.*]``
entries) and ``buildkitd.log`` (its stderr). It runs the OCI worker only (runc, overlayfs
snapshotter), optionally with ``--oci-worker-platform`` to make e.g. linux/arm64 its native
platform. ``start()`` returns once ``buildctl debug workers`` answers, and fails fast with the
log tail if the daemon exits; ``stop()`` sends SIGTERM by PID (SIGKILL after a timeout),
unmounts anything left under the state dir and removes it.

    with Buildkitd(platform="linux/arm64", tcp=True, tls=make_tls_files(d)) as bk:
        bk.buildctl("debug", "workers")
"""

from __future__ import annotations

import json
import platform as _platform
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Sequence

from llbkit.testutil.certs import TLSFiles
from llbkit.testutil.errors import CommandError, FixtureError
from llbkit.testutil.procs import (
    Daemon,
    DaemonFixture,
    check_port_free,
    free_port,
    make_temp_dir,
    port_is_open,
    remove_tree,
)
from llbkit.testutil.tools import check_arm64_emulation, find_tool

_SOCKET_NAME = "buildkitd.sock"
_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
    _platform.machine(), _platform.machine()
)


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for our inputs


def render_config(
    otel_socket: Path, registries: Mapping[str, Mapping[str, object]] = {}
) -> str:
    """The buildkitd.toml used by the fixtures (worker flags are passed on the command line)."""
    lines = [
        "# written by llbkit.testutil.buildkitd",
        "[otel]",
        f"  socketPath = {_toml_str(str(otel_socket))}",
        "[cdi]",
        "  disabled = true",
    ]
    for host, opts in sorted(registries.items()):
        lines.append(f"[registry.{_toml_str(host)}]")
        for key, value in sorted(opts.items()):
            lines.append(f"  {key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


class Buildkitd(DaemonFixture):
    """A buildkitd process; attributes ``pid``, ``addr``, ``log_path``, ``root``, ``tls``..."""

    def __init__(
        self,
        *,
        platform: Optional[str] = None,
        tcp: bool = False,
        tls: Optional[TLSFiles] = None,
        port: Optional[int] = None,
        registries: Mapping[str, Mapping[str, object]] = {},
        extra_args: Sequence[str] = (),
        bin_dir: Optional[Path] = None,
        name: Optional[str] = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if tls is not None and not tcp:
            raise ValueError("TLS applies to tcp only: pass tcp=True with tls")
        self.platform = platform
        self.tcp = tcp
        self.tls = tls
        self.requested_port = port
        self.registries = dict(registries)
        self.extra_args = list(extra_args)
        self.bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.name = name or f"buildkitd({platform or 'native'}{', tcp' if tcp else ''})"
        self.startup_timeout = startup_timeout
        self.state_dir: Optional[Path] = None
        self.addr = ""
        self.port: Optional[int] = None
        self._daemon: Optional[Daemon] = None
        self.buildkitd_bin: Optional[Path] = None
        self.buildctl_bin: Optional[Path] = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self._state("root")

    @property
    def config_path(self) -> Path:
        return self._state("buildkitd.toml")

    @property
    def log_path(self) -> Path:
        return self._state("buildkitd.log")

    @property
    def otel_socket(self) -> Path:
        return self._state("otel.sock")

    # TLS files a client needs (None for a daemon without TLS)
    @property
    def tls_dir(self) -> Optional[Path]:
        """The client's dir for ``buildctl --tlsdir`` (``ca.pem``, ``cert.pem``, ``key.pem``)."""
        return self.tls.client_dir if self.tls else None

    @property
    def ca_cert(self) -> Optional[Path]:
        return self.tls.ca_cert if self.tls else None

    @property
    def client_cert(self) -> Optional[Path]:
        return self.tls.client_cert if self.tls else None

    @property
    def client_key(self) -> Optional[Path]:
        return self.tls.client_key if self.tls else None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Buildkitd":
        search = [self.bin_dir] if self.bin_dir is not None else None
        self.buildkitd_bin = find_tool("buildkitd", search)
        self.buildctl_bin = find_tool("buildctl", search)
        runc = find_tool("runc")
        if self.platform and self.platform.split("/")[1:2] == ["arm64"] and _HOST_ARCH != "arm64":
            check_arm64_emulation()
        attempts = 3 if (self.tcp and self.requested_port is None) else 1
        if self.tcp and self.requested_port:
            check_port_free(self.requested_port, self.name)
        for attempt in range(attempts):
            try:
                self._start_once(runc)
                return self
            except BaseException as e:
                self.stop()  # the log tail is in the message; remove the state dir now
                if not isinstance(e, FixtureError):
                    raise
                in_use = "address already in use" in str(e)
                if in_use and attempt + 1 < attempts:
                    continue  # lost a race for the free port: pick another
                if in_use:
                    raise FixtureError(
                        f"{self.name}: 127.0.0.1:{self.port} is already in use by another "
                        f"process; choose another port (or port=None to pick a free one)\n{e}"
                    ) from e
                raise
        raise AssertionError("unreachable")

    def _start_once(self, runc: Path) -> None:
        self.stop()
        self.state_dir = make_temp_dir("buildkitd", need_socket_room=len(_SOCKET_NAME))
        self.root.mkdir()
        self.config_path.write_text(render_config(self.otel_socket, self.registries))
        if self.tcp:
            self.port = self.requested_port or free_port()
            self.addr = f"tcp://127.0.0.1:{self.port}"
        else:
            self.port = None
            self.addr = f"unix://{self._state(_SOCKET_NAME)}"
        argv = [
            str(self.buildkitd_bin),
            "--config", str(self.config_path),
            "--root", str(self.root),
            "--addr", self.addr,
            "--oci-worker=true",
            "--containerd-worker=false",
            "--oci-worker-snapshotter=overlayfs",
            "--oci-worker-binary", str(runc),
        ]
        if self.platform:
            argv += ["--oci-worker-platform", self.platform]
        if self.tls is not None:
            argv += [
                "--tlscacert", str(self.tls.ca_cert),
                "--tlscert", str(self.tls.server_cert),
                "--tlskey", str(self.tls.server_key),
            ]
        argv += self.extra_args
        self._daemon = Daemon(self.name, argv, self.log_path).start()
        self._daemon.wait_ready(
            self._ready, self.startup_timeout, f"listening on {self.addr}",
            hint="(`build-support/provision.sh --check` lists missing pieces of the BuildKit "
            "environment; the log above says why buildkitd stopped)",
        )

    def _ready(self) -> bool:
        if self.tcp:
            if not port_is_open("127.0.0.1", self.port or 0):
                return False
        elif not self._state(_SOCKET_NAME).exists():
            return False
        res = self.buildctl("debug", "workers", check=False, timeout=5, connect_timeout=2)
        return res.returncode == 0 and bool(res.stdout.strip())

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the daemon by PID and delete its state.

        SIGTERM first. buildkitd then waits for running builds, so if it is still up after a
        few seconds, this daemon's build containers are deleted (``runc delete --force``, by
        bundle path under its root); SIGKILL after ``timeout``. Then the containers a killed
        daemon leaks are deleted too, leftover mounts unmounted, and the state dir removed.
        """
        if self._daemon is not None:
            self._daemon.stop(timeout, grace=3.0, on_slow=self.delete_containers)
            self._daemon = None
        if self.state_dir is not None:
            self.delete_containers()
            remove_tree(self.state_dir)
            self.state_dir = None

    def delete_containers(self) -> list[str]:
        """Force-delete the runc containers of this daemon's builds; returns their IDs."""
        return delete_runc_containers(self.state_dir) if self.state_dir else []

    def __enter__(self) -> "Buildkitd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        pid = self._daemon.pid if self._daemon else None
        return f"<Buildkitd {self.name} pid={pid} addr={self.addr or '-'}>"

    # -- buildctl ------------------------------------------------------------------------------
    def client_args(self, client_cert: bool = True, ca: bool = True) -> list[str]:
        """buildctl's global flags to reach this daemon (``--addr`` and the TLS files)."""
        args = ["--addr", self.addr]
        if self.tls is not None:
            if ca:
                args += ["--tlscacert", str(self.tls.ca_cert)]
            if client_cert:
                args += ["--tlscert", str(self.tls.client_cert)]
                args += ["--tlskey", str(self.tls.client_key)]
        return args

    def buildctl(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        connect_timeout: int = 5,
        client_cert: bool = True,
        ca: bool = True,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[Path] = None,
    ) -> "subprocess.CompletedProcess[str]":
        """Run ``buildctl <global flags for this daemon> ARGS``; raise CommandError if it fails.

        ``client_cert=False`` / ``ca=False`` leave out the client certificate / the CA (to test
        that the daemon refuses such clients); ``env`` replaces the environment (e.g. with a
        ``DOCKER_CONFIG`` holding registry credentials).
        """
        if self.buildctl_bin is None:
            raise FixtureError(f"{self.name} is not started")
        argv = [str(self.buildctl_bin), *self.client_args(client_cert, ca),
                "--timeout", str(connect_timeout), *args]
        try:
            res = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout,
                env=dict(env) if env is not None else None, cwd=str(cwd) if cwd else None,
            )
        except subprocess.TimeoutExpired as e:
            raise CommandError(argv, -1, "", f"timed out after {timeout}s\n{e.stderr or ''}") from e
        if check and res.returncode != 0:
            raise CommandError(argv, res.returncode, res.stdout, res.stderr)
        return res

    def build_dockerfile(
        self,
        context: Path,
        *,
        outputs: Sequence[str] = (),
        platform: Optional[str] = None,
        dockerfile_dir: Optional[Path] = None,
        opts: Mapping[str, str] = {},
        extra_args: Sequence[str] = (),
        **kwargs: object,
    ) -> "subprocess.CompletedProcess[str]":
        """``buildctl build --frontend dockerfile.v0`` of ``context`` (its Dockerfile by default).

        ``outputs`` are ``--output`` values, e.g. ``type=local,dest=DIR`` or
        ``type=image,name=127.0.0.1:PORT/x:y,push=true``.
        """
        args = [
            "build", "--progress=plain", "--frontend", "dockerfile.v0",
            "--local", f"context={context}",
            "--local", f"dockerfile={dockerfile_dir or context}",
        ]
        if platform:
            args += ["--opt", f"platform={platform}"]
        for key, value in opts.items():
            args += ["--opt", f"{key}={value}"]
        for out in outputs:
            args += ["--output", out]
        return self.buildctl(*args, *extra_args, **kwargs)  # type: ignore[arg-type]

    def workers(self) -> list[dict]:
        """``buildctl debug workers`` as JSON objects (``ID``, ``Platforms``, ``Labels``...)."""
        out = self.buildctl("debug", "workers", "--format", "{{json .}}").stdout
        data = json.loads(out) if out.strip() else []
        return data if isinstance(data, list) else [data]


def delete_runc_containers(under: Path, runc: Optional[Path] = None) -> list[str]:
    """``runc delete --force`` every container whose bundle lies under ``under``.

    buildkitd's OCI worker runs ``runc`` with its default state root (``/run/runc`` as root) and
    a bundle dir inside buildkitd's ``--root``; when buildkitd is killed, its containers' processes
    keep running. Only containers under ``under`` are touched.
    """
    try:
        runc = runc or find_tool("runc")
        out = subprocess.run([str(runc), "list", "--format", "json"], capture_output=True,
                             text=True, timeout=30).stdout
        containers = json.loads(out or "null") or []
    except (FixtureError, OSError, ValueError, subprocess.TimeoutExpired):
        return []
    prefix = str(Path(under).resolve()) + "/"
    deleted = []
    for c in containers:
        bundle = str(c.get("bundle") or "")
        if c.get("id") and (bundle + "/").startswith(prefix):
            subprocess.run([str(runc), "delete", "--force", c["id"]], capture_output=True,
                           timeout=30)
            deleted.append(c["id"])
    return deleted


def write_build_context(dest: Path, dockerfile: str, files: Mapping[str, str] = {}) -> Path:
    """Write ``dest/Dockerfile`` and ``files`` (relative path -> text); returns ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(dockerfile)
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dest
