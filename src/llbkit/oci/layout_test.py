from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from llbkit.testutil.oci_images import LayoutBuilder, two_platform_layout
from llbkit.atomic import atomic_output, write_bytes_atomic
from llbkit.oci.errors import BlobVerificationError, LayoutError, OCIError
from llbkit.oci.index import assemble, split, write_oci_tar
from llbkit.oci.layout import OCILayout, read_verified
from llbkit.oci.types import Descriptor


def test_descriptor_key_order_is_go_struct_order():
    from llbkit.platforms import Platform

    d = Descriptor("m", "sha256:" + "0" * 64, 3, annotations={"b": "1", "a": "2"},
                   platform=Platform("linux", "arm64", "v8"))
    assert list(d.to_dict()) == ["mediaType", "digest", "size", "annotations", "platform"]
    assert list(d.to_dict()["annotations"]) == ["a", "b"]
    assert list(d.to_dict()["platform"]) == ["architecture", "os", "variant"]


def test_reads_directory_layout(tmp_path):
    with OCILayout(two_platform_layout(tmp_path / "l")) as layout:
        images = split(layout)
    assert [str(i.platform) for i in images] == ["linux/amd64", "linux/arm64/v8"]
    assert images[0].layers[0] == images[1].layers[0]


def test_tar_round_trip_and_deterministic_bytes(tmp_path):
    with OCILayout(two_platform_layout(tmp_path / "l")) as layout:
        assembled = assemble(split(layout))
        write_oci_tar(assembled, tmp_path / "a.tar", ref_names=["latest"])
        write_oci_tar(assembled, tmp_path / "b.tar", ref_names=["latest"])
    a, b = (tmp_path / "a.tar").read_bytes(), (tmp_path / "b.tar").read_bytes()
    assert a == b
    with tarfile.open(tmp_path / "a.tar") as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["blobs", "blobs/sha256"] or names[:2] == ["blobs/", "blobs/sha256/"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    # index, manifests, configs, layers (one shared)
    assert len([n for n in names if n.startswith("blobs/sha256/")]) == 1 + 2 + 2 + 3
    with OCILayout(tmp_path / "a.tar") as back:
        assert back.manifests[0].digest == assembled.descriptor.digest
        assert back.manifests[0].annotations["org.opencontainers.image.ref.name"] == "latest"
        again = assemble(split(back))
    assert again.index_bytes == assembled.index_bytes


def test_corrupt_blob_is_a_clear_error(tmp_path):
    root = two_platform_layout(tmp_path / "l")
    with OCILayout(root) as layout:
        images = split(layout)
    victim = root / images[1].layers[1].blob_path
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with OCILayout(root) as layout:
        assembled = assemble(split(layout))
        with pytest.raises(BlobVerificationError) as e:
            write_oci_tar(assembled, tmp_path / "out.tar")
    msg = str(e.value)
    assert images[1].layers[1].digest in msg and str(root) in msg and "hashes to" in msg
    assert not (tmp_path / "out.tar").exists()
    assert os.listdir(tmp_path) == ["l"]  # no temp file left behind


def test_truncated_blob_and_missing_blob(tmp_path):
    root = two_platform_layout(tmp_path / "l")
    with OCILayout(root) as layout:
        image = split(layout)[0]
    (root / image.layers[1].blob_path).write_bytes(b"short")
    with OCILayout(root) as layout, pytest.raises(BlobVerificationError, match="5 bytes"):
        with layout.open_blob(image.layers[1]) as r:
            r.read()
    (root / image.config.blob_path).unlink()
    with OCILayout(root) as layout, pytest.raises(LayoutError, match="has no blobs/sha256"):
        read_verified(layout, image.config)


def test_not_a_layout(tmp_path):
    with pytest.raises(LayoutError, match="has no oci-layout"):
        OCILayout(tmp_path)
    with pytest.raises(LayoutError, match="does not exist"):
        OCILayout(tmp_path / "nope")


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    write_bytes_atomic(target, b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_failure_mid_tar_write_leaves_no_target(tmp_path):
    root = two_platform_layout(tmp_path / "l")

    class Boom(Exception):
        pass

    with OCILayout(root) as layout:
        assembled = assemble(split(layout))
        orig = layout.open_blob
        calls = []

        def flaky(desc):
            calls.append(desc)
            if len(calls) == 3:
                raise Boom()
            return orig(desc)

        layout.open_blob = flaky  # type: ignore[method-assign]
        with pytest.raises(Boom):
            write_oci_tar(assembled, tmp_path / "out.tar")
    assert sorted(os.listdir(tmp_path)) == ["l"]


def test_errors_are_oci_errors():
    assert issubclass(BlobVerificationError, OCIError)


def test_reads_tar_with_dot_slash_names_and_verifies(tmp_path):
    root = two_platform_layout(tmp_path / "l")
    with OCILayout(root) as layout:
        image = split(layout)[0]
    victim = root / image.config.blob_path
    victim.write_bytes(victim.read_bytes() + b" ")
    with tarfile.open(tmp_path / "l.tar", "w") as tf:
        tf.add(root, arcname=".")
    with OCILayout(tmp_path / "l.tar") as layout:
        assert layout.has_blob(image.layers[0].digest)
        with pytest.raises(BlobVerificationError, match="more than the declared"):
            read_verified(layout, image.config)
