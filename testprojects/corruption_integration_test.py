"""A damaged image in Pants' local store never reaches `dist/`: a flipped byte, a truncated file
and a deleted file are each noticed when the image is read back, and the image is built again,
saying so (see `rules/llbkit_pants/util_rules/stored_image.py`).

Pants keeps files of 512 KiB and more (image tars) as plain files under
`<local_store_dir>/immutable/files/<2 hex>/<sha256>`; the test damages that file of a packaged
image in a checkout with a store of its own, without pantsd (whose memoized rule results would
not read the store again: see the module above).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from checkout import Checkout
from llbkit.testutil.procs import make_temp_dir, remove_tree

BUSYBOX = "127.0.0.1:5050/llbkit/busybox:latest"


@pytest.fixture(scope="module")
def checkout() -> Iterator[Checkout]:
    base = make_temp_dir("corrupt", need_socket_room=len("/cache-c/buildkitd/buildkitd.sock"))
    co = Checkout(base, "c", pantsd=False, own_store=True)
    (co.repo / "scenario").mkdir()
    (co.repo / "scenario" / "BUILD").write_text(
        f'container_image(name="img", base="{BUSYBOX}", platforms=["linux/amd64"], '
        f'steps=[run("echo {secrets.token_hex(4)} > /stamp")])\n')
    try:
        yield co
    finally:
        co.close()
        remove_tree(base)


def _image(co: Checkout) -> Path:
    return co.repo / "dist" / "scenario" / "img.oci.tar"


def _stored_file(co: Checkout, sha: str) -> Path:
    return Path(co.env["PANTS_LOCAL_STORE_DIR"]) / "immutable" / "files" / sha[:2] / sha


def _blobs_match_their_digests(tar: Path) -> None:
    with tarfile.open(tar) as tf:
        blobs = [m for m in tf.getmembers() if m.isfile() and m.name.startswith("blobs/sha256/")]
        assert blobs
        for m in blobs:
            data = tf.extractfile(m).read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == m.name.rsplit("/", 1)[1], f"{m.name} does not match"


def _flip_a_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size // 2)


def test_a_damaged_stored_image_is_built_again_and_never_reaches_dist(checkout: Checkout) -> None:
    checkout.package(targets=["scenario:img"]).check()
    good = hashlib.sha256(_image(checkout).read_bytes()).hexdigest()
    stored = _stored_file(checkout, good)
    assert stored.is_file(), f"the image is not where Pants keeps large files: {stored}"
    # One package run per kind of damage (each run without pantsd costs seconds: one test, in turn).
    for damage in (_flip_a_byte, _truncate, Path.unlink):
        os.chmod(stored, stat.S_IMODE(stored.stat().st_mode) | stat.S_IWUSR)
        damage(stored)
        checkout.clear_dist()
        run = checkout.package(targets=["scenario:img"]).check()
        assert "Traceback" not in run.log
        if damage is not Path.unlink:  # a deleted file is a cache miss for Pants itself: built anew
            assert "the stored image is damaged" in run.log and "building it again" in run.log, \
                f"{damage.__name__}: {run.log[-3000:]}"
        assert hashlib.sha256(_image(checkout).read_bytes()).hexdigest() == good, damage.__name__
        _blobs_match_their_digests(_image(checkout))
        # Repaired: Pants' store holds the good bytes again (later runs are served them from the cache).
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == good, f"{damage.__name__}: the store was not repaired"
