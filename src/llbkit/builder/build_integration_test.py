"""The content cache against real daemons: a second build needs no daemon and gives the same
bytes; two different daemons give the same image digest; a tag base is pinned by digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Tuple

from llbkit.builder import BuildOptions, ImageCache, build_outputs, resolve_bases
from llbkit.buildkit import Client, TLSConfig
from llbkit.image import ContextSource, CopyStep, ImageSpec, RegistryBase, RunStep, plan
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry


def _client(daemon: Buildkitd) -> Client:
    tls = None
    if daemon.ca_cert is not None:
        tls = TLSConfig(str(daemon.ca_cert), str(daemon.client_cert), str(daemon.client_key))
    return Client(daemon.addr, tls=tls)


def _connect(daemon: Buildkitd):  # type: ignore[no-untyped-def]
    client = _client(daemon)
    return lambda platform: (client, daemon.addr)


def _no_daemon(platform: str) -> Tuple[Any, str]:
    raise AssertionError(f"a cached build must not connect (asked for {platform})")


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
    connect = _connect(buildkitd_amd64)
    cache = ImageCache(tmp_path / "images")
    bases = resolve_bases(spec, ["linux/amd64"], connect, cache)
    (resolved,) = bases.values()
    assert resolved.digest and resolved.digest.startswith("sha256:")
    lowered = plan(spec, base_configs=bases, context_digest="sha256:ctx-1", source_date_epoch=0)
    assert resolved.digest in lowered[0].definition.to_bytes().decode(errors="replace")  # pinned
    opts = BuildOptions(ref_names=("1.0",), record_tags=("it/busybox:1.0",))
    ctx = _context(tmp_path)
    first = build_outputs(lowered, opts, context_digest="sha256:ctx-1", context_dir=lambda: ctx,
                          connect=connect, cache=cache)
    assert not first.cached
    record = first.record
    assert record["platforms"][0]["worker"] == buildkitd_amd64.addr
    assert record["tags"] == ["it/busybox:1.0"]
    image_bytes = first.image_path.read_bytes()

    def no_context() -> Path:
        raise AssertionError("a cached build must not need its context")

    again = build_outputs(lowered, opts, context_digest="sha256:ctx-1", context_dir=no_context,
                          connect=_no_daemon, cache=cache)
    assert again.cached and again.key == first.key
    assert again.image_path.read_bytes() == image_bytes
    # Base configs given by digest are cached too: resolving again needs no daemon.
    pinned = ImageSpec(name="//it:pinned", base=RegistryBase(f"{registry.busybox_ref}@{resolved.digest}"),
                       platforms=("linux/amd64",))
    resolve_bases(pinned, ["linux/amd64"], connect, cache)
    assert resolve_bases(pinned, ["linux/amd64"], _no_daemon, cache)


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
                            connect=_connect(daemon), cache=ImageCache(tmp_path / f"images-{i}"))
        assert not out.cached
        record = json.loads(out.record_path.read_bytes())
        assert [p["platform"] for p in record["platforms"]] == ["linux/amd64", "linux/arm64"]
        digests.append(record["index"]["digest"])
    assert digests[0] == digests[1]
