"""Builds that end badly leave nothing behind: a full disk is a clear error naming the target, the
path and the space, with no partial output; a buildkitd SIGKILLed during a build (while a RUN runs,
and while the image is being exported to us) is a clear error, and neither the output directory nor
the temp dir keeps anything the build made."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from llbkit.builder import BuildOptions, ExportOptions, LazyPool, SolveJob, build_job, resolve_bases
from llbkit.builder.build import DiskFullError
from llbkit.buildkit import WorkerConfig
from llbkit.errors import LlbkitError
from llbkit.image import ImageSpec, RegistryBase, RunStep, plan
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry
from llbkit.testutil.procs import pids_running

AMD64 = "linux/amd64"


def _job(registry: Registry, name: str, command: str) -> SolveJob:
    spec = ImageSpec(name=name, base=RegistryBase(registry.busybox_ref), steps=(RunStep(command),),
                     platforms=(AMD64,))
    bases = resolve_bases([spec.base.normalized], [AMD64], LazyPool())
    return SolveJob.of(name, plan(spec, base_configs=bases, source_date_epoch=0), ExportOptions())


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR for this test only, so that what the build leaves in the temp dir can be seen; short,
    so that the session's socket dir goes there too (see llbkit.buildkit.session)."""
    d = Path(tempfile.mkdtemp(prefix="llbkit-faults-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", None)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real file system that fills up (mounting needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_a_full_disk_is_a_clear_error_naming_target_path_and_space_and_leaves_nothing(
        registry: Registry, buildkitd_amd64: Buildkitd, small_disk: Path, private_tmp: Path) -> None:
    # Random bytes do not compress: the layer alone is 3 MiB, the disk 1 MiB.
    job = _job(registry, "//faults:full", "head -c 3145728 /dev/urandom > /big && echo full-disk-1")
    with LazyPool([WorkerConfig(buildkitd_amd64.addr)]) as workers:
        with pytest.raises(DiskFullError) as err:
            build_job(job, workers, small_disk / "image.tar", small_disk / "image.json", opts=BuildOptions())
    message = str(err.value)
    assert "//faults:full" in message and str(small_disk) in message, message
    assert "no space left" in message and "MiB are free" in message and "Free some space" in message, message
    assert err.value.path == str(small_disk.resolve()) and err.value.free is not None
    assert list(small_disk.iterdir()) == [], "a full disk left partial outputs"
    assert list(private_tmp.iterdir()) == [], "the build left temporary files"


@pytest.fixture
def doomed_buildkitd() -> Iterator[Buildkitd]:
    daemon = Buildkitd(name="buildkitd(to be killed)").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_a_buildkitd_sigkilled_during_a_build_is_a_clear_error_and_leaves_nothing(
        registry: Registry, doomed_buildkitd: Buildkitd, tmp_path: Path, private_tmp: Path) -> None:
    out = tmp_path / "out"
    job = _job(registry, "//faults:killed", "sleep 53")  # a duration of this test's own, to find it by
    daemon = doomed_buildkitd
    killed = threading.Event()

    def kill_when_running() -> None:
        deadline = time.monotonic() + 120
        while not pids_running("sleep 53") and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(daemon.pid, signal.SIGKILL)
        killed.set()

    threading.Thread(target=kill_when_running, daemon=True).start()
    with LazyPool([WorkerConfig(daemon.addr)]) as workers:
        with pytest.raises(LlbkitError) as err:
            build_job(job, workers, out / "image.tar", out / "image.json", opts=BuildOptions(max_attempts=1))
    assert killed.is_set(), f"the build ended before the daemon was killed: {err.value}"
    message = str(err.value)
    assert daemon.addr in message and ("lost the connection" in message or "unreachable" in message), message
    assert list(out.iterdir()) == [], f"the killed build left {list(out.iterdir())}"
    assert list(private_tmp.iterdir()) == [], f"the killed build left {list(private_tmp.iterdir())} in the temp dir"


def _bytes_under(d: Path) -> int:
    total = 0
    for p in d.rglob("*"):
        try:
            total += p.stat().st_size if p.is_file() else 0
        except FileNotFoundError:  # written and moved while we look
            pass
    return total


def test_a_buildkitd_sigkilled_during_the_export_is_a_clear_error_and_leaves_nothing(
        registry: Registry, doomed_buildkitd: Buildkitd, tmp_path: Path, private_tmp: Path) -> None:
    # Random bytes do not compress: a 96 MiB layer streams for a while, so the kill lands while
    # the image is being received, after the solve.
    out = tmp_path / "out"
    job = _job(registry, "//faults:killed-export", "head -c 100663296 /dev/urandom > /big && echo export-kill")
    daemon = doomed_buildkitd
    killed_at: list = []

    def kill_when_exporting() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            received = _bytes_under(out) if out.exists() else 0
            if received > (1 << 20):  # the export has started arriving: kill the daemon now
                os.kill(daemon.pid, signal.SIGKILL)
                killed_at.append(received)
                return
            time.sleep(0.02)

    threading.Thread(target=kill_when_exporting, daemon=True).start()
    out.mkdir()
    with LazyPool([WorkerConfig(daemon.addr)]) as workers:
        with pytest.raises(LlbkitError) as err:
            build_job(job, workers, out / "image.tar", out / "image.json", opts=BuildOptions(max_attempts=1))
    assert killed_at, f"the build ended before the daemon was killed mid-export: {err.value}"
    assert killed_at[0] < 96 << 20, f"the export had finished ({killed_at[0]} bytes) when the daemon was killed"
    message = str(err.value)
    assert daemon.addr in message and ("lost the connection" in message or "unreachable" in message), message
    assert list(out.iterdir()) == [], f"the build killed mid-export left {list(out.iterdir())}"
    assert list(private_tmp.iterdir()) == [], f"the build killed mid-export left {list(private_tmp.iterdir())} in the temp dir"
