"""The worker pool's choices and the multi-platform build's retries, with fake workers."""

from __future__ import annotations

import json
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from llbkit.buildkit import (
    BuildkitVersion,
    ConnectionFailedError,
    DaemonError,
    NoWorkerError,
    PlatformBuildError,
    PlatformJob,
    SolveError,
    WorkerConfig,
    WorkerInfo,
    WorkerPool,
    WorkerStatus,
    build_multiplatform,
    choose_worker,
)
from llbkit.buildkit.pool import normalize_platform, unusable_reason
from llbkit.oci import assemble, open_layout, split, write_oci_tar
from llbkit.testutil.oci_images import LayoutBuilder

AMD = ("linux/amd64", "linux/386", "linux/arm64")
ARM = ("linux/arm64", "linux/arm/v7")


def st(name: str, platforms=AMD, reachable: Optional[bool] = True, in_flight: int = 0, index: int = 0,
       error: str = "") -> WorkerStatus:
    return WorkerStatus(name=name, address=f"tcp://{name}:1234", platforms=tuple(platforms),
                        reachable=reachable, in_flight=in_flight, index=index, error=error)


# -- selection -------------------------------------------------------------------------------

def test_native_worker_preferred_over_emulation():
    ws = [st("amd", AMD, index=0), st("arm", ARM, index=1)]
    assert choose_worker(ws, "linux/arm64").name == "arm"
    assert choose_worker(ws, "linux/amd64").name == "amd"
    # native wins even when it is busier
    ws = [st("amd", AMD, index=0), st("arm", ARM, in_flight=5, index=1)]
    assert choose_worker(ws, "linux/arm64").name == "arm"


def test_emulation_fallback_when_native_unreachable():
    ws = [st("amd", AMD, index=0), st("arm", ARM, reachable=False, error="connection refused", index=1)]
    assert choose_worker(ws, "linux/arm64").name == "amd"
    assert choose_worker(ws, "linux/arm64", allow_emulation=False) is None
    assert choose_worker(ws, "linux/arm64", exclude=["amd"]) is None
    assert choose_worker(ws, "linux/s390x") is None


def test_ties_broken_by_load_then_config_order():
    ws = [st("a1", AMD, in_flight=2, index=0), st("a2", AMD, in_flight=1, index=1),
          st("a3", AMD, in_flight=1, index=2)]
    assert choose_worker(ws, "linux/amd64").name == "a2"
    ws = [st("a1", AMD, index=0), st("a2", AMD, index=1)]
    assert choose_worker(ws, "linux/amd64").name == "a1"
    # among emulating workers too
    ws = [st("a1", AMD, in_flight=3, index=0), st("a2", AMD, in_flight=0, index=1)]
    assert choose_worker(ws, "linux/arm64").name == "a2"


def test_platform_names_normalized():
    assert normalize_platform("linux/arm64/v8") == "linux/arm64"
    assert normalize_platform("Linux/x86_64") == "linux/amd64"
    assert normalize_platform("linux/arm/v7") == "linux/arm/v7"
    assert choose_worker([st("arm", ARM)], "linux/arm64/v8").name == "arm"
    with pytest.raises(Exception, match="os/arch"):
        normalize_platform("arm64")


def test_unusable_reasons_say_why():
    assert "unreachable: refused" in unusable_reason(st("x", reachable=False, error="refused"), "linux/amd64")
    assert "emulation is disallowed" in unusable_reason(st("x", AMD), "linux/arm64", allow_emulation=False)
    assert "cannot build linux/s390x" in unusable_reason(st("x", AMD), "linux/s390x")
    assert unusable_reason(st("x", reachable=None), "linux/amd64") == "not checked yet"
    assert unusable_reason(st("x", AMD), "linux/arm64") is None


# -- the pool with fake clients ------------------------------------------------------------------

