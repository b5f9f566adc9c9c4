from __future__ import annotations

import os
from pathlib import Path

import pytest

from llbkit.buildkit.local_daemon import LocalDaemon, LocalDaemonError, default_state_dir


def test_state_dir_under_llbkit_cache(tmp_path: Path) -> None:
    assert default_state_dir({"LLBKIT_CACHE": str(tmp_path)}) == tmp_path / "buildkitd"
    assert default_state_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/llbkit/buildkitd")


def test_stale_or_foreign_pid_file_is_no_daemon(tmp_path: Path) -> None:
    d = LocalDaemon(tmp_path)
    assert d.pid() is None
    tmp_path.joinpath("buildkitd.pid").write_text(f"{os.getpid()}\n")  # alive, but not buildkitd
    assert d.pid() is None
    assert d.stop() is False


def test_missing_buildkitd_says_how_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"PATH": str(empty), "LLBKIT_CACHE": str(tmp_path / "c"), "LLBKIT_BUILDKIT_BIN": str(empty)}
    with pytest.raises(LocalDaemonError, match="go install github.com/moby/buildkit/cmd/buildkitd@v0.32.2"):
        LocalDaemon(tmp_path / "state", env=env).ensure()
