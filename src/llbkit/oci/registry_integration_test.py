"""Push assembled images to the fixture registries and check them with skopeo."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from llbkit.oci.auth import Credentials
from llbkit.oci.errors import RegistryAuthError
from llbkit.oci.index import assemble, split, write_oci_tar
from llbkit.oci.layout import OCILayout
from llbkit.oci.pushed_blobs import PushedBlobs
from llbkit.oci.registry import RegistryClient, push_layout
from llbkit.testutil import skopeo


def _busybox_tar(registry, tmp_path):
    """Split the fixture's busybox index and re-assemble amd64 + arm64 into an OCI tar."""
    with OCILayout(registry.busybox.layout) as layout:
        images = {i.platform.architecture: i for i in split(layout)}
        assembled = assemble([images["amd64"], images["arm64"]])
        write_oci_tar(assembled, tmp_path / "busybox.oci.tar", ref_names=["latest"])
    return assembled, tmp_path / "busybox.oci.tar"


def _check_pushed(raw: bytes, assembled, busybox) -> None:
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == assembled.descriptor.digest
    doc = json.loads(raw)
    got = [(m["platform"]["os"], m["platform"]["architecture"], m["digest"])
           for m in doc["manifests"]]
    assert got == [("linux", "amd64", busybox.manifests["linux/amd64"]),
                   ("linux", "arm64", busybox.manifests["linux/arm64"])]
    assert doc["manifests"][1]["platform"].get("variant") == "v8"


def test_push_two_platform_index_then_repush_skips_blobs(registry, tmp_path):
    assembled, tar = _busybox_tar(registry, tmp_path)
    client = RegistryClient(registry.host)
    result = push_layout(tar, f"{registry.host}/oci-test/multi:v1", tags=["extra"], client=client)
    assert result.digest == assembled.descriptor.digest
    assert len(result.blobs_uploaded) == 4 and result.tags == ["v1", "extra"]
    for ref in (f"oci-test/multi:v1", f"oci-test/multi:extra",
                f"oci-test/multi@{assembled.descriptor.digest}"):
        _check_pushed(skopeo.inspect_raw(f"{registry.host}/{ref}"), assembled, registry.busybox)
    data, media_type, digest = client.get_manifest("oci-test/multi", "v1")
    assert digest == assembled.descriptor.digest and data == assembled.index_bytes
    assert media_type == "application/vnd.oci.image.index.v1+json"

    again = RegistryClient(registry.host)
    second = push_layout(tar, f"{registry.host}/oci-test/multi:v1", client=again)
    assert second.blobs_uploaded == [] and len(second.blobs_skipped) == 4
    methods = [(m, p.split("/")[-2]) for m, p, _ in again.requests]
    assert ("POST", "uploads") not in methods
    assert [m for m, kind in methods if kind == "blobs"] == ["HEAD"] * 4
    # manifests exist: only HEADs for them; the one tag is PUT again
    assert [m for m, kind in methods if kind == "manifests"] == ["HEAD"] * 3 + ["PUT"]


def test_push_with_docker_config_credentials(registry_auth, tmp_path, monkeypatch):
    assembled, tar = _busybox_tar(registry_auth, tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(registry_auth.docker_config(tmp_path / "docker")))
    dest = f"{registry_auth.host}/oci-test/auth:v1"
    push_layout(tar, dest, client=RegistryClient(registry_auth.host, env=dict(os.environ)))
    raw = skopeo.inspect_raw(dest, creds=registry_auth.auth)
    _check_pushed(raw, assembled, registry_auth.busybox)


def test_auth_errors_name_what_was_tried(registry_auth, tmp_path, monkeypatch):
    _, tar = _busybox_tar(registry_auth, tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    dest = f"{registry_auth.host}/oci-test/denied:v1"
    with pytest.raises(RegistryAuthError) as e:
        push_layout(tar, dest)
    assert "no credentials" in str(e.value) and "docker login" in str(e.value)
    bad = RegistryClient(registry_auth.host,
                         credentials=Credentials("llbkit", "wrong", source="the test"))
    with pytest.raises(RegistryAuthError) as e:
        push_layout(tar, dest, client=bad)
    assert "user 'llbkit' from the test" in str(e.value) and "wrong" not in str(e.value)


def test_a_second_repository_mounts_the_blobs_a_first_one_holds(registry, tmp_path):
    """Two images on one base in two repositories: the second push links the shared blobs from the
    first repository (a cross-repository mount) instead of uploading them again."""
    assembled, tar = _busybox_tar(registry, tmp_path)
    memory = PushedBlobs(tmp_path / "pushed")
    first = push_layout(tar, f"{registry.host}/mount-test/one:v1", client=RegistryClient(registry.host), memory=memory)
    assert len(first.blobs_uploaded) == 4 and first.blobs_mounted == {}
    client = RegistryClient(registry.host)
    second = push_layout(tar, f"{registry.host}/mount-test/two:v1", client=client, memory=memory)
    assert second.blobs_uploaded == []
    assert second.blobs_mounted == {d: "mount-test/one" for d in first.blobs_uploaded}
    assert not [p for m, p, _ in client.requests if m == "PUT" and "/blobs/uploads/" in p]
    _check_pushed(skopeo.inspect_raw(f"{registry.host}/mount-test/two:v1"), assembled, registry.busybox)
    # A memory naming a repository that lacks the blob costs a declined mount, then an upload.
    stale = PushedBlobs(tmp_path / "stale")
    for d in first.blobs_uploaded:
        stale.record(registry.host, d, "mount-test/nowhere")
    third = push_layout(tar, f"{registry.host}/mount-test/three:v1", client=RegistryClient(registry.host), memory=stale)
    assert len(third.blobs_uploaded) == 4 and third.blobs_mounted == {}
    assert stale.repositories(registry.host, first.blobs_uploaded[0]) == ["mount-test/three", "mount-test/nowhere"]
