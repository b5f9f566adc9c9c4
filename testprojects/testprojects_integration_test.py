"""The sample monorepo end to end: `./pants package testprojects::` in a copy of this repo, each
image's command run with runc, then the caching acceptance checks of issue 5.

The copy gets its own `$LLBKIT_CACHE` whose heavy, shared parts (Pants' venv, the pex tool,
BuildKit's binaries, the .debs, the test registry's state) are symlinks to the real cache, and
whose `buildkitd/` (the auto-started daemon) and `images/` (the content cache) are its own: every
buildkitd this module starts is its own, found and stopped by PID, and "fresh cache" means fresh.
The tests run in file order and share the first build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest

from llbkit.buildkit.local_daemon import LocalDaemon
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.run_image import run_image
from llbkit.testutil.tools import cache_dir

PACKAGE = ["./pants", "--no-pantsd", "package", "testprojects::"]
IMAGES = ["chain/app1/app1", "chain/app2/app2", "chain/base/base", "hello/hello",
          "multiarch/multiarch", "pyapp/pyapp"]
PRIVATE_CACHE_ENTRIES = ("buildkitd", "images")  # everything else is shared with the real cache
COPY_SKIP = {".git", ".pants.d", ".pids", "dist", "__pycache__", ".pytest_cache"}
_LOG_LINE = re.compile(r"\[INFO\] (//)?(?P<address>testprojects/\S+): .*?(?P<how>from cache|solved in)")


def _repo() -> Path:
    repo = os.environ.get("LLBKIT_REPO")
    if not repo or not (Path(repo) / "pants.toml").is_file():
        pytest.fail("LLBKIT_REPO must name the llbkit repository (pants.toml sets it for "
                    "`./pants test`; set it yourself when running pytest directly)")
    return Path(repo)


def _copy_repo(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True,
                    ignore=lambda _dir, names: [n for n in names if n in COPY_SKIP])


def _private_cache(root: Path) -> Path:
    """A `$LLBKIT_CACHE` sharing everything but the daemon's state and the content cache."""
    real = cache_dir()
    root.mkdir()
    for entry in real.iterdir():
        if entry.name not in PRIVATE_CACHE_ENTRIES:
            (root / entry.name).symlink_to(entry)
    return root


