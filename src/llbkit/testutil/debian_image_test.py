import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, Optional

import pytest

from llbkit.testutil.debian_image import debian_image, merge_debs, tar_names
from llbkit.testutil.errors import FixtureError


def _tar_gz(files: Dict[str, Optional[bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o755
                tf.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def _deb(path: Path, files: Dict[str, Optional[bytes]]) -> Path:
    """A minimal .deb: an ar archive of debian-binary, control.tar.gz and data.tar.gz."""
    members = [("debian-binary", b"2.0\n"),
               ("control.tar.gz", _tar_gz({"./control": b"Package: x\n"})),
               ("data.tar.gz", _tar_gz(files))]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


@pytest.fixture
def debs(tmp_path: Path):
    a = _deb(tmp_path / "a.deb", {"./": None, "./usr/": None, "./usr/bin/": None,
                                  "./usr/bin/tool": b"tool", "./usr/share/doc/a/copyright": b"c"})
    b = _deb(tmp_path / "b.deb", {"./": None, "./usr/": None, "./usr/lib/": None,
                                  "./usr/lib/libx.so": b"lib"})
    return a, b


def test_merge_debs_unpacks_each_package_once_with_base_files(debs) -> None:
    layer = merge_debs(debs)
    assert tar_names(layer) == ["usr", "usr/bin", "usr/bin/tool", "usr/lib", "usr/lib/libx.so",
                                "etc", "root", "tmp", "etc/passwd", "etc/group"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        assert {m.mtime for m in tf.getmembers()} == {0}
        assert tf.getmember("tmp").mode == 0o1777
        assert tf.extractfile("usr/bin/tool").read() == b"tool"  # type: ignore[union-attr]
    assert merge_debs(debs) == layer  # deterministic


def test_two_packages_shipping_one_file_is_an_error(tmp_path: Path, debs) -> None:
    c = _deb(tmp_path / "c.deb", {"./usr/bin/tool": b"other"})
    with pytest.raises(FixtureError, match="usr/bin/tool is in both a.deb and c.deb"):
        merge_debs([debs[0], c])


def test_debian_image_writes_a_cached_two_platform_layout(tmp_path: Path, debs) -> None:
    config = {"Env": ["LANG=C.UTF-8"], "Cmd": ["tool"]}
    layout = debian_image("sample", {"arm64": list(debs), "amd64": list(debs)}, config,
                          cache=tmp_path / "cache")
    outer = json.loads((layout / "index.json").read_text())
    index_blob = outer["manifests"][0]["digest"].split(":")[1]
    index = json.loads((layout / "blobs/sha256" / index_blob).read_text())
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    assert outer["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    again = debian_image("sample", {"amd64": list(debs), "arm64": list(debs)}, config,
                         cache=tmp_path / "cache")
    assert again == layout and (layout / "index.json").read_text() == json.dumps(outer, sort_keys=True,
                                                                                separators=(",", ":"))


def test_unknown_architectures_are_named(tmp_path: Path, debs) -> None:
    with pytest.raises(FixtureError, match=r"unknown Debian architecture\(s\) \['s390x'\]"):
        debian_image("sample", {"s390x": list(debs)}, {}, cache=tmp_path)
