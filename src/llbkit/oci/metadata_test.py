from __future__ import annotations

import json

from llbkit.testutil.oci_images import two_platform_layout
from llbkit.oci.index import assemble, split
from llbkit.oci.layout import OCILayout
from llbkit.oci.metadata import dumps, image_record, read_image_json, write_image_json


def test_image_record(tmp_path):
    with OCILayout(two_platform_layout(tmp_path / "l")) as layout:
        assembled = assemble(split(layout))
    rec = image_record(assembled, tags=["r/app:1"], workers={"linux/arm64/v8": "tcp://arm:1234"})
    assert rec["index"]["digest"] == assembled.descriptor.digest
    assert [p["platform"] for p in rec["platforms"]] == ["linux/amd64", "linux/arm64/v8"]
    assert [p["worker"] for p in rec["platforms"]] == [None, "tcp://arm:1234"]
    amd = assembled.images[0]
    assert rec["platforms"][0]["manifest"]["digest"] == amd.manifest.digest
    assert rec["platforms"][0]["config"]["digest"] == amd.config.digest
    assert rec["platforms"][0]["size"] == amd.size
    write_image_json(tmp_path / "app.image.json", rec)
    data = (tmp_path / "app.image.json").read_bytes()
    assert data == dumps(json.loads(data)) and data.endswith(b"}\n")
    assert read_image_json(tmp_path / "app.image.json") == rec
