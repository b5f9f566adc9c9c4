from __future__ import annotations

import json
import os
import tarfile

import pytest

from llbkit.testutil.oci_images import two_platform_layout
from llbkit.oci.docker_archive import write_docker_archive
from llbkit.oci.errors import ArchiveError
from llbkit.oci.index import split
from llbkit.oci.layout import OCILayout


def test_docker_archive_structure(tmp_path):
    with OCILayout(two_platform_layout(tmp_path / "l")) as layout:
        image = split(layout)[1]
        write_docker_archive(image, tmp_path / "img.tar", ["acme/app:1.0", "acme/app:latest"])
        write_docker_archive(image, tmp_path / "again.tar", ["acme/app:1.0", "acme/app:latest"])
    assert (tmp_path / "img.tar").read_bytes() == (tmp_path / "again.tar").read_bytes()
    with tarfile.open(tmp_path / "img.tar") as tf:
        names = tf.getnames()
        manifest = json.loads(tf.extractfile("manifest.json").read())
        index = json.loads(tf.extractfile("index.json").read())
        assert names == sorted(names)
        assert manifest == [{
            "Config": image.config.blob_path,
            "RepoTags": ["acme/app:1.0", "acme/app:latest"],
            "Layers": [d.blob_path for d in image.layers],
        }]
        for path in [manifest[0]["Config"], *manifest[0]["Layers"], image.manifest.blob_path]:
            assert path in names
        assert [m["digest"] for m in index["manifests"]] == [image.manifest.digest] * 2
        assert index["manifests"][0]["annotations"] == {
            "io.containerd.image.name": "acme/app:1.0",
            "org.opencontainers.image.ref.name": "1.0"}
        assert "oci-layout" in names


def test_bad_tag_is_rejected_before_writing(tmp_path):
    with OCILayout(two_platform_layout(tmp_path / "l")) as layout:
        image = split(layout)[0]
        with pytest.raises(ArchiveError, match="NAME:TAG"):
            write_docker_archive(image, tmp_path / "img.tar", ["acme/app"])
    assert os.listdir(tmp_path) == ["l"]
