"""``python -m llbkit`` against the fixture daemons and registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llbkit import llb
from llbkit.testutil import skopeo

SRC = str(Path(__file__).resolve().parents[2])


def llbkit(*args: str, stdin: bytes = b"", env: dict = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = SRC + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "llbkit", *args], input=stdin, env=e,
                          capture_output=True, timeout=timeout)


def _def(busybox_ref: str, platform: str = "linux/amd64") -> bytes:
    st = llb.image(busybox_ref, platform=platform).run(["/bin/sh", "-c", "echo cli > /cli.txt"]).root()
    return st.marshal(platform=platform).to_bytes()


def test_build_push_with_config_and_metadata(buildkitd_amd64, registry, tmp_path):
    target = registry.ref("llbkit-cli/app", "v1")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"env": {"X": "1"}, "entrypoint": ["/bin/cat"], "cmd": ["/cli.txt"],
                               "labels": {"a": "b"}, "workdir": "/", "exposed_ports": ["80"]}))
    meta = tmp_path / "meta.json"
    deffile = tmp_path / "app.llb"
    deffile.write_bytes(_def(registry.busybox_ref))
    res = llbkit("build", str(deffile), "--addr", buildkitd_amd64.addr, "--progress", "plain",
                 "--opt", "platform=linux/amd64", "--image-config", str(cfg), "--base", registry.busybox_ref,
                 "--output", f"type=image,name={target},push=true", "--metadata-file", str(meta))
    assert res.returncode == 0, res.stderr.decode()
    err = res.stderr.decode()
    assert "#1 " in err and "DONE" in err and "echo cli" in err
    md = json.loads(meta.read_text())
    assert md["containerimage.digest"] == skopeo.digest_of(skopeo.inspect_raw(target))
    assert md["containerimage.descriptor"]["digest"] == md["containerimage.digest"]
    info = skopeo.inspect(target)
    assert "X=1" in info["Env"] and info["Labels"] == {"a": "b"}


def test_build_from_stdin_json_progress_to_oci(buildkitd_amd64, registry, tmp_path):
    out = tmp_path / "img.tar"
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "json",
                 "--output", f"type=oci,dest={out}", stdin=_def(registry.busybox_ref))
    assert res.returncode == 0, res.stderr.decode()
    events = [json.loads(l) for l in res.stdout.decode().splitlines()]
    assert {e["type"] for e in events} >= {"vertex", "result"}
    assert out.stat().st_size > 0


def test_failing_build_exit_status_and_message(buildkitd_amd64, registry):
    st = llb.image(registry.busybox_ref, platform="linux/amd64").run(
        ["/bin/sh", "-c", "echo boom-output; exit 7"]).root()
    res = llbkit("build", "--addr", buildkitd_amd64.addr, "--progress", "quiet",
                 stdin=st.marshal(platform="linux/amd64").to_bytes())
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.startswith("llbkit: error: failed to solve: step ")
    assert "exited with code 7" in err and "boom-output" in err
    assert "Traceback" not in err


def test_workers_over_tls(buildkitd_arm64_tls):
    res = llbkit("workers", "--addr", buildkitd_arm64_tls.addr, "--tlsdir", str(buildkitd_arm64_tls.tls_dir),
                 "--format", "json")
    assert res.returncode == 0, res.stderr.decode()
    workers = json.loads(res.stdout)
    assert workers[0]["platforms"][0] == "linux/arm64"


def test_du_and_prune(buildkitd_amd64):
    res = llbkit("du", "--addr", buildkitd_amd64.addr)
    assert res.returncode == 0, res.stderr.decode()
    assert "Total:" in res.stdout.decode()
    res = llbkit("prune", "--addr", buildkitd_amd64.addr, "--filter", "id==nothing-like-this")
    assert res.returncode == 0, res.stderr.decode()


def test_unreachable_and_tls_errors(buildkitd_arm64_tls, tmp_path):
    addr = f"unix://{tmp_path}/none.sock"
    res = llbkit("workers", "--addr", addr, "--timeout", "5")
    err = res.stderr.decode()
    assert res.returncode == 1 and addr in err and "buildkitd" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    res = llbkit("workers", "--addr", buildkitd_arm64_tls.addr, "--tlscacert", str(buildkitd_arm64_tls.ca_cert))
    err = res.stderr.decode()
    assert res.returncode == 1 and "client certificate" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    res = llbkit("workers", "--addr", buildkitd_arm64_tls.addr, "--tlscacert", str(tmp_path / "missing.pem"))
    err = res.stderr.decode()
    assert res.returncode == 1 and "missing.pem" in err and "does not exist" in err
    res = llbkit("workers", "--addr", buildkitd_arm64_tls.addr)
    assert res.returncode == 1 and "without TLS" in res.stderr.decode()


def test_interrupt_cancels_the_build_on_the_daemon(buildkitd_amd64, registry, tmp_path):
    import signal
    import time

    marker = f"llbkit-sigint-{time.time_ns()}"
    # A duration of its own, so that the same test running at once under another Python (another
    # daemon, same machine) is not taken for this one's RUN.
    sleep_cmd = f"sleep {3000 + time.time_ns() % 100000}"
    st = llb.image(registry.busybox_ref, platform="linux/amd64").run(
        ["/bin/sh", "-c", f"echo {marker}; exec {sleep_cmd}"]).root()
    e = dict(os.environ, PYTHONPATH=SRC)
    log = tmp_path / "err.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "llbkit", "build", "--addr", buildkitd_amd64.addr,
                                 "--progress", "plain"], stdin=subprocess.PIPE, stderr=err, env=e)
        proc.stdin.write(st.marshal(platform="linux/amd64").to_bytes())
        proc.stdin.close()
        import re

        echoed = re.compile(r"#\d+ \d+\.\d+ " + marker)  # the RUN's output, not its name
        deadline = time.monotonic() + 120
        while not echoed.search(log.read_text(errors="replace")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert echoed.search(log.read_text(errors="replace"))
        time.sleep(0.5)

        def sleeping() -> bool:
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            return any(line.strip() == sleep_cmd for line in ps.splitlines())

        assert sleeping()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    text = log.read_text()
    assert "interrupted" in text and "Traceback" not in text
    deadline = time.monotonic() + 30
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sleeping()
