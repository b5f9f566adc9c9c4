"""Solve jobs built against the fixture daemons and registry: the same job gives the same index
digest when built again from an empty cache; a tag base is resolved from the registry without a
daemon and pinned by digest; a dead worker fails with a NoWorkerError naming it; a failed
solve leaves nothing in the output directory."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Dict

import pytest

from llbkit.builder import BuildOptions, ExportOptions, LazyPool, SolveJob, build_job, resolve_bases
from llbkit.builder.bases import BaseResolveError
from llbkit.buildkit import NoWorkerError, WorkerConfig
from llbkit.image import ContextSource, CopyStep, ImageSpec, RegistryBase, RunStep, plan
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry

AMD64 = "linux/amd64"


class _NoDaemon(LazyPool):
    """A pool that must not be used: resolving from the registry needs no worker."""

    def get(self):  # type: ignore[no-untyped-def]
        raise AssertionError("resolving a base from a reachable registry must not contact a worker")


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "hello.txt").write_text("hello\n")
    return ctx


def _job(spec: ImageSpec, registry: Registry, context_digest: str, **export: Any) -> SolveJob:
    refs = [spec.base.normalized] if isinstance(spec.base, RegistryBase) else []
    bases = resolve_bases(refs, list(spec.platforms), _NoDaemon())
    lowered = plan(spec, base_configs=bases, context_digest=context_digest, source_date_epoch=0)
    return SolveJob.of(spec.name, lowered, ExportOptions(**export), has_context=True)


def _build(job: SolveJob, daemon: Buildkitd, out: Path, ctx: Path, **opts: Any) -> Dict[str, Any]:
    with LazyPool([WorkerConfig(daemon.addr)]) as workers:
        return build_job(job, workers, out / "image.tar", out / "image.json", context_dir=ctx,
                         opts=BuildOptions(**opts))


def test_a_job_built_again_from_an_empty_cache_gives_the_same_index_digest(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    spec = ImageSpec(
        name="//it:repro", base=RegistryBase(registry.busybox_ref),
        steps=(CopyStep(ContextSource("context", "app/hello.txt"), "/app/"),
               RunStep("cat /app/hello.txt > /app/copy.txt && date > /dev/null")),
        env=(("A", "1"),), workdir="/app", platforms=(AMD64,),
    )
    job = _job(spec, registry, "sha256:" + "c1" * 32, ref_names=("1.0",), record_tags=("it/repro:1.0",))
    ctx = _context(tmp_path)
    logs = []
    first = _build(job, buildkitd_amd64, tmp_path / "one", ctx, log=logs.append)
    assert first["platforms"][0]["worker"] == buildkitd_amd64.addr
    assert first["builds"] == [{"platform": AMD64, "worker": buildkitd_amd64.addr, "emulated": False,
                                "attempts": [{"worker": buildkitd_amd64.addr, "error": None}]}]
    assert first["tags"] == ["it/repro:1.0"] and first["format"] == "oci"
    assert json.loads((tmp_path / "one" / "image.json").read_bytes()) == first
    assert any(f"{AMD64}: building on" in line for line in logs)
    assert not any(".llbkit-build-" in line for line in logs)  # temp paths are not reported
    # No second fresh daemon among the fixtures: the same daemon, its whole cache pruned, so that
    # the RUN really runs again and every layer is made anew.
    buildkitd_amd64.buildctl("prune", "--all")
    second = _build(job, buildkitd_amd64, tmp_path / "two", ctx)
    assert second["index"]["digest"] == first["index"]["digest"]
    assert (tmp_path / "two" / "image.tar").read_bytes() == (tmp_path / "one" / "image.tar").read_bytes()


def test_a_tag_base_is_resolved_from_the_registry_without_a_daemon_and_pinned(
    registry: Registry, buildkitd_amd64: Buildkitd
) -> None:
    ref = registry.busybox_ref
    ((key, resolved),) = resolve_bases([ref], [AMD64], _NoDaemon()).items()
    assert key == (ref, AMD64) and resolved.digest and resolved.digest.startswith("sha256:")
    # what buildkitd itself answers for the same reference: the same digest and config bytes
    via_worker: Dict[str, Any] = {}

    def fn(gw: Any) -> Any:
        from llbkit.buildkit.solve import BuildResult

        via_worker["r"] = gw.resolve_image_config(ref, platform=AMD64)
        return BuildResult.of(None)

    with LazyPool([WorkerConfig(buildkitd_amd64.addr)]) as workers:
        with workers.get().acquire(AMD64) as lease:
            lease.client.build(fn)
    assert (via_worker["r"].digest, via_worker["r"].raw_config) == (resolved.digest, resolved.config)
    spec = ImageSpec(name="//it:pinned", base=RegistryBase(ref), platforms=(AMD64,))
    (lowered,) = plan(spec, base_configs={key: resolved})
    assert f"{ref}@{resolved.digest}".encode() in lowered.definition.to_bytes()  # the tag, pinned


def test_credentials_come_from_the_docker_config_env_names(registry_auth: Registry, tmp_path: Path) -> None:
    ref = registry_auth.busybox_ref
    docker = registry_auth.docker_config(tmp_path / "docker")
    got = resolve_bases([ref], [AMD64], _NoDaemon(), env={"DOCKER_CONFIG": str(docker)})
    assert got[(ref, AMD64)].digest.startswith("sha256:")  # type: ignore[union-attr]
    with pytest.raises(BaseResolveError, match=ref.split("/")[0]):
        resolve_bases([ref], [AMD64], _NoDaemon(), env={"HOME": str(tmp_path / "nobody")})


def test_an_unreachable_registry_falls_back_to_a_worker(buildkitd_amd64: Buildkitd) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there, for this process nor for the worker
    ref = f"127.0.0.1:{port}/busybox:latest"
    logs = []
    with LazyPool([WorkerConfig(buildkitd_amd64.addr)]) as workers:
        with pytest.raises(BaseResolveError) as e:
            resolve_bases([ref], [AMD64], workers, log=logs.append)
    assert f"cannot reach registry 127.0.0.1:{port}" in str(e.value)
    assert f"worker {buildkitd_amd64.addr} failed too" in str(e.value)
    assert any("through a buildkitd worker" in line for line in logs)


def test_a_dead_worker_fails_with_a_no_worker_error_naming_it(buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    spec = ImageSpec(name="//it:scratch", steps=(CopyStep(ContextSource("context", "app"), "/srv/"),),
                     platforms=(AMD64,))
    job = SolveJob.of(spec.name, plan(spec, context_digest="sha256:" + "c3" * 32, source_date_epoch=0),
                      ExportOptions(), has_context=True)
    ctx = _context(tmp_path)
    gone = f"unix://{tmp_path}/gone.sock"
    with pytest.raises(NoWorkerError) as e:
        with LazyPool([WorkerConfig(gone)]) as workers:
            build_job(job, workers, tmp_path / "out" / "image.tar", tmp_path / "out" / "image.json",
                      context_dir=ctx)
    assert e.value.platform == AMD64
    assert [w for w, _ in e.value.workers] == [gone]
    assert gone in str(e.value) and "unreachable" in str(e.value)
    assert list((tmp_path / "out").iterdir()) == []
    # with a live worker that can only emulate the platform, and emulation disallowed
    arm_spec = ImageSpec(name="//it:arm", steps=spec.steps, platforms=("linux/arm64",))
    arm = SolveJob.of(arm_spec.name, plan(arm_spec, context_digest="sha256:" + "c3" * 32, source_date_epoch=0),
                      ExportOptions(), has_context=True)
    with pytest.raises(NoWorkerError) as e:
        with LazyPool([WorkerConfig(buildkitd_amd64.addr), WorkerConfig(gone)]) as workers:
            build_job(arm, workers, tmp_path / "out" / "image.tar", tmp_path / "out" / "image.json",
                      context_dir=ctx, opts=BuildOptions(allow_emulation=False))
    message = str(e.value)
    assert "linux/arm64" in message and "emulation is disallowed" in message
    assert buildkitd_amd64.addr in message and gone in message


def test_a_failed_solve_leaves_nothing_in_the_output_directory(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    from llbkit.buildkit import PlatformBuildError

    out, ctx = tmp_path / "out", _context(tmp_path)
    ok = ImageSpec(name="//it:ok", base=RegistryBase(registry.busybox_ref),
                   steps=(RunStep("echo ok > /ok"),), platforms=(AMD64,))
    _build(_job(ok, registry, "sha256:" + "c4" * 32), buildkitd_amd64, out, ctx)
    assert sorted(p.name for p in out.iterdir()) == ["image.json", "image.tar"]  # no temp files left
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    failing = ImageSpec(name="//it:fails", base=RegistryBase(registry.busybox_ref),
                        steps=(RunStep("echo partial > /partial; exit 3"),), platforms=(AMD64,))
    with pytest.raises(PlatformBuildError) as e:
        _build(_job(failing, registry, "sha256:" + "c4" * 32), buildkitd_amd64, out, ctx)
    assert "exited with code 3" in str(e.value) and e.value.worker == buildkitd_amd64.addr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier outputs, untouched
    fresh = tmp_path / "fresh"
    with pytest.raises(PlatformBuildError):
        _build(_job(failing, registry, "sha256:" + "c4" * 32), buildkitd_amd64, fresh, ctx)
    assert list(fresh.iterdir()) == []  # neither output, nor a partial or temporary file


def test_a_docker_archive_is_written_in_one_pass_and_holds_what_the_converter_writes(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    """The docker archive is finished straight from the export (no OCI tar written first): its
    members are those `write_docker_archive` writes from the OCI layout of the same build, and
    its image is the OCI build's one platform."""
    import tarfile

    from llbkit.oci import open_layout, split, write_docker_archive

    spec = ImageSpec(name="//it:docker", base=RegistryBase(registry.busybox_ref),
                     steps=(CopyStep(ContextSource("context", "app/hello.txt"), "/app/"),), platforms=(AMD64,))
    ctx = _context(tmp_path)
    tags = ("it/docker:1.0", "it/docker:latest")
    oci = _build(_job(spec, registry, "sha256:" + "d1" * 32, record_tags=tags), buildkitd_amd64,
                 tmp_path / "oci", ctx)
    docker = _build(_job(spec, registry, "sha256:" + "d1" * 32, output_format="docker", docker_tags=tags,
                         record_tags=tags), buildkitd_amd64, tmp_path / "docker", ctx)
    assert docker["format"] == "docker" and docker["index"] == oci["index"]
    assert docker["platforms"] == oci["platforms"]
    with open_layout(tmp_path / "oci" / "image.tar") as layout:
        write_docker_archive(split(layout)[0], tmp_path / "converted.tar", tags)

    def members(path: Path) -> Dict[str, bytes]:
        with tarfile.open(path) as tf:
            return {m.name: (tf.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                    for m in tf.getmembers()}

    got, want = members(tmp_path / "docker" / "image.tar"), members(tmp_path / "converted.tar")
    assert sorted(got) == sorted(want)
    assert [n for n in sorted(got) if got[n] != want[n]] == [], {n: (got[n][:300], want[n][:300])
                                                                 for n in got if got[n] != want[n]}
    manifest = json.loads(got["manifest.json"])
    assert manifest[0]["RepoTags"] == list(tags)
    assert sorted(p.name for p in (tmp_path / "docker").iterdir()) == ["image.json", "image.tar"]
