"""``llbkit build`` failures against real daemons: each one paragraph on stderr, exit status 1.

- the daemon dies in the middle of a solve (a buildkitd of the test's own, killed by PID);
- a definition buildkitd rejects (its own error is shown);
- a platform the daemon cannot build for.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from llbkit import llb
from llbkit._proto import ops_pb2
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.procs import pid_gone

PLATFORM = "linux/amd64"
SRC = str(Path(__file__).resolve().parents[2])


def llbkit(*args: str, stdin: bytes = b"", timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "llbkit", *args], input=stdin, env=env,
                          capture_output=True, timeout=timeout)


def _one_paragraph(err: str) -> str:
    text = err.strip()
    assert text.startswith("llbkit: error: "), text
    assert "Traceback" not in text, text
    assert "\n\n" not in text, text
    return text


@pytest.fixture
def own_buildkitd():
    daemon = Buildkitd(name="buildkitd_killed")
    try:
        daemon.start()
    except Exception:
        daemon.stop()
        raise
    try:
        yield daemon
    finally:
        daemon.stop()  # also deletes the build containers the killed daemon leaves running


def test_daemon_killed_mid_solve_leaves_no_output(own_buildkitd, registry, tmp_path):
    marker = f"llbkit-kill-{time.time_ns()}"
    st = llb.image(registry.busybox_ref, platform=PLATFORM).run(
        ["/bin/sh", "-c", f"echo {marker}; exec sleep 300"]).root()
    outdir = tmp_path / "out"
    outdir.mkdir()
    dest = outdir / "image.tar"
    log = tmp_path / "err.log"
    env = dict(os.environ, PYTHONPATH=SRC)
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llbkit", "build", "--addr", own_buildkitd.addr, "--progress", "plain",
             "--output", f"type=tar,dest={dest}"],
            stdin=subprocess.PIPE, stderr=err, env=env,
        )
        try:
            proc.stdin.write(st.marshal(platform=PLATFORM).to_bytes())
            proc.stdin.close()
            echoed = re.compile(r"#\d+ \d+\.\d+ " + marker)  # the RUN's output: it is running
            deadline = time.monotonic() + 120
            while not echoed.search(log.read_text(errors="replace")) and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text(errors="replace")
                time.sleep(0.2)
            assert echoed.search(log.read_text(errors="replace"))
            pid = own_buildkitd.pid
            os.kill(pid, signal.SIGKILL)
            assert pid_gone(pid, 10)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(errors="replace")
    assert code == 1, text
    msg = _one_paragraph(text[text.index("llbkit: error: "):])
    assert msg.startswith(f"llbkit: error: lost the connection to buildkitd at {own_buildkitd.addr}"), msg
    assert "nothing was exported" in msg, msg
    assert list(outdir.iterdir()) == []  # neither image.tar nor a temp file


def test_daemon_killed_mid_export_leaves_no_partial_file(own_buildkitd, registry, tmp_path):
    # 300 MB streamed back as a tar: kill the daemon once part of it has arrived.
    big = llb.image(registry.busybox_ref, platform=PLATFORM).run(
        ["/bin/sh", "-c", f"dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null; echo {time.time_ns()}"]).root()
    st = llb.scratch().file(llb.copy(big, "/big", "/big"))
    outdir = tmp_path / "out"
    outdir.mkdir()
    dest = outdir / "image.tar"
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llbkit", "build", "--addr", own_buildkitd.addr, "--progress", "quiet",
         "--output", f"type=tar,dest={dest}"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        proc.stdin.write(st.marshal(platform=PLATFORM).to_bytes())
        proc.stdin.close()
        deadline = time.monotonic() + 120
        partial = []
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in outdir.iterdir() if p.stat().st_size > 4 * 1024 * 1024]
            if partial:
                break
            time.sleep(0.02)
        assert partial, "the export never started"
        assert partial[0].name != "image.tar"  # written under a temporary name
        pid = own_buildkitd.pid
        os.kill(pid, signal.SIGKILL)
        assert pid_gone(pid, 10)
        code = proc.wait(timeout=60)
        err = proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1, err
    msg = _one_paragraph(err)
    assert "lost the connection to buildkitd" in msg, msg
    left = list(outdir.iterdir())
    if left:
        # On a loaded machine the kill can land after the whole tar arrived (and was committed)
        # but before the solve returned: that file is complete, never partial.
        assert left == [dest], left
        with tarfile.open(dest) as tar:
            sizes = {m.name.lstrip("./"): m.size for m in tar.getmembers()}
        assert sizes.get("big") == 300 * 1024 * 1024, sizes
    # otherwise the temp file was removed and no image.tar exists


def test_definition_rejected_by_buildkitd_shows_its_error(buildkitd_amd64, tmp_path):
    # Well formed bytes (every input names an earlier op), but no such source scheme.
    source = ops_pb2.Op(source=ops_pb2.SourceOp(identifier="nosuchscheme://llbkit/test"))
    raw = source.SerializeToString(deterministic=True)

    dgst = "sha256:" + hashlib.sha256(raw).hexdigest()
    terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=dgst, index=0)])
    d = ops_pb2.Definition()
    getattr(d, "def").extend([raw, terminal.SerializeToString(deterministic=True)])
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "quiet",
                 stdin=d.SerializeToString(deterministic=True))
    msg = _one_paragraph(res.stderr.decode())
    assert res.returncode == 1, msg
    assert "unknown scheme nosuchscheme" in msg, msg  # BuildKit's own words


def test_unknown_platform_opt(buildkitd_amd64, registry):
    st = llb.image(registry.busybox_ref, platform=PLATFORM).run(["/bin/true"]).root()
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "quiet",
                 "--opt", "platform=linux/s390x", stdin=st.marshal(platform=PLATFORM).to_bytes())
    msg = _one_paragraph(res.stderr.decode())
    assert res.returncode == 1, msg
    assert msg.startswith("llbkit: error: cannot build for linux/s390x: buildkitd at "), msg
    assert "linux/amd64" in msg, msg


def test_definition_for_a_platform_the_daemon_cannot_run(buildkitd_amd64, registry):
    st = llb.image(registry.busybox_ref, platform="linux/s390x").run(["/bin/true"]).root()
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "quiet",
                 stdin=st.marshal(platform="linux/s390x").to_bytes())
    msg = _one_paragraph(res.stderr.decode())
    assert res.returncode == 1, msg
    assert msg.startswith("llbkit: error: cannot build for linux/s390x: buildkitd at "), msg
    assert "linux/amd64" in msg, msg


def test_a_full_disk_under_the_output_is_one_paragraph_and_leaves_nothing(registry, buildkitd_amd64,
                                                                         tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        state = llb.image(registry.busybox_ref, platform=PLATFORM).run(
            ["sh", "-c", "head -c 3145728 /dev/urandom > /big && echo cli-full-disk"]).root()
        data = state.marshal(platform=PLATFORM).to_bytes()
        res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "quiet",
                     "--output", f"type=oci,dest={small}/out.tar", stdin=data)
        assert res.returncode == 1
        text = _one_paragraph(res.stderr.decode())
        assert "No space left on device" in text and "the disk holding the output is full" in text, text
        assert list(small.iterdir()) == [], "a full disk left a partial output"
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
