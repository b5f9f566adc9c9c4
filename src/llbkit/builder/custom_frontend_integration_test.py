"""Custom frontends through the gateway, against the fixture daemon and registry: a real frontend
(the toy JSON-to-LLB frontend of :mod:`llbkit.testutil.toy_frontend`, written in Go against
BuildKit's gateway client) packaged as an image, run by llbkit as ``gateway.v0`` pinned by
digest, for two platforms. The same frontend selected by a ``# syntax=`` directive gives the
same image bytes as buildctl's ``dockerfile.v0`` forwarding to it (which looks the tag up), and
the frontend's own error reaches the caller."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

from llbkit.builder import BuildOptions, ExportOptions, LazyPool, build_job
from llbkit.builder.frontends import dockerfile_frontend, gateway_frontend
from llbkit.builder.job import JobPlatform, SolveJob
from llbkit.buildkit import WorkerConfig
from llbkit.buildkit.multiplatform import PlatformBuildError
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.dockerfile_suite import index_digest
from llbkit.testutil.registry import Registry
from llbkit.testutil.run_image import run_image
from llbkit.testutil.toy_frontend import push_toy_frontend

PLATFORMS = ("linux/amd64", "linux/arm64")


@pytest.fixture(scope="module")
def toy_frontend(buildkitd_amd64: Buildkitd, registry: Registry, tmp_path_factory: Any) -> str:
    return push_toy_frontend(buildkitd_amd64, registry, tmp_path_factory.mktemp("toy"))


def _spec(registry: Registry, **extra: Any) -> str:
    return json.dumps({"base": registry.busybox_ref, "files": {"/etc/greeting": "hello from the toy\n"},
                       "env": ["TOY=1"], "cmd": ["cat", "/etc/greeting"], **extra})


def _build(job: SolveJob, daemon: Buildkitd, out: Path, d: Path) -> Dict[str, Any]:
    with LazyPool([WorkerConfig(daemon.addr)]) as workers:
        return build_job(job, workers, out / "image.tar", out / "image.json",
                         local_dirs={"context": d, "dockerfile": d}, opts=BuildOptions())


def test_a_custom_frontend_image_runs_through_the_gateway_pinned_by_digest(
    toy_frontend: str, registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    d = tmp_path / "src"
    d.mkdir()
    (d / "build.json").write_text(_spec(registry))
    assert "@sha256:" in toy_frontend
    job = SolveJob("//toy:img", tuple(JobPlatform(p, b"", b"", frontend=gateway_frontend(toy_frontend))
                                      for p in PLATFORMS), ExportOptions(), local_dirs=("context", "dockerfile"))
    record = _build(job, buildkitd_amd64, tmp_path / "out", d)
    assert [p["platform"] for p in record["platforms"]] == list(PLATFORMS)
    for p in PLATFORMS:
        assert run_image(tmp_path / "out" / "image.tar", p).check().stdout == "hello from the toy\n"

    # buildctl running the same frontend the same way gives the same bytes (the toy frontend
    # builds one platform per run, so buildctl runs it once per platform)
    for i, p in enumerate(PLATFORMS):
        theirs = tmp_path / f"buildctl-{i}.oci.tar"
        buildkitd_amd64.buildctl(
            "build", "--frontend", "gateway.v0", "--opt", f"source={toy_frontend}", "--opt", f"platform={p}",
            "--local", f"context={d}", "--local", f"dockerfile={d}",
            "--output", f"type=oci,dest={theirs},rewrite-timestamp=true", env=dict(os.environ, SOURCE_DATE_EPOCH="0"))
        assert index_digest(theirs) == record["platforms"][i]["manifest"]["digest"], p

def test_a_syntax_directive_selects_the_custom_frontend_pinned(
    toy_frontend: str, registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    tag_ref = registry.ref("toy-frontend", "1")
    d = tmp_path / "src"
    d.mkdir()
    dockerfile = f"# syntax={tag_ref}\n{_spec(registry)}\n"
    (d / "Dockerfile").write_text(dockerfile)
    call = dockerfile_frontend(dockerfile.encode(), (("filename", "Dockerfile"), ("platform", "linux/amd64")),
                               pins={tag_ref: toy_frontend.rsplit("@", 1)[1]})  # as a lock would pin it
    digest = toy_frontend.rsplit("@", 1)[1]
    assert call.name == "gateway.v0" and call.opts["source"] == f"{tag_ref}@{digest}"
    job = SolveJob("//toy:df", (JobPlatform("linux/amd64", b"", b"", frontend=call),), ExportOptions(),
                   local_dirs=("context", "dockerfile"))
    record = _build(job, buildkitd_amd64, tmp_path / "out", d)
    assert run_image(tmp_path / "out" / "image.tar").check().stdout == "hello from the toy\n"

    theirs = tmp_path / "buildctl.oci.tar"
    buildkitd_amd64.build_dockerfile(d, platform="linux/amd64", opts={"filename": "Dockerfile"},
                                     outputs=[f"type=oci,dest={theirs},rewrite-timestamp=true"],
                                     env=dict(os.environ, SOURCE_DATE_EPOCH="0"))
    # buildctl's export of one platform names the manifest itself; llbkit's index holds it
    assert index_digest(theirs) == record["platforms"][0]["manifest"]["digest"]


def test_the_custom_frontends_own_error_reaches_the_caller(
    toy_frontend: str, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    d = tmp_path / "src"
    d.mkdir()
    (d / "build.json").write_text("{not json")
    job = SolveJob("//toy:bad", (JobPlatform("linux/amd64", b"", b"", frontend=gateway_frontend(toy_frontend)),),
                   ExportOptions(), local_dirs=("context", "dockerfile"))
    with pytest.raises(PlatformBuildError, match="toy frontend: build.json is not a valid spec"):
        _build(job, buildkitd_amd64, tmp_path / "out", d)
    assert not (tmp_path / "out" / "image.tar").exists()
