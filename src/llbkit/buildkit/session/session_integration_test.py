"""The session against a real buildkitd: uploads, exports, secrets and registry credentials.

Each test drives a bare ``Control.Solve`` itself (no dependency on the client module).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

from llbkit import llb
from llbkit._proto import control_pb2, ops_pb2
from llbkit.buildkit.client import control_stub
from llbkit.buildkit.connection import TLSConfig, open_channel, parse_address
from llbkit.buildkit.rpc.channel import Channel
from llbkit.buildkit.rpc.status import RpcError
from llbkit.buildkit.session import (
    DirOutput,
    DockerAuthProvider,
    FileOutput,
    LocalDir,
    SecretSource,
    Session,
    new_session_id,
)

PLATFORM = "linux/amd64"


def _channel(daemon) -> Channel:
    if daemon.tls is None:
        return open_channel(parse_address(daemon.addr), insecure=True)
    tls = TLSConfig(ca_cert=str(daemon.ca_cert), cert=str(daemon.client_cert), key=str(daemon.client_key))
    return open_channel(parse_address(daemon.addr), tls)


def _solve(
    daemon,
    state: llb.State,
    session: Session,
    exporters: Sequence[control_pb2.Exporter] = (),
    platform: str = PLATFORM,
) -> Dict[str, str]:
    definition = state.marshal(platform=platform)
    channel = _channel(daemon)
    try:
        session.run(channel)
        req = control_pb2.SolveRequest(
            Ref=new_session_id(),
            Definition=ops_pb2.Definition.FromString(definition.to_bytes()),
            Session=session.id,
            Exporters=list(exporters),
        )
        resp = control_stub(channel).Solve(req, timeout=300)
        return dict(resp.ExporterResponse)
    finally:
        session.close()
        channel.close()


def _context(root: Path, files: Dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _copy_context(name: str = "context", **kw) -> llb.State:
    return llb.scratch().file(
        llb.copy(llb.local(name, **kw), "/", "/app/", create_dest_path=True)
    )


def _tar_members(path: Path) -> Dict[str, Optional[bytes]]:
    out: Dict[str, Optional[bytes]] = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isfile() else None
            out[m.name.rstrip("/")] = f.read() if f else None
    return out


def test_upload_and_tar_export(buildkitd_amd64, tmp_path):
    ctx = _context(
        tmp_path / "ctx",
        {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n", "skip.log": b"no", "sub/deep/c.bin": os.urandom(300_000)},
    )
    (ctx / "run.sh").write_bytes(b"#!/bin/sh\n")
    (ctx / "run.sh").chmod(0o755)
    os.symlink("a.txt", ctx / "link")
    out = tmp_path / "out" / "result.tar"
    session = Session(
        local_dirs={"context": LocalDir(str(ctx), exclude=["*.log"])},
        outputs={0: FileOutput(str(out))},
        auth=None,
        shared_key=uuid.uuid4().hex,
    )
    _solve(buildkitd_amd64, _copy_context(), session, [control_pb2.Exporter(Type="tar")])
    members = _tar_members(out)
    assert members["app/a.txt"] == b"alpha\n"
    assert members["app/sub/b.txt"] == b"beta\n"
    assert members["app/sub/deep/c.bin"] == (ctx / "sub/deep/c.bin").read_bytes()
    assert "app/skip.log" not in members
    with tarfile.open(out) as tf:
        assert tf.getmember("app/run.sh").mode & 0o777 == 0o755
        assert tf.getmember("app/link").issym() and tf.getmember("app/link").linkname == "a.txt"
    assert session.bytes_sent("context") == sum(
        len(d) for d in (b"alpha\n", b"beta\n", b"#!/bin/sh\n")
    ) + 300_000
    assert not [p for p in out.parent.iterdir() if p.name != "result.tar"]  # no temp file left


def test_upload_and_local_export_over_tcp_mtls(buildkitd_arm64_tls, tmp_path):
    ctx = _context(tmp_path / "ctx", {"f.txt": b"over tls\n"})
    dest = tmp_path / "out"
    session = Session(local_dirs={"context": str(ctx)}, outputs={0: DirOutput(str(dest))}, auth=None)
    _solve(
        buildkitd_arm64_tls, _copy_context(), session, [control_pb2.Exporter(Type="local")],
        platform="linux/arm64",
    )
    assert (dest / "app/f.txt").read_bytes() == b"over tls\n"


def test_session_survives_health_checks_during_a_long_run(buildkitd_amd64, registry, tmp_path):
    # buildkitd checks the session every 5 s and drops it after 2 failures; the export needs it.
    base = llb.image(registry.busybox_ref, platform=PLATFORM)
    ran = base.run(["/bin/sh", "-c", f"sleep 12; echo {uuid.uuid4().hex} > /done"]).root()
    out = llb.scratch().file(llb.copy(ran, "/done", "/done"))
    tar_path = tmp_path / "out.tar"
    session = Session(outputs={0: FileOutput(str(tar_path))}, auth=None)
    _solve(buildkitd_amd64, out, session, [control_pb2.Exporter(Type="tar")])
    assert _tar_members(tar_path)["done"]


def test_local_exporter_and_daemon_side_filters(buildkitd_amd64, tmp_path):
    ctx = _context(tmp_path / "ctx", {"keep/x.txt": b"x", "keep/y.md": b"y", "other/z.txt": b"z"})
    dest = tmp_path / "exported"
    session = Session(
        local_dirs={"src": str(ctx)}, outputs={0: DirOutput(str(dest))}, auth=None,
        shared_key=uuid.uuid4().hex,
    )
    state = _copy_context("src", include_patterns=["keep"], exclude_patterns=["**/*.md"])
    _solve(buildkitd_amd64, state, session, [control_pb2.Exporter(Type="local")])
    assert (dest / "app/keep/x.txt").read_bytes() == b"x"
    assert not (dest / "app/keep/y.md").exists()
    assert not (dest / "app/other").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "exported"]  # no temp dir left


def test_second_solve_sends_only_the_changed_file(buildkitd_amd64, tmp_path):
    size = 200_000
    files = {f"d{i % 5}/f{i:03d}.bin": os.urandom(size) for i in range(40)}
    ctx = _context(tmp_path / "ctx", files)
    key = uuid.uuid4().hex
    state = _copy_context("ctx")

    def build(n: int) -> int:
        session = Session(
            local_dirs={"ctx": str(ctx)}, outputs={0: FileOutput(str(tmp_path / f"o{n}.tar"))},
            auth=None, shared_key=key,
        )
        _solve(buildkitd_amd64, state, session, [control_pb2.Exporter(Type="tar")])
        return session.bytes_sent("ctx")

    first = build(1)
    assert first == size * len(files)
    changed = ctx / "d3/f013.bin"
    changed.write_bytes(os.urandom(size + 1000))
    second = build(2)
    assert size <= second <= size + 1000 + 64 * 1024, second  # about one file
    assert _tar_members(tmp_path / "o2.tar")["app/d3/f013.bin"] == changed.read_bytes()


def test_secret_is_readable_in_run_but_absent_from_definition_and_export(
    buildkitd_amd64, registry, tmp_path
):
    value = b"s3cr3t-" + uuid.uuid4().hex.encode()
    secret_file = tmp_path / "secret.txt"
    secret_file.write_bytes(value)
    digest = hashlib.sha256(value).hexdigest()
    base = llb.image(registry.busybox_ref, platform=PLATFORM)
    ran = base.run(
        # the command carries only the value's digest
        ["/bin/sh", "-c", f'test "$(sha256sum < /run/secrets/tok | cut -c1-64)" = {digest} && echo ok > /ok'],
        mounts=[llb.secret("/run/secrets/tok", "tok")],
    ).root()
    out = llb.scratch().file(llb.copy(ran, "/ok", "/ok"))
    definition = out.marshal(platform=PLATFORM).to_bytes()
    assert value not in definition
    tar_path = tmp_path / "out.tar"
    session = Session(
        secrets={"tok": SecretSource(file=str(secret_file))},
        outputs={0: FileOutput(str(tar_path))},
        auth=None,
    )
    _solve(buildkitd_amd64, out, session, [control_pb2.Exporter(Type="tar")])
    assert _tar_members(tar_path)["ok"] == b"ok\n"
    assert value not in tar_path.read_bytes()
    assert value not in repr(session).encode()


def test_unknown_secret_fails_the_run(buildkitd_amd64, registry, tmp_path):
    base = llb.image(registry.busybox_ref, platform=PLATFORM)
    ran = base.run(["/bin/true"], mounts=[llb.secret("/s", "missing")]).root()
    session = Session(secrets={}, auth=None)
    with pytest.raises(RpcError) as e:
        _solve(buildkitd_amd64, ran, session)
    assert "missing" in e.value.details()


def test_push_to_auth_registry_with_docker_config(buildkitd_amd64, registry_auth, tmp_path, monkeypatch):
    config_dir = registry_auth.docker_config(tmp_path / "docker")
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    ref = registry_auth.ref("llbkit-session", "auth")
    state = llb.scratch().file(llb.mkfile("/hello", 0o644, b"pushed with session auth\n"))
    session = Session()  # default auth: DockerAuthProvider from $DOCKER_CONFIG
    assert isinstance(session.auth, DockerAuthProvider)
    resp = _solve(
        buildkitd_amd64, state, session,
        [control_pb2.Exporter(Type="image", Attrs={"name": ref, "push": "true"})],
    )
    digest = resp["containerimage.digest"]
    user, password = registry_auth.auth
    req = urllib.request.Request(
        f"{registry_auth.url}/v2/llbkit-session/manifests/auth",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Docker-Content-Digest"] == digest
        json.load(io.TextIOWrapper(r))
