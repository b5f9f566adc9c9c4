"""Issue 2 acceptance: the shared fixtures against real daemons, with buildctl as the client."""

from __future__ import annotations

import json
import os
import socket
import ssl
from pathlib import Path

import pytest

from llbkit.testutil import skopeo
from llbkit.testutil.buildkitd import Buildkitd, write_build_context
from llbkit.testutil.errors import CommandError
from llbkit.testutil.registry import Registry


def _uname_context(tmp: Path, registry: Registry) -> Path:
    return write_build_context(tmp / "ctx", f"FROM {registry.host}/busybox\nRUN uname -m > /out\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_fixture_objects_expose_pid_address_and_log(
    buildkitd_amd64: Buildkitd, buildkitd_arm64_tls: Buildkitd, registry: Registry
) -> None:
    for daemon in (buildkitd_amd64, buildkitd_arm64_tls, registry):
        assert _alive(daemon.pid)
        assert daemon.log_path.is_file()
    assert buildkitd_amd64.addr.startswith("unix://")
    assert buildkitd_arm64_tls.addr.startswith("tcp://127.0.0.1:")
    assert registry.host.startswith("127.0.0.1:")
    assert registry.busybox_ref == f"{registry.host}/busybox:latest"
    tls = buildkitd_arm64_tls
    assert tls.tls_dir is not None
    assert {p.name for p in tls.tls_dir.iterdir()} == {"ca.pem", "cert.pem", "key.pem"}
    assert tls.ca_cert and tls.client_cert and tls.client_key
    # The arm64 daemon's native (first) platform is linux/arm64; the other is amd64.
    first = tls.workers()[0]["platforms"][0]
    assert (first["os"], first["architecture"]) == ("linux", "arm64")
    first = buildkitd_amd64.workers()[0]["platforms"][0]
    assert (first["os"], first["architecture"]) == ("linux", "amd64")


def test_registry_is_seeded_with_a_two_platform_busybox_index(registry: Registry) -> None:
    raw = skopeo.inspect_raw(registry.busybox_ref)
    assert registry.busybox is not None
    assert skopeo.digest_of(raw) == registry.busybox.index_digest  # pushed byte for byte
    index = json.loads(raw)
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]}
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}


def test_solve_linux_amd64_on_unix_socket_daemon(
    buildkitd_amd64: Buildkitd, registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    buildkitd_amd64.build_dockerfile(
        _uname_context(tmp_path, registry),
        platform="linux/amd64",
        outputs=[f"type=local,dest={out}"],
    )
    assert (out / "out").read_text() == "x86_64\n"
    assert (out / "bin" / "sh").is_symlink()


def test_solve_linux_arm64_on_tcp_mtls_daemon(
    buildkitd_arm64_tls: Buildkitd, registry: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    buildkitd_arm64_tls.build_dockerfile(
        _uname_context(tmp_path, registry),
        platform="linux/arm64",
        outputs=[f"type=local,dest={out}"],
    )
    assert (out / "out").read_text() == "aarch64\n"


def test_push_to_and_pull_from_the_registry(
    buildkitd_amd64: Buildkitd, registry: Registry, tmp_path: Path
) -> None:
    ref = registry.ref("x", "y")
    meta = tmp_path / "metadata.json"
    context = write_build_context(
        tmp_path / "ctx",
        f"FROM {registry.host}/busybox\nRUN echo pushed > /hello\n",
    )
    buildkitd_amd64.build_dockerfile(
        context,
        platform="linux/amd64",
        outputs=[f"type=image,name={ref},push=true"],
        extra_args=["--metadata-file", str(meta)],
    )
    pushed = json.loads(meta.read_text())["containerimage.digest"]
    # Pull back: the registry serves what BuildKit pushed, byte for byte.
    assert skopeo.digest_of(skopeo.inspect_raw(ref)) == pushed
    info = skopeo.inspect(ref)
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    layout = tmp_path / "pulled"
    skopeo.copy(f"docker://{ref}", f"oci:{layout}:y", all_platforms=False)
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed
    manifest = json.loads((layout / "blobs/sha256" / pushed.split(":")[1]).read_text())
    assert len(manifest["layers"]) == 2  # busybox + the RUN


def test_push_to_auth_registry_needs_credentials(
    buildkitd_amd64: Buildkitd, registry_auth: Registry, tmp_path: Path
) -> None:
    context = write_build_context(
        tmp_path / "ctx", f"FROM {registry_auth.host}/busybox\nRUN echo auth > /a\n"
    )
    ref = registry_auth.ref("private", "v1")
    anonymous = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "no-creds"))
    with pytest.raises(CommandError) as err:
        buildkitd_amd64.build_dockerfile(
            context, outputs=[f"type=image,name={ref},push=true"], env=anonymous
        )
    assert "401" in err.value.stderr or "unauthorized" in err.value.stderr.lower()
    creds = dict(os.environ, DOCKER_CONFIG=str(registry_auth.docker_config(tmp_path / "creds")))
    buildkitd_amd64.build_dockerfile(
        context, outputs=[f"type=image,name={ref},push=true"], env=creds
    )
    assert json.loads(skopeo.inspect_raw(ref, creds=registry_auth.auth))["schemaVersion"] == 2


def test_tls_daemon_refuses_a_client_without_certificate(buildkitd_arm64_tls: Buildkitd) -> None:
    daemon = buildkitd_arm64_tls
    assert daemon.buildctl("debug", "workers").returncode == 0  # with the client certificate
    res = daemon.buildctl("debug", "workers", client_cert=False, check=False)
    assert res.returncode != 0
    # gRPC reports the server's TLS alert ("tls: certificate required") when it reads it first;
    # with TLS 1.3 it often writes first and sees the closed connection ("broken pipe") instead.
    assert any(
        s in res.stderr for s in ("certificate required", "broken pipe", "connection reset")
    ), res.stderr
    # The reason, deterministically: after a handshake without a client certificate, the server
    # answers the first read with the TLS alert certificate_required.
    assert daemon.port is not None and daemon.ca_cert is not None
    ctx = ssl.create_default_context(cafile=str(daemon.ca_cert))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            with pytest.raises(ssl.SSLError, match="(?i)certificate.required"):
                conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                conn.recv(1024)
    # Without the CA either, the client refuses the server's certificate.
    res = daemon.buildctl("debug", "workers", client_cert=False, ca=False, check=False)
    assert res.returncode != 0
