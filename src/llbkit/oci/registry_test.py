"""Registry client against an in-process fake registry with a bearer token server (loopback)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llbkit.oci.auth import Credentials
from llbkit.oci.errors import RegistryAuthError, RegistryError, RegistryUnreachableError
from llbkit.oci.layout import OCILayout, read_verified
from llbkit.oci.registry import REQUEST_LOG_SIZE, RegistryClient, push_layout
from llbkit.testutil.oci_images import two_platform_layout

USER, PASSWORD, TOKEN = "alice", "s3cret", "tok-123"


class FakeRegistry(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real registries speak
    blobs: dict = {}
    manifests: dict = {}
    log: list = []
    peers: set = set()
    drop_next = False  # close the connection instead of answering, once

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
        self.peers.add(self.client_address)
        if FakeRegistry.drop_next:
            FakeRegistry.drop_next = False
            self._body()
            self.close_connection = True
            return None
        if url.path.startswith("/storage/"):  # a blob store elsewhere: must get no credentials
            assert "Authorization" not in self.headers
            return self._send(200, self.blobs[url.path.rsplit("/", 1)[-1]])
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
            if ref in self.blobs and self.command == "GET":
                return self._send(307, headers={"Location": f"http://{host}/storage/{ref}"})
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
    FakeRegistry.blobs, FakeRegistry.manifests, FakeRegistry.log, FakeRegistry.peers = {}, {}, [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bearer_token_flow_push_and_get_over_one_kept_alive_connection(fake_registry, tmp_path):
    path = two_platform_layout(tmp_path / "l")
    with OCILayout(path) as layout:
        root = layout.manifests[0]
        index_bytes = read_verified(layout, root)
    client = RegistryClient(fake_registry, credentials=Credentials(USER, PASSWORD, source="t"))
    result = push_layout(path, f"{fake_registry}/r:v1", client=client)
    assert len(result.blobs_uploaded) == 5  # 2 configs + 3 distinct layers (one shared)
    assert FakeRegistry.manifests["v1"][0] == index_bytes
    tokens = [p for m, p in FakeRegistry.log if p == "/token"]
    assert len(tokens) == 1  # one token for the push scope, reused
    data, mt, digest = client.get_manifest("r", "v1")
    assert data == index_bytes and digest == root.digest
    assert mt == "application/vnd.oci.image.index.v1+json"
    assert len(FakeRegistry.peers) == 1, "every request on the one kept-alive connection"
    client.close()


def test_get_blob_follows_the_redirect_without_credentials_and_reconnects(fake_registry, tmp_path):
    client = RegistryClient(fake_registry, credentials=Credentials(USER, PASSWORD, source="t"))
    push_layout(two_platform_layout(tmp_path / "l"), f"{fake_registry}/r:v1", client=client)
    digest, blob = next(iter(FakeRegistry.blobs.items()))
    FakeRegistry.drop_next = True  # the kept-alive connection dies: reopened, request sent again
    assert client.get_blob("r", digest) == blob
    assert ("GET", f"/storage/{digest}") in FakeRegistry.log
    with pytest.raises(RegistryError) as e:
        client.get_manifest("r", "missing")
    assert e.value.status == 404 and "HTTP 404" in str(e.value)


def test_request_log_is_bounded(fake_registry):
    client = RegistryClient(fake_registry, credentials=Credentials(USER, PASSWORD, source="t"))
    for _ in range(REQUEST_LOG_SIZE + 10):
        client.has_blob("r", "sha256:" + "0" * 64)
    assert len(client.requests) == REQUEST_LOG_SIZE
    assert client.requests[-1] == ("HEAD", "/v2/r/blobs/sha256:" + "0" * 64, 404)


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
