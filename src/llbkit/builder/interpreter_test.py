from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Dict

import pytest

from llbkit import llb
from llbkit.builder.interpreter import OUTPUT, InspectionError, inspection_spec, read_complete_platform
from llbkit.image import plan, registry_bases

BASE = "127.0.0.1:5050/llbkit/python3:3.11"
CONFIG = {"architecture": "arm64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"]},
          "rootfs": {"type": "layers", "diff_ids": []}}
PLATFORM = {"path": "/usr/bin/python3", "compatible_tags": ["cp311-cp311-manylinux_2_36_aarch64"],
            "marker_environment": {"platform_machine": "aarch64", "python_full_version": "3.11.2"}}


def test_the_inspection_runs_pex_with_the_bases_python3_and_keeps_only_its_json() -> None:
    spec = inspection_spec(BASE, "linux/arm64", tool_path="pex", name="python3 of base")
    assert registry_bases(spec) == [BASE]
    (lowered,) = plan(spec, base_configs={BASE: CONFIG}, context_digest="sha256:" + "0" * 64)
    d = llb.load(lowered.definition.to_bytes())
    (run,) = [op for op in d.ops if op.kind == "exec"]
    meta = run.body["meta"]
    assert meta["args"][:5] == ["python3", "/llbkit-inspect/pex", "interpreter", "inspect", "--markers"]
    assert "--tags" in meta["args"] and "PEX_SCRIPT=pex3" in meta["env"]
    assert run.body.get("network") == 2  # pb.NetMode.NONE: it only describes
    assert llb.format_platform(run.platform) == "linux/arm64"
    # the image is scratch plus the JSON: nothing of the base is exported
    assert lowered.base_config is None
    # the same base and platform give the same definition: the cache key of the inspection
    again = plan(inspection_spec(BASE, "linux/arm64", tool_path="pex", name="python3 of base"),
                 base_configs={BASE: CONFIG}, context_digest="sha256:" + "0" * 64)[0]
    assert again.definition.to_bytes() == lowered.definition.to_bytes()


def _oci_tar(files: Dict[str, bytes], *, nested: bool = True, gz: bool = True) -> bytes:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    layer_bytes = gzip.compress(layer.getvalue()) if gz else layer.getvalue()
    blobs: Dict[str, bytes] = {}

    def blob(data: bytes) -> Dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    manifest = json.dumps({"layers": [blob(layer_bytes)]}).encode()
    top = {"manifests": [blob(manifest)]}
    if nested:
        top = {"manifests": [blob(json.dumps(top).encode())]}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in [("index.json", json.dumps(top).encode())] + [
                (f"blobs/sha256/{d.split(':')[1]}", b) for d, b in blobs.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("nested, gz", [(True, True), (False, False)])
def test_reads_the_complete_platform_out_of_the_oci_archive(nested: bool, gz: bool) -> None:
    tar = _oci_tar({OUTPUT: json.dumps(PLATFORM).encode()}, nested=nested, gz=gz)
    assert read_complete_platform(tar) == PLATFORM


@pytest.mark.parametrize("tar, problem", [
    (b"not a tar", "not readable"),
    (_oci_tar({"other.json": b"{}"}), f"no {OUTPUT}"),
    (_oci_tar({OUTPUT: b"{\"path\": \"/usr/bin/python3\"}"}), "no marker environment"),
])
def test_an_unusable_inspection_is_an_error(tar: bytes, problem: str) -> None:
    with pytest.raises(InspectionError) as e:
        read_complete_platform(tar)
    assert problem in str(e.value)
