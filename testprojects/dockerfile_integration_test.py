"""`dockerfile_image` end to end: real `./pants` in a copy of the repo, under pantsd and without.

- Parity: the Dockerfiles of `llbkit.testutil.dockerfile_suite`, each a `dockerfile_image`
  target, packaged by Pants give the same index digest as `buildctl build --frontend
  dockerfile.v0` with the same inputs (options, pinned base, SOURCE_DATE_EPOCH 0), and run.
- Caching: packaged again with every buildkitd stopped, the sample comes from Pants' cache,
  byte-identical, and no buildkitd starts; editing a file the Dockerfile does not COPY does not
  rebuild it, editing one it copies does.
- Errors: a Dockerfile syntax error (BuildKit's own message, naming the file and the line), a
  COPY source no target owns, an unknown build argument, a missing stage, and a FROM of a tag
  the lockfile lacks under `unlocked_behavior = "error"`: each a clear message, no traceback,
  nothing in dist/.
"""

from __future__ import annotations

import json
import secrets
import shutil
import urllib.request
from pathlib import Path
from textwrap import dedent
from typing import Dict, Iterator

import pytest

from checkout import Checkout
from llbkit.testutil.dockerfile_suite import buildctl_build, image_bytes_contain, index_digest, load_cases
from llbkit.testutil.fixtures import buildkitd_amd64  # noqa: F401 - pytest finds fixtures by name
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.run_image import run_image

REGISTRY = "127.0.0.1:5050"  # the samples' registry, started by ./pants
BUSYBOX = f"{REGISTRY}/llbkit/busybox:latest"
SECRET_ENV = "LLBKIT_SUITE_TOKEN"
# A selection of the suite that covers each feature once (the library's parity test runs all).
CASES = ["add_local_tar", "arg_env_expansion", "config_instructions", "dockerignore", "multistage_copy_from",
         "onbuild_base", "run_mount_bind", "run_mount_secret", "target_stage", "two_platforms", "user_switches",
         "heredoc_copy_link"]
SAMPLE = "testprojects/dockerfile:image"


