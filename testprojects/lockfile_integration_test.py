"""The base-image lockfile end to end, with real `./pants` (under pantsd) in a copy of this repo.

A registry of this test's own serves a two-platform base (busybox's index) and a one-platform one
(its amd64 manifest alone). With `[base-images].unlocked_behavior = "error"`:

- an unlocked tag fails before anything is built, naming the target, the reference and the
  command that locks it;
- `generate-lockfiles --resolve=container-images` records each tag's digest and, per platform,
  the manifest and config digests the registry serves;
- every tag moved in the registry ("a week later"): `package` still builds the locked digests,
  byte for byte, on this machine and on a fresh one; regenerating the lock moves the builds;
- the registry stopped: a cached `package` succeeds, a fresh machine's fails naming the registry;
- the exported images keep the base's layers exactly as the registry serves them (blob digests and
  diff_ids), and publishing two children of one base uploads the base's blobs once.

The tests run in file order and share the checkout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from textwrap import dedent
from typing import Any, Dict, Iterator

import pytest

from checkout import Checkout
from llbkit.builder.base_lock import BaseLock
from llbkit.oci.registry import RegistryClient
from llbkit.testutil import skopeo
from llbkit.testutil.busybox_image import BusyboxImage
from llbkit.testutil.layers import layout_images, registry_images
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    busybox_image,
    pytest_runtest_makereport,
    registry,
    registry_auth,
)
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.registry import Registry
from llbkit.testutil.variants import push_variant

LOCKFILE = "3rdparty/container-images.lock"
ERROR_MODE = {"PANTS_BASE_IMAGES_UNLOCKED_BEHAVIOR": "error"}


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = make_temp_dir("lockfile", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def upstream(busybox_image: BusyboxImage) -> Iterator[Registry]:
    """The bases' registry: this module's own, since a test moves its tags and then stops it."""
    reg = Registry(name="lockfile-upstream").start()
    try:
        reg.seed_busybox(busybox_image, repo="library/busybox", tag="latest")
        index = json.loads(skopeo.inspect_raw(reg.ref("library/busybox")))
        amd64 = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
        skopeo.copy(f"docker://{reg.host}/library/busybox@{amd64}", f"docker://{reg.ref('single/busybox', '1')}",
                    all_platforms=False)
        yield reg
    finally:
        reg.stop()


def _write_project(repo: Path, upstream: Registry, publish_to: str) -> None:
    (repo / "locked").mkdir()
    (repo / "locked/msg.txt").write_text("locked\n")
    (repo / "locked/BUILD").write_text(dedent(f"""\
        files(name="files", sources=["msg.txt"])

        container_image(
            name="multi",
            base="{upstream.ref('library/busybox')}",
            platforms=["linux/amd64", "linux/arm64"],
            steps=[copy("msg.txt", "/msg.txt")],
            cmd=["cat", "/msg.txt"],
            registries=["{publish_to}"], repository="acme/multi",
        )

        container_image(
            name="single",
            base="{upstream.ref('single/busybox', '1')}",
            steps=[copy("msg.txt", "/single.txt")],
            registries=["{publish_to}"], repository="acme/single",
        )
        """))


@pytest.fixture(scope="module")
def co(base_dir: Path, upstream: Registry, registry: Registry) -> Iterator[Checkout]:
    checkout = Checkout(base_dir, "l", pantsd=True, own_store=True, env=ERROR_MODE)
    try:
        _write_project(checkout.repo, upstream, registry.host)
        yield checkout
    finally:
        checkout.close()


def _records(co: Checkout) -> Dict[str, Dict[str, Any]]:
    return {name: json.loads((co.repo / f"dist/locked/{name}.image.json").read_text()) for name in ("multi", "single")}


def _index_digests(co: Checkout) -> Dict[str, str]:
    return {name: r["index"]["digest"] for name, r in _records(co).items()}


def _lock(co: Checkout) -> BaseLock:
    return BaseLock.parse((co.repo / LOCKFILE).read_text(), LOCKFILE)


def test_generate_lockfiles_uses_docker_credentials_and_names_what_it_cannot_lock(
        co: Checkout, registry_auth: Registry, base_dir: Path) -> None:
    """A registry that requires auth, one that cannot be reached, and a platform the index lacks,
    each in a resolve of its own."""
    resolves = {"container-images": LOCKFILE, "private": "3rdparty/private.lock",
                "unreachable": "3rdparty/unreachable.lock", "s390x": "3rdparty/s390x.lock"}
    option = f"--base-images-resolves={resolves!r}"
    (co.repo / "edge").mkdir()
    (co.repo / "edge/BUILD").write_text(dedent(f"""\
        container_image(name="private", base="{registry_auth.busybox_ref}", resolve="private")
        container_image(name="unreachable", base="127.0.0.1:9/library/busybox:1", resolve="unreachable")
        container_image(name="s390x", base="{registry_auth.busybox_ref}", resolve="s390x",
                        platforms=["linux/s390x"])
        """))
    try:
        refused = co.pants(option, "generate-lockfiles", "--resolve=private", env={"DOCKER_CONFIG": str(base_dir / "none")})
        assert refused.returncode != 0 and "Traceback" not in refused.log
        assert f"cannot lock base image {registry_auth.busybox_ref}" in refused.log
        assert "401 Unauthorized" in refused.log and "docker login" in refused.log
        config = registry_auth.docker_config(base_dir / "docker-config")
        co.pants(option, "generate-lockfiles", "--resolve=private", env={"DOCKER_CONFIG": str(config)}).check()
        private = BaseLock.parse((co.repo / "3rdparty/private.lock").read_text(), "private.lock")
        assert private.get(registry_auth.busybox_ref) is not None
        unreachable = co.pants(option, "generate-lockfiles", "--resolve=unreachable")
        assert unreachable.returncode != 0 and "Traceback" not in unreachable.log
        assert "cannot lock base image 127.0.0.1:9/library/busybox:1" in unreachable.log
        assert "127.0.0.1:9" in unreachable.log
        missing = co.pants(option, "generate-lockfiles", "--resolve=s390x", env={"DOCKER_CONFIG": str(config)})
        assert missing.returncode != 0
        assert "has no linux/s390x image (it has linux/amd64, linux/arm64" in missing.log, missing.log[-2000:]
        assert not (co.repo / "3rdparty/s390x.lock").exists() and not (co.repo / "3rdparty/unreachable.lock").exists()
    finally:
        shutil.rmtree(co.repo / "edge")
        for name in ("private", "unreachable", "s390x"):
            (co.repo / f"3rdparty/{name}.lock").unlink(missing_ok=True)


def test_an_unlocked_tag_is_an_error_naming_target_reference_and_command(co: Checkout, upstream: Registry) -> None:
    run = co.package(targets=["locked::"])
    assert run.returncode != 0
    # Pants reports the first failing image: either one, each with its own base.
    assert (f"container_image locked:multi: base image {upstream.ref('library/busybox')} is named by tag" in run.log
            or f"container_image locked:single: base image {upstream.ref('single/busybox', '1')} is named by tag"
            in run.log), run.log[-3000:]
    assert "generate-lockfiles --resolve=container-images" in run.log
    assert f"the lockfile {LOCKFILE} of resolve `container-images` does not exist" in run.log
    assert "Traceback" not in run.log
    assert not (co.repo / "dist/locked").exists()


def test_generate_lockfiles_records_each_tag_and_platform(co: Checkout, upstream: Registry) -> None:
    run = co.pants("generate-lockfiles", "--resolve=container-images").check()
    assert f"Wrote lockfile for the resolve `container-images` to {LOCKFILE}" in run.log
    text = (co.repo / LOCKFILE).read_text()
    assert "pants generate-lockfiles --resolve=container-images" in text.split("{")[0]  # the header
    lock = _lock(co)
    for repo, tag, platforms in [("library/busybox", "latest", ["linux/amd64", "linux/arm64"]),
                                 ("single/busybox", "1", ["linux/amd64"])]:
        digest, served = registry_images(upstream.host, repo, tag)
        entry = lock.get(upstream.ref(repo, tag))
        assert entry is not None and entry.digest == digest
        assert [p.platform for p in entry.platforms] == platforms
        for p in entry.platforms:
            assert (p.manifest, p.config) == (served[p.platform].manifest, served[p.platform].config)
    # `generate-lockfiles` lists the resolve as one of Pants' own.
    wrong = co.pants("generate-lockfiles", "--resolve=no-such-resolve")
    assert wrong.returncode != 0 and "container-images" in wrong.log


def test_locked_builds_keep_the_base_layers_as_the_registry_serves_them(co: Checkout, upstream: Registry) -> None:
    co.package(targets=["locked::"]).check()
    co.first = (_index_digests(co), co.dist_digests())  # type: ignore[attr-defined]
    for name, repo, tag in [("multi", "library/busybox", "latest"), ("single", "single/busybox", "1")]:
        _, served = registry_images(upstream.host, repo, tag)
        ours = layout_images(co.repo / f"dist/locked/{name}.oci.tar")
        assert sorted(ours) == sorted(served)
        for platform, image in ours.items():
            assert image.starts_with(served[platform]), (name, platform)
            assert len(image.layers) == len(served[platform].layers) + 1  # and the image's own layer


def test_moved_tags_still_build_the_locked_digests_here_and_on_a_fresh_machine(
        co: Checkout, upstream: Registry, base_dir: Path) -> None:
    before_index, before_dist = co.first  # type: ignore[attr-defined]
    locked = _lock(co)
    push_variant(upstream.host, "library/busybox", "latest", label="a week later")
    push_variant(upstream.host, "single/busybox", "1", label="a week later")
    assert registry_images(upstream.host, "library/busybox", "latest")[0] != locked.bases[0].digest
    co.clear_dist()
    co.package(targets=["locked::"]).check()  # the same pantsd that built them
    assert _index_digests(co) == before_index
    # A fresh machine (its own store, named caches and buildkitd) with the same commit.
    fresh = Checkout(base_dir, "w", pantsd=False, own_store=True, own_named_caches=True, env=ERROR_MODE)
    try:
        _write_project(fresh.repo, upstream, "127.0.0.1:1")
        shutil.copytree(co.repo / "3rdparty", fresh.repo / "3rdparty", dirs_exist_ok=True)
        shutil.copy(co.repo / "locked/BUILD", fresh.repo / "locked/BUILD")
        run = fresh.package(targets=["locked::"]).check()
        assert set(run.how_built().values()) == {"solved in"}
        assert fresh.dist_digests() == before_dist  # byte-identical outputs
    finally:
        fresh.close()


def test_a_regenerated_lock_builds_the_moved_tags(co: Checkout, upstream: Registry) -> None:
    before_index, _ = co.first  # type: ignore[attr-defined]
    co.pants("generate-lockfiles", "--resolve=container-images").check()
    lock = _lock(co)
    assert lock.get(upstream.ref("library/busybox")).digest == registry_images(  # type: ignore[union-attr]
        upstream.host, "library/busybox", "latest")[0]
    co.package(targets=["locked::"]).check()
    after = _index_digests(co)
    assert after["multi"] != before_index["multi"] and after["single"] != before_index["single"]
    for name, record in _records(co).items():
        assert record["index"]["digest"] == after[name]


def test_publishing_two_children_of_one_base_uploads_the_base_once(co: Checkout, registry: Registry) -> None:
    co.pants("publish", "locked:multi").check()
    second = co.pants("publish", "locked:single").check()
    # single: its config and its own layer are new; busybox's amd64 layer, which multi's push
    # uploaded to acme/multi, is mounted from there.
    assert "2 blob(s) uploaded, 1 already present (1 mounted from acme/multi)" in second.log, second.log[-3000:]
    base_layer = layout_images(co.repo / "dist/locked/single.oci.tar")["linux/amd64"].layers[0]
    assert RegistryClient(registry.host).has_blob("acme/single", base_layer)


def test_with_the_registry_stopped_cached_builds_succeed_and_uncached_ones_name_it(
        co: Checkout, upstream: Registry, base_dir: Path) -> None:
    before = co.dist_digests()
    upstream.stop()
    co.clear_dist()
    co.package(targets=["locked::"]).check()
    assert co.dist_digests() == before
    fresh = Checkout(base_dir, "x", pantsd=False, own_store=True, own_named_caches=True, env=ERROR_MODE)
    try:
        _write_project(fresh.repo, upstream, "127.0.0.1:1")
        shutil.copytree(co.repo / "3rdparty", fresh.repo / "3rdparty", dirs_exist_ok=True)
        shutil.copy(co.repo / "locked/BUILD", fresh.repo / "locked/BUILD")
        run = fresh.package(targets=["locked::"])
        assert run.returncode != 0
        assert upstream.host in run.log and "Traceback" not in run.log, run.log[-3000:]
        assert not (fresh.repo / "dist/locked").exists()
    finally:
        fresh.close()
