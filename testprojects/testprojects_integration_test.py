"""The sample monorepo end to end: `./pants package testprojects::` in a copy of this repo (see
`checkout.py`), each image's command run with runc, then the caching guarantees, under pantsd
(Pants' default) and with `--no-pantsd`: a second run is served from Pants' cache byte for byte
and starts no buildkitd; an edited file re-solves only its image; two fresh machines (own local
store and named caches, own daemon) give the first run's digests. The tests run in file order and
share the first build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest

from checkout import IMAGES, Checkout
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.layers import layout_images, registry_images
from llbkit.testutil.run_image import run_image


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = make_temp_dir("testprojects", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def workspace(base_dir: Path) -> Iterator[Checkout]:
    # Under pantsd, with a local store of its own: every image is solved by the first run.
    ws = Checkout(base_dir, "a", pantsd=True, own_store=True)
    try:
        ws.package().check()
        ws.first_digests = ws.index_digests()  # type: ignore[attr-defined]
        yield ws
    finally:  # also when the first run fails: its pantsd and auto-started buildkitd must not linger
        ws.close()


def _out(ws: Checkout, name: str, platform: str = "linux/amd64", args: Optional[Sequence[str]] = None) -> str:
    return run_image(ws.image(name), platform, args=args).check().stdout


# -- each sample image runs and prints what it should ---------------------------------------------

def test_pyapp_runs_its_pex_on_debian_python3(workspace: Checkout) -> None:
    assert _out(workspace, "pyapp/pyapp") == "hello from pyapp on Python 3.11\n"


def test_hello_shows_its_files_run_step_and_config(workspace: Checkout) -> None:
    lines = _out(workspace, "hello/hello").splitlines()
    assert lines[:4] == [
        "hello: hello from an llbkit image",
        "cwd=/app port=8080",
        "config: greeting: hello port: 8080 ",
        "built by a run step in /app, PORT=8080",
    ]
    assert re.fullmatch(r"[0-9a-f]{64}  hello.txt", lines[4])


def test_chain_children_run_on_the_shared_base(workspace: Checkout) -> None:
    assert _out(workspace, "chain/app1/app1") == "app1\n"
    # app1 inherits the base's env and workdir, and runs as `app` from the base's /etc/passwd.
    assert _out(workspace, "chain/app1/app1", args=["sh", "-c", "echo $APP_HOME; pwd; id -un"]) == \
        "/app\n/app\napp\n"
    for platform in ("linux/amd64", "linux/arm64"):
        assert _out(workspace, "chain/app2/app2", platform) == "app2\n"
    assert _out(workspace, "chain/app2/app2", args=["sh", "-c", "stat -c %u:%g /srv/app2/message.txt"]) == \
        "1000:1000\n"


@pytest.mark.parametrize("name, repo, tag", [
    ("pyapp/pyapp", "llbkit/python3", "3.11"),          # Debian's python3
    ("chain/app1/app1", "llbkit/busybox", "latest"),    # busybox, under a target base
    ("chain/app2/app2", "llbkit/busybox", "latest"),
    ("multiarch/multiarch", "llbkit/busybox", "latest"),
])
def test_images_keep_their_registry_base_layers_as_served(workspace: Checkout, name: str, repo: str, tag: str) -> None:
    """Every base layer's blob and diff_id equals the registry's (as BuildKit's Dockerfile frontend
    keeps them), for each platform; only the image's own layers are re-created."""
    _, base = registry_images("127.0.0.1:5050", repo, tag)
    ours = layout_images(workspace.image(name))
    assert ours and set(ours) <= set(base)
    for platform, image in ours.items():
        assert image.starts_with(base[platform]), (platform, image, base[platform])
        assert len(image.layers) > len(base[platform].layers)


@pytest.mark.parametrize("platform, machine", [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")])
def test_multiarch_builds_and_runs_each_platform(workspace: Checkout, platform: str, machine: str) -> None:
    assert _out(workspace, "multiarch/multiarch", platform) == f"built on {machine}, running on {machine}\n"


# -- caching by content ---------------------------------------------------------------------------

@pytest.mark.parametrize("pantsd", [True, False], ids=["pantsd", "no-pantsd"])
def test_a_cached_run_is_identical_and_starts_no_buildkitd(workspace: Checkout, pantsd: bool) -> None:
    before = workspace.dist_digests()
    assert any(k.endswith(".oci.tar") for k in before)
    workspace.stop_daemon()
    assert workspace.daemon.pid() is None
    workspace.clear_dist()
    workspace.pantsd = pantsd
    try:
        run = workspace.package().check()
    finally:
        workspace.pantsd = True
    assert workspace.dist_digests() == before
    how = run.how_built()
    if pantsd:  # nothing changed: pantsd serves the packages from memory, and logs nothing for them
        assert set(how.values()) <= {"from cache"}, how
    else:  # every image looked up in Pants' cache and found
        assert set(how.values()) == {"from cache"} and len(how) == len(IMAGES), how
    # Bases given by tag are resolved against the registry, not through a daemon.
    assert workspace.daemon.pid() is None, "the cached run started the local buildkitd:\n" + run.log[-3000:]
    assert not workspace.daemon.pid_file.exists()


def test_editing_one_copied_file_solves_only_that_image(workspace: Checkout) -> None:
    message = workspace.repo / "testprojects/chain/app2/message.txt"
    original = message.read_text()
    message.write_text("app2, edited\n")
    try:
        run = workspace.package().check()
        how = run.how_built()
        assert how.pop("testprojects/chain/app2:app2") == "solved in", run.log[-3000:]
        assert set(how.values()) <= {"from cache"}, how  # (pantsd may not even look them up)
        assert _out(workspace, "chain/app2/app2", "linux/arm64") == "app2, edited\n"
    finally:
        message.write_text(original)
        workspace.stop_daemon()


def test_two_fresh_daemons_give_identical_digests(workspace: Checkout, base_dir: Path) -> None:
    first = workspace.first_digests
    digests: List[Dict[str, str]] = []
    for name in ("b", "c"):
        ws = Checkout(base_dir, name, own_store=True)  # a fresh machine: nothing cached
        try:
            with Buildkitd(name=f"buildkitd(testprojects {name})") as daemon:
                run = ws.package(f"--buildkit-workers=['{daemon.addr}']").check()
            assert set(run.how_built().values()) == {"solved in"}, run.how_built()
            assert ws.daemon.pid() is None  # the configured worker built it, no auto-started one
            digests.append(ws.index_digests())
        finally:
            ws.close()
    assert digests[0] == digests[1] == first
