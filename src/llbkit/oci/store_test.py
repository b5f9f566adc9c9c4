from __future__ import annotations

import hashlib
import json

import pytest

from llbkit.oci.store import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OCIStore,
    Unavailable,
    index_get,
    index_put,
    reference_name,
)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_write_commit_read(tmp_path):
    store = OCIStore(str(tmp_path))
    data = b"hello layout" * 1000
    w = store.open_writer("ref-1", total=len(data), expected=_digest(data))
    w.write(data[:5000])
    w.write(data[5000:])
    assert store.status("ref-1").offset == len(data)
    assert store.commit(w) == _digest(data)
    assert (tmp_path / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).read_bytes() == data
    assert b"".join(d for _, d in store.read(_digest(data), offset=3, chunk=1000)) == data[3:]
    assert store.info(_digest(data)).size == len(data)
    with pytest.raises(NotFound):
        store.status("ref-1")
    with pytest.raises(AlreadyExists):  # buildkitd then skips the blob
        store.open_writer("ref-2", expected=_digest(data))
    store.close()
    assert not (tmp_path / "ingest").exists()


def test_bad_commits_leave_nothing(tmp_path):
    store = OCIStore(str(tmp_path))
    w = store.open_writer("r", total=10)
    w.write(b"short")
    with pytest.raises(FailedPrecondition, match="5 bytes written, 10 expected"):
        store.commit(w)
    w = store.open_writer("r", expected=_digest(b"other"))
    w.write(b"data")
    with pytest.raises(FailedPrecondition, match="unexpected digest"):
        store.commit(w)
    assert list(store.walk()) == []
    with pytest.raises(InvalidArgument):
        store.info("md5:abc")


def test_a_ref_is_locked_while_written(tmp_path):
    store = OCIStore(str(tmp_path))
    w = store.open_writer("r")
    with pytest.raises(Unavailable):
        store.open_writer("r")
    w.write(b"abc")
    store.release(w)
    assert store.open_writer("r").offset == 3  # resumed
    store.abort("r")
    with pytest.raises(NotFound):
        store.abort("r")


def test_reference_name_like_containerd():
    assert reference_name("docker.io/library/foo:1") == "1"
    assert reference_name("localhost:5000/a/b:tag") == "tag"
    assert reference_name("example.com/x@sha256:abc") == "@sha256:abc"
    assert reference_name("example.com/x") == ""


def test_index_put_replaces_same_name_and_keeps_others(tmp_path):
    a = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64, "size": 1}
    b = dict(a, digest="sha256:" + "b" * 64)
    index_put(str(tmp_path), a, tags=["latest"])
    index_put(str(tmp_path), a, names=["example.com/x:1"])
    index_put(str(tmp_path), b, tags=["latest"])
    idx = json.loads((tmp_path / "index.json").read_text())
    assert idx["schemaVersion"] == 2 and idx["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["digest"][7] for m in idx["manifests"]] == ["a", "b"]
    assert index_get(str(tmp_path), "latest")["digest"] == b["digest"]
    assert index_get(str(tmp_path), "example.com/x:1")["annotations"]["org.opencontainers.image.ref.name"] == "1"
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "oci-layout"]  # no temp files


def test_unreadable_index_is_a_clear_error(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(Exception, match="index.json is not JSON.*fix or remove it"):
        index_get(str(tmp_path), "latest")
