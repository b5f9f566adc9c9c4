"""Images cached across machines through Pants' remote cache (REAPI: BuildGrid on 127.0.0.1).

Checkout A, a machine of its own (its own Pants local store), packages the samples with remote
cache writes. Checkout B, in another directory, is a fresh machine: empty local store, empty
named caches, no buildkitd running, auto-start off, and other `[buildkit].workers` (addresses
where nothing listens). It packages the same targets with remote cache reads: every image comes
from the cache (no solve), dist/ is byte-identical to A's, and no buildkitd is contacted or started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from checkout import IMAGES, Checkout
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.reapi import CacheServer


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = make_temp_dir("remote-cache-it", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    yield path
    remove_tree(path)


def test_a_fresh_machine_gets_every_image_from_the_remote_cache(base_dir: Path) -> None:
    with CacheServer() as cache:
        a = Checkout(base_dir, "a", own_store=True, env=cache.pants_env(read=False, write=True))
        try:
            built = a.package().check()
            assert set(built.how_built().values()) == {"solved in"}, built.log[-3000:]
        finally:
            a.close()  # every buildkitd A started is gone
        assert a.daemon.pid() is None

        b = Checkout(base_dir, "b", own_store=True, own_named_caches=True,
                     env=cache.pants_env(read=True, write=False))
        try:
            dead = ["tcp://127.0.0.1:9", f"unix://{base_dir}/no-buildkitd.sock"]
            run = b.package(f"--buildkit-workers={dead!r}".replace("'", '"'), "--no-buildkit-auto-start").check()
        finally:
            b.close()
        how = run.how_built()
        assert len(how) == len(IMAGES) and set(how.values()) == {"from cache"}, run.log[-4000:]
        assert "building on" not in run.log  # no scheduling event: nothing was solved
        assert b.daemon.pid() is None and not b.daemon.pid_file.exists()
        assert b.dist_digests() == a.dist_digests()