class FakeClient:
    """A worker: platforms, reachability, and builds that write a one-platform OCI tar."""

    def __init__(self, name: str, platforms, *, up: bool = True, fail_build: Optional[BaseException] = None,
                 delay: float = 0.0, die_during_build: bool = False) -> None:
        self.name = name
        self.platforms = tuple(platforms)
        self.up = up
        self.fail_build = fail_build
        self.delay = delay
        self.die_during_build = die_during_build
        self.builds: List[str] = []
        self.checks = 0
        self.lock = threading.Lock()

    def _check_up(self) -> None:
        if not self.up:
            raise ConnectionFailedError(f"cannot connect to buildkitd at {self.name}: connection refused", self.name)

    def info(self):
        with self.lock:
            self.checks += 1
        self._check_up()
        from llbkit.buildkit import DaemonInfo
        return DaemonInfo(version=BuildkitVersion("github.com/moby/buildkit", "v0.32.2", "abc"))

    def list_workers(self):
        self._check_up()
        return [WorkerInfo(id="w0", platforms=self.platforms)]

    def build(self, fn, *, exports, ref, **kw):
        self._check_up()
        time.sleep(self.delay)
        if self.die_during_build:
            self.up = False
            raise SolveError("failed to solve: rpc error: Socket closed", detail="Socket closed")
        if self.fail_build is not None:
            raise self.fail_build
        gw = FakeGateway()
        res = fn(gw)
        cfg = json.loads(res.single[1])
        platform = f"{cfg['os']}/{cfg['architecture']}"
        with self.lock:
            self.builds.append(platform)
        content = f"{cfg['architecture']}\n".encode()
        if exports[0].dest == "-":  # streamed to the caller, as the session does
            with tempfile.TemporaryDirectory() as d:
                tar = Path(d) / "export.tar"
                _write_platform_tar(tar, platform, content)
                data = tar.read_bytes()
            for i in range(0, len(data), 1000):  # in pieces that cut across tar blocks
                kw["stdout"].write(data[i:i + 1000])
        else:
            _write_platform_tar(Path(exports[0].dest), platform, content)
        from llbkit.buildkit import SolveResult
        return SolveResult(ref=ref)

    def close(self):
        pass


class FakeGateway:
    def solve(self, definition):
        from llbkit.buildkit import GatewayRef
        return GatewayRef("ref-" + str(definition))


def _write_platform_tar(dest: Path, platform: str, content: bytes) -> None:
    # every worker gives the same bytes for the same platform, like a real reproducible build
    root = dest.with_suffix(".dir")
    b = LayoutBuilder(root)
    b.finish([b.image(platform, [{"arch": content}])])
    with open_layout(root) as layout:
        write_oci_tar(assemble(split(layout)), dest)


def make_pool(*clients: FakeClient, **kw) -> WorkerPool:
    by_name = {c.name: c for c in clients}
    return WorkerPool([WorkerConfig(f"tcp://{c.name}:1234", name=c.name, insecure=True) for c in clients],
                      client_factory=lambda cfg, timeout: by_name[cfg.name], **kw)


def jobs(*platforms: str) -> List[PlatformJob]:
    return [PlatformJob(p, f"def-{p}", {"os": p.split("/")[0], "architecture": p.split("/")[1]})
            for p in platforms]


def test_pool_learns_platforms_and_marks_unreachable():
    pool = make_pool(FakeClient("amd", AMD), FakeClient("arm", ARM, up=False))
    ss = pool.check_all()
    assert [s.name for s in ss] == ["amd", "arm"]
    assert ss[0].reachable and ss[0].native_platform == "linux/amd64"
    assert ss[0].emulated_platforms == ("linux/386", "linux/arm64")
    assert str(ss[0].version) == "github.com/moby/buildkit v0.32.2 abc"
    assert ss[1].reachable is False and "connection refused" in ss[1].error
    with pool.acquire("linux/arm64") as lease:
        assert lease.name == "amd" and lease.emulated
    with pytest.raises(NoWorkerError) as ei:
        pool.acquire("linux/arm64", allow_emulation=False)
    assert ei.value.platform == "linux/arm64"
    text = str(ei.value)
    assert "arm (tcp://arm:1234): unreachable" in text and "emulation is disallowed" in text


def test_declared_platforms_replace_learned_ones():
    c = FakeClient("amd", AMD)
    pool = WorkerPool([WorkerConfig("tcp://amd:1234", name="amd", insecure=True, platforms=("linux/amd64",))],
                      client_factory=lambda cfg, t: c)
    assert pool.check("amd").platforms == ("linux/amd64",)
    with pytest.raises(NoWorkerError):
        pool.acquire("linux/arm64")


def test_leases_spread_load_and_release():
    pool = make_pool(FakeClient("a1", AMD), FakeClient("a2", AMD))
    l1 = pool.acquire("linux/amd64")
    l2 = pool.acquire("linux/amd64")
    assert {l1.name, l2.name} == {"a1", "a2"}
    l1.release()
    l1.release()  # idempotent
    assert pool.acquire("linux/amd64").name == l1.name
    assert {s.name: s.in_flight for s in pool.statuses()} == {l1.name: 1, l2.name: 1}


def test_health_checked_once_per_ttl():
    c = FakeClient("amd", AMD)
    pool = make_pool(c, health_ttl=60)
    for _ in range(3):
        pool.acquire("linux/amd64").release()
    assert c.checks == 1
    pool = make_pool(FakeClient("amd2", AMD), health_ttl=0)
    pool.acquire("linux/amd64").release()


