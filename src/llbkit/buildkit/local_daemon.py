"""A local buildkitd started on demand and reused across runs (no Pants here: the CLI uses it too).

``LocalDaemon.ensure()`` returns the address of a running buildkitd under a per-user state dir
(default ``$LLBKIT_CACHE/buildkitd``, i.e. ``~/.cache/llbkit/buildkitd``)::

    buildkitd.pid    the daemon's PID (a live buildkitd with this PID is reused)
    buildkitd.sock   its unix socket
    buildkitd.toml   its config (own OTEL socket, CDI off)
    buildkitd.log    its output
    root/            its state (--root): the build cache survives restarts
    lock             held while starting, so concurrent runs start one daemon

With ``entitlements`` (e.g. ``("network.host",)``) the daemon is started with
``--allow-insecure-entitlement`` for each (listed in its buildkitd.toml as
``insecure-entitlements``); a running daemon that does not allow them all is restarted once with
them, so enabling an entitlement needs no manual step. Solves must still ask for them.

The daemon outlives the process that started it (its own session) and is stopped by PID with
``LocalDaemon.stop()`` (``python -m llbkit daemon stop``, or kill the PID in the pid file).
buildkitd is looked for in ``$LLBKIT_BUILDKIT_BIN``, ``$LLBKIT_CACHE/buildkit-v0.32.2/bin``, then
``PATH``; it needs ``runc`` and, as buildkitd itself, root (or a rootless set-up).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

from llbkit.daemon import log_tail, running_pid, stop_pid
from llbkit.errors import BuildKitError

__all__ = ["LocalDaemon", "LocalDaemonError", "BUILDKIT_VERSION", "INSTALL_HINT", "default_state_dir"]

BUILDKIT_VERSION = "v0.32.2"
INSTALL_HINT = (
    f"install BuildKit {BUILDKIT_VERSION}: `go install github.com/moby/buildkit/cmd/buildkitd@{BUILDKIT_VERSION}` "
    f"(Go >= 1.26.3), then put buildkitd on PATH or in $LLBKIT_CACHE/buildkit-{BUILDKIT_VERSION}/bin "
    "(in the llbkit repo, `build-support/provision.sh` does this); buildkitd also needs runc "
    "(`apt-get install runc`). Or configure remote workers with [buildkit].workers"
)
_SOCKET = "buildkitd.sock"
_SOCKET_MAX = 100  # sun_path is 108 bytes including "unix://" handling margin
_thread_lock = threading.Lock()


class LocalDaemonError(BuildKitError):
    """The local buildkitd is missing, or could not be started."""


def cache_dir(env: Mapping[str, str]) -> Path:
    """``$LLBKIT_CACHE``, else ``$XDG_CACHE_HOME/llbkit``, else ``~/.cache/llbkit``, as ``env`` has them."""
    if env.get("LLBKIT_CACHE"):
        return Path(env["LLBKIT_CACHE"])
    xdg = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(xdg) / "llbkit"


def default_state_dir(env: Optional[Mapping[str, str]] = None) -> Path:
    """``$LLBKIT_CACHE/buildkitd`` (``~/.cache/llbkit/buildkitd`` by default)."""
    return cache_dir(os.environ if env is None else env) / "buildkitd"


def _which(name: str, env: Mapping[str, str]) -> Optional[Path]:
    dirs = []
    if env.get("LLBKIT_BUILDKIT_BIN"):
        dirs.append(Path(env["LLBKIT_BUILDKIT_BIN"]))
    dirs.append(cache_dir(env) / f"buildkit-{BUILDKIT_VERSION}" / "bin")
    for d in dirs:
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return p.absolute()
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if not found and name == "runc":
        found = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return Path(found).absolute() if found else None


class LocalDaemon:
    """One per-user buildkitd, found by its pid file and socket in ``state_dir``."""

    def __init__(self, state_dir: Optional[Path] = None, *, env: Optional[Mapping[str, str]] = None,
                 startup_timeout: float = 30.0, entitlements: Sequence[str] = ()) -> None:
        self.env = dict(os.environ if env is None else env)
        self.entitlements = tuple(sorted(set(entitlements)))
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir(self.env)
        self.startup_timeout = startup_timeout

    @property
    def socket(self) -> Path:
        return self.state_dir / _SOCKET

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "buildkitd.pid"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "buildkitd.log"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "buildkitd.toml"

    def allowed_entitlements(self) -> Tuple[str, ...]:
        """The entitlements the daemon's config allows (what ``_start`` wrote there)."""
        try:
            text = self.config_path.read_text()
        except OSError:
            return ()
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "insecure-entitlements":
                try:
                    return tuple(json.loads(value.strip()))
                except ValueError:
                    return ()
        return ()

    def pid(self) -> Optional[int]:
        """The PID of the running daemon, or ``None`` (a stale pid file counts as none)."""
        return running_pid(self.pid_file, ("buildkitd", str(self.socket)))

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        from llbkit.buildkit.client import Client

        try:
            with Client(self.address, timeout=5.0) as c:
                return bool(c.list_workers())
        except BuildKitError:
            return False

    def ensure(self) -> str:
        """The address of the running daemon, starting it if needed."""
        with _thread_lock:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            if len(str(self.socket)) > _SOCKET_MAX:
                raise LocalDaemonError(
                    f"the local buildkitd socket path {self.socket} is too long for a unix socket; "
                    "set LLBKIT_CACHE to a shorter directory"
                )
            with open(self.state_dir / "lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                pid = self.pid()
                if pid is not None and not set(self.entitlements) <= set(self.allowed_entitlements()):
                    # Enabled since it started: restart it allowing them (its cache survives).
                    stop_pid(pid, 15.0, self.pid_file)
                    pid = None
                if pid is not None:
                    deadline = time.monotonic() + self.startup_timeout
                    while time.monotonic() < deadline:
                        if self._answers():
                            return self.address
                        if self.pid() is None:
                            break
                        time.sleep(0.1)
                    if self.pid() is not None:
                        raise LocalDaemonError(
                            f"the local buildkitd (PID {pid}) does not answer on {self.address}; stop it "
                            f"(kill {pid}) and retry; its log: {self.log_path}"
                        )
                self._start()
                return self.address

    def _start(self) -> None:
        buildkitd = _which("buildkitd", self.env)
        if buildkitd is None:
            raise LocalDaemonError(f"buildkitd not found (looked in $LLBKIT_BUILDKIT_BIN, $LLBKIT_CACHE/"
                                   f"buildkit-{BUILDKIT_VERSION}/bin and PATH); {INSTALL_HINT}")
        runc = _which("runc", self.env)
        if runc is None:
            raise LocalDaemonError("runc not found on PATH: buildkitd's OCI worker needs it (`apt-get install runc`)")
        if self.socket.exists():
            self.socket.unlink()
        config = self.config_path
        # Top-level keys come before the first table in TOML.
        config.write_text(
            "# written by llbkit.buildkit.local_daemon\n"
            f"insecure-entitlements = {json.dumps(list(self.entitlements))}\n[otel]\n"
            f"  socketPath = {json.dumps(str(self.state_dir / 'otel.sock'))}\n[cdi]\n  disabled = true\n"
        )
        argv = [
            str(buildkitd), "--config", str(config), "--root", str(self.state_dir / "root"),
            "--addr", self.address, "--oci-worker=true", "--containerd-worker=false",
            "--oci-worker-snapshotter=overlayfs", "--oci-worker-binary", str(runc),
        ]
        with open(self.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=self.env, start_new_session=True)  # outlives this process
            except OSError as e:
                raise LocalDaemonError(f"cannot start {buildkitd}: {e}") from e
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalDaemonError(
                    f"buildkitd exited with status {proc.returncode} while starting; the end of {self.log_path}:\n"
                    + self._log_tail()
                )
            if self._answers():
                return
            time.sleep(0.1)
        raise LocalDaemonError(
            f"buildkitd (PID {proc.pid}) did not answer on {self.address} within {self.startup_timeout:.0f}s; "
            f"the end of {self.log_path}:\n" + self._log_tail()
        )

    def _log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the daemon by its PID (SIGTERM, then SIGKILL); ``False`` if none was running."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout, self.pid_file)
        return True
