"""The content cache and the worker pool against real daemons: a second build needs no daemon
and gives the same bytes; two different daemons give the same image digest; a tag base is
resolved from the registry (no daemon) and pinned by digest; failures name every worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llbkit.builder import BuildOptions, ImageCache, LazyPool, build_outputs, resolve_bases
from llbkit.builder.bases import BaseResolveError
from llbkit.buildkit import NoWorkerError, TLSConfig, WorkerConfig
from llbkit.image import ContextSource, CopyStep, ImageSpec, RegistryBase, RunStep, plan
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry


def _worker(daemon: Buildkitd) -> WorkerConfig:
    tls = None
    if daemon.ca_cert is not None:
        tls = TLSConfig(str(daemon.ca_cert), str(daemon.client_cert), str(daemon.client_key))
    return WorkerConfig(daemon.addr, tls=tls)


class _NoDaemon(LazyPool):
    def get(self):  # type: ignore[no-untyped-def]
        raise AssertionError("a cached build must not contact a worker")


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "hello.txt").write_text("hello\n")
    return ctx


def test_cached_build_needs_no_daemon_and_is_byte_identical(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    spec = ImageSpec(
        name="//it:busybox", base=RegistryBase(registry.busybox_ref),
        steps=(CopyStep(ContextSource("context", "app/hello.txt"), "/app/"),
               RunStep("cat /app/hello.txt > /app/copy.txt")),
        platforms=("linux/amd64",), tags=("1.0",),
    )
    workers = LazyPool([_worker(buildkitd_amd64)])
    cache = ImageCache(tmp_path / "images")
    bases = resolve_bases(spec, ["linux/amd64"], _NoDaemon(), cache)  # from the registry, no daemon
    (resolved,) = bases.values()
    assert resolved.digest and resolved.digest.startswith("sha256:")
    via_worker = {}

    def fn(gw):  # type: ignore[no-untyped-def]
        from llbkit.buildkit.solve import BuildResult

        via_worker["r"] = gw.resolve_image_config(registry.busybox_ref, platform="linux/amd64")
        return BuildResult.of(None)

    workers.get().acquire("linux/amd64").client.build(fn)
    assert (via_worker["r"].digest, via_worker["r"].raw_config) == (resolved.digest, resolved.config)

    lowered = plan(spec, base_configs=bases, context_digest="sha256:ctx-1", source_date_epoch=0)
    assert resolved.digest in lowered[0].definition.to_bytes().decode(errors="replace")  # pinned
    opts = BuildOptions(ref_names=("1.0",), record_tags=("it/busybox:1.0",))
    ctx = _context(tmp_path)
    first = build_outputs(lowered, opts, context_digest="sha256:ctx-1", context_dir=lambda: ctx,
                          workers=workers, cache=cache)
    assert not first.cached
    record = first.record
    assert record["platforms"][0]["worker"] == buildkitd_amd64.addr
    assert record["builds"][0]["emulated"] is False
    assert record["tags"] == ["it/busybox:1.0"]
    image_bytes = first.image_path.read_bytes()

    def no_context() -> Path:
        raise AssertionError("a cached build must not need its context")

    again = build_outputs(lowered, opts, context_digest="sha256:ctx-1", context_dir=no_context,
                          workers=_NoDaemon(), cache=cache)
    assert again.cached and again.key == first.key
    assert again.image_path.read_bytes() == image_bytes
    # A base given by digest is served from the stored configs: no registry, no daemon.
    pinned = ImageSpec(name="//it:pinned", base=RegistryBase(f"{registry.busybox_ref}@{resolved.digest}"),
                       platforms=("linux/amd64",))
    assert resolve_bases(pinned, ["linux/amd64"], _NoDaemon(), cache)[
        (pinned.base.normalized, "linux/amd64")].digest == resolved.digest  # type: ignore[union-attr]


def test_an_unreachable_registry_falls_back_to_a_worker(buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    # Nothing listens on this port from here; the worker cannot reach it either, so the error names both.
    spec = ImageSpec(name="//it:gone", base=RegistryBase("127.0.0.1:9/busybox:latest"), platforms=("linux/amd64",))
    logs = []
    with pytest.raises(BaseResolveError) as e:
        resolve_bases(spec, ["linux/amd64"], LazyPool([_worker(buildkitd_amd64)]), None, log=logs.append)
    assert "cannot reach registry 127.0.0.1:9" in str(e.value) and buildkitd_amd64.addr in str(e.value)
    assert any("through a buildkitd worker" in line for line in logs)
    with pytest.raises(BaseResolveError, match="cannot reach registry 127.0.0.1:9"):
        resolve_bases(spec, ["linux/amd64"], None, None)


def test_two_daemons_give_the_same_image_digest(
    buildkitd_amd64: Buildkitd, buildkitd_arm64_tls: Buildkitd, tmp_path: Path
) -> None:
    spec = ImageSpec(name="//it:scratch",
                     steps=(CopyStep(ContextSource("context", "app"), "/srv/", chmod="0644"),),
                     env={"A": "1"}, workdir="/srv", platforms=("linux/amd64", "linux/arm64"))
    lowered = plan(spec, context_digest="sha256:ctx-2", source_date_epoch=0)
    ctx = _context(tmp_path)
    digests = []
    for i, daemon in enumerate((buildkitd_amd64, buildkitd_arm64_tls)):
        out = build_outputs(lowered, BuildOptions(), context_digest="sha256:ctx-2", context_dir=lambda: ctx,
                            workers=LazyPool([_worker(daemon)]), cache=ImageCache(tmp_path / f"images-{i}"))
        assert not out.cached
        record = json.loads(out.record_path.read_bytes())
        assert [p["platform"] for p in record["platforms"]] == ["linux/amd64", "linux/arm64"]
        assert {p["worker"] for p in record["platforms"]} == {daemon.addr}
        digests.append(record["index"]["digest"])
    assert digests[0] == digests[1]


def test_no_usable_worker_names_the_platform_and_every_worker(
    buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    spec = ImageSpec(name="//it:noemu", steps=(CopyStep(ContextSource("context", "app"), "/srv/"),),
                     platforms=("linux/arm64",))
    lowered = plan(spec, context_digest="sha256:ctx-3", source_date_epoch=0)
    ctx = _context(tmp_path)
    gone = f"unix://{tmp_path}/gone.sock"
    workers = LazyPool([_worker(buildkitd_amd64), WorkerConfig(gone)])
    with pytest.raises(NoWorkerError) as e:
        build_outputs(lowered, BuildOptions(allow_emulation=False), context_digest="sha256:ctx-3",
                      context_dir=lambda: ctx, workers=workers, cache=ImageCache(tmp_path / "images"))
    message = str(e.value)
    assert "linux/arm64" in message and "emulation is disallowed" in message
    assert buildkitd_amd64.addr in message and gone in message and "unreachable" in message
