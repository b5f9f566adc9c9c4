"""A fixture that cannot start fails fast, says why and how to fix it, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import (
    child_python_env,
    live_daemons,
    pid_gone,
    sweep_stale_temp_dirs,
)
from llbkit.testutil.registry import Registry


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def no_new_daemons() -> Iterator[None]:
    """The test must not leave a daemon of its own running (other sessions' fixtures may run)."""
    before = set(map(id, live_daemons()))
    yield
    assert [d for d in live_daemons() if id(d) not in before] == []


def _mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


def test_missing_buildkitd_names_it_and_how_to_install(
    tmp_path: Path, no_new_daemons: None
) -> None:
    with pytest.raises(FixtureError) as err:
        Buildkitd(bin_dir=tmp_path / "no-such-dir").start()
    assert "buildkitd (BuildKit v0.32.2) not found" in str(err.value)
    assert "build-support/provision.sh" in str(err.value)


def test_buildkitd_with_a_bad_flag_fails_at_once_with_its_log(no_new_daemons: None) -> None:
    bk = Buildkitd(extra_args=["--no-such-flag"])
    started = time.monotonic()
    with pytest.raises(FixtureError) as err:
        bk.start()
    assert time.monotonic() - started < 10
    msg = str(err.value)
    assert "exited with code" in msg and "flag provided but not defined" in msg
    assert bk.state_dir is None


def test_buildkitd_on_a_taken_port_says_so(taken_port: int, no_new_daemons: None) -> None:
    with pytest.raises(FixtureError, match=f"127.0.0.1:{taken_port} is already in use"):
        Buildkitd(tcp=True, port=taken_port).start()


def test_registry_on_a_taken_port_says_so(taken_port: int, no_new_daemons: None) -> None:
    with pytest.raises(FixtureError, match=f"127.0.0.1:{taken_port} is already in use"):
        Registry(port=taken_port).start()


def _run_session(tmp_path: Path, test_body: str, env: dict, **popen: object) -> subprocess.Popen:
    """Start a child pytest session in ``tmp_path`` using the shared fixtures."""
    (tmp_path / "conftest.py").write_text("from llbkit.testutil.fixtures import *  # noqa\n")
    (tmp_path / "child_test.py").write_text(textwrap.dedent(test_body))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
            str(tmp_path), str(tmp_path / "child_test.py")]
    return subprocess.Popen(  # type: ignore[call-overload]
        argv, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, **popen,
    )


def test_session_without_buildkit_fails_quickly_with_the_fix(tmp_path: Path) -> None:
    env = dict(child_python_env(), LLBKIT_BUILDKIT_BIN=str(tmp_path / "missing"))
    started = time.monotonic()
    child = _run_session(tmp_path, """
        def test_one(buildkitd_amd64): pass
        def test_two(buildkitd_amd64): pass
        def test_three(buildkitd_arm64_tls): pass
    """, env)
    out, _ = child.communicate(timeout=120)
    assert time.monotonic() - started < 30
    assert child.returncode == 1, out
    assert "3 errors" in out, out
    assert "buildkitd (BuildKit v0.32.2) not found" in out
    assert "run build-support/provision.sh" in out


def _record(path: Path) -> str:
    return f"""
        import json
        def test_record(buildkitd_amd64, registry):
            daemons = [buildkitd_amd64, registry]
            json.dump({{"pids": [d.pid for d in daemons],
                       "dirs": [str(d.state_dir) for d in daemons]}}, open({str(path)!r}, "w"))
    """


def test_a_failing_session_leaves_nothing_behind(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    child = _run_session(tmp_path, _record(record) + "        assert False, 'on purpose'\n",
                         child_python_env())
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 1 and "on purpose" in out, out
    seen = json.loads(record.read_text())
    assert all(pid_gone(pid) for pid in seen["pids"])
    assert not any(Path(d).exists() for d in seen["dirs"])
    assert not any(d in _mounts() for d in seen["dirs"])


def test_a_killed_session_takes_its_daemons_along(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    child = _run_session(tmp_path, _record(record) + "        import time; time.sleep(300)\n",
                         child_python_env())
    try:
        deadline = time.monotonic() + 120
        while not record.exists() or not record.read_text():
            assert child.poll() is None and time.monotonic() < deadline, child.stdout.read()
            time.sleep(0.1)
        time.sleep(0.2)  # let json.dump finish
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=60)
    seen = json.loads(record.read_text())
    assert all(pid_gone(pid, timeout=20) for pid in seen["pids"])  # PR_SET_PDEATHSIG
    # Its dirs stay behind (nobody was left to delete them) until the next session sweeps them.
    sweep_stale_temp_dirs()
    assert not any(Path(d).exists() for d in seen["dirs"])
    assert not any(d in _mounts() for d in seen["dirs"])
