from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
from pathlib import Path

import pytest

from llbkit.testutil.busybox_image import (
    APPLETS,
    build_layout,
    busybox_image,
    layer_tar,
    load_layout,
)
from llbkit.testutil.errors import FixtureError


def _tar_xz(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
    return lzma.compress(buf.getvalue())


def _ar(members: dict) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def fake_deb(path: Path, arch: str, binary: bytes, binary_path: str = "./bin/busybox") -> Path:
    control = f"Package: busybox-static\nVersion: 1:0.0-test\nArchitecture: {arch}\n".encode()
    path.write_bytes(_ar({
        "debian-binary": b"2.0\n",
        "control.tar.xz": _tar_xz({"./control": control}),
        "data.tar.xz": _tar_xz({binary_path: binary, "./usr/share/doc/x": b"doc"}),
    }))
    return path


@pytest.fixture
def debs(tmp_path: Path) -> dict:
    return {
        "amd64": fake_deb(tmp_path / "amd64.deb", "amd64", b"\x7fELF fake amd64 busybox"),
        "arm64": fake_deb(tmp_path / "arm64.deb", "arm64", b"\x7fELF fake arm64 busybox!"),
    }


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def test_layer_is_byte_stable_across_python_versions() -> None:
    # Golden value: the same on every Python (tarfile output is pinned: ustar, fixed fields).
    digest = hashlib.sha256(layer_tar(b"busybox")).hexdigest()
    assert digest == GOLDEN_LAYER_SHA256


def test_layer_holds_busybox_and_applet_symlinks_owned_by_root_at_epoch() -> None:
    with tarfile.open(fileobj=io.BytesIO(layer_tar(b"BB")), mode="r:") as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    for applet in ("sh", "echo", "cat", "ls", "uname", "env", "pwd", "id", "wget", "sleep",
                   "mkdir", "test", "stat"):
        assert applet in APPLETS
        assert members[f"bin/{applet}"].issym() and members[f"bin/{applet}"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members.values())
    assert list(members) == sorted(members)


def test_layout_is_an_index_of_two_platforms_and_deterministic(tmp_path: Path, debs: dict) -> None:
    a = build_layout(debs, tmp_path / "a")
    b = build_layout(debs, tmp_path / "b")
    assert a.index_digest == b.index_digest and a.manifests == b.manifests
    assert a.version == "1:0.0-test"
    outer = json.loads((a.layout / "index.json").read_text())
    assert outer["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    index = json.loads(_blob(a.layout, a.index_digest))
    assert [m["platform"] for m in index["manifests"]] == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]
    assert list(a.manifests) == ["linux/amd64", "linux/arm64"]
    manifest = json.loads(_blob(a.layout, a.manifests["linux/arm64"]))
    config = json.loads(_blob(a.layout, manifest["config"]["digest"]))
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
    assert config["config"]["Env"][0].startswith("PATH=") and "/bin" in config["config"]["Env"][0]
    layer = _blob(a.layout, manifest["layers"][0]["digest"])
    raw = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        binary = tf.extractfile("bin/busybox")
        assert binary is not None and binary.read() == b"\x7fELF fake arm64 busybox!"
    assert layer[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_busybox_under_usr_bin_is_found_too(tmp_path: Path) -> None:
    debs = {"amd64": fake_deb(tmp_path / "a.deb", "amd64", b"usrmerged", "./usr/bin/busybox")}
    image = build_layout(debs, tmp_path / "layout")
    assert list(image.manifests) == ["linux/amd64"]


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    debs = {"arm64": fake_deb(tmp_path / "a.deb", "amd64", b"x")}
    with pytest.raises(FixtureError, match="is a amd64 package, expected arm64"):
        build_layout(debs, tmp_path / "layout")


def test_cached_layout_is_reused_and_rebuilt_when_corrupt(tmp_path: Path, debs: dict) -> None:
    cache = tmp_path / "cache"
    first = busybox_image(debs, cache)
    assert first.layout.parent == cache and load_layout(first.layout) == first
    stamp = os.stat(first.layout / "index.json").st_mtime_ns
    assert busybox_image(debs, cache) == first
    assert os.stat(first.layout / "index.json").st_mtime_ns == stamp
    blob = first.layout / "blobs" / "sha256" / first.index_digest.split(":")[1]
    blob.write_bytes(b"corrupt")
    assert load_layout(first.layout) is None
    assert busybox_image(debs, cache) == first  # rebuilt, same digests
    assert [p.name for p in cache.iterdir()] == [first.layout.name]  # no temp dirs left


GOLDEN_LAYER_SHA256 = "37aa925b938720e1fd42a98b4e345a348b61d44ef553870f16836be2a2215ed2"
