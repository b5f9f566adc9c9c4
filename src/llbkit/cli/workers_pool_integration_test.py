"""``llbkit workers`` over a pool: several --addr, or a --pool config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2])


def llbkit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "llbkit", *args], env=env, capture_output=True, timeout=timeout)


def test_workers_of_a_pool(buildkitd_amd64, buildkitd_arm64_tls, tmp_path):
    dead = f"unix://{tmp_path}/nobody.sock"
    res = llbkit("workers", "--addr", buildkitd_amd64.addr, "--addr", buildkitd_arm64_tls.addr,
                 "--addr", dead, "--tlsdir", str(buildkitd_arm64_tls.tls_dir), "--timeout", "5",
                 "--format", "json")
    assert res.returncode == 1, res.stderr.decode()  # one worker is unreachable
    rows = {r["address"]: r for r in json.loads(res.stdout)}
    amd, arm, gone = rows[buildkitd_amd64.addr], rows[buildkitd_arm64_tls.addr], rows[dead]
    assert amd["reachable"] and amd["native"] == "linux/amd64" and "linux/arm64" in amd["emulated"]
    assert arm["reachable"] and arm["native"] == "linux/arm64" and arm["version"]  # go install builds say v0.0.0+unknown
    assert not gone["reachable"] and "cannot connect" in gone["error"] and gone["native"] is None


def test_workers_from_pool_config_table(buildkitd_amd64, buildkitd_arm64_tls, tmp_path):
    cfg = tmp_path / "pool.json"
    cfg.write_text(json.dumps({"workers": [
        {"address": buildkitd_amd64.addr, "name": "amd64-1"},
        {"address": buildkitd_arm64_tls.addr, "name": "arm64-1", "tlsdir": str(buildkitd_arm64_tls.tls_dir)},
    ]}))
    res = llbkit("workers", "--pool", str(cfg))
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "ADDRESS", "NATIVE", "EMULATED", "VERSION", "STATUS"]
    arm = [l for l in lines if l.startswith("arm64-1")][0].split()
    assert arm[1:3] == [buildkitd_arm64_tls.addr, "linux/arm64"] and arm[-1] == "reachable"
    # one --addr keeps the single-daemon listing
    res = llbkit("workers", "--addr", buildkitd_amd64.addr)
    assert res.returncode == 0 and res.stdout.decode().split()[:2] == ["ID", "PLATFORMS"]
