"""Lowered specs solve on real BuildKit: the filesystem holds what the spec says, per platform.

The base image's config is read from the fixture registry over its HTTP API (what the client's
``resolve_image_config`` does through buildkitd); the definition is solved with ``buildctl build``
(definition on stdin, the build context as ``--local``, exported with the local exporter).
"""

from __future__ import annotations

import json
import stat
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

from llbkit.image import (
    ContextSource,
    CopyStep,
    ImageSpec,
    Lowered,
    RegistryBase,
    ResolvedBase,
    RunStep,
    lower,
    plan,
)
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry

INDEX_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def _get(url: str, accept: str = "*/*") -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the local fixture registry
        return resp.read()


def resolve_config(registry: Registry, repo: str, tag: str, platform: str) -> ResolvedBase:
    """The image config of ``repo:tag`` for ``platform`` from the registry's HTTP API."""
    top = _get(f"{registry.url}/v2/{repo}/manifests/{tag}", INDEX_TYPES)
    manifest: Dict[str, Any] = json.loads(top)
    if "manifests" in manifest:
        os_name, arch = platform.split("/")[:2]
        (desc,) = [m for m in manifest["manifests"]
                   if m.get("platform", {}).get("os") == os_name and m["platform"].get("architecture") == arch]
        manifest = json.loads(_get(f"{registry.url}/v2/{repo}/manifests/{desc['digest']}", INDEX_TYPES))
    config = _get(f"{registry.url}/v2/{repo}/blobs/{manifest['config']['digest']}")
    return ResolvedBase(config)


def solve(daemon: Buildkitd, lowered: Lowered, context: Path, out: Path) -> Dict[str, tarfile.TarInfo]:
    """Solve and export as a tar (owners survive without root), extracted to ``out``; returns the
    tar's members by absolute path."""
    assert daemon.buildctl_bin is not None
    tar_path = out.with_suffix(".tar")
    argv: List[str] = [
        str(daemon.buildctl_bin), *daemon.client_args(), "--timeout", "5",
        "build", "--progress=plain", "--local", f"context={context}", "--output", f"type=tar,dest={tar_path}",
    ]
    res = subprocess.run(argv, input=lowered.definition.to_bytes(), capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-4000:]
    out.mkdir()
    with tarfile.open(tar_path) as tf:
        members = tf.getmembers()
        regular = [m for m in members if m.isfile() or m.isdir()]
        kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tf.extractall(out, members=regular, **kw)  # noqa: S202 - our own build's output
    return {"/" + m.name.lstrip("./").rstrip("/"): m for m in members}


def make_context(root: Path) -> Path:
    files = {"app/hello.txt": "hello\n", "conf/a.yaml": "a: 1\n", "conf/sub/b.yaml": "b: 2\n", "unused.txt": "no\n"}
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def app_spec(registry: Registry, platforms: List[str]) -> ImageSpec:
    return ImageSpec(
        name="//image:it",
        base=RegistryBase(registry.busybox_ref),
        steps=(
            # symbolic: the file gets exactly 0640, the directory the copy creates 0755 (an octal
            # "0640" would give /app 0640 too, as BuildKit's Dockerfile frontend does)
            CopyStep(ContextSource("context", "app/hello.txt"), "/app/", chmod="u=rw,g=r,o=", chown="1000:1000"),
            CopyStep(ContextSource("context", "conf"), "conf/"),
            RunStep('echo "$GREETING from $(pwd) as $(id -u)" > out.txt && cat /app/hello.txt >> out.txt'
                    " && uname -m > arch.txt"),
        ),
        env={"GREETING": "hi"},
        workdir="/srv",
        user="1000",
        platforms=platforms,
    )


def check_tree(out: Path, members: Dict[str, tarfile.TarInfo], arch: str) -> None:
    assert (out / "srv/out.txt").read_text() == "hi from /srv as 1000\nhello\n"
    assert (out / "srv/arch.txt").read_text() == arch + "\n"
    hello = out / "app/hello.txt"
    assert hello.read_text() == "hello\n"
    assert stat.S_IMODE(hello.stat().st_mode) == 0o640
    assert (out / "srv/conf/a.yaml").read_text() == "a: 1\n"
    assert (out / "srv/conf/sub/b.yaml").read_text() == "b: 2\n"
    assert not (out / "srv/conf/conf").exists() and not (out / "unused.txt").exists()
    assert (out / "bin/busybox").exists()  # the base image is underneath
    owners = {p: (members[p].uid, members[p].gid) for p in ("/app", "/app/hello.txt", "/srv", "/srv/conf/a.yaml")}
    assert owners == {
        "/app": (1000, 1000),  # made for the chown'd copy
        "/app/hello.txt": (1000, 1000),
        "/srv": (1000, 1000),  # WORKDIR is created for the user (BuildKit: gid = uid)
        "/srv/conf/a.yaml": (0, 0),  # no chown: root, whoever sent the file
    }
    assert stat.S_IMODE(members["/app"].mode) == 0o755


def test_lowered_spec_solves_to_the_expected_filesystem(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    spec = app_spec(registry, ["linux/amd64"])
    cfg = resolve_config(registry, "busybox", "latest", "linux/amd64")
    lowered = lower(spec, "linux/amd64", base_configs={registry.busybox_ref: cfg}, context_digest="sha256:it")
    members = solve(buildkitd_amd64, lowered, make_context(tmp_path / "ctx"), tmp_path / "out")
    check_tree(tmp_path / "out", members, "x86_64")
    oci = lowered.oci_config()
    assert "GREETING=hi" in oci["config"]["Env"] and oci["config"]["WorkingDir"] == "/srv"


def test_two_platforms_each_solve(
    registry: Registry, buildkitd_amd64: Buildkitd, buildkitd_arm64_tls: Buildkitd, tmp_path: Path
) -> None:
    spec = app_spec(registry, ["linux/amd64", "linux/arm64"])
    configs = {(registry.busybox_ref, p): resolve_config(registry, "busybox", "latest", p)
               for p in spec.platforms}
    builds = plan(spec, base_configs=configs, context_digest="sha256:it2")
    assert [b.platform for b in builds] == ["linux/amd64", "linux/arm64"]
    context = make_context(tmp_path / "ctx")
    for build, daemon, arch in zip(builds, (buildkitd_amd64, buildkitd_arm64_tls), ("x86_64", "aarch64")):
        out = tmp_path / f"out-{arch}"
        members = solve(daemon, build, context, out)
        check_tree(out, members, arch)
        assert build.oci_config()["architecture"] == build.platform.split("/")[1]