def _busybox_digest() -> str:
    req = urllib.request.Request(f"http://{REGISTRY}/v2/llbkit/busybox/manifests/latest", method="HEAD", headers={
        "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json,"
                  " application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the samples' registry on 127.0.0.1
        return resp.headers["Docker-Content-Digest"]


def _suite_build(case) -> str:
    args = [f"BASE={BUSYBOX}", *(f"{k}={v}" for k, v in sorted(case.build_args.items()))]
    fields = [f"extra_build_args={args!r}", 'context_root="./"', f"platforms={list(case.platforms)!r}"]
    if case.dockerfile != "Dockerfile":
        fields.append(f"source={case.dockerfile!r}")
    if case.target:
        fields.append(f"target_stage={case.target!r}")
    return dedent(f"""\
        files(name="files", sources=["**/*", "!BUILD"])
        dockerfile_image(name="image", dependencies=[":files"], {", ".join(fields)})
        """)


BAD = {
    # name: (Dockerfile, extra BUILD text, dockerfile_image fields, extra pants args, expected in the log)
    "syntax": ("ARG BASE\nFROM ${BASE}\nFROOM scratch\n", "", f'extra_build_args=["BASE={BUSYBOX}"]', (),
               ["unknown instruction", "FROOM", "Dockerfile", "3"]),
    "unowned": (f"FROM {BUSYBOX}\nCOPY stray.txt /\n", "", 'context_root="./"', (),
                ["stray.txt", "is not owned by a `files` or `resources` target", 'files(name="files"']),
    "unknown_arg": (f"FROM {BUSYBOX}\nARG VERSION\n", "", 'extra_build_args=["VERSOIN=1"]', (),
                    ["build argument 'VERSOIN'", "declared by no ARG", "VERSION"]),
    "missing_stage": (f"FROM {BUSYBOX} AS build\nFROM build AS runtime\n", "", 'target_stage="release"', (),
                      ["target stage 'release' is not a stage", "build, runtime"]),
    "platforms": ("ARG BASE=:parent\nFROM $BASE\n",
                  "dockerfile_image(name='parent', instructions=['FROM scratch'], platforms=['linux/arm64'])\n", "",
                  (), ["is built for linux/amd64, but its FROM target dfbad/platforms:parent is built for linux/arm64",
                       "add linux/amd64 to that target's `platforms`"]),
    "entitlement": (f"FROM {BUSYBOX}\nRUN --network=host true\n", "", "", (),
                    ["Dockerfile:2", "`RUN --network=host` needs the network.host entitlement",
                     '[buildkit] entitlements = ["network.host"]']),
    "unlocked": (f"FROM {BUSYBOX}\n", "", "", ("--base-images-unlocked-behavior=error",),
                 [f"base image {BUSYBOX} is named by tag", "generate-lockfiles --resolve=container-images"]),
}


@pytest.fixture(scope="module", params=[True, False], ids=["pantsd", "no-pantsd"])
def co(request: pytest.FixtureRequest) -> Iterator[Checkout]:
    base = make_temp_dir("dockerfile-it", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    checkout = Checkout(base, "d", pantsd=request.param, env={
        "PANTS_BUILDKIT_SECRETS": f'["token=env:{SECRET_ENV}"]'})
    try:
        for case in load_cases():
            if case.name in CASES:
                dest = checkout.repo / "dfsuite" / case.name
                shutil.copytree(case.directory, dest)
                (dest / "BUILD").write_text(_suite_build(case))
        for name, (dockerfile, extra, fields, _, _) in BAD.items():
            d = checkout.repo / "dfbad" / name
            d.mkdir(parents=True)
            (d / "Dockerfile").write_text(dockerfile)
            (d / "stray.txt").write_text("no target owns me\n")
            (d / "BUILD").write_text(f"{extra}dockerfile_image(name='image', {fields})\n")
        yield checkout
    finally:
        checkout.close()
        remove_tree(base)


def _record(co: Checkout, path: str) -> Dict:
    return json.loads((co.repo / "dist" / f"{path}.image.json").read_text())


@pytest.fixture(scope="module")
def suite_run(co: Checkout):
    """Every suite case packaged by one `./pants package` (without pantsd: parity is a property
    of the build, checked once)."""
    if co.pantsd:
        pytest.skip("parity is a property of the build, checked once (without pantsd)")
    token = next(c.secrets["token"] for c in load_cases() if "token" in c.secrets)
    return co.package(targets=["dfsuite::"], env={SECRET_ENV: token}).check()


@pytest.mark.parametrize("name", CASES)
def test_suite_case_matches_buildctl_and_runs(co: Checkout, suite_run, buildkitd_amd64, name: str,  # noqa: F811
                                              tmp_path: Path) -> None:
    case = next(c for c in load_cases() if c.name == name)
    ours = _record(co, f"dfsuite/{name}/image")["index"]["digest"]
    pinned = {f"context:{REGISTRY}/llbkit/busybox": f"docker-image://{BUSYBOX}@{_busybox_digest()}"}
    theirs = index_digest(buildctl_build(buildkitd_amd64, case, tmp_path / "buildctl.oci.tar", base=BUSYBOX,
                                         work=tmp_path / "work", extra_opts=pinned))
    assert ours == theirs, f"{name}: llbkit {ours} != buildctl {theirs}\n{suite_run.log[-3000:]}"
    for platform in case.platforms:
        expected = case.expected_stdout(platform)
        if expected is not None:
            out = run_image(co.repo / "dist" / "dfsuite" / name / "image.oci.tar", platform).check().stdout
            assert out == expected, (name, platform)
    if case.absent_from_image:
        assert not image_bytes_contain(co.repo / "dist" / "dfsuite" / name / "image.oci.tar", case.absent_from_image)


def test_packaged_again_with_every_buildkitd_stopped_is_from_cache_and_identical(co: Checkout) -> None:
    co.clear_dist()
    co.package(targets=[SAMPLE]).check()
    before = co.dist_digests()
    co.stop_daemon()
    assert co.daemon.pid() is None
    co.clear_dist()
    run = co.package(targets=[SAMPLE]).check()
    assert co.dist_digests() == before
    how = run.how_built()
    assert set(how.values()) <= {"from cache"} and (co.pantsd or how == {SAMPLE: "from cache"}), how
    assert co.daemon.pid() is None, "the cached run started the local buildkitd:\n" + run.log[-3000:]
    out = run_image(co.repo / "dist/testprojects/dockerfile/image.oci.tar").check().stdout
    assert out == "HELLO FROM A DOCKERFILE_IMAGE (version 0.1.0)\n"


def test_editing_a_file_the_dockerfile_does_not_copy_does_not_rebuild(co: Checkout) -> None:
    d = co.repo / "testprojects/dockerfile"
    build = (d / "BUILD").read_text()
    greeting = (d / "greeting.txt").read_text()
    # A file of the same `files` target that the Dockerfile does not COPY.
    (d / "BUILD").write_text(build.replace('sources=["greeting.txt", "hello.sh"]',
                                           'sources=["greeting.txt", "hello.sh", "notes.txt"]'))
    try:
        (d / "notes.txt").write_text("first\n")
        co.package(targets=[SAMPLE]).check()
        digest = _record(co, "testprojects/dockerfile/image")["index"]["digest"]
        (d / "notes.txt").write_text("edited\n")
        run = co.package(targets=[SAMPLE]).check()
        assert set(run.how_built().values()) <= {"from cache"}, run.log[-3000:]
        assert _record(co, "testprojects/dockerfile/image")["index"]["digest"] == digest
        # The control: a file it copies rebuilds it.
        # (Content never built before: Pants' store is shared with earlier runs.)
        (d / "greeting.txt").write_text(f"edited greeting {secrets.token_hex(8)}\n")
        run = co.package(targets=[SAMPLE]).check()
        assert run.how_built().get(SAMPLE) == "solved in", run.log[-3000:]
        assert _record(co, "testprojects/dockerfile/image")["index"]["digest"] != digest
    finally:
        (d / "BUILD").write_text(build)
        (d / "greeting.txt").write_text(greeting)
        (d / "notes.txt").unlink(missing_ok=True)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_dockerfiles_are_clear_errors(co: Checkout, name: str) -> None:
    *_, args, expected = BAD[name]
    co.clear_dist()
    run = co.package(*args, targets=[f"dfbad/{name}:image"])
    assert run.returncode != 0, run.log[-3000:]
    for text in expected:
        assert text in run.log, f"{name}: {text!r} not in:\n{run.log[-3000:]}"
    assert "Traceback" not in run.log, run.log[-3000:]
    assert not (co.repo / "dist").exists() or not any((co.repo / "dist").rglob("*.tar"))


def test_images_built_on_each_other(co: Checkout) -> None:
    """A dockerfile_image FROM a container_image (composed from its LLB), a container_image on a
    dockerfile_image and a dockerfile_image FROM a dockerfile_image (its OCI layout, the base's
    layers kept as they are), and a dockerfile_image that copies a pex_binary."""
    co.package(targets=["testprojects/dockerfile::", "testprojects/hello:hello",
                        "testprojects/pyapp:pyapp-dockerfile"]).check()
    dist = co.repo / "dist/testprojects"
    out = run_image(dist / "dockerfile/on-dockerfile.oci.tar").check().stdout
    assert out == "HELLO FROM A DOCKERFILE_IMAGE (version 0.1.0)\n"  # the base's files and config
    assert image_bytes_contain(dist / "dockerfile/on-dockerfile.oci.tar", "built on a dockerfile_image")
    base_layers = [d["digest"] for d in _record(co, "testprojects/dockerfile/image")["platforms"][0]["layers"]]
    child_layers = [d["digest"] for d in _record(co, "testprojects/dockerfile/on-dockerfile")["platforms"][0]["layers"]]
    assert child_layers[:len(base_layers)] == base_layers and len(child_layers) == len(base_layers) + 1
    # A dockerfile_image FROM a dockerfile_image: the parent's OCI layout as a named context, so
    # the parent's files, config (its entrypoint) and layers, the very same blobs.
    df_child = "dockerfile/on-dockerfile-image.oci.tar"
    assert run_image(dist / df_child).check().stdout == "HELLO FROM A DOCKERFILE_IMAGE (version 0.1.0)\n"
    assert image_bytes_contain(dist / df_child, "built on a dockerfile_image by a Dockerfile")
    df_layers = [d["digest"] for d in
                 _record(co, "testprojects/dockerfile/on-dockerfile-image")["platforms"][0]["layers"]]
    assert df_layers[:len(base_layers)] == base_layers and len(df_layers) == len(base_layers) + 1
    # Nothing changed: nothing solved (the child's key is the parent's layout, from Pants' cache).
    run = co.package(targets=["testprojects/dockerfile::"]).check()
    assert set(run.how_built().values()) <= {"from cache"}, run.log[-3000:]
    # Composed from hello's own build: the same files and config, so the same output.
    assert run_image(dist / "dockerfile/on-target.oci.tar").check().stdout == \
        run_image(dist / "hello/hello.oci.tar").check().stdout
    # A COPY of a pex_binary's output path: the package inferred and put in the context.
    out = run_image(dist / "pyapp/pyapp-dockerfile.oci.tar").check().stdout
    assert out == "hello from pyapp on Python 3.11\n"


def test_a_dockerfiles_own_run_network_host_is_asked_of_the_daemon(co: Checkout) -> None:
    """`RUN --network=host` in the Dockerfile itself (not the target's `build_network`): with the
    entitlement enabled the solve asks the daemon for it (the auto-started daemon restarts once
    to allow it). That the solve succeeds is the check: the daemon refuses a host-network RUN that
    the solve did not ask for. Last: it restarts the checkout's daemon."""
    d = co.repo / "dfent"
    d.mkdir(exist_ok=True)
    (d / "Dockerfile").write_text(f"FROM {BUSYBOX}\n"
                                  f"RUN --network=host echo {secrets.token_hex(6)} && cat /proc/net/dev > /net\n"
                                  'CMD ["cat", "/net"]\n')
    (d / "BUILD").write_text("dockerfile_image(name='image')\n")
    co.package("--buildkit-entitlements=['network.host']", targets=["dfent:image"]).check()
    assert co.daemon.allowed_entitlements() == ("network.host",)
    out = run_image(co.repo / "dist" / "dfent" / "image.oci.tar").check().stdout
    assert "lo:" in out, out
