"""Under one pantsd, each run builds with the invoking shell's environment and the registry's
current state: a secret's value changed between runs, `DOCKER_CONFIG` switched between runs,
`BUILDKIT_HOST` set for one run and a base tag moved between runs are all seen by the next run. And Ctrl-C during a long RUN stops
that RUN on the daemon within seconds and leaves nothing in dist/, with and without pantsd.

Each test writes a `scenario/` directory into one checkout of this repo (see `checkout.py`) and
packages only it; the checkout's pantsd and auto-started buildkitd are stopped at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from textwrap import dedent
from typing import Iterator, List

import pytest

from checkout import Checkout
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    busybox_image,
    pytest_runtest_makereport,
    registry,
    registry_auth,
)
from llbkit.testutil.procs import make_temp_dir, pids_running, remove_tree
from llbkit.testutil.registry import Registry
from llbkit.testutil.run_image import run_image
from llbkit.testutil.tools import find_tool

BUSYBOX = "127.0.0.1:5050/llbkit/busybox:latest"  # the samples' registry, started by ./pants


@pytest.fixture(scope="module")
def checkout() -> Iterator[Checkout]:
    base = make_temp_dir("pantsd-it", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    # Pants' sandboxes, so that a test can see none is left behind (short: a build process puts
    # its temp dir, with the session's unix socket, into its sandbox).
    exec_root = make_temp_dir("x")
    co = Checkout(base, "p", pantsd=True, env={"PANTS_LOCAL_EXECUTION_ROOT_DIR": str(exec_root)})
    try:
        yield co
    finally:
        co.close()
        remove_tree(base)
        remove_tree(exec_root)


def _write(co: Checkout, files: dict) -> None:
    for rel, text in files.items():
        path = co.repo / "scenario" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))


def _image(co: Checkout, name: str) -> Path:
    return co.repo / "dist" / "scenario" / f"{name}.oci.tar"


def _out(co: Checkout, name: str) -> str:
    return run_image(_image(co, name), "linux/amd64").check().stdout


def test_a_secret_changed_between_two_runs_is_the_one_the_second_build_sees(checkout: Checkout) -> None:
    _write(checkout, {"BUILD": f"""\
        files(name="files", sources=["stamp.txt"])
        container_image(name="secret", base="{BUSYBOX}", platforms=["linux/amd64"],
                        steps=[copy("stamp.txt", "/"),
                               run("sha256sum < /run/secrets/token | cut -c1-64 > /token.sha",
                                   secrets=[secret_mount("token")])],
                        cmd=["cat", "/token.sha"])
        """})
    option = "--buildkit-secrets=['token=env:LLBKIT_PANTSD_TOKEN']"
    for n in range(2):
        value = f"value-{n}-{secrets.token_hex(4)}"
        _write(checkout, {"stamp.txt": f"{value}\n"})  # a new context: the image is solved again
        run = checkout.package(option, targets=["scenario:secret"], env={"LLBKIT_PANTSD_TOKEN": value}).check()
        assert run.how_built() == {"scenario:secret": "solved in"}, run.log[-3000:]
        assert _out(checkout, "secret").strip() == hashlib.sha256(value.encode()).hexdigest()
    assert checkout.pantsd_pids(), "these runs were meant to share one pantsd"


def test_docker_config_switched_between_runs_is_honoured(checkout: Checkout, registry_auth: Registry,
                                                        tmp_path: Path) -> None:
    good = registry_auth.docker_config(tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"auths": {registry_auth.host: {"auth": "bm9ib2R5Om5vcGU="}}}))
    _write(checkout, {"BUILD": f"""\
        container_image(name="private", base="{registry_auth.busybox_ref}", platforms=["linux/amd64"],
                        steps=[run("echo {secrets.token_hex(4)} > /stamp")], cmd=["cat", "/stamp"])
        """})
    checkout.package(targets=["scenario:private"], env={"DOCKER_CONFIG": str(good)}).check()
    refused = checkout.package(targets=["scenario:private"], env={"DOCKER_CONFIG": str(bad)})
    assert refused.returncode != 0
    assert registry_auth.host in refused.log and "401" in refused.log, refused.log[-3000:]
    assert "Traceback" not in refused.log
    checkout.package(targets=["scenario:private"], env={"DOCKER_CONFIG": str(good)}).check()


def test_buildkit_host_of_each_run_is_the_worker_when_none_is_configured(checkout: Checkout) -> None:
    _write(checkout, {"BUILD": f"""\
        container_image(name="host", base="{BUSYBOX}", platforms=["linux/amd64"],
                        steps=[run("echo {secrets.token_hex(4)} > /stamp")])
        """})
    dead = f"unix://{checkout.repo}/no-such-buildkitd.sock"
    refused = checkout.package(targets=["scenario:host"], env={"BUILDKIT_HOST": dead})
    assert refused.returncode != 0
    assert f"BUILDKIT_HOST ({dead}): unreachable" in refused.log, refused.log[-3000:]
    run = checkout.package(targets=["scenario:host"]).check()  # unset again: the local buildkitd
    assert run.how_built() == {"scenario:host": "solved in"}


def _skopeo_copy(src: str, dest: str, *, all_platforms: bool) -> str:
    skopeo = str(find_tool("skopeo"))
    subprocess.run([skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    *(["--all"] if all_platforms else ["--override-arch", "amd64", "--override-os", "linux"]),
                    f"docker://{src}", f"docker://{dest}"], check=True, capture_output=True, timeout=120)
    raw = subprocess.run([skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"],
                         check=True, capture_output=True, timeout=60).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_a_base_tag_moved_between_two_runs_is_rebuilt_from_the_new_digest(checkout: Checkout,
                                                                         registry: Registry) -> None:
    moving = registry.ref("moving", "latest")
    first = _skopeo_copy(registry.busybox_ref, moving, all_platforms=True)  # the index
    _write(checkout, {"BUILD": f"""\
        container_image(name="moved", base="{moving}", platforms=["linux/amd64"],
                        steps=[run("echo moved > /stamp")], cmd=["cat", "/stamp"])
        """})
    checkout.package(targets=["scenario:moved"]).check()
    assert first in checkout.pants("llb", "scenario:moved").check().log
    # Unmoved: served from pantsd's memory (nothing logged) or from Pants' cache, never solved.
    assert checkout.package(targets=["scenario:moved"]).check().how_built() in ({}, {"scenario:moved": "from cache"})
    second = _skopeo_copy(registry.busybox_ref, moving, all_platforms=False)  # one manifest: a new digest
    assert second != first
    run = checkout.package(targets=["scenario:moved"]).check()
    assert run.how_built() == {"scenario:moved": "solved in"}, run.log[-3000:]
    llb = checkout.pants("llb", "scenario:moved").check().log
    assert second in llb and first not in llb


def _start_package(co: Checkout, pantsd: bool, target: str) -> subprocess.Popen:
    argv = ["./pants", "--pantsd" if pantsd else "--no-pantsd", "package", target]
    env = dict(os.environ, LLBKIT_CACHE=str(co.cache), **co.env)
    env.pop("LLBKIT_REPO", None)
    return subprocess.Popen(argv, cwd=co.repo, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_run(proc: subprocess.Popen, cmdline: str) -> None:
    deadline = time.monotonic() + 240
    while not pids_running(cmdline):
        assert proc.poll() is None, f"Pants ended before the RUN started:\n{proc.communicate()[0].decode()[-3000:]}"
        assert time.monotonic() < deadline, "the RUN never started"
        time.sleep(0.2)


def _sandboxes(co: Checkout) -> List[Path]:
    root = Path(co.env["PANTS_LOCAL_EXECUTION_ROOT_DIR"])
    return sorted(root.glob("pants-sandbox-*")) if root.is_dir() else []


@pytest.mark.parametrize("pantsd", [True, False], ids=["pantsd", "no-pantsd"])
def test_ctrl_c_during_a_long_run_stops_it_on_the_daemon_and_writes_nothing(checkout: Checkout,
                                                                          pantsd: bool) -> None:
    seconds = 67 if pantsd else 71  # a duration of this test's own, to find its process by
    _write(checkout, {"BUILD": f"""\
        container_image(name="sleepy", base="{BUSYBOX}", platforms=["linux/amd64"],
                        steps=[run("echo {secrets.token_hex(4)} && sleep {seconds}")])
        """})
    checkout.clear_dist()
    proc = _start_package(checkout, pantsd, "scenario:sleepy")
    try:
        _wait_for_run(proc, f"sleep {seconds}")
        proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        interrupted = time.monotonic()
        while pids_running(f"sleep {seconds}") and time.monotonic() - interrupted < 5:
            time.sleep(0.1)
        assert not pids_running(f"sleep {seconds}"), "the RUN still runs on the daemon 5 s after Ctrl-C"
        # Promptly: well before the RUN would have ended by itself (it has a minute left).
        output = proc.communicate(timeout=30)[0].decode()
        assert proc.returncode != 0
        assert "Traceback" not in output, output[-3000:]
        assert "interrupted" in output.lower(), output[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (checkout.repo / "dist" / "scenario").exists() or not any((checkout.repo / "dist" / "scenario").iterdir())
    # The interrupted build's sandbox, and with it every temporary file of the build process
    # (llbkit.builder.process puts TMPDIR there), is gone.
    deadline = time.monotonic() + 10
    while _sandboxes(checkout) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _sandboxes(checkout), f"sandboxes left after Ctrl-C: {_sandboxes(checkout)}"
    # Nothing was written into Pants' cache after the interrupt: the same build runs the RUN
    # again (a cached result would end the run without starting it).
    again = _start_package(checkout, pantsd, "scenario:sleepy")
    try:
        _wait_for_run(again, f"sleep {seconds}")
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=30)
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
            again.wait()
