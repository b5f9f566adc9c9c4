"""Publishing when the registry dies: between two blobs, and in the middle of one.

A small TCP proxy on 127.0.0.1 stands in front of the fixture registry, logs every HTTP request
that goes through it, and "dies" (closes every connection and stops listening) at a chosen
point. For each fault: the push fails with an error naming the registry and what to do, no tag
(and no index) is in the registry afterwards, and pushing again straight to the registry
succeeds, uploading only what is missing. And on a complete push, every tag is written after
every blob and manifest it names (tags strictly last).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import pytest

from llbkit.oci.errors import RegistryError
from llbkit.oci.registry import RegistryClient, push_layout
from llbkit.testutil.oci_images import LayoutBuilder

MiB = 1 << 20
Request = Tuple[str, str]  # (method, path)


class DyingProxy:
    """Forwards 127.0.0.1:port to ``upstream`` until ``die(requests, body_bytes)`` says so (checked
    at each request start and each body chunk); then every connection is cut and the listener
    closed, as when the registry process is killed."""

    def __init__(self, upstream: str, die: Callable[[List[Request], int], bool] = lambda r, b: False) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.die = die
        self.requests: List[Request] = []
        self.body_bytes = 0
        self.dead = threading.Event()
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.dead.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            with self._lock:
                self._socks += [client, up]
            threading.Thread(target=self._requests, args=(client, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client), daemon=True).start()

    def kill(self) -> None:
        self.dead.set()
        with self._lock:
            for s in [self._listener, *self._socks]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _check(self) -> bool:
        with self._lock:
            verdict = self.die(list(self.requests), self.body_bytes)
        if verdict:
            self.kill()
        return not verdict

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass

    def _requests(self, client: socket.socket, up: socket.socket) -> None:
        """Client to registry, request by request (HTTP/1.1 with Content-Length bodies)."""
        buf = b""
        try:
            while not self.dead.is_set():
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                with self._lock:
                    self.requests.append((method, path.split("?")[0]))
                if not self._check():
                    return
                up.sendall(head + b"\r\n\r\n")
                while length:
                    if not buf:
                        buf = client.recv(min(65536, length))
                        if not buf:
                            return
                    chunk, buf = buf[:length], buf[length:]
                    length -= len(chunk)
                    with self._lock:
                        self.body_bytes += len(chunk)
                    if not self._check():
                        return
                    up.sendall(chunk)
        except OSError:
            pass


def _layout(root: Path) -> Path:
    """One image, three layers: two small, and one of 6 MiB (random, so gzip keeps it large)."""
    rnd = random.Random(17)
    b = LayoutBuilder(root)
    big = bytes(rnd.getrandbits(8) for _ in range(6 * MiB))
    image = b.image("linux/amd64", [{"a.txt": b"a\n"}, {"big.bin": big}, {"c.txt": b"c\n"}])
    return b.finish([image], nested=False)


def _registry_has(registry_host: str, repo: str, reference: str) -> bool:
    req = urllib.request.Request(f"http://{registry_host}/v2/{repo}/manifests/{reference}", method="HEAD",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json,"
                                                    "application/vnd.oci.image.index.v1+json"})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def _root_digest(layout: Path) -> str:
    import json

    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def _between_blobs(requests: List[Request], _body: int) -> bool:
    # Dies when the second blob upload starts: one blob is in, the others are not.
    return sum(1 for m, p in requests if m == "POST" and p.endswith("/blobs/uploads/")) >= 2


def _mid_blob(_requests: List[Request], body: int) -> bool:
    return body > 3 * MiB  # inside the 6 MiB layer


@pytest.mark.parametrize("die", [_between_blobs, _mid_blob], ids=["between-blobs", "mid-blob"])
def test_a_registry_dying_during_a_push_leaves_no_tag_and_a_republish_succeeds(registry, tmp_path: Path,
                                                                              die) -> None:
    layout = _layout(tmp_path / "layout")
    repo = f"faults/{die.__name__.strip('_').replace('_', '-')}"
    proxy = DyingProxy(registry.host, die)
    try:
        with pytest.raises(RegistryError) as err:
            push_layout(layout, f"{proxy.host}/{repo}:v1", tags=["latest"], client=RegistryClient(proxy.host))
        assert proxy.dead.is_set(), "the proxy never cut the push: the test tests nothing"
        message = str(err.value)
        assert proxy.host in message and "cannot reach registry" in message and "running" in message, message
    finally:
        proxy.kill()
    assert not any(m == "PUT" and "/manifests/" in p for m, p in proxy.requests), proxy.requests
    for reference in ("v1", "latest", _root_digest(layout)):
        assert not _registry_has(registry.host, repo, reference), f"{repo}:{reference} is in the registry"

    again = DyingProxy(registry.host)  # the registry is back: push the same layout again
    try:
        client = RegistryClient(again.host)
        result = push_layout(layout, f"{again.host}/{repo}:v1", tags=["latest"], client=client)
    finally:
        again.kill()
    assert result.digest == _root_digest(layout) and result.tags == ["v1", "latest"]
    if die is _between_blobs:
        assert len(result.blobs_skipped) == 1, result  # the blob that made it is not sent again
    for reference in ("v1", "latest", result.digest):
        assert _registry_has(registry.host, repo, reference)
    data, _, digest = RegistryClient(registry.host).get_manifest(repo, "latest")
    assert digest == result.digest


def test_tags_are_written_strictly_after_every_blob_and_manifest(registry, tmp_path: Path) -> None:
    from llbkit.testutil.oci_images import two_platform_layout

    layout = two_platform_layout(tmp_path / "layout", nested=True)  # index -> 2 manifests -> blobs
    proxy = DyingProxy(registry.host)
    try:
        push_layout(layout, f"{proxy.host}/faults/order:one", tags=["two", "three"], client=RegistryClient(proxy.host))
    finally:
        proxy.kill()
    writes = [(m, p) for m, p in proxy.requests if m in ("PUT", "POST", "PATCH")]
    tag_writes = [i for i, (m, p) in enumerate(writes) if "/manifests/" in p and "sha256:" not in p]
    other_writes = [i for i, (m, p) in enumerate(writes) if i not in tag_writes]
    assert len(tag_writes) == 3 and len(other_writes) >= 3, writes
    assert min(tag_writes) > max(other_writes), writes


def test_the_cli_reports_a_registry_dying_mid_blob_without_a_traceback(registry, tmp_path: Path) -> None:
    layout = _layout(tmp_path / "layout")
    proxy = DyingProxy(registry.host, _mid_blob)
    src = Path(__file__).resolve().parents[2]
    try:
        proc = subprocess.run([sys.executable, "-m", "llbkit", "push", "--layout", str(layout),
                               f"{proxy.host}/faults/cli:v1"], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(src)))
    finally:
        proxy.kill()
    assert proxy.dead.is_set()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot reach registry" in proc.stderr, proc.stderr
    assert not _registry_has(registry.host, "faults/cli", "v1")
