from __future__ import annotations

from pathlib import Path

import pytest

from llbkit.builder.cache import ImageCache, build_key, code_fingerprint

DEFS = [("linux/amd64", b"def-amd64", b"{}"), ("linux/arm64", b"def-arm64", b"{}")]


def test_key_is_content_only_and_order_sensitive() -> None:
    k = build_key(DEFS, "sha256:ctx", {"format": "oci"}, "solver-1")
    assert k == build_key(list(DEFS), "sha256:ctx", {"format": "oci"}, "solver-1")
    assert k.startswith("sha256:") and len(k) == 71
    assert k != build_key(DEFS[::-1], "sha256:ctx", {"format": "oci"}, "solver-1")  # index order matters
    assert k != build_key(DEFS, "sha256:ctx2", {"format": "oci"}, "solver-1")
    assert k != build_key(DEFS, "sha256:ctx", {"format": "docker"}, "solver-1")
    assert k != build_key(DEFS, "sha256:ctx", {"format": "oci"}, "solver-2")


def test_code_fingerprint_is_stable() -> None:
    assert code_fingerprint() == code_fingerprint()
    assert code_fingerprint().startswith("llbkit-")


def test_cache_put_get(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    key = build_key(DEFS, None, {}, "s")
    assert cache.get(key) is None
    src = tmp_path / "image.tar"
    src.write_bytes(b"tar")
    entry = cache.put(key, {"image.tar": src, "image.json": b"{}"})
    assert {n: p.read_bytes() for n, p in entry.items()} == {"image.json": b"{}", "image.tar": b"tar"}
    assert cache.get(key) == entry
    again = cache.put(key, {"image.tar": b"tar", "image.json": b"{}"})  # idempotent
    assert again == entry
    assert not [p for p in (tmp_path / "images").iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(ValueError):
        cache.get("md5:abc")

