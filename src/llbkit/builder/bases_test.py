"""Choosing a platform's manifest in an image index, resolutions as JSON, and the worker
fallback when the registry cannot be reached (fakes, no registry, no daemon)."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace
from typing import Any, List

import pytest

from llbkit.builder.bases import (
    BaseResolveError,
    resolve_bases,
    resolved_from_json,
    resolved_to_json,
    select_platform_manifest,
)
from llbkit.image import ResolvedBase

INDEX = {"manifests": [
    {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
    {"digest": "sha256:v7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
]}


def test_platforms_match_as_containerd_normalizes_them() -> None:
    assert select_platform_manifest(INDEX, "linux/amd64", "r")["digest"] == "sha256:amd"
    assert select_platform_manifest(INDEX, "linux/arm64", "r")["digest"] == "sha256:arm"  # arm64/v8 == arm64
    assert select_platform_manifest(INDEX, "linux/arm/v7", "r")["digest"] == "sha256:v7"


def test_a_missing_platform_lists_what_the_index_has() -> None:
    with pytest.raises(BaseResolveError) as e:
        select_platform_manifest(INDEX, "linux/s390x", "example.com/app:1")
    assert "example.com/app:1 has no linux/s390x image" in str(e.value)
    assert "linux/amd64, linux/arm64" in str(e.value)


# -- resolutions as JSON, and the worker fallback (fake pool, no daemon) ------------------------

DIGEST = "sha256:" + "12" * 32


def test_resolutions_round_trip_as_json() -> None:
    bases = {("r.example/a:1", "linux/arm64"): ResolvedBase(b'{"architecture":"arm64"}', DIGEST),
             ("r.example/a:1", "linux/amd64"): ResolvedBase({"architecture": "amd64"}, DIGEST)}
    text = resolved_to_json(bases)
    assert [(r["ref"], r["platform"]) for r in json.loads(text)] == [
        ("r.example/a:1", "linux/amd64"), ("r.example/a:1", "linux/arm64")]  # sorted: stable text
    back = resolved_from_json(text)
    assert back[("r.example/a:1", "linux/arm64")] == ResolvedBase(b'{"architecture":"arm64"}', DIGEST)
    assert json.loads(back[("r.example/a:1", "linux/amd64")].config) == {"architecture": "amd64"}
    assert resolved_to_json(back) == text


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


class _FakeWorkerPool:
    """``LazyPool``-like: ``get().acquire(p)`` leases a worker whose gateway resolves configs."""

    def __init__(self, fail: Any = None) -> None:
        self.asked: List[Any] = []
        self.fail = fail
        outer = self

        class Gateway:
            def resolve_image_config(self, ref: str, platform: str) -> Any:
                outer.asked.append((ref, platform))
                return SimpleNamespace(digest=DIGEST, raw_config=b'{"architecture":"%s"}' % platform[6:].encode())

        class Client:
            def build(self, fn: Any) -> Any:
                if outer.fail is not None:
                    raise outer.fail
                return fn(Gateway())

        class Lease:
            name = "fake-worker"
            client = Client()

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        self._pool = SimpleNamespace(acquire=lambda platform: Lease())

    def get(self) -> Any:
        return self._pool


def test_an_unreachable_registry_falls_back_to_a_worker() -> None:
    ref = f"127.0.0.1:{_closed_port()}/busybox:latest"
    pool, logs = _FakeWorkerPool(), []
    got = resolve_bases([ref], ["linux/amd64", "linux/arm64"], pool, log=logs.append)  # type: ignore[arg-type]
    assert got[(ref, "linux/arm64")] == ResolvedBase(b'{"architecture":"arm64"}', DIGEST)
    assert pool.asked == [(ref, "linux/amd64"), (ref, "linux/arm64")]
    assert len(logs) == 2 and all("through a buildkitd worker" in line for line in logs)
    assert "cannot reach registry" in logs[0]


def test_an_unreachable_registry_and_no_worker_say_both() -> None:
    from llbkit.buildkit.errors import BuildKitError

    ref = f"127.0.0.1:{_closed_port()}/busybox:latest"
    with pytest.raises(BaseResolveError, match="cannot reach registry 127.0.0.1"):
        resolve_bases([ref], ["linux/amd64"], None)
    with pytest.raises(BaseResolveError) as e:
        resolve_bases([ref], ["linux/amd64"], _FakeWorkerPool(fail=BuildKitError("no route")))  # type: ignore[arg-type]
    assert "cannot reach registry" in str(e.value) and "fake-worker failed too: no route" in str(e.value)