class Workspace:
    """A copy of the repo and its private cache; `package()` runs the README's main command."""

    def __init__(self, base: Path, name: str) -> None:
        self.repo = base / f"repo-{name}"
        self.cache = _private_cache(base / f"cache-{name}")
        self.daemon = LocalDaemon(self.cache / "buildkitd")
        self.first_digests: Dict[str, str] = {}

    def package(self, *extra: str) -> "Run":
        env = dict(os.environ, LLBKIT_CACHE=str(self.cache))
        env.pop("LLBKIT_REPO", None)
        proc = subprocess.run([*PACKAGE, *extra], cwd=self.repo, env=env, capture_output=True,
                              text=True, timeout=900, stdin=subprocess.DEVNULL)
        return Run(proc.returncode, proc.stdout + proc.stderr)

    def image(self, name: str) -> Path:
        return self.repo / "dist" / "testprojects" / f"{name}.oci.tar"

    def dist_digests(self) -> Dict[str, str]:
        dist = self.repo / "dist"
        return {str(p.relative_to(dist)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(dist.rglob("*")) if p.is_file()}

    def index_digests(self) -> Dict[str, str]:
        out = {}
        for name in IMAGES:
            record = json.loads((self.repo / "dist/testprojects" / f"{name}.image.json").read_text())
            out[name] = record["index"]["digest"]
        return out

    def stop_daemon(self) -> None:
        self.daemon.stop()


class Run:
    def __init__(self, returncode: int, log: str) -> None:
        self.returncode = returncode
        self.log = log

    def check(self) -> "Run":
        assert self.returncode == 0, f"{' '.join(PACKAGE)} failed ({self.returncode}):\n{self.log[-6000:]}"
        return self

    def how_built(self) -> Dict[str, str]:
        """address -> "from cache" | "solved in", from package's log."""
        return {m["address"]: m["how"] for m in _LOG_LINE.finditer(self.log)}


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = make_temp_dir("testprojects", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def workspace(base_dir: Path) -> Iterator[Workspace]:
    ws = Workspace(base_dir, "a")
    try:
        _copy_repo(_repo(), ws.repo)
        ws.package().check()
        ws.first_digests = ws.index_digests()
        yield ws
    finally:  # also when the first package run fails: its auto-started buildkitd must not linger
        ws.stop_daemon()


def _out(ws: Workspace, name: str, platform: str = "linux/amd64", args: Optional[Sequence[str]] = None) -> str:
    return run_image(ws.image(name), platform, args=args).check().stdout


# -- each sample image runs and prints what it should ---------------------------------------------

def test_pyapp_runs_its_pex_on_debian_python3(workspace: Workspace) -> None:
    assert _out(workspace, "pyapp/pyapp") == "hello from pyapp on Python 3.11\n"


def test_hello_shows_its_files_run_step_and_config(workspace: Workspace) -> None:
    lines = _out(workspace, "hello/hello").splitlines()
    assert lines[:4] == [
        "hello: hello from an llbkit image",
        "cwd=/app port=8080",
        "config: greeting: hello port: 8080 ",
        "built by a run step in /app, PORT=8080",
    ]
    assert re.fullmatch(r"[0-9a-f]{64}  hello.txt", lines[4])


def test_chain_children_run_on_the_shared_base(workspace: Workspace) -> None:
    assert _out(workspace, "chain/app1/app1") == "app1\n"
    # app1 inherits the base's env and workdir, and runs as `app` from the base's /etc/passwd.
    assert _out(workspace, "chain/app1/app1", args=["sh", "-c", "echo $APP_HOME; pwd; id -un"]) == \
        "/app\n/app\napp\n"
    for platform in ("linux/amd64", "linux/arm64"):
        assert _out(workspace, "chain/app2/app2", platform) == "app2\n"
    assert _out(workspace, "chain/app2/app2", args=["sh", "-c", "stat -c %u:%g /srv/app2/message.txt"]) == \
        "1000:1000\n"


@pytest.mark.parametrize("platform, machine", [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")])
def test_multiarch_builds_and_runs_each_platform(workspace: Workspace, platform: str, machine: str) -> None:
    assert _out(workspace, "multiarch/multiarch", platform) == f"built on {machine}, running on {machine}\n"


# -- caching by content ---------------------------------------------------------------------------

def test_a_cached_run_is_identical_and_starts_no_buildkitd(workspace: Workspace) -> None:
    before = workspace.dist_digests()
    assert any(k.endswith(".oci.tar") for k in before)
    workspace.stop_daemon()
    assert workspace.daemon.pid() is None
    run = workspace.package().check()
    assert workspace.dist_digests() == before
    assert set(run.how_built().values()) == {"from cache"}, run.how_built()
    assert len(run.how_built()) == len(IMAGES)
    # Bases given by tag are resolved against the registry, not through a daemon.
    assert workspace.daemon.pid() is None, "the cached run started the local buildkitd:\n" + run.log[-3000:]
    assert not workspace.daemon.pid_file.exists()


def test_editing_one_copied_file_solves_only_that_image(workspace: Workspace) -> None:
    message = workspace.repo / "testprojects/chain/app2/message.txt"
    original = message.read_text()
    message.write_text("app2, edited\n")
    try:
        run = workspace.package().check()
        how = run.how_built()
        assert how.pop("testprojects/chain/app2:app2") == "solved in", run.log[-3000:]
        assert set(how.values()) == {"from cache"}, how
        assert _out(workspace, "chain/app2/app2", "linux/arm64") == "app2, edited\n"
    finally:
        message.write_text(original)
        workspace.stop_daemon()


def test_two_fresh_daemons_give_identical_digests(workspace: Workspace, base_dir: Path) -> None:
    first = workspace.first_digests
    digests: List[Dict[str, str]] = []
    for name in ("b", "c"):
        ws = Workspace(base_dir, name)  # a fresh content cache
        _copy_repo(_repo(), ws.repo)
        with Buildkitd(name=f"buildkitd(testprojects {name})") as daemon:
            run = ws.package(f"--buildkit-workers=['{daemon.addr}']").check()
        assert set(run.how_built().values()) == {"solved in"}, run.how_built()
        assert ws.daemon.pid() is None  # the configured worker built it, no auto-started one
        digests.append(ws.index_digests())
    assert digests[0] == digests[1] == first
