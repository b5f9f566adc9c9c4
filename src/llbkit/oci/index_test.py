from __future__ import annotations

import json

import pytest

from llbkit.platforms import Platform
from llbkit.testutil.oci_images import LayoutBuilder, two_platform_layout
from llbkit.oci.errors import LayoutError
from llbkit.oci.index import assemble, split
from llbkit.oci.layout import OCILayout
from llbkit.oci.types import MT_OCI_INDEX


def _images(tmp_path, name="l", nested=True):
    with OCILayout(two_platform_layout(tmp_path / name, nested=nested)) as layout:
        return split(layout)


def test_index_follows_input_order_not_anything_else(tmp_path):
    amd, arm = _images(tmp_path)
    forward = assemble([amd, arm])
    backward = assemble([arm, amd])
    plats = lambda a: [m["platform"]["architecture"]
                       for m in json.loads(a.index_bytes)["manifests"]]
    assert plats(forward) == ["amd64", "arm64"]
    assert plats(backward) == ["arm64", "amd64"]
    assert forward.descriptor.digest != backward.descriptor.digest
    assert [str(i.platform) for i in forward.images] == ["linux/amd64", "linux/arm64/v8"]


def test_same_inputs_same_bytes_from_different_layouts(tmp_path):
    a = assemble(_images(tmp_path, "a"))
    b = assemble(_images(tmp_path, "b", nested=False))
    assert a.index_bytes == b.index_bytes
    # mixed sources: each platform from its own layout (as from two workers)
    mixed = assemble([_images(tmp_path, "c")[0], _images(tmp_path, "d")[1]])
    assert mixed.index_bytes == a.index_bytes


def test_index_shape_and_annotations(tmp_path):
    amd, arm = _images(tmp_path)
    amd = amd.__class__(**{**amd.__dict__, "annotations": {"z": "1", "a": "<2>"}})
    out = assemble([amd, arm], annotations={"org.opencontainers.image.source": "x"})
    text = out.index_bytes.decode()
    assert text.startswith('{\n  "schemaVersion": 2,\n  "mediaType": "%s",\n' % MT_OCI_INDEX)
    doc = json.loads(text)
    assert list(doc) == ["schemaVersion", "mediaType", "manifests", "annotations"]
    first = doc["manifests"][0]
    assert list(first) == ["mediaType", "digest", "size", "annotations", "platform"]
    assert list(first["annotations"]) == ["a", "z"] and "\\u003c2\\u003e" in text
    assert doc["manifests"][1]["platform"] == {"architecture": "arm64", "os": "linux",
                                               "variant": "v8"}
    assert out.descriptor.size == len(out.index_bytes)


def test_shared_blobs_are_kept_once(tmp_path):
    amd, arm = _images(tmp_path)
    entries = assemble([amd, arm]).blob_entries()
    digests = [d.digest for d, _ in entries]
    assert len(digests) == len(set(digests)) == 8
    assert amd.layers[0].digest in digests


def test_duplicate_platform_and_empty_input_are_errors(tmp_path):
    amd, _ = _images(tmp_path)
    with pytest.raises(LayoutError, match="linux/amd64 given twice"):
        assemble([amd, amd])
    with pytest.raises(LayoutError, match="no images"):
        assemble([])


def test_split_skips_attestations_and_reads_platform_from_config(tmp_path):
    b = LayoutBuilder(tmp_path / "l")
    img = b.image(Platform("linux", "arm64", "v8"), [{"f": b"1"}])
    att = b.image("linux/amd64", [{"att": b"{}"}])
    att = att.replace(platform=Platform("unknown", "unknown"),
                      annotations={"vnd.docker.reference.type": "attestation-manifest"})
    root = b.finish([img.replace(platform=None), att])
    with OCILayout(root) as layout:
        images = split(layout)
    assert [str(i.platform) for i in images] == ["linux/arm64/v8"]


def test_image_without_layers_as_buildkit_writes_it(tmp_path):
    # `scratch` with config only: BuildKit writes `"layers": null` (Go's nil slice).
    b = LayoutBuilder(tmp_path / "l")
    cfg = b.put(json.dumps({"architecture": "amd64", "os": "linux",
                            "rootfs": {"type": "layers", "diff_ids": None}}).encode(),
                "application/vnd.oci.image.config.v1+json")
    manifest = b.put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                 "config": cfg.to_dict(), "layers": None}).encode(),
                     "application/vnd.oci.image.manifest.v1+json")
    with OCILayout(b.finish([manifest])) as layout:
        (image,) = split(layout)
    assert image.layers == () and str(image.platform) == "linux/amd64"
    # Not an image manifest at all (no config) is still refused.
    bad = LayoutBuilder(tmp_path / "bad")
    m = bad.put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "layers": []}).encode(), "application/vnd.oci.image.manifest.v1+json")
    with OCILayout(bad.finish([m])) as layout, pytest.raises(LayoutError, match="no config"):
        split(layout)
