"""Start, watch and stop daemons by PID; free ports; temporary dirs that are always removed.

Every process started here is recorded in a module-level table and stopped by PID at interpreter
exit if nobody stopped it before (``atexit`` backstop). On Linux a daemon also gets
``PR_SET_PDEATHSIG`` = SIGTERM, so it goes away even when the test process is killed outright
(note: the signal fires when the *thread* that started it exits, so start daemons from a
long-lived thread).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, List, Mapping, Optional, Sequence

from llbkit.daemon import log_tail, pid_alive
from llbkit.testutil.errors import FixtureError

# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 107

_lock = threading.Lock()
_live: dict[int, "Daemon"] = {}
_temp_dirs: list[Path] = []


def pids_running(cmdline: str) -> List[int]:
    """The processes whose command line (arguments joined by spaces) is exactly ``cmdline``: how a
    test sees whether a RUN's process still runs on a daemon."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().replace(b"\0", b" ").strip() == cmdline.encode():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


@contextlib.contextmanager
def silent_tcp_listener() -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` that accepts connections and never says a word (a hung worker)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        yield f"tcp://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(port: int, who: str, host: str = "127.0.0.1") -> None:
    """Raise :class:`FixtureError` if ``host:port`` cannot be bound (someone listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
        try:
            s.bind((host, port))
        except OSError as e:
            raise FixtureError(
                f"{who}: {host}:{port} is already in use by another process ({e.strerror}); "
                f"choose another port, or let the fixture pick a free one (port=None)"
            ) from e


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


TEMP_PREFIX = "llbkit-t-"
_OWNER_FILE = ".llbkit-owner"


def _process_start_time(pid: int) -> Optional[str]:
    """Field 22 of /proc/PID/stat (start time since boot): tells a PID's reuse apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def make_temp_dir(kind: str, need_socket_room: int = 0) -> Path:
    """A new private temp dir, removed at exit unless :func:`remove_tree` removed it before.

    ``need_socket_room`` reserves that many bytes for a unix socket name inside the dir: when
    ``$TMPDIR`` is too deep for that, the dir is made in ``/tmp`` instead. The dir records its
    owner (PID and start time), so that :func:`sweep_stale_temp_dirs` can remove it if this
    process is killed before it could clean up.
    """
    prefix = f"{TEMP_PREFIX}{kind}-"
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if need_socket_room and len(str(path)) + 1 + need_socket_room > MAX_UNIX_SOCKET_PATH:
        path.rmdir()
        path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    (path / _OWNER_FILE).write_text(f"{os.getpid()} {_process_start_time(os.getpid())}\n")
    with _lock:
        _temp_dirs.append(path)
    return path


def sweep_stale_temp_dirs(before_remove: Optional[Callable[[Path], None]] = None) -> list[Path]:
    """Remove temp dirs of earlier sessions whose owner process is gone (killed with SIGKILL,
    say: its daemons died with it through PDEATHSIG, but its dirs stayed). Returns them.

    ``before_remove(path)`` runs first for each (e.g. to delete containers whose bundle is there).
    """
    removed = []
    for base in sorted({Path(tempfile.gettempdir()), Path("/tmp")}):
        try:
            candidates = [p for p in base.iterdir() if p.name.startswith(TEMP_PREFIX)]
        except OSError:
            continue
        for path in candidates:
            try:
                pid, start = (path / _OWNER_FILE).read_text().split()
            except (OSError, ValueError):
                continue
            if _process_start_time(int(pid)) == start:
                continue  # its owner is alive
            if before_remove is not None:
                before_remove(path)
            remove_tree(path)
            if not path.exists():
                removed.append(path)
    return removed


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    root = os.path.realpath(path)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        mnt = fields[4]
        for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
            mnt = mnt.replace(esc, ch)
        if mnt == root or mnt.startswith(root + "/"):
            found.append(mnt)
    return sorted(set(found), key=lambda m: m.count("/"), reverse=True)


def _umount(path: str) -> Optional[str]:
    """Lazily unmount ``path`` (MNT_DETACH); returns an error string or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.umount2(os.fsencode(path), 2) != 0:  # 2 = MNT_DETACH
            err = ctypes.get_errno()
            if err != errno.EINVAL:  # EINVAL: no longer a mount point
                return os.strerror(err)
    except (OSError, AttributeError) as e:
        return str(e)
    return None


def remove_tree(path: Path) -> None:
    """Unmount whatever is still mounted below ``path``, then delete it.

    A daemon that died uncleanly can leave overlay mounts in its state dir; deleting through a
    live mount would delete the *lower* dirs' files too, so when a mount cannot be removed the
    tree is left in place and a warning names it.
    """
    path = Path(path)
    with _lock:
        if path in _temp_dirs:
            _temp_dirs.remove(path)
    if not path.exists():
        return
    for _ in range(3):
        mounts = _mounts_under(path)
        if not mounts:
            break
        for m in mounts:
            _umount(m)
    left = _mounts_under(path)
    if left:
        warnings.warn(f"not removing {path}: still mounted below it: {', '.join(left[:5])}")
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        warnings.warn(f"could not remove {path} completely")


def _pdeathsig_preexec() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass


class Daemon:
    """One long-running process with its output in a log file, stopped by PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[Path] = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.proc: Optional[subprocess.Popen] = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise FixtureError(f"{self.name} is not started")
        return self.proc.pid

    def start(self) -> "Daemon":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=str(self.cwd) if self.cwd else None,
                    start_new_session=True,  # a terminal's Ctrl-C goes to the tests, which stop us
                    preexec_fn=_pdeathsig_preexec if sys.platform.startswith("linux") else None,
                )
            except OSError as e:
                raise FixtureError(f"cannot start {self.name} ({self.argv[0]}): {e}") from e
        with _lock:
            _live[self.proc.pid] = self
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def wait_ready(
        self, ready: Callable[[], bool], timeout: float, what: str, hint: str = ""
    ) -> None:
        """Poll ``ready()`` until it is true; fail fast (with the log) if the process exits.

        On failure the process is stopped before :class:`FixtureError` is raised; its message
        ends with the log's last lines and ``hint`` (how to investigate or fix).
        """
        hint = f"\n{hint}" if hint else ""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            code = self.proc.poll() if self.proc else None
            if code is not None:
                self.stop()
                raise FixtureError(
                    f"{self.name} exited with code {code} at start-up ({what}); "
                    f"command: {' '.join(self.argv)}\n--- last lines of {self.log_path} ---\n"
                    f"{self.log_tail()}{hint}"
                )
            try:
                if ready():
                    return
            except FixtureError:
                raise
            except Exception:  # noqa: BLE001 - readiness probes fail in many ways before ready
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise FixtureError(
                    f"{self.name} was not ready after {timeout:g}s ({what}); "
                    f"command: {' '.join(self.argv)}\n--- last lines of {self.log_path} ---\n"
                    f"{self.log_tail()}{hint}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def stop(
        self,
        timeout: float = 10.0,
        grace: Optional[float] = None,
        on_slow: Optional[Callable[[], None]] = None,
    ) -> Optional[int]:
        """SIGTERM by PID, then SIGKILL after ``timeout`` seconds; returns the exit code.

        With ``on_slow``: if the process is still running ``grace`` seconds after SIGTERM,
        ``on_slow()`` is called (say, to end what the daemon waits for) before waiting on.
        """
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                waited = 0.0
                if on_slow is not None and grace is not None and grace < timeout:
                    try:
                        proc.wait(grace)
                    except subprocess.TimeoutExpired:
                        on_slow()
                    waited = grace
                try:
                    proc.wait(max(timeout - waited, 0.01))
                except subprocess.TimeoutExpired:
                    try:
                        os.kill(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(10)
            return proc.poll()
        finally:
            with _lock:
                _live.pop(proc.pid, None)

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        pid = self.proc.pid if self.proc else None
        return f"<{self.name} pid={pid} {state} log={self.log_path}>"


class DaemonFixture:
    """What every fixture daemon exposes once started: its state dir, PID, liveness, log tail.

    Subclasses set ``name``, ``state_dir`` (None until started) and ``_daemon`` (a :class:`Daemon`).
    """

    name: str
    state_dir: Optional[Path]
    _daemon: Optional["Daemon"]

    def _state(self, name: str) -> Path:
        if self.state_dir is None:
            raise FixtureError(f"{self.name} is not started")
        return self.state_dir / name

    @property
    def pid(self) -> int:
        if self._daemon is None:
            raise FixtureError(f"{self.name} is not started")
        return self._daemon.pid

    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running()

    def log_tail(self, lines: int = 30) -> str:
        return self._daemon.log_tail(lines) if self._daemon else "(not started)"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (by its PID) and remove the state dir; safe to call twice."""
        if self._daemon is not None:
            self._daemon.stop(timeout)
            self._daemon = None
        if self.state_dir is not None:
            remove_tree(self.state_dir)
            self.state_dir = None

    def start(self) -> "DaemonFixture":
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pid_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (exited, or a zombie awaiting init) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def child_python_env() -> dict:
    """The environment for a child ``sys.executable`` that must import llbkit (and pytest) as
    this process does: ``PYTHONPATH`` = the dir holding the llbkit package, then ``sys.path``."""
    import llbkit

    paths = [str(Path(llbkit.__file__).resolve().parent.parent)] + [p for p in sys.path if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def live_daemons() -> list[Daemon]:
    with _lock:
        return list(_live.values())


def _at_exit() -> None:
    for d in live_daemons():
        try:
            d.stop(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    with _lock:
        dirs = list(_temp_dirs)
    for path in dirs:
        try:
            remove_tree(path)
        except Exception:  # noqa: BLE001
            pass


atexit.register(_at_exit)
