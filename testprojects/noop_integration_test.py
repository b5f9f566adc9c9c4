"""A no-op `./pants package` (nothing changed since the last run) executes no build process and
leaves nothing in the temp dir, under pantsd and with `--no-pantsd`.

What a run executed is read from Pants' own debug log: a process that actually runs (a cache
miss) is logged as `spawned local process as ... Process { ..., description: "...", ... }`;
one served from Pants' cache (or from pantsd's memory) is not (`Scheduling: <description>` is
logged for cache hits too, so it proves nothing). The temp dir is the checkout's
own (`TMPDIR`, where Pants also makes its sandboxes), compared before and after the no-op run.

The scenario's base is locked (`generate-lockfiles`), so its resolution is cached like any
build. Under pantsd a no-op then runs no process at all; without pantsd, only the machine-settings
writer (never cached: it carries secret values; pantsd memoizes it) and Pants' own start-up
probes, which run once per Pants process.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from textwrap import dedent
from typing import Iterator, List

import pytest

from checkout import Checkout
from llbkit.testutil.procs import make_temp_dir, remove_tree

BUSYBOX = "127.0.0.1:5050/llbkit/busybox:latest"  # the samples' registry, started by ./pants
_RAN = re.compile(r'spawned local process as .*?description: "(?P<description>[^"]*)"')
# The processes a no-op may still run without pantsd, by description (see the module docstring).
_UNCACHED = (re.compile(r"^Write llbkit's machine settings$"),)
_PANTS_OWN = (re.compile(r"^Searching for `\w+` on PATH="), re.compile(r"^Test binary "),
              re.compile(r"^Extracting plugin locations$"))
IMAGES = 3


@pytest.fixture(scope="module", params=[True, False], ids=["pantsd", "no-pantsd"])
def warm(request: pytest.FixtureRequest) -> Iterator[Checkout]:
    """A checkout whose scenario images were packaged once (the no-op's previous run)."""
    base = make_temp_dir("noop-it", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    tmp = base / "tmp"
    tmp.mkdir()
    co = Checkout(base, "n", pantsd=request.param, env={"TMPDIR": str(tmp)})
    try:
        scenario = co.repo / "scenario"
        scenario.mkdir()
        (scenario / "stamp.txt").write_text(f"{secrets.token_hex(8)}\n")  # never built before
        (scenario / "BUILD").write_text(dedent("""\
            files(name="files", sources=["stamp.txt"])
            """) + "".join(dedent(f"""\
            container_image(name="img{i}", base="{BUSYBOX}", platforms=["linux/amd64"],
                            steps=[copy("stamp.txt", "/"), run("echo {i} > /n")], cmd=["cat", "/n"])
            """) for i in range(IMAGES)))
        # The same log level as the runs below: pantsd keeps the level it started with.
        co.pants("-ldebug", "generate-lockfiles", "--resolve=container-images").check()
        first = co.package("-ldebug", targets=["scenario::"]).check()
        # The log shows the processes that ran (else the no-op's check below would see none
        # whatever ran): here each image's build process.
        built = [d for d in _ran(first.log) if d.startswith("Building ")]
        assert len(built) == IMAGES, (built, first.log[-3000:])
        yield co
    finally:
        co.close()
        remove_tree(base)


def _ran(log: str) -> List[str]:
    return [m["description"].strip() for m in _RAN.finditer(log)]


def _temp_entries(tmp: Path) -> List[str]:
    # Pants 2.17 itself leaves an `immutable_inputs*` dir in its execution root per process that
    # runs without pantsd (seen with the llbkit backend disabled too): not ours to remove.
    return sorted(n for n in os.listdir(tmp) if not n.startswith("immutable_inputs"))


def _noop(co: Checkout) -> "tuple[List[str], List[str], List[str], str]":
    tmp = Path(co.env["TMPDIR"])
    before = _temp_entries(tmp)
    dist = co.dist_digests()
    run = co.package("-ldebug", targets=["scenario::"]).check()
    assert co.dist_digests() == dist  # the same outputs, byte for byte
    return before, _temp_entries(tmp), _ran(run.log), run.log


def test_a_noop_runs_no_build_process_and_leaves_nothing_in_the_temp_dir(warm: Checkout) -> None:
    before, after, ran, log = _noop(warm)
    # What the no-op added. Not `after == before`: pantsd removes the previous run's sandboxes in
    # the background, so one may still be there before the no-op and gone after it.
    left = sorted(set(after) - set(before))
    assert left == [], f"left in TMPDIR: {left}"
    print("a no-op ran:", ran)
    builds = [d for d in ran if d.startswith("Building ")]
    assert builds == [], f"a no-op re-ran build processes: {builds}"
    allowed = () if warm.pantsd else _UNCACHED + _PANTS_OWN
    others = [d for d in ran if not any(p.search(d) for p in allowed)]
    assert others == [], f"a no-op ran processes besides the known uncached ones: {others}"
    assert "solved in" not in log