def test_pool_rejects_duplicate_names_and_empty():
    with pytest.raises(Exception, match="unique"):
        WorkerPool([WorkerConfig("tcp://a:1", insecure=True, name="x"), WorkerConfig("tcp://b:1", insecure=True, name="x")])
    with pytest.raises(Exception, match="at least one worker"):
        WorkerPool([])


# -- build_multiplatform with fake workers --------------------------------------------------------

def _index_platforms(path: Path) -> List[str]:
    with open_layout(path) as layout:
        return [str(i.platform) for i in split(layout)]


def test_builds_on_native_workers_in_declared_order(tmp_path):
    amd, arm = FakeClient("amd", AMD, delay=0.3), FakeClient("arm", ARM)  # arm finishes first
    logs: List[str] = []
    res = build_multiplatform(make_pool(amd, arm), jobs("linux/amd64", "linux/arm64"), tmp_path / "img.tar",
                              log=logs.append)
    assert _index_platforms(tmp_path / "img.tar") == ["linux/amd64", "linux/arm64"]
    assert [(b.platform, b.worker, b.emulated) for b in res.builds] == [
        ("linux/amd64", "amd", False), ("linux/arm64", "arm", False)]
    assert res.workers == {"linux/amd64": "amd", "linux/arm64": "arm"}
    assert [p["worker"] for p in res.image_record()["platforms"]] == ["amd", "arm"]
    assert amd.builds == ["linux/amd64"] and arm.builds == ["linux/arm64"]
    assert any("linux/arm64: building on arm (native)" in l for l in logs)
    assert not [p for p in tmp_path.iterdir() if p.name != "img.tar"]  # temp files removed
    # the same image on one worker (arm64 emulated): same bytes
    res1 = build_multiplatform(make_pool(FakeClient("amd", AMD)), jobs("linux/amd64", "linux/arm64"),
                               tmp_path / "one.tar")
    assert res1.digest == res.digest and res1.builds[1].emulated
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "img.tar").read_bytes()


def test_worker_dying_mid_solve_is_retried_elsewhere(tmp_path):
    arm = FakeClient("arm", ARM, die_during_build=True)
    amd = FakeClient("amd", AMD)
    logs: List[str] = []
    res = build_multiplatform(make_pool(arm, amd), jobs("linux/arm64", "linux/amd64"), tmp_path / "i.tar",
                              log=logs.append)
    b = res.builds[0]
    assert (b.worker, b.emulated) == ("amd", True)
    assert [(a.worker, a.error is None) for a in b.attempts] == [("arm", False), ("amd", True)]
    assert any("worker arm failed" in l and "trying another worker" in l for l in logs)
    assert any("linux/arm64: building on amd (emulated), attempt 2" in l for l in logs)
    assert sorted(amd.builds) == ["linux/amd64", "linux/arm64"]


def test_no_emulation_error_names_platform_and_every_worker(tmp_path):
    arm = FakeClient("arm", ARM, die_during_build=True)
    amd = FakeClient("amd", AMD)
    with pytest.raises(NoWorkerError) as ei:
        build_multiplatform(make_pool(arm, amd), jobs("linux/amd64", "linux/arm64"), tmp_path / "i.tar",
                            allow_emulation=False)
    e = ei.value
    assert e.platform == "linux/arm64"
    names = [w for w, _ in e.workers]
    assert names == ["arm (tcp://arm:1234)", "amd (tcp://amd:1234)"]  # configuration order
    reasons = dict(e.workers)
    assert "Socket closed" in reasons["arm (tcp://arm:1234)"]
    assert "emulation is disallowed" in reasons["amd (tcp://amd:1234)"]
    assert str(e).startswith("cannot build linux/arm64: no worker left after 1 attempt")
    assert not (tmp_path / "i.tar").exists()


def test_attempts_are_bounded(tmp_path):
    ws = [FakeClient(f"a{i}", AMD, die_during_build=True) for i in range(4)]
    with pytest.raises(NoWorkerError, match="gave up after 2 attempts") as ei:
        build_multiplatform(make_pool(*ws), jobs("linux/amd64"), tmp_path / "i.tar", max_attempts=2)
    assert sum(1 for c in ws if not c.up) == 2
    assert "already tried" not in str(ei.value)


def test_build_failure_on_healthy_worker_not_retried(tmp_path):
    err = SolveError("failed to solve: step 'false' exited with code 1", exit_code=1)
    amd = FakeClient("amd", AMD, fail_build=err)
    amd2 = FakeClient("amd2", AMD)
    with pytest.raises(PlatformBuildError) as ei:
        build_multiplatform(make_pool(amd, amd2), jobs("linux/amd64"), tmp_path / "i.tar")
    assert ei.value.cause is err and ei.value.worker == "amd"
    assert "failed to solve linux/amd64 on worker amd" in str(ei.value)
    assert amd2.builds == []


