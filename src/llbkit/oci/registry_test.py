"""Registry client against an in-process fake registry with a bearer token server (loopback)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llbkit.oci._testing import two_platform_layout
from llbkit.oci.auth import Credentials, lookup_credentials, parse_challenge
from llbkit.oci.errors import RegistryAuthError, RegistryError, RegistryUnreachableError
from llbkit.oci.index import assemble, split
from llbkit.oci.layout import OCILayout
from llbkit.oci.registry import RegistryClient, parse_reference, push_assembled

USER, PASSWORD, TOKEN = "alice", "s3cret", "tok-123"


class FakeRegistry(BaseHTTPRequestHandler):
    blobs: dict = {}
    manifests: dict = {}
    log: list = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        self.log.append((self.command, url.path))
        host = f"127.0.0.1:{self.server.server_address[1]}"
        if url.path == "/token":
            want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != want:
                return self._send(401, b'{"errors":[{"code":"DENIED","message":"bad login"}]}')
            q = urllib.parse.parse_qs(url.query)
            assert q["service"] == ["fake"] and q["scope"][0].startswith("repository:")
            return self._send(200, json.dumps({"token": TOKEN}).encode())
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = (f'Bearer realm="http://{host}/token",service="fake",'
                         'scope="repository:r:pull"')
            self._body()
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                              {"WWW-Authenticate": challenge})
        parts = url.path.split("/")  # ['', 'v2', repo..., kind, ref]
        kind, ref = parts[-2], parts[-1]
        if kind == "blobs":
            return self._send(200 if ref in self.blobs else 404)
        if kind == "uploads" and self.command == "POST":
            return self._send(202, headers={"Location": f"/v2/r/blobs/uploads/u1?state=x"})
        if kind == "uploads" and self.command == "PUT":
            data = self._body()
            digest = urllib.parse.parse_qs(url.query)["digest"][0]
            assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
            self.blobs[digest] = data
            return self._send(201)
        if kind == "manifests":
            if self.command == "PUT":
                self.manifests[ref] = (self._body(), self.headers["Content-Type"])
                return self._send(201)
            if ref not in self.manifests:
                return self._send(404)
            data, mt = self.manifests[ref]
            return self._send(200, data, {"Content-Type": mt})
        return self._send(404)

    do_GET = do_HEAD = do_POST = do_PUT = _route


@pytest.fixture
def fake_registry():
    FakeRegistry.blobs, FakeRegistry.manifests, FakeRegistry.log = {}, {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _assembled(tmp_path):
    with OCILayout(two_platform_layout(tmp_path / "l")) as layout:
        return assemble(split(layout))


def test_bearer_token_flow_push_and_pull(fake_registry, tmp_path):
    assembled = _assembled(tmp_path)
    client = RegistryClient(fake_registry, credentials=Credentials(USER, PASSWORD, source="t"))
    result = push_assembled(assembled, f"{fake_registry}/r:v1", client=client)
    assert len(result.blobs_uploaded) == 5  # 2 configs + 3 distinct layers (one shared)
    assert FakeRegistry.manifests["v1"][0] == assembled.index_bytes
    assert set(FakeRegistry.manifests) == {"v1", assembled.descriptor.digest,
                                           *(i.manifest.digest for i in assembled.images)}
    tokens = [p for m, p in FakeRegistry.log if p == "/token"]
    assert len(tokens) == 1  # one token for the push scope, reused
    data, mt, digest = client.get_manifest("r", "v1")
    assert data == assembled.index_bytes and digest == assembled.descriptor.digest
    assert mt == "application/vnd.oci.image.index.v1+json"


def test_bearer_refused_names_credentials(fake_registry, tmp_path):
    client = RegistryClient(fake_registry, credentials=Credentials(USER, "nope", source="cfg"))
    with pytest.raises(RegistryAuthError) as e:
        client.has_blob("r", "sha256:" + "0" * 64)
    msg = str(e.value)
    assert "user 'alice' from cfg" in msg and "bad login" in msg and "nope" not in msg


def test_unreachable_registry_names_address():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(RegistryUnreachableError, match=f"http://127.0.0.1:{port}"):
        RegistryClient(f"127.0.0.1:{port}", credentials=Credentials()).has_blob(
            "r", "sha256:" + "0" * 64)


def test_plain_http_only_for_loopback():
    assert RegistryClient("127.0.0.1:5000", credentials=Credentials()).scheme == "http"
    assert RegistryClient("localhost:5000", credentials=Credentials()).scheme == "http"
    assert RegistryClient("registry.example.com", credentials=Credentials()).scheme == "https"
    assert RegistryClient("docker.io", credentials=Credentials()).endpoint == \
        "registry-1.docker.io"


def test_parse_reference():
    r = parse_reference("127.0.0.1:5000/a/b:1.0")
    assert (r.registry, r.repository, r.tag, r.digest) == ("127.0.0.1:5000", "a/b", "1.0", "")
    r = parse_reference("busybox")
    assert (r.registry, r.repository, r.tag) == ("docker.io", "library/busybox", "")
    d = "sha256:" + "a" * 64
    r = parse_reference(f"localhost/x@{d}")
    assert (r.registry, r.repository, r.digest) == ("localhost", "x", d)
    with pytest.raises(RegistryError, match="lowercase"):
        parse_reference("example.com/Bad:1")


def test_parse_challenge():
    c = parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                        'scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "reg",
                        "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"


def test_docker_config_lookup(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    auth = base64.b64encode(b"bob:pw").decode()
    (cfg / "config.json").write_text(json.dumps({
        "auths": {"https://reg.example:5000": {"auth": auth},
                  "https://index.docker.io/v1/": {"username": "hub", "password": "x"}},
        "credHelpers": {"helped.example": "fake"},
    }))
    env = {"DOCKER_CONFIG": str(cfg), "PATH": os.environ.get("PATH", "")}
    c = lookup_credentials("reg.example:5000", env)
    assert (c.username, c.password) == ("bob", "pw") and "auths[https://reg.example" in c.source
    assert lookup_credentials("docker.io", env).username == "hub"
    assert "anonymous" in lookup_credentials("other.example", env).source
    with pytest.raises(RegistryAuthError, match="docker-credential-fake is not on PATH"):
        lookup_credentials("helped.example", {**env, "PATH": str(tmp_path / "nothing")})


def test_credential_helper(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-fake"
    helper.write_text('#!/bin/sh\nread server\n'
                      'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"carol\\",'
                      '\\"Secret\\":\\"pw-$server\\"}"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    c = lookup_credentials("reg.example", {"DOCKER_CONFIG": str(tmp_path)})
    assert (c.username, c.password) == ("carol", "pw-reg.example")
    assert c.source == "credential helper docker-credential-fake"
