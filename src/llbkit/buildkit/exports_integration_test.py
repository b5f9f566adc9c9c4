"""File exports (oci, docker, tar, local) over the session, compared with buildctl's."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from llbkit import llb
from llbkit.buildkit import BuildResult, Client, Export


@pytest.fixture(scope="module")
def client(buildkitd_amd64):
    with Client(buildkitd_amd64.addr) as c:
        yield c


def _definition(busybox_ref: str) -> llb.Definition:
    st = (
        llb.image(busybox_ref, platform="linux/amd64")
        .run(["/bin/sh", "-c", "mkdir -p /out && echo exported > /out/file && date > /out/when"])
        .root()
    )
    return st.marshal(platform="linux/amd64")


def _buildctl(daemon, definition: llb.Definition, output: str, tmp_path) -> dict:
    meta = tmp_path / "buildctl-meta.json"
    env = dict(os.environ, SOURCE_DATE_EPOCH="0")
    subprocess.run(
        [str(daemon.buildctl_bin), *daemon.client_args(), "build", "--output", output,
         "--metadata-file", str(meta)],
        input=definition.to_bytes(), env=env, check=True, capture_output=True, timeout=300,
    )
    return json.loads(meta.read_text())


def _index_manifest(path) -> str:
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    return index["manifests"][0]["digest"]


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_file_export_matches_buildctl(client, buildkitd_amd64, registry, tmp_path, kind):
    d = _definition(registry.busybox_ref)
    ours = tmp_path / f"ours-{kind}.tar"
    theirs = tmp_path / f"theirs-{kind}.tar"
    export = Export(kind, {"rewrite-timestamp": "true", "name": "example.com/x:1"}, str(ours))
    res = client.solve(d, exports=[export], source_date_epoch=0)
    meta = _buildctl(buildkitd_amd64, d,
                     f"type={kind},dest={theirs},rewrite-timestamp=true,name=example.com/x:1", tmp_path)
    assert res.image_digest == meta["containerimage.digest"]
    assert _index_manifest(ours) == _index_manifest(theirs) == res.image_digest
    assert ours.read_bytes() == theirs.read_bytes()
    # the gateway path without a config exports the same image
    gw = tmp_path / f"gateway-{kind}.tar"
    res2 = client.build(lambda g: BuildResult.of(g.solve(d)),
                        exports=[Export(kind, dict(export.attrs), str(gw))], source_date_epoch=0)
    assert res2.image_digest == res.image_digest


def test_tar_and_local_exports(client, registry, tmp_path):
    st = llb.scratch().file(llb.mkfile("/hello.txt", 0o644, b"hello\n"))
    d = st.marshal(platform="linux/amd64")
    tar_path = tmp_path / "fs.tar"
    out_dir = tmp_path / "out"
    client.solve(d, exports=[Export.tar(str(tar_path))])
    with tarfile.open(tar_path) as tar:
        assert tar.extractfile("hello.txt").read() == b"hello\n"  # type: ignore[union-attr]
    client.solve(d, exports=[Export.local(str(out_dir))])
    assert (out_dir / "hello.txt").read_text() == "hello\n"


def test_local_context_upload(client, registry, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("from the context\n")
    (ctx / "skip.log").write_text("excluded\n")
    src = llb.local("context", exclude_patterns=["*.log"])
    st = llb.scratch().file(llb.copy(src, "/", "/ctx/"))
    out = tmp_path / "result"
    client.solve(st.marshal(platform="linux/amd64"), local_dirs={"context": str(ctx)},
                 exports=[Export.local(str(out))])
    assert (out / "ctx" / "a.txt").read_text() == "from the context\n"
    assert not (out / "ctx" / "skip.log").exists()


def test_push_to_auth_registry_with_docker_config(client, registry_auth, tmp_path, monkeypatch):
    from llbkit.testutil import skopeo

    monkeypatch.setenv("DOCKER_CONFIG", str(registry_auth.docker_config(tmp_path / "docker")))
    target = registry_auth.ref("llbkit-client/auth", "v1")
    st = llb.image(registry_auth.busybox_ref, platform="linux/amd64").run(["/bin/sh", "-c", "echo a > /a"]).root()
    res = client.solve(st.marshal(platform="linux/amd64"), exports=[Export.image(target, push=True)])
    assert skopeo.digest_of(skopeo.inspect_raw(target, creds=registry_auth.auth)) == res.image_digest


def test_secret_mount_stays_out_of_definition_and_image(client, registry, tmp_path):
    value = "s3cr3t-value-for-llbkit"
    (tmp_path / "token").write_text(value)
    from llbkit.buildkit.session import SecretSource

    st = llb.image(registry.busybox_ref, platform="linux/amd64").run(
        ["/bin/sh", "-c", "test \"$(cat /run/secrets/token)\" = " + value[:6] + "$(echo -n)"
         "\"$(cut -c7- /run/secrets/token)\" && wc -c < /run/secrets/token > /len"],
        mounts=[llb.secret("/run/secrets/token", id="token")]).root()
    d = st.marshal(platform="linux/amd64")
    assert value.encode() not in d.to_bytes()
    out = tmp_path / "fs.tar"
    client.solve(d, secrets={"token": SecretSource(file=str(tmp_path / "token"))}, exports=[Export.tar(str(out))])
    data = out.read_bytes()
    assert value.encode() not in data
    with tarfile.open(out) as tar:
        assert tar.extractfile("len").read().strip() == str(len(value)).encode()  # type: ignore[union-attr]


@pytest.mark.parametrize("gateway", [False, True])
def test_registry_cache_export_then_import(client, registry, gateway):
    from llbkit.buildkit import CacheOption, ProgressTracker
    from llbkit.testutil import skopeo

    cache_ref = registry.ref("llbkit-cache/c", "gw" if gateway else "plain")
    marker = f"cache-{gateway}-{os.getpid()}"
    st = llb.image(registry.busybox_ref, platform="linux/amd64").run(
        ["/bin/sh", "-c", f"echo {marker} > /m"]).root()
    d = st.marshal(platform="linux/amd64")

    def solve(**kw):
        tracker = ProgressTracker()
        if gateway:
            client.build(lambda g: BuildResult.of(g.solve(d)), progress=tracker, **kw)
        else:
            client.solve(d, progress=tracker, **kw)
        return tracker

    solve(cache_exports=[CacheOption.registry(cache_ref, mode="max")])
    manifest = json.loads(skopeo.inspect_raw(cache_ref))
    assert manifest.get("layers") or manifest.get("manifests")
    client.prune(all=True)
    tracker = solve(cache_imports=[CacheOption.registry(cache_ref)])
    runs = [v for v in tracker.vertices() if marker in v.name]
    assert runs and all(v.cached for v in runs)
