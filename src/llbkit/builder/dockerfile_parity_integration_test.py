"""Dockerfile images built by llbkit against ``buildctl build --frontend dockerfile.v0``.

For every case of :mod:`llbkit.testutil.dockerfile_suite`, a solve job of frontend calls built by
:func:`build_job` and the same Dockerfile built by buildctl (with the same inputs and
SOURCE_DATE_EPOCH) give the same index digest: byte-identical images. llbkit's job pins the
registry base by digest through a named context (``context:REF=docker-image://REF@DIGEST``);
buildctl resolves the tag, so the same digest also shows that pinning changes no byte. The
build cache is pruned between the two builds, so neither reuses the other's layers. Then the
image runs (every platform, arm64 under emulation) and prints what the case expects.

Also: the Dockerfile frontend's own errors (a syntax error at its file and line, an unknown
stage) come out as typed errors carrying BuildKit's message.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any, Dict

import pytest

from llbkit.builder import BuildOptions, ExportOptions, LazyPool, build_job
from llbkit.builder.job import FrontendCall, JobPlatform, SolveJob
from llbkit.buildkit import WorkerConfig
from llbkit.buildkit.errors import SolveError
from llbkit.buildkit.multiplatform import PlatformBuildError
from llbkit.buildkit.session.secrets import SecretSource
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.dockerfile_suite import (
    Case,
    buildctl_build,
    frontend_job,
    image_bytes_contain,
    index_digest,
    load_cases,
    pinned_contexts,
)
from llbkit.testutil.registry import Registry
from llbkit.testutil.run_image import run_image

CASES = load_cases()
INDEX_TYPES = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"


def test_the_suite_covers_what_the_issue_asks_for() -> None:
    assert len(CASES) >= 12
    text = "\n".join((c.directory / c.dockerfile).read_text() for c in CASES)
    for needle in ("COPY --from=", "ENV ", "${", "USER ", "--mount=type=cache", "--mount=type=secret",
                   "--mount=type=bind", "--mount=type=tmpfs", "ADD bundle.tar", "HEALTHCHECK", "SHELL",
                   "ONBUILD"):
        assert needle in text, needle
    assert any((c.directory / ".dockerignore").is_file() for c in CASES)
    assert any(c.target for c in CASES)
    assert any(set(c.platforms) == {"linux/amd64", "linux/arm64"} for c in CASES)


def _tag_digest(registry: Registry, ref: str) -> str:
    repo_tag = ref.split("/", 1)[1]
    repo, tag = repo_tag.rsplit(":", 1)
    req = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": INDEX_TYPES})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the fixture registry on 127.0.0.1
        return str(resp.headers["Docker-Content-Digest"])


def _build(job: SolveJob, daemon: Buildkitd, out: Path, case_dir: Path, **opts: Any) -> Dict[str, Any]:
    with LazyPool([WorkerConfig(daemon.addr)]) as workers:
        return build_job(job, workers, out / "image.tar", out / "image.json",
                         local_dirs={"context": case_dir, "dockerfile": case_dir}, opts=BuildOptions(**opts))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_llbkit_and_buildctl_build_the_same_image(
    case: Case, registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    base = registry.busybox_ref
    pins = pinned_contexts({base: _tag_digest(registry, base)})
    job = frontend_job(case, base=base, extra_opts=pins)
    secrets = {sid: SecretSource(value=v.encode()) for sid, v in case.secrets.items()}
    record = _build(job, buildkitd_amd64, tmp_path / "llbkit", case.directory, secrets=secrets)
    ours = tmp_path / "llbkit" / "image.tar"
    assert [p["platform"] for p in record["platforms"]] == list(case.platforms)

    buildkitd_amd64.buildctl("prune", "--all")  # buildctl makes every layer anew
    theirs = buildctl_build(buildkitd_amd64, case, tmp_path / "buildctl.oci.tar", base=base, work=tmp_path)
    assert record["index"]["digest"] == index_digest(theirs) == index_digest(ours), case.about

    for platform in case.platforms:
        expected = case.expected_stdout(platform)
        result = run_image(ours, platform).check()
        assert result.stdout == expected, f"{case.name} on {platform}: {result.stdout!r}"
    if case.absent_from_image:
        assert not image_bytes_contain(ours, case.absent_from_image)


def test_another_source_date_epoch_gives_the_same_bytes_as_buildctl_with_it(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    """The epoch reaches the frontend as buildctl's $SOURCE_DATE_EPOCH does (build arg) and the
    exporter (rewritten layer times): both dates agree with buildctl's."""
    (case,) = [c for c in CASES if c.name == "arg_env_expansion"]
    job = frontend_job(case, base=registry.busybox_ref, export=ExportOptions(source_date_epoch=1700000000))
    record = _build(job, buildkitd_amd64, tmp_path / "llbkit", case.directory)
    theirs = buildctl_build(buildkitd_amd64, case, tmp_path / "buildctl.oci.tar", base=registry.busybox_ref,
                            work=tmp_path, source_date_epoch=1700000000)
    assert record["index"]["digest"] == index_digest(theirs)
    zero = _build(frontend_job(case, base=registry.busybox_ref), buildkitd_amd64, tmp_path / "zero", case.directory)
    assert zero["index"]["digest"] != record["index"]["digest"]  # the epoch is in the bytes


