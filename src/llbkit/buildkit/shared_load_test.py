"""Builds in flight counted across processes (no daemon): slots held by other processes count,
a killed process's slot does not (and its file goes), and worker pools in several processes
spread their builds over the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

from llbkit.buildkit import BuildkitVersion, DaemonInfo, WorkerConfig, WorkerInfo, WorkerPool
from llbkit.buildkit.shared_load import SharedLoad
from llbkit.testutil.procs import child_python_env, pid_gone

W1 = "tcp://w1:1234"
W2 = "tcp://w2:1234"

# A holder process: takes a slot on argv[2] (or, with a third argument, leases a worker from a
# pool of w1 and w2 sharing the load dir), says which on stdout, then holds it until stdin closes.
_HOLDER = """
import sys
from llbkit.buildkit.shared_load import SharedLoad
from llbkit.buildkit.shared_load_test import make_pool
load = SharedLoad(sys.argv[1])
if len(sys.argv) > 3:
    held = make_pool(load).acquire("linux/amd64")
    print(held.status.address, flush=True)
else:
    with load.choosing():
        held = load.take(sys.argv[2])
    print(sys.argv[2], flush=True)
sys.stdin.read()
"""


class FakeClient:
    """An amd64 worker that answers its health checks (see pool_test.py)."""

    def info(self) -> DaemonInfo:
        return DaemonInfo(version=BuildkitVersion("github.com/moby/buildkit", "v0.32.2", "abc"))

    def list_workers(self) -> List[WorkerInfo]:
        return [WorkerInfo(id="w0", platforms=("linux/amd64",))]

    def close(self) -> None:
        pass


def make_pool(load: SharedLoad) -> WorkerPool:
    return WorkerPool([WorkerConfig(W1, name="w1", insecure=True), WorkerConfig(W2, name="w2", insecure=True)],
                      client_factory=lambda cfg, timeout: FakeClient(), shared_load=load)


def _holder(load_dir: Path, worker: str, *pool: str) -> "subprocess.Popen[str]":
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(load_dir), worker, *pool],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_python_env())
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # the slot is held once it says so
    assert line, f"holder exited with {proc.wait()}"
    proc.held = line  # type: ignore[attr-defined]
    return proc


def _end(proc: "subprocess.Popen[str]") -> None:
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def _slot_files(load: SharedLoad, worker: str) -> List[str]:
    d = load._worker_dir(worker)
    return sorted(os.listdir(d)) if d.is_dir() else []


def test_holders_in_two_processes_are_both_counted(tmp_path: Path) -> None:
    load = SharedLoad(tmp_path / "load")
    assert load.count(W1) == 0  # nothing yet, no directory
    a, b = _holder(tmp_path / "load", W1), _holder(tmp_path / "load", W1)
    try:
        assert load.count(W1) == 2 and load.count(W2) == 0
        with load.choosing():
            mine = load.take(W2)
        assert SharedLoad(tmp_path / "load").count(W2) == 1  # seen through another SharedLoad too
        mine.release()
        mine.release()  # idempotent
        assert load.count(W2) == 0 and _slot_files(load, W2) == []
        _end(a)
        assert load.count(W1) == 1  # a's lock went with a
    finally:
        _end(a)
        _end(b)
    assert load.count(W1) == 0 and _slot_files(load, W1) == []


def test_a_killed_processs_slot_is_not_counted_and_its_file_is_removed(tmp_path: Path) -> None:
    load = SharedLoad(tmp_path / "load")
    killed, alive = _holder(tmp_path / "load", W1), _holder(tmp_path / "load", W1)
    try:
        files = _slot_files(load, W1)
        assert len(files) == 2 and any(f.startswith(f"{killed.pid}-") for f in files)
        killed.send_signal(signal.SIGKILL)  # no cleanup of its own: only its lock dies
        killed.wait(timeout=30)
        assert pid_gone(killed.pid)
        assert any(f.startswith(f"{killed.pid}-") for f in _slot_files(load, W1))  # still there...
        assert load.count(W1) == 1  # ...not counted...
        remaining = _slot_files(load, W1)
        assert len(remaining) == 1 and remaining[0].startswith(f"{alive.pid}-")  # ...and removed
    finally:
        _end(killed)
        _end(alive)


def test_two_pools_spread_concurrent_acquisitions_over_two_workers(tmp_path: Path) -> None:
    p1, p2 = make_pool(SharedLoad(tmp_path / "load")), make_pool(SharedLoad(tmp_path / "load"))
    l1 = p1.acquire("linux/amd64")
    l2 = p2.acquire("linux/amd64")  # sees p1's build on w1
    assert (l1.name, l2.name) == ("w1", "w2")
    # Loads are 1 and 1: a tie, broken by configuration order. A pool counts its own builds
    # once, not once in its own records and again in the shared slots.
    l3 = p1.acquire("linux/amd64")
    assert l3.name == "w1"
    for lease in (l1, l2, l3):
        lease.release()
    assert p2.acquire("linux/amd64").name == "w1"  # every slot freed


def test_pools_in_two_processes_spread_their_builds(tmp_path: Path) -> None:
    other = _holder(tmp_path / "load", "-", "pool")  # a pool in another process leases first
    try:
        assert other.held == W1  # type: ignore[attr-defined]
        with make_pool(SharedLoad(tmp_path / "load")).acquire("linux/amd64") as lease:
            assert lease.name == "w2"
        other.send_signal(signal.SIGKILL)
        other.wait(timeout=30)
        deadline = time.monotonic() + 5
        while not pid_gone(other.pid, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        with make_pool(SharedLoad(tmp_path / "load")).acquire("linux/amd64") as lease:
            assert lease.name == "w1"  # the killed build no longer counts
    finally:
        _end(other)
