"""``llbkit build`` output forms: dest=- (stdout), tar=false (OCI layout directory), local cache."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path

from llbkit import llb

SRC = str(Path(__file__).resolve().parents[2])


def llbkit(*args: str, stdin: bytes = b"", timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "llbkit", *args], input=stdin, env=env,
                          capture_output=True, timeout=timeout)


def _def(busybox_ref: str, token: str = "stdout") -> bytes:
    st = llb.image(busybox_ref, platform="linux/amd64").run(["/bin/sh", "-c", f"echo {token} > /t.txt"]).root()
    return st.marshal(platform="linux/amd64").to_bytes()


def test_tar_and_oci_to_stdout(buildkitd_amd64, registry, tmp_path):
    d = _def(registry.busybox_ref)
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "quiet", "--output", "type=tar,dest=-", stdin=d)
    assert res.returncode == 0, res.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        assert tar.extractfile("t.txt").read() == b"stdout\n"  # type: ignore[union-attr]
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "plain",
                 "--output", "type=oci,dest=-,name=example.com/s:1", stdin=d)
    assert res.returncode == 0, res.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        assert json.load(tar.extractfile("index.json"))["manifests"]  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir()) and b"#1" in res.stderr  # progress on stderr, nothing else written


def test_stdout_conflicts_are_usage_errors(buildkitd_amd64, registry):
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "json", "--output", "type=tar,dest=-",
                 stdin=_def(registry.busybox_ref))
    assert res.returncode == 1 and b"--progress json writes to stdout" in res.stderr and b"Traceback" not in res.stderr


def test_oci_layout_directory_and_local_cache(buildkitd_amd64, registry, tmp_path):
    token = secrets.token_hex(6)
    layout, cache = tmp_path / "layout", tmp_path / "cache"
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "plain",
                 "--output", f"type=oci,dest={layout},tar=false,name=example.com/l:2",
                 "--export-cache", f"type=local,dest={cache},mode=max",
                 "--metadata-file", str(tmp_path / "meta.json"), stdin=_def(registry.busybox_ref, token))
    assert res.returncode == 0, res.stderr.decode()
    digest = json.loads((tmp_path / "meta.json").read_text())["containerimage.digest"]
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest
    out = subprocess.run(["skopeo", "inspect", f"oci:{layout}:2"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads((cache / "index.json").read_text())["manifests"]
    # a second build importing the cache (after a prune) hits it
    subprocess.run([str(buildkitd_amd64.buildctl_bin), *buildkitd_amd64.client_args(), "prune", "--all"],
                   check=True, capture_output=True, timeout=120)
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "plain",
                 "--import-cache", f"type=local,src={cache}", stdin=_def(registry.busybox_ref, token))
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stderr.decode().splitlines()
    ids = [l.split()[0] for l in lines if token in l and l.startswith("#")]
    assert ids and f"{ids[0]} CACHED" in lines, res.stderr.decode()
