"""The archives llbkit writes, read back by skopeo (an independent OCI implementation)."""

from __future__ import annotations

import json

from llbkit.oci.docker_archive import write_docker_archive
from llbkit.oci.index import assemble, split, write_oci_tar
from llbkit.oci.layout import OCILayout
from llbkit.testutil import skopeo


def test_skopeo_reads_oci_and_docker_archives(busybox_image, tmp_path):
    with OCILayout(busybox_image.layout) as layout:
        images = split(layout)
        assembled = assemble(images)
        write_oci_tar(assembled, tmp_path / "bb.oci.tar", ref_names=["latest"])
        arm = assembled.image("linux/arm64")
        write_docker_archive(arm, tmp_path / "bb.docker.tar", ["llbkit/busybox:arm64"])
    raw = skopeo.skopeo("inspect", "--raw", f"oci-archive:{tmp_path / 'bb.oci.tar'}:latest",
                        text=False).stdout
    assert raw == assembled.index_bytes
    info = json.loads(skopeo.skopeo("inspect", "--override-arch", "arm64",
                                    f"oci-archive:{tmp_path / 'bb.oci.tar'}:latest").stdout)
    assert info["Architecture"] == "arm64"
    # by the tag in manifest.json's RepoTags: skopeo finds the image through it
    ref = f"docker-archive:{tmp_path / 'bb.docker.tar'}:llbkit/busybox:arm64"
    info = json.loads(skopeo.skopeo("inspect", ref).stdout)
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    assert len(info["Layers"]) == len(arm.layers)
