from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import (
    _OWNER_FILE,
    Daemon,
    child_python_env,
    free_port,
    make_temp_dir,
    pid_gone,
    remove_tree,
    sweep_stale_temp_dirs,
)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_early_exit_fails_fast_with_the_log_tail(tmp_path: Path) -> None:
    d = Daemon("crasher", ["sh", "-c", "echo boom: bad flag >&2; exit 3"], tmp_path / "log")
    d.start()
    started = time.monotonic()
    with pytest.raises(FixtureError) as err:
        d.wait_ready(lambda: False, timeout=30, what="test")
    assert time.monotonic() - started < 5
    assert "crasher exited with code 3 at start-up" in str(err.value)
    assert "boom: bad flag" in str(err.value)


def test_never_ready_times_out_and_stops_the_process(tmp_path: Path) -> None:
    d = Daemon("sleeper", ["sleep", "60"], tmp_path / "log").start()
    pid = d.pid
    with pytest.raises(FixtureError, match="sleeper was not ready after 0.5s"):
        d.wait_ready(lambda: False, timeout=0.5, what="test")
    assert pid_gone(pid)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    d = Daemon("stubborn", [sys.executable, "-c", code], tmp_path / "log").start()
    d.wait_ready(lambda: "up" in d.log_tail(), timeout=20, what="test")
    started = time.monotonic()
    assert d.stop(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_remove_tree_unmounts_first_and_never_deletes_through_a_mount(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("keep me")
    tree = tmp_path / "tree"
    (tree / "a" / "bind").mkdir(parents=True)
    (tree / "tmpfs").mkdir()
    subprocess.run(["mount", "--bind", str(precious), str(tree / "a" / "bind")], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tree / "tmpfs")], check=True)
    try:
        remove_tree(tree)
        assert not tree.exists()
        assert (precious / "keep").read_text() == "keep me"
    finally:
        for m in (tree / "a" / "bind", tree / "tmpfs"):
            subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_sweep_removes_dirs_of_dead_owners_only() -> None:
    mine = make_temp_dir("sweeptest")
    orphan = make_temp_dir("sweeptest")
    dead = subprocess.Popen(["true"])
    dead.wait()
    (orphan / _OWNER_FILE).write_text(f"{dead.pid} 1\n")
    try:
        removed = sweep_stale_temp_dirs()
        assert orphan in removed and not orphan.exists()
        assert mine.exists()
    finally:
        remove_tree(mine)
        remove_tree(orphan)


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_daemons_die_with_their_owner(tmp_path: Path, ending: str) -> None:
    """atexit stops them on a normal exit; PDEATHSIG when the owner is killed outright."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from llbkit.testutil.procs import Daemon
        d = Daemon("orphan", ["sleep", "300"], Path(sys.argv[1]) / "log").start()
        print(d.pid, flush=True)
        if {ending!r} == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=child_python_env(),
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.strip(), res.stderr
    assert pid_gone(int(res.stdout.split()[0]))
