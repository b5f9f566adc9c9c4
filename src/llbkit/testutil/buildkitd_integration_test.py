"""The Buildkitd helper: its config is accepted; stopping it mid-build leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from llbkit.testutil.buildkitd import Buildkitd, write_build_context
from llbkit.testutil.procs import pid_gone
from llbkit.testutil.registry import Registry
from llbkit.testutil.tools import find_tool


def _containers_under(path: Path) -> list:
    out = subprocess.run([str(find_tool("runc")), "list", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return [c for c in json.loads(out or "null") or [] if str(path) in c.get("bundle", "")]


def test_registry_entries_in_the_config_are_accepted() -> None:
    registries = {"127.0.0.1:5999": {"http": True, "insecure": True}}
    with Buildkitd(registries=registries) as bk:
        assert '[registry."127.0.0.1:5999"]' in bk.config_path.read_text()
        assert bk.workers()


@pytest.mark.parametrize("how", ["sigterm", "daemon-killed"])
def test_stop_during_a_build(registry: Registry, tmp_path: Path, how: str) -> None:
    bk = Buildkitd(name=f"buildkitd-{how}").start()
    state = bk.state_dir
    assert state is not None
    context = write_build_context(tmp_path, f"FROM {registry.busybox_ref}\nRUN sleep 120\n")
    build = threading.Thread(target=lambda: bk.build_dockerfile(context, check=False))
    build.start()
    try:
        deadline = time.monotonic() + 60
        while not [c for c in _containers_under(state) if c.get("status") == "running"]:
            assert time.monotonic() < deadline, bk.log_tail()
            time.sleep(0.1)
        (container,) = _containers_under(state)
        if how == "daemon-killed":
            os.kill(bk.pid, signal.SIGKILL)  # a crash: buildkitd cannot clean up after itself
            time.sleep(0.3)
            assert pid_gone(container["pid"], timeout=0.1) is False  # the RUN keeps running
        started = time.monotonic()
        bk.stop()
        assert time.monotonic() - started < 10
    finally:
        bk.stop()
        build.join(60)
    assert pid_gone(container["pid"])
    assert _containers_under(state) == []
    assert str(state) not in Path("/proc/self/mountinfo").read_text()
    assert not state.exists()
