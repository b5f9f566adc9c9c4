"""The one-pass layout tar: exports fed in pieces, blobs written as they arrive, one index."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Dict

import pytest

from llbkit.oci import assemble, open_layout, split, write_oci_tar
from llbkit.oci.errors import LayoutError
from llbkit.oci.onepass import ExportReceiver, OnePassLayoutTar
from llbkit.testutil.oci_images import LayoutBuilder


def export_tar(tmp: Path, platform: str, layer: Dict[str, bytes], *, pax: bool = False) -> bytes:
    """What BuildKit's oci exporter streams for one platform: the layout's files sorted by name
    (blobs/sha256/..., index.json, oci-layout), no directory entries."""
    root = tmp / f"src-{platform.replace('/', '-')}-{len(os.listdir(tmp))}"
    b = LayoutBuilder(root)
    b.finish([b.image(platform, [layer])])
    buf = io.BytesIO()
    fmt = tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                ti = tf.gettarinfo(str(p), p.relative_to(root).as_posix())
                if pax:
                    ti.pax_headers = {"comment": "x" * 600}  # a pax header before each member
                with open(p, "rb") as f:
                    tf.addfile(ti, f)
    return buf.getvalue()


def feed(r: ExportReceiver, data: bytes, piece: int) -> None:
    for i in range(0, len(data), piece):
        r.write(memoryview(data)[i:i + piece])


def members(path: Path) -> Dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: (tf.extractfile(m).read() if m.isfile() else b"") for m in tf.getmembers()}


@pytest.mark.parametrize("piece", [1, 511, 4096, 1 << 20])
def test_one_platform_matches_the_two_pass_writer(tmp_path: Path, piece: int) -> None:
    data = export_tar(tmp_path, "linux/amd64", {"app": b"hello" * 1000})
    out = tmp_path / "out.oci.tar"
    with OnePassLayoutTar(out, 1) as w:
        feed(w.receiver(0), data, piece)
        (images,) = w.images()
        assembled = assemble(images, {"org.example": "yes"})
        w.commit(assembled, ["1.0"])
    # the same layout as writing the index through a second tar, member for member
    (tmp_path / "src.tar").write_bytes(data)
    with open_layout(tmp_path / "src.tar") as src:
        ref = tmp_path / "ref.oci.tar"
        ref_assembled = assemble(split(src), {"org.example": "yes"})
        write_oci_tar(ref_assembled, ref, ["1.0"])
    assert ref_assembled.descriptor == assembled.descriptor
    assert members(out) == members(ref)
    with open_layout(out) as layout:  # and it reads back, verified
        (im,) = split(layout)
        assert str(im.platform) == "linux/amd64"
    assert out.stat().st_size % 10240 == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_pax_headers_are_read(tmp_path: Path) -> None:
    data = export_tar(tmp_path, "linux/amd64", {"a": b"x"}, pax=True)
    out = tmp_path / "out.tar"
    with OnePassLayoutTar(out, 1) as w:
        feed(w.receiver(0), data, 777)
        w.commit(assemble(w.images()[0]))
    with open_layout(out) as layout:
        assert len(split(layout)) == 1


def test_platforms_in_declared_order_and_shared_blobs_once(tmp_path: Path) -> None:
    same = {"shared": b"same in both"}
    amd = export_tar(tmp_path, "linux/amd64", same)
    arm = export_tar(tmp_path, "linux/arm64", same)
    out = tmp_path / "out.tar"
    with OnePassLayoutTar(out, 2) as w:
        feed(w.receiver(1), arm, 3000)  # the second platform finishes first
        feed(w.receiver(0), amd, 3000)
        found = w.images()
        assembled = assemble([found[0][0], found[1][0]])
        w.commit(assembled)
    names = [m for m in members(out)]
    assert len(names) == len(set(names))  # the shared layer once
    with open_layout(out) as layout:
        assert [str(i.platform) for i in split(layout)] == ["linux/amd64", "linux/arm64"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_reset_drops_an_earlier_attempt(tmp_path: Path) -> None:
    data = export_tar(tmp_path, "linux/amd64", {"a": b"y" * 5000})
    out = tmp_path / "out.tar"
    with OnePassLayoutTar(out, 1) as w:
        r = w.receiver(0)
        r.write(data[: len(data) // 2])  # the worker died mid-export
        r.reset()
        feed(r, data, 100_000)
        w.commit(assemble(w.images()[0]))
    with open_layout(out) as layout:
        assert len(split(layout)) == 1


def _offset(data: bytes, name: str) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getmember(name).offset


def test_a_cut_stream_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    data = export_tar(tmp_path, "linux/amd64", {"a": b"z"})
    out = tmp_path / "out.tar"
    for cut in (_offset(data, "index.json"), _offset(data, "oci-layout") + 512):
        with pytest.raises(LayoutError, match="ended early"):
            with OnePassLayoutTar(out, 1) as w:
                w.receiver(0).write(data[:cut])  # no index.json / no end of archive
                w.images()
        assert not out.exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_damaged_blob_is_an_error(tmp_path: Path) -> None:
    data = bytearray(export_tar(tmp_path, "linux/amd64", {"a": b"payload" * 100}))
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        blob = next(m for m in tf.getmembers() if m.name.startswith("blobs/") and m.size > 200)
    data[blob.offset_data + 10] ^= 0xFF
    out = tmp_path / "out.tar"
    with pytest.raises(LayoutError, match="hashes to"):
        with OnePassLayoutTar(out, 1) as w:
            feed(w.receiver(0), bytes(data), 4096)
    assert not out.exists()


def test_a_missing_blob_is_an_error(tmp_path: Path) -> None:
    data = export_tar(tmp_path, "linux/amd64", {"a": b"q"})
    (tmp_path / "src.tar").write_bytes(data)
    with open_layout(tmp_path / "src.tar") as layout:
        (im,) = split(layout)
    dropped = "blobs/sha256/" + im.layers[0].digest.split(":")[1]
    src = tarfile.open(fileobj=io.BytesIO(data))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for m in src.getmembers():
            if m.name != dropped:  # the manifest names a layer the stream never had
                tf.addfile(m, src.extractfile(m))
    with pytest.raises(LayoutError, match="not in the export"):
        with OnePassLayoutTar(tmp_path / "out.tar", 1) as w:
            feed(w.receiver(0), buf.getvalue(), 4096)
            w.images()


def test_nothing_is_created_before_an_export_starts(tmp_path: Path) -> None:
    w = OnePassLayoutTar(tmp_path / "out.tar", 2)  # a build killed during its RUN steps
    w.receiver(0).reset()
    assert list(tmp_path.iterdir()) == []
    w.abort()
