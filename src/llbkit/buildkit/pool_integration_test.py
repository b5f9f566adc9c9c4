"""Multi-platform builds on a pool of the fixture daemons: native scheduling checked from the
daemons' build histories, emulation fallback, failover when a worker is killed mid-solve."""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
import signal
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import pytest

from llbkit import llb
from llbkit.buildkit import (
    ImageConfig,
    NoWorkerError,
    PlatformJob,
    TLSConfig,
    WorkerConfig,
    WorkerPool,
    build_multiplatform,
)
from llbkit.oci import open_layout, split
from llbkit.oci.types import sha256_digest
from llbkit.testutil import skopeo
from llbkit.testutil.buildkitd import Buildkitd

PLATFORMS = ("linux/amd64", "linux/arm64")
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def amd_worker(bk) -> WorkerConfig:
    return WorkerConfig(bk.addr, name="amd64-unix")


def arm_worker(bk) -> WorkerConfig:
    return WorkerConfig(bk.addr, name="arm64-tls", tls=TLSConfig.from_dir(str(bk.tls_dir)))


def image_jobs(busybox_ref: str, token: str, arm_script: str = "") -> List[PlatformJob]:
    """busybox + a run writing ``uname -m`` to /arch (and ``token``, so each test's image is new)."""
    out = []
    for p in PLATFORMS:
        script = (arm_script if p == "linux/arm64" else "") + f"echo {token} > /token && uname -m > /arch"
        st = llb.image(busybox_ref, platform=p).run(["/bin/sh", "-c", script]).root()
        cfg = ImageConfig(cmd=["cat", "/arch"]).to_json_bytes(p)
        out.append(PlatformJob(p, st.marshal(platform=p), cfg))
    return out


def histories(bk) -> Dict[str, dict]:
    """The daemon's build records by build ref (``buildctl debug histories``)."""
    out = bk.buildctl("debug", "histories", "--format", "{{json .}}").stdout
    recs = {}
    for line in out.splitlines():
        if line.strip():
            r = json.loads(line)["record"]
            recs[r["Ref"]] = r
    return recs


def layer_file(path, platform: str, name: str) -> bytes:
    with open_layout(path) as layout:
        image = [i for i in split(layout) if str(i.platform) == platform][0]
        with layout.open_blob(image.layers[-1]) as f:
            data = gzip.decompress(f.read())
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.extractfile(name).read()  # type: ignore[union-attr]


def test_two_platforms_on_native_daemons_and_on_one(buildkitd_amd64, buildkitd_arm64_tls, registry, tmp_path):
    jobs = image_jobs(registry.busybox_ref, secrets.token_hex(8))
    logs: List[str] = []
    with WorkerPool([amd_worker(buildkitd_amd64), arm_worker(buildkitd_arm64_tls)]) as pool:
        res = build_multiplatform(pool, jobs, tmp_path / "two.tar", log=logs.append)
    amd, arm = res.builds
    assert (amd.platform, amd.worker, amd.emulated) == ("linux/amd64", "amd64-unix", False)
    assert (arm.platform, arm.worker, arm.emulated) == ("linux/arm64", "arm64-tls", False)

    # from the daemons' side: each daemon's build history holds its platform's build, whose result
    # is the manifest the index names for that platform, and not the other one's
    manifests = {str(i.platform): i.manifest.digest for i in res.assembled.images}
    h_amd, h_arm = histories(buildkitd_amd64), histories(buildkitd_arm64_tls)
    assert h_amd[amd.ref]["Result"]["ResultDeprecated"]["digest"] == manifests["linux/amd64"]
    assert h_arm[arm.ref]["Result"]["ResultDeprecated"]["digest"] == manifests["linux/arm64"]
    assert arm.ref not in h_amd and amd.ref not in h_arm

    # the index: both platforms, in the declared order, as skopeo reads the archive
    raw = skopeo.skopeo("inspect", "--raw", f"oci-archive:{tmp_path / 'two.tar'}", text=False).stdout
    assert sha256_digest(raw) == res.digest
    index = json.loads(raw)
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]] == [
        ("linux", "amd64"), ("linux", "arm64")]
    assert [m["digest"] for m in index["manifests"]] == [manifests["linux/amd64"], manifests["linux/arm64"]]
    for p in PLATFORMS:  # each variant's run reports its own architecture
        assert layer_file(tmp_path / "two.tar", p, "arch").decode().strip() == ARCH[p]
    record = res.image_record(tags=["example.com/pool:1"])
    assert [(p["platform"], p["worker"]) for p in record["platforms"]] == [
        ("linux/amd64", "amd64-unix"), ("linux/arm64", "arm64-tls")]
    assert any("linux/arm64: building on arm64-tls (native)" in l for l in logs)

    # only the amd64 daemon: arm64 by emulation, the same index, byte for byte
    with WorkerPool([amd_worker(buildkitd_amd64)]) as pool:
        res1 = build_multiplatform(pool, jobs, tmp_path / "one.tar")
    assert [(b.worker, b.emulated) for b in res1.builds] == [("amd64-unix", False), ("amd64-unix", True)]
    assert res1.builds[1].ref in histories(buildkitd_amd64)
    assert res1.digest == res.digest
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()


