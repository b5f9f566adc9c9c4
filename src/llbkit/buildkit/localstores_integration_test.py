"""The local cache (export, import; interchangeable with buildctl's) and OCI layout directory
exports (``tar=false``), against the real daemons."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import List

import pytest

from llbkit import llb
from llbkit.buildkit import CacheOption, Client, Export, TLSConfig

PLATFORM = "linux/amd64"


def _definition(busybox_ref: str, token: str) -> llb.Definition:
    # The token makes the RUN new to every daemon, so a cache hit can only come from the import.
    st = llb.image(busybox_ref, platform=PLATFORM).run(
        ["/bin/sh", "-c", f"echo {token} > /token && head -c 100000 /dev/urandom > /noise"]).root()
    return st.marshal(platform=PLATFORM)


class _Vertices:
    def __init__(self) -> None:
        self.cached: dict = {}

    def __call__(self, status) -> None:
        for v in status.vertexes:
            if v.completed is not None or v.cached:
                self.cached[v.name] = self.cached.get(v.name, False) or v.cached

    def run_cached(self, token: str) -> bool:
        runs = [cached for name, cached in self.cached.items() if token in name]
        assert runs, f"no run vertex seen in {self.cached}"
        return all(runs)


def _blob(layout: Path, digest: str) -> Path:
    alg, hexd = digest.split(":")
    return layout / "blobs" / alg / hexd


def test_local_cache_export_then_import_on_the_other_daemon(
        buildkitd_amd64, buildkitd_arm64_tls, registry, tmp_path):
    token = secrets.token_hex(8)
    d = _definition(registry.busybox_ref, token)
    cache = tmp_path / "cache"

    first = _Vertices()
    with Client(buildkitd_amd64.addr) as c:
        c.solve(d, cache_exports=[CacheOption.local_export(str(cache), mode="max")], progress=first)
    assert not first.run_cached(token)
    index = json.loads((cache / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert _blob(cache, entry["digest"]).is_file()
    assert json.loads((cache / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert not (cache / "ingest").exists() or not any((cache / "ingest").iterdir())
    manifest = json.loads(_blob(cache, entry["digest"]).read_bytes())
    for layer in manifest.get("layers", []) + manifest.get("manifests", []):
        assert _blob(cache, layer["digest"]).stat().st_size == layer["size"]

    second = _Vertices()
    tls = TLSConfig(ca_cert=str(buildkitd_arm64_tls.ca_cert), cert=str(buildkitd_arm64_tls.client_cert),
                    key=str(buildkitd_arm64_tls.client_key))
    with Client(buildkitd_arm64_tls.addr, tls=tls) as c:
        c.solve(d, cache_imports=[CacheOption.local_import(str(cache))], progress=second)
    assert second.run_cached(token), f"the import gave no cache hit: {second.cached}"


def test_buildctl_imports_our_local_cache(buildkitd_amd64, registry, tmp_path):
    token = secrets.token_hex(8)
    d = _definition(registry.busybox_ref, token)
    cache = tmp_path / "cache"
    with Client(buildkitd_amd64.addr) as c:
        c.solve(d, cache_exports=[CacheOption.local_export(str(cache), mode="max")])
        c.prune(all=True)  # the RUN's result now lives only in our cache directory
    res = subprocess.run(
        [str(buildkitd_amd64.buildctl_bin), *buildkitd_amd64.client_args(), "build", "--progress", "plain",
         "--import-cache", f"type=local,src={cache}"],
        input=d.to_bytes(), capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    log = res.stderr.decode()
    # plain progress: "#3 /bin/sh -c echo TOKEN ..." then "#3 CACHED"
    ids: List[str] = [line.split()[0] for line in log.splitlines() if token in line and line.startswith("#")]
    assert ids and f"{ids[0]} CACHED" in log.splitlines(), log


def test_we_import_a_buildctl_local_cache(buildkitd_amd64, registry, tmp_path):
    token = secrets.token_hex(8)
    d = _definition(registry.busybox_ref, token)
    cache = tmp_path / "cache"
    subprocess.run(
        [str(buildkitd_amd64.buildctl_bin), *buildkitd_amd64.client_args(), "build",
         "--export-cache", f"type=local,dest={cache},mode=max"],
        input=d.to_bytes(), capture_output=True, timeout=300, check=True)
    seen = _Vertices()
    with Client(buildkitd_amd64.addr) as c:
        c.prune(all=True)
        c.solve(d, cache_imports=[CacheOption.local_import(str(cache))], progress=seen)
    assert seen.run_cached(token)


def test_missing_local_cache_is_skipped(buildkitd_amd64, registry, tmp_path):
    # A first build has no cache yet: like buildctl, the import is skipped, the build runs.
    d = _definition(registry.busybox_ref, secrets.token_hex(8))
    with Client(buildkitd_amd64.addr) as c:
        c.solve(d, cache_imports=[CacheOption.local_import(str(tmp_path / "none"))])


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_layout_directory_export_matches_buildctl(buildkitd_amd64, registry, tmp_path, kind):
    d = _definition(registry.busybox_ref, "fixed-token")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    attrs = {"tar": "false", "name": "example.com/x:1", "rewrite-timestamp": "true"}
    with Client(buildkitd_amd64.addr) as c:
        res = c.solve(d, exports=[Export(kind, attrs, str(ours))], source_date_epoch=0)
    subprocess.run(
        [str(buildkitd_amd64.buildctl_bin), *buildkitd_amd64.client_args(), "build", "--output",
         f"type={kind},dest={theirs},tar=false,name=example.com/x:1,rewrite-timestamp=true"],
        input=d.to_bytes(), capture_output=True, timeout=300, check=True,
        env={"SOURCE_DATE_EPOCH": "0", "PATH": "/usr/bin:/bin"})
    assert json.loads((ours / "index.json").read_text()) == json.loads((theirs / "index.json").read_text())
    [entry] = json.loads((ours / "index.json").read_text())["manifests"]
    assert entry["digest"] == res.image_digest
    assert entry["annotations"]["io.containerd.image.name"] == "example.com/x:1"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1"
    ours_blobs = sorted(p.name for p in (ours / "blobs" / "sha256").iterdir())
    assert ours_blobs == sorted(p.name for p in (theirs / "blobs" / "sha256").iterdir())
    # skopeo reads the layout as an image
    out = subprocess.run(["skopeo", "inspect", f"oci:{ours}:1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and res.image_digest in out.stdout, out.stderr
