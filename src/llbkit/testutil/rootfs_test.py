import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from llbkit.testutil.errors import FixtureError
from llbkit.testutil.rootfs import apply_layer, resolve_in_root


def _layer(*entries, gz=False) -> io.BytesIO:
    """entries: (name, kind, payload) with kind file/dir/symlink/hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = payload.encode()
                ti.size, ti.mode = len(data), 0o644
            elif kind == "exec":
                data = payload.encode()
                ti.size, ti.mode = len(data), 0o755
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, payload
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return io.BytesIO(gzip.compress(raw) if gz else raw)


def _tree(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_text()
    return out


def test_layers_stack_and_later_entries_replace_earlier(tmp_path):
    apply_layer(_layer(("etc", "dir", None), ("etc/a", "file", "1"), ("bin/sh", "exec", "sh")), tmp_path)
    apply_layer(_layer(("etc/a", "file", "2"), ("etc/b", "symlink", "a")), tmp_path)
    assert _tree(tmp_path) == {"etc": "dir", "bin": "dir", "etc/a": "2", "etc/b": "-> a", "bin/sh": "sh"}
    assert os.stat(tmp_path / "bin/sh").st_mode & 0o777 == 0o755


def test_gzip_layers_are_read(tmp_path):
    apply_layer(_layer(("x", "file", "zipped"), gz=True), tmp_path)
    assert (tmp_path / "x").read_text() == "zipped"


def test_whiteout_removes_a_lower_file_or_dir(tmp_path):
    apply_layer(_layer(("d/keep", "file", "k"), ("d/gone", "file", "g"), ("e/f", "file", "f")), tmp_path)
    apply_layer(_layer(("d/.wh.gone", "file", ""), (".wh.e", "file", "")), tmp_path)
    assert _tree(tmp_path) == {"d": "dir", "d/keep": "k"}


def test_opaque_whiteout_hides_lower_layers_only(tmp_path):
    apply_layer(_layer(("d/old1", "file", "1"), ("d/sub/old2", "file", "2")), tmp_path)
    # The new file comes before the opaque marker in the tar: it must survive.
    apply_layer(_layer(("d/new", "file", "n"), ("d/.wh..wh..opq", "file", "")), tmp_path)
    assert _tree(tmp_path) == {"d": "dir", "d/new": "n"}


def test_a_file_replaces_a_directory_and_a_directory_a_file(tmp_path):
    apply_layer(_layer(("a/x", "file", "x"), ("b", "file", "b")), tmp_path)
    apply_layer(_layer(("a", "file", "now a file"), ("b/y", "file", "y")), tmp_path)
    assert _tree(tmp_path) == {"a": "now a file", "b": "dir", "b/y": "y"}


def test_absolute_symlinks_resolve_inside_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    # An absolute symlink to a host dir: a later entry through it must land inside the root.
    apply_layer(_layer(("usr/lib", "dir", None), ("lib", "symlink", str(outside))), root)
    apply_layer(_layer(("lib/file", "file", "in root")), root)
    assert list(outside.iterdir()) == []
    assert (root / str(outside).lstrip("/") / "file").read_text() == "in root"
    assert resolve_in_root(root, "lib/file") == root / str(outside).lstrip("/") / "file"


def test_usrmerge_style_symlinked_dirs_are_followed(tmp_path):
    apply_layer(_layer(("usr/bin", "dir", None), ("bin", "symlink", "usr/bin")), tmp_path)
    apply_layer(_layer(("bin/tool", "file", "t")), tmp_path)
    assert (tmp_path / "usr/bin/tool").read_text() == "t"


def test_hard_links_share_content(tmp_path):
    apply_layer(_layer(("a", "file", "same"), ("b", "hardlink", "a")), tmp_path)
    assert os.stat(tmp_path / "a").st_ino == os.stat(tmp_path / "b").st_ino


def test_dotdot_entries_are_refused(tmp_path):
    with pytest.raises(FixtureError, match="climbs out"):
        apply_layer(_layer(("../evil", "file", "x")), tmp_path / "root")


def test_dotdot_in_symlinks_stops_at_the_root(tmp_path):
    assert resolve_in_root(tmp_path, "../../etc/passwd") == tmp_path / "etc/passwd"