@pytest.mark.parametrize("allow_emulation", [True, False], ids=["retried", "no-emulation"])
def test_worker_killed_mid_solve(buildkitd_amd64, registry, tmp_path, allow_emulation):
    extra = Buildkitd(platform="linux/arm64", name="buildkitd_arm64_killed").start()
    killed = threading.Event()
    try:
        def progress(platform, worker):
            if worker != "arm64-extra":
                return None

            def handler(status):
                for v in status.vertexes:
                    if "sleep 3" in v.name and v.started and not v.completed and not killed.is_set():
                        killed.set()
                        os.kill(extra.pid, signal.SIGKILL)  # the daemon we started, by PID
            return handler

        pool = WorkerPool([WorkerConfig(extra.addr, name="arm64-extra"), amd_worker(buildkitd_amd64)],
                          health_timeout=3)
        jobs = image_jobs(registry.busybox_ref, secrets.token_hex(8), arm_script="sleep 3 && ")
        logs: List[str] = []
        with pool:
            if allow_emulation:
                res = build_multiplatform(pool, jobs, tmp_path / "img.tar", log=logs.append, progress=progress)
            else:
                with pytest.raises(NoWorkerError) as ei:
                    build_multiplatform(pool, jobs, tmp_path / "img.tar", log=logs.append,
                                        progress=progress, allow_emulation=False)
        assert killed.is_set()
        if allow_emulation:
            arm = res.builds[1]
            assert (arm.worker, arm.emulated) == ("amd64-unix", True)
            assert [a.worker for a in arm.attempts] == ["arm64-extra", "amd64-unix"]
            assert arm.attempts[0].error
            assert any("linux/arm64: worker arm64-extra failed" in l and "trying another worker" in l for l in logs)
            assert layer_file(tmp_path / "img.tar", "linux/arm64", "arch").decode().strip() == "aarch64"
            assert res.builds[0].worker == "amd64-unix"
        else:
            e = ei.value
            assert e.platform == "linux/arm64"
            reasons = dict(e.workers)
            assert set(reasons) == {f"arm64-extra ({extra.addr})", f"amd64-unix ({buildkitd_amd64.addr})"}
            assert reasons[f"arm64-extra ({extra.addr})"].startswith("failed: ")
            assert "emulation is disallowed" in reasons[f"amd64-unix ({buildkitd_amd64.addr})"]
            assert str(e).startswith("cannot build linux/arm64: no worker left after 1 attempt")
            assert not (tmp_path / "img.tar").exists()
    finally:
        extra.stop()


def test_ten_images_two_platforms_over_both_daemons(buildkitd_amd64, buildkitd_arm64_tls, registry, tmp_path):
    token = secrets.token_hex(6)
    with WorkerPool([amd_worker(buildkitd_amd64), arm_worker(buildkitd_arm64_tls)]) as pool:
        def one(i: int):
            return build_multiplatform(pool, image_jobs(registry.busybox_ref, f"{token}-{i}"),
                                       tmp_path / f"img{i}.tar")
        with ThreadPoolExecutor(max_workers=5) as ex:
            results = list(ex.map(one, range(10)))
        assert all(s.in_flight == 0 for s in pool.statuses())
    used = {b.worker for r in results for b in r.builds}
    assert used == {"amd64-unix", "arm64-tls"}
    h_amd, h_arm = histories(buildkitd_amd64), histories(buildkitd_arm64_tls)
    for i, r in enumerate(results):
        assert [str(im.platform) for im in r.assembled.images] == list(PLATFORMS)
        assert r.builds[0].ref in h_amd and r.builds[1].ref in h_arm
        assert layer_file(tmp_path / f"img{i}.tar", "linux/arm64", "token").decode().strip() == f"{token}-{i}"
    assert len({r.digest for r in results}) == 10
