"""The auto-started local buildkitd allows the entitlements it is asked to allow: it starts with
them, and a running daemon that lacks one is restarted with it (its build cache kept)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llbkit import llb
from llbkit.buildkit import Client
from llbkit.buildkit.errors import SolveError
from llbkit.buildkit.local_daemon import LocalDaemon
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.tools import find_tool


def _host_run(client: Client, entitlements) -> None:
    # A run on scratch with network host: nothing to pull, only the entitlement matters.
    state = llb.scratch().run(["/nonexistent"], network="host").root()
    client.solve(state.marshal(platform="linux/amd64"), entitlements=list(entitlements))


def test_local_daemon_allows_enabled_entitlements(tmp_path: Path) -> None:
    state = make_temp_dir("localbk", need_socket_room=len("buildkitd.sock"))
    env = {"LLBKIT_BUILDKIT_BIN": str(find_tool("buildkitd").parent), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(tmp_path)}
    plain = LocalDaemon(state, env=env)
    try:
        plain.ensure()
        first = plain.pid()
        assert plain.allowed_entitlements() == ()
        with Client(plain.address) as c, pytest.raises(SolveError) as e:
            _host_run(c, ["network.host"])
        assert "network.host" in str(e.value) and "not allowed" in str(e.value)

        enabled = LocalDaemon(state, env=env, entitlements=["network.host"])
        enabled.ensure()  # restarted once, allowing it
        assert enabled.pid() != first and enabled.allowed_entitlements() == ("network.host",)
        with Client(enabled.address) as c, pytest.raises(SolveError) as e:
            _host_run(c, ["network.host"])
        # Granted now: the run itself starts (and fails: there is no /nonexistent on scratch).
        assert "not allowed" not in str(e.value) and "/nonexistent" in str(e.value), str(e.value)

        second = enabled.pid()
        LocalDaemon(state, env=env).ensure()  # asking for less reuses it
        assert plain.pid() == second
    finally:
        plain.stop()
        remove_tree(state)
