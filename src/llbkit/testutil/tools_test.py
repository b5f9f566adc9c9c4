from __future__ import annotations

import os
from pathlib import Path

import pytest

from llbkit.testutil.errors import FixtureError
from llbkit.testutil.tools import (
    BUILDKIT_VERSION,
    buildkit_search_dirs,
    busybox_debs,
    cache_dir,
    find_tool,
)


def test_cache_dir_follows_provision_sh() -> None:
    assert cache_dir({"LLBKIT_CACHE": "/c"}) == Path("/c")
    assert cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/llbkit")
    assert cache_dir({"HOME": "/h"}) == Path("/h/.cache/llbkit")


def test_buildkit_dirs_prefer_the_env_var_then_the_cache() -> None:
    assert buildkit_search_dirs({"LLBKIT_BUILDKIT_BIN": "/b", "LLBKIT_CACHE": "/c"}) == [Path("/b")]
    cached = Path(f"/c/buildkit-{BUILDKIT_VERSION}/bin")
    assert buildkit_search_dirs({"LLBKIT_CACHE": "/c"}) == [cached]


def test_missing_buildkitd_in_a_nonexistent_dir_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(FixtureError) as err:
        find_tool("buildkitd", [tmp_path / "nope"])
    msg = str(err.value)
    assert f"buildkitd (BuildKit {BUILDKIT_VERSION}) not found" in msg
    assert str(tmp_path / "nope") in msg
    assert "build-support/provision.sh" in msg and "--print" in msg


def test_an_explicit_env_dir_is_not_silently_replaced_by_path(tmp_path: Path) -> None:
    fake = tmp_path / "path"
    fake.mkdir()
    (fake / "buildctl").write_text("#!/bin/sh\n")
    (fake / "buildctl").chmod(0o755)
    env = {"LLBKIT_BUILDKIT_BIN": str(tmp_path / "empty"), "PATH": str(fake)}
    with pytest.raises(FixtureError, match=r"\$LLBKIT_BUILDKIT_BIN"):
        find_tool("buildctl", env=env)
    # Without the env var, the cache dir, then PATH.
    env = {"LLBKIT_CACHE": str(tmp_path / "cache"), "PATH": str(fake)}
    assert find_tool("buildctl", env=env) == fake / "buildctl"
    cached = tmp_path / "cache" / f"buildkit-{BUILDKIT_VERSION}" / "bin"
    cached.mkdir(parents=True)
    (cached / "buildctl").write_text("#!/bin/sh\n")
    (cached / "buildctl").chmod(0o755)
    assert find_tool("buildctl", env=env) == cached / "buildctl"


def test_missing_debian_tool_names_its_package() -> None:
    with pytest.raises(FixtureError) as err:
        find_tool("htpasswd", search_dirs=[])
    assert "htpasswd (Debian package apache2-utils) not found" in str(err.value)
    assert "apt-get install apache2-utils" in str(err.value)


def test_debian_tools_are_found_outside_a_minimal_path() -> None:
    # A test sandbox's PATH may lack /usr/sbin, where runc lives.
    runc = find_tool("runc", env={"PATH": "/nonexistent"})
    assert runc.is_absolute() and os.access(runc, os.X_OK)


def test_missing_busybox_debs_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="busybox-static .deb not found.*provision.sh"):
        busybox_debs({"LLBKIT_CACHE": str(tmp_path)})