def _one(dockerfile: str, tmp_path: Path, registry: Registry, **attrs: str) -> SolveJob:
    (tmp_path / "Dockerfile").write_text(dockerfile.replace("BASE", registry.busybox_ref))
    call = FrontendCall("dockerfile.v0", tuple(attrs.items()))
    return SolveJob("//bad:df", (JobPlatform("linux/amd64", b"", b"", frontend=call),), ExportOptions(),
                    local_dirs=("context", "dockerfile"))


def test_a_dockerfile_syntax_error_is_buildkits_message_with_file_and_line(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    job = _one("FROM BASE\nRUN true\nNOPE this is not an instruction\n", tmp_path, registry)
    with pytest.raises(PlatformBuildError) as e:
        _build(job, buildkitd_amd64, tmp_path / "out", tmp_path)
    cause = e.value.cause
    assert isinstance(cause, SolveError)
    assert "unknown instruction: NOPE" in cause.detail  # BuildKit's own words
    assert [(s.filename, s.start_line) for s in cause.sources] == [("Dockerfile", 3)]
    assert "Dockerfile:3" in str(e.value) and "linux/amd64" in str(e.value)
    assert not (tmp_path / "out" / "image.tar").exists() and not (tmp_path / "out" / "image.json").exists()


def test_an_unknown_target_stage_is_a_clear_error(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    job = _one("FROM BASE AS build\nRUN true\n", tmp_path, registry, target="release")
    with pytest.raises(PlatformBuildError) as e:
        _build(job, buildkitd_amd64, tmp_path / "out", tmp_path)
    assert isinstance(e.value.cause, SolveError)
    assert 'target stage "release" could not be found' in str(e.value)


def test_the_job_names_the_local_dirs_it_needs(registry: Registry, tmp_path: Path) -> None:
    from llbkit.builder.build import MissingInputError

    job = _one("FROM BASE\n", tmp_path, registry)
    with LazyPool([WorkerConfig("unix:///nonexistent.sock")]) as workers:
        with pytest.raises(MissingInputError, match="local dir 'dockerfile'.*--local NAME=DIR"):
            build_job(job, workers, tmp_path / "o" / "image.tar", tmp_path / "o" / "image.json",
                      context_dir=tmp_path)
    assert not (tmp_path / "o" / "image.tar").exists()


def test_record_shape(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    """The record of a frontend build says which worker built which platform, as for container_image."""
    job = _one("FROM BASE\nENV A=1\n", tmp_path, registry)
    record = _build(job, buildkitd_amd64, tmp_path / "out", tmp_path)
    assert record["builds"][0]["worker"] == buildkitd_amd64.addr
    assert json.loads((tmp_path / "out" / "image.json").read_text()) == record
