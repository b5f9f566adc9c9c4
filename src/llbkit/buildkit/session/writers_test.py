from __future__ import annotations

import os

import pytest

from llbkit._proto import fsutil_types_pb2 as fpb
from llbkit.buildkit.session.stat import MODE_DIR
from llbkit.buildkit.session.writers import AtomicDir, AtomicFile


def test_atomic_file_commit_replaces(tmp_path):
    dest = tmp_path / "sub" / "out.tar"
    with AtomicFile(str(dest)) as w:
        w.write(b"one")
        w.write(b"two")
        assert not dest.exists()  # nothing visible before commit
    assert dest.read_bytes() == b"onetwo"
    with AtomicFile(str(dest)) as w:
        w.write(b"new")
    assert dest.read_bytes() == b"new"
    assert os.listdir(dest.parent) == ["out.tar"]


def test_atomic_file_abort_keeps_old_content(tmp_path):
    dest = tmp_path / "out.tar"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with AtomicFile(str(dest)) as w:
            w.write(b"partial")
            raise RuntimeError("daemon died")
    assert dest.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.tar"]


def _fill(d: AtomicDir, files):
    for path, data in files.items():
        if data is None:
            d.sink.entry(fpb.Stat(path=path, mode=MODE_DIR | 0o755))
        else:
            assert d.sink.entry(fpb.Stat(path=path, mode=0o644))
            d.sink.write(path, data)
            d.sink.close(path)
    d.sink.finish()


def test_atomic_dir_new_and_merge(tmp_path):
    dest = tmp_path / "out"
    d = AtomicDir(str(dest))
    _fill(d, {"a": None, "a/x": b"1", "b": b"2"})
    d.commit()
    assert (dest / "a/x").read_bytes() == b"1" and (dest / "b").read_bytes() == b"2"
    (dest / "mine").write_bytes(b"kept")
    d = AtomicDir(str(dest))
    _fill(d, {"a": None, "a/x": b"new", "b": None})  # b becomes a directory
    d.commit()
    assert (dest / "a/x").read_bytes() == b"new"
    assert (dest / "b").is_dir()
    assert (dest / "mine").read_bytes() == b"kept"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_atomic_dir_abort_leaves_nothing(tmp_path):
    d = AtomicDir(str(tmp_path / "out"))
    d.sink.entry(fpb.Stat(path="f", mode=0o644))
    d.sink.write("f", b"partial")
    d.abort()
    assert os.listdir(tmp_path) == []
