"""Background daemons found by a PID file: liveness, the command line behind a PID, the PID file
itself, stopping by PID and the tail of a log.

The auto-started buildkitd (:mod:`llbkit.buildkit.local_daemon`) and the test fixtures' daemons
(buildkitd, the registries) all outlive or hand over the process that started them, so they are
found and stopped the same way; this is that one way. Standard library only, Linux ``/proc``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Iterable, Optional, Union

__all__ = ["pid_alive", "process_cmdline", "read_pid_file", "running_pid", "stop_pid", "log_tail"]

PathLike = Union[str, "os.PathLike[str]"]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def process_cmdline(pid: int) -> str:
    """The command line of ``pid``, space-separated (empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid_file(path: PathLike) -> Optional[int]:
    """The PID written in ``path``, or ``None`` (no file, or not a number)."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(pid_file: PathLike, markers: Iterable[str]) -> Optional[int]:
    """The PID in ``pid_file`` if that process is alive and its command line holds every one of
    ``markers`` (its socket, its config...): a stale file, or a PID the system has given to
    another process since, counts as none."""
    pid = read_pid_file(pid_file)
    if pid is None or not pid_alive(pid):
        return None
    cmd = process_cmdline(pid)
    return pid if all(m in cmd for m in markers) else None


def stop_pid(pid: int, timeout: float, pid_file: Optional[PathLike] = None) -> None:
    """SIGTERM ``pid``, SIGKILL it if it still runs after ``timeout`` seconds; then remove
    ``pid_file`` (if given)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if pid_file is not None:
        try:
            Path(pid_file).unlink()
        except OSError:
            pass


def log_tail(path: PathLike, lines: int = 20) -> str:
    """The last ``lines`` lines of the log at ``path`` (``(no log)`` when it cannot be read,
    ``(empty log)`` when it holds nothing)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"
