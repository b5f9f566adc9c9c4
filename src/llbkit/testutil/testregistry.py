"""The sample monorepo's registry: base images for ``testprojects/`` on ``127.0.0.1:5050``.

``testprojects/`` BUILD files name their bases by tag in this registry, so
``./pants package testprojects::`` needs no internet access::

    127.0.0.1:5050/llbkit/busybox:latest   busybox from Debian's busybox-static (amd64, arm64)
    127.0.0.1:5050/llbkit/python3:3.11     Debian bookworm's python3 and its dependency closure
                                           (amd64, arm64), LANG=C.UTF-8, no shell

Both are built by :mod:`llbkit.testutil.busybox_image` and :mod:`llbkit.testutil.debian_image`
from the .debs ``build-support/provision.sh`` downloads. This is a development convenience of
the llbkit repository, not part of the plugin: the ``./pants`` launcher runs
``python -m llbkit.testutil.testregistry ensure`` when the registry is not answering.

State lives in ``$LLBKIT_CACHE/testregistry/`` (``~/.cache/llbkit/testregistry/``)::

    registry.pid   the PID of Debian's docker-registry (it outlives the launcher; stop it with
                   ``python -m llbkit.testutil.testregistry stop`` or ``kill $(cat registry.pid)``)
    registry.log   its output
    config.yml     its config (plain HTTP on loopback only)
    storage/       its blobs (they survive restarts)
    seeded         written after the images are pushed; holds their index digests
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from llbkit.daemon import log_tail, running_pid, stop_pid
from llbkit.testutil.busybox_image import busybox_image
from llbkit.testutil.debian_debs import downloaded_debs
from llbkit.testutil.debian_image import debian_image
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import port_is_open
from llbkit.testutil.tools import cache_dir, find_tool

HOST = "127.0.0.1"
PORT = 5050
ADDRESS = f"{HOST}:{PORT}"
BUSYBOX_REPO, BUSYBOX_TAGS = "llbkit/busybox", ("latest",)
PYTHON3_REPO, PYTHON3_TAGS = "llbkit/python3", ("3.11", "latest")
PYTHON3_CONFIG = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
    "Cmd": ["python3"],
}
ARCHES = ("amd64", "arm64")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def state_dir() -> Path:
    return cache_dir() / "testregistry"


def python3_debs_dir(arch: str) -> Path:
    """Where provision.sh downloads the python3 closure for ``arch``."""
    return cache_dir() / "debs" / f"python3-{arch}"


class TestRegistry:
    """The registry process described in the module docstring, found by its PID file."""

    __test__ = False  # not a pytest test class

    def __init__(self, state: Optional[Path] = None, port: int = PORT) -> None:
        self.state = Path(state) if state is not None else state_dir()
        self.port = port

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state / "registry.pid"

    @property
    def log_path(self) -> Path:
        return self.state / "registry.log"

    @property
    def config_path(self) -> Path:
        return self.state / "config.yml"

    @property
    def seeded_marker(self) -> Path:
        return self.state / "seeded"

    def pid(self) -> Optional[int]:
        """The PID of our running registry, or None (a stale or reused PID counts as none)."""
        return running_pid(self.pid_file, (str(self.config_path),))

    def answers(self) -> bool:
        try:
            with _NO_PROXY.open(f"http://{self.address}/v2/", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def ensure(self, log: Optional[Callable[[str], None]] = None) -> Dict[str, str]:
        """Start the registry unless it runs, and seed it unless it was; returns ref -> digest."""
        log = log or (lambda msg: None)
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent launchers start and seed it once
            pid = self.pid()
            if pid is None or not self.answers():
                if pid is not None:
                    self.stop()  # ours, but not answering: start it afresh
                log(f"starting the test registry on {self.address} (state in {self.state})")
                self._start()
            images = self._images()
            digests = {ref: digest for ref, (_, digest) in images.items()}
            wanted = json.dumps(digests, sort_keys=True, indent=1) + "\n"
            try:
                seeded = self.seeded_marker.read_text()
            except OSError:
                seeded = ""
            if seeded != wanted:
                log(f"pushing the sample base images to {self.address}: {', '.join(images)}")
                self._push(images)
                for ref, digest in sorted(digests.items()):
                    log(f"  {ref} {digest}")
                tmp = self.seeded_marker.with_suffix(".part")
                tmp.write_text(wanted)
                os.replace(tmp, self.seeded_marker)
            return digests

    def _start(self) -> None:
        if port_is_open(HOST, self.port):
            raise FixtureError(
                f"{self.address} is in use by another process, not the test registry of "
                f"{self.state} (no live PID in {self.pid_file}); stop that process, or stop an "
                f"old test registry with `kill PID` (`ss -ltnp 'sport = :{self.port}'` names it)"
            )
        exe = find_tool("docker-registry")
        storage = self.state / "storage"
        storage.mkdir(exist_ok=True)
        self.config_path.write_text("\n".join([
            "# written by llbkit.testutil.testregistry",
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {json.dumps(str(storage))}",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: {self.address}",
            "",
        ]))
        with open(self.log_path, "ab") as out:
            proc = subprocess.Popen([str(exe), "serve", str(self.config_path)], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # outlives the launcher
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if self.answers():
                return
            time.sleep(0.1)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        tail = log_tail(self.log_path, 15)
        raise FixtureError(f"the test registry did not start on {self.address}; "
                           f"the end of {self.log_path}:\n{tail}")

    def _images(self) -> Dict[str, Tuple[Path, str]]:
        """ref -> (OCI layout dir, index digest) of each image to serve (built once, cached)."""
        busybox = busybox_image()
        debs = {}
        for arch in ARCHES:
            try:
                debs[arch] = downloaded_debs(python3_debs_dir(arch))
            except FixtureError as e:
                raise FixtureError(f"the python3 base image cannot be built: {e}") from None
        python3 = debian_image("python3", debs, PYTHON3_CONFIG, created_by="Debian bookworm python3")
        python3_digest = json.loads((python3 / "index.json").read_text())["manifests"][0]["digest"]
        out: Dict[str, Tuple[Path, str]] = {}
        for tag in BUSYBOX_TAGS:
            out[f"{self.address}/{BUSYBOX_REPO}:{tag}"] = (busybox.layout, busybox.index_digest)
        for tag in PYTHON3_TAGS:
            out[f"{self.address}/{PYTHON3_REPO}:{tag}"] = (python3, python3_digest)
        return out

    def _push(self, images: Dict[str, Tuple[Path, str]]) -> None:
        from llbkit.oci.auth import Credentials
        from llbkit.oci.registry import RegistryClient, push_layout

        client = RegistryClient(self.address, credentials=Credentials(source="anonymous"))
        for ref, (layout, _) in images.items():
            push_layout(layout, ref, client=client)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the registry by its PID; False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout, self.pid_file)
        return True


def main(argv: Sequence[str]) -> int:
    usage = "usage: python -m llbkit.testutil.testregistry ensure|stop|status"
    if len(argv) != 1 or argv[0] not in ("ensure", "stop", "status"):
        print(usage, file=sys.stderr)
        return 2
    reg = TestRegistry()
    say = lambda msg: print(f"[llbkit testregistry] {msg}", file=sys.stderr)  # noqa: E731
    try:
        if argv[0] == "ensure":
            reg.ensure(say)
        elif argv[0] == "stop":
            say("stopped" if reg.stop() else "not running")
        else:
            pid = reg.pid()
            say(f"running, PID {pid}, on {reg.address}" if pid else "not running")
            return 0 if pid else 1
    except FixtureError as e:
        say(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
