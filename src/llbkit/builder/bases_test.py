"""Choosing a platform's manifest in an image index (no registry)."""

from __future__ import annotations

import pytest

from llbkit.builder.bases import BaseResolveError, select_platform_manifest

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
