"""OCI layout bases without a daemon: the source op is Go's llb.OCILayout's, a layout tar is
unpacked into a content store with nothing but its own files, the platform must be in it, and a
job names the layouts it reads before anything is solved."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from llbkit.builder import ExportOptions, LazyPool, SolveJob, build_job
from llbkit.builder.build import MissingInputError
from llbkit.builder.oci_layouts import LayoutBase, LayoutBaseError, layout_base, layout_store, oci_layout_state
from llbkit.buildkit import WorkerConfig
from llbkit.image import ImageSpec, ImageSpecError, LayoutBase as SpecLayoutBase, RunStep, lower
from llbkit.image.errors import MissingBaseConfigError
from llbkit.oci.types import sha256_digest

D = "sha256:" + "ab" * 32


def _tar(path: Path, members: dict, links: dict = {}) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in links.items():
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            tf.addfile(ti)
    return path


def _image_tar(path: Path, arch: str = "amd64") -> Path:
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Env": ["A=1"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha256_digest(config), "size": len(config)},
                           "layers": []}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_digest(manifest),
         "size": len(manifest), "platform": {"architecture": arch, "os": "linux"}}]}).encode()
    blobs = {f"blobs/sha256/{sha256_digest(b)[7:]}": b for b in (config, manifest)}
    return _tar(path, {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index, **blobs})


def test_the_source_op_is_go_llb_oci_layout() -> None:
    # (llb.oci_layout's bytes are checked against Go's in llbkit/llb/golden_test.py)
    op = oci_layout_state("app-base", LayoutBase("linux/arm64", D, b"{}")).marshal().ops[0]
    assert op.body == {"identifier": "oci-layout://docker.io/library/app-base@" + D,
                       "attrs": {"oci.store": "app-base"}}
    assert op.platform is not None  # the platform is part of an image source, as in Go


def test_a_layout_base_gives_its_platform_digest_and_config(tmp_path: Path) -> None:
    tar = _image_tar(tmp_path / "image.tar")
    base = layout_base(tar, "linux/amd64")
    assert json.loads(base.config)["config"]["Env"] == ["A=1"]
    assert base.digest.startswith("sha256:")
    with pytest.raises(LayoutBaseError, match="has no linux/arm64 image"):
        layout_base(tar, "linux/arm64")
    with pytest.raises(LayoutBaseError, match="cannot be used as a base"):
        layout_base(tmp_path / "missing.tar", "linux/amd64")


def test_a_layout_store_holds_only_the_layouts_own_files(tmp_path: Path) -> None:
    tar = _image_tar(tmp_path / "image.tar")
    with tarfile.open(tar, "a") as tf:
        for name in ("../escape", "blobs/sha256/not-a-digest", "extra.txt"):
            ti = tarfile.TarInfo(name)
            tf.addfile(ti, io.BytesIO(b""))
        ti = tarfile.TarInfo("blobs/sha256/" + "cd" * 32)
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(ti)
    store = layout_store(tar, tmp_path / "store")
    files = sorted(str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert files == sorted(["oci-layout", "index.json"] + [m for m in tarfile.open(tar).getnames()
                                                             if m.startswith("blobs/sha256/") and len(m) == 77
                                                             and not m.endswith("cd" * 32)])
    assert not (tmp_path / "escape").exists()
    assert store.has(layout_base(tar, "linux/amd64").digest)
    with pytest.raises(LayoutBaseError, match="no index.json"):
        layout_store(_tar(tmp_path / "empty.tar", {"x": b""}), tmp_path / "store2")


def test_lowering_a_layout_base_needs_its_digest_and_config() -> None:
    spec = ImageSpec(name="//app:c", base=SpecLayoutBase("df-base"), steps=(RunStep("true"),))
    with pytest.raises(MissingBaseConfigError, match="oci-layout://df-base on linux/amd64"):
        lower(spec, "linux/amd64")
    with pytest.raises(ImageSpecError, match="its manifest digest is needed"):
        lower(spec, "linux/amd64", base_configs={("oci-layout://df-base", "linux/amd64"): {"config": {}}})
    with pytest.raises(ImageSpecError, match="invalid OCI layout store name"):
        lower(ImageSpec(name="//app:c", base=SpecLayoutBase("Bad Name")), "linux/amd64")


def test_a_job_reading_a_layout_it_was_not_given_fails_before_any_solve(tmp_path: Path) -> None:
    job = SolveJob("//app:child", (), ExportOptions(), oci_layouts=("df-base",))
    with LazyPool([WorkerConfig("unix:///nonexistent.sock")]) as workers:
        with pytest.raises(MissingInputError) as e:
            build_job(job, workers, tmp_path / "o" / "image.tar", tmp_path / "o" / "image.json")
    assert e.value.name == "df-base" and "--oci-layout NAME=TAR" in str(e.value)
    assert not (tmp_path / "o" / "image.tar").exists()