def test_unreachable_worker_skipped_before_use(tmp_path):
    arm = FakeClient("arm", ARM, up=False)
    amd = FakeClient("amd", AMD)
    res = build_multiplatform(make_pool(arm, amd), jobs("linux/arm64"), tmp_path / "i.tar")
    assert res.builds[0].worker == "amd" and len(res.builds[0].attempts) == 1


def test_duplicate_platform_refused(tmp_path):
    with pytest.raises(Exception, match="listed twice"):
        build_multiplatform(make_pool(FakeClient("amd", AMD)), jobs("linux/amd64", "linux/amd64/v1"),
                            tmp_path / "i.tar")


def test_load_pool_config(tmp_path):
    from llbkit.buildkit.pool import load_pool_config

    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("x")
    cfg = tmp_path / "pool.json"
    cfg.write_text(json.dumps({"workers": [
        {"address": "unix:///run/buildkit/buildkitd.sock"},
        {"address": "tcp://arm64.build:1234", "name": "arm", "tlsdir": "certs", "platforms": ["linux/arm64/v8"]},
    ]}))
    a, b = load_pool_config(str(cfg))
    assert a.name == a.address and a.tls is None
    assert b.name == "arm" and b.platforms == ("linux/arm64",)
    assert b.tls.ca_cert == str(tmp_path / "certs" / "ca.pem")
    cfg.write_text(json.dumps({"workers": [{"address": "tcp://x:1", "tls_dir": "certs"}]}))
    with pytest.raises(Exception, match="unknown key"):
        load_pool_config(str(cfg))
    cfg.write_text("{}")
    with pytest.raises(Exception, match="non-empty"):
        load_pool_config(str(cfg))


def test_shared_load_slots_follow_leases(tmp_path):
    from llbkit.buildkit.shared_load import SharedLoad

    load = SharedLoad(tmp_path / "load")
    other = SharedLoad(tmp_path / "load")  # what another process sees
    pool = make_pool(FakeClient("a1", AMD), FakeClient("arm", ARM, up=False), shared_load=load)
    lease = pool.acquire("linux/amd64")
    assert other.count("tcp://a1:1234") == 1
    with pytest.raises(NoWorkerError):
        pool.acquire("linux/arm64", allow_emulation=False)  # a failed acquisition takes no slot
    assert other.count("tcp://arm:1234") == 0 and other.count("tcp://a1:1234") == 1
    lease.release()
    assert other.count("tcp://a1:1234") == 0
    assert list((tmp_path / "load").rglob("*-*")) == []  # no slot file left


def _acquire_after(pool: WorkerPool, order: List[str], got: List[Any]) -> threading.Thread:
    def take() -> None:
        lease = pool.acquire("linux/amd64")
        order.append("acquired")
        got.append(lease)

    t = threading.Thread(target=take, daemon=True)
    t.start()
    return t


def test_max_in_flight_waits_for_a_free_place_on_the_worker():
    pool = make_pool(FakeClient("a1", AMD), max_in_flight=1, wait_poll=0.01)
    first = pool.acquire("linux/amd64")
    order: List[str] = []
    got: List[Any] = []
    t = _acquire_after(pool, order, got)
    order.append("released")  # before release(): the waiting acquire cannot have returned yet
    first.release()
    t.join(timeout=60)
    assert order == ["released", "acquired"] and got[0].name == "a1"
    got[0].release()


def test_max_in_flight_counts_other_processes_builds(tmp_path):
    from llbkit.buildkit.shared_load import SharedLoad

    mine = make_pool(FakeClient("a1", AMD), FakeClient("a2", AMD),
                     shared_load=SharedLoad(tmp_path / "load"), max_in_flight=1, wait_poll=0.01)
    other = make_pool(FakeClient("a1", AMD), FakeClient("a2", AMD),  # another build process
                      shared_load=SharedLoad(tmp_path / "load"), max_in_flight=1, wait_poll=0.01)
    held = [other.acquire("linux/amd64"), other.acquire("linux/amd64")]
    assert sorted(h.name for h in held) == ["a1", "a2"]  # one on each: both workers are full now
    order: List[str] = []
    got: List[Any] = []
    t = _acquire_after(mine, order, got)
    order.append("released")
    held[1].release()
    t.join(timeout=60)
    assert order == ["released", "acquired"] and got[0].name == held[1].name
    got[0].release()
    held[0].release()


def test_max_in_flight_must_not_be_negative():
    with pytest.raises(Exception, match="0 \\(no limit\\) or more"):
        make_pool(FakeClient("a1", AMD), max_in_flight=-1)
