"""A copy of this repo in which the end-to-end tests run real `./pants` (with or without pantsd).

Each checkout has its own `$LLBKIT_CACHE` whose heavy, shared parts (Pants' venv, the pex tool,
BuildKit's binaries, the .debs, the test registry's state) are symlinks to the real cache, and
whose `buildkitd/` (the auto-started daemon) is its own, found and stopped by PID. It can have
its own Pants local store and named caches (a "fresh machine") and a remote cache. Every pantsd
and buildkitd a checkout starts is stopped by `close()`, by PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from llbkit.buildkit.local_daemon import LocalDaemon
from llbkit.daemon import pid_alive, stop_pid
from llbkit.testutil.tools import cache_dir

IMAGES = ["chain/app1/app1", "chain/app2/app2", "chain/base/base", "dockerfile/image", "dockerfile/on-dockerfile",
          "dockerfile/on-dockerfile-image", "dockerfile/on-target", "hello/hello", "multiarch/multiarch",
          "pyapp/pyapp", "pyapp/pyapp-dockerfile", "pyarch/pure_image", "pyarch/pyarch"]
PRIVATE_CACHE_ENTRIES = ("buildkitd",)  # everything else is shared with the real cache
COPY_SKIP = {".git", ".pants.d", ".pids", "dist", "__pycache__", ".pytest_cache"}
_LOG_LINE = re.compile(r"\[INFO\] (//)?(?P<address>[\w/.-]+:[\w.@=,-]+): .*?(?P<how>from cache|solved in)")


def repo_root() -> Path:
    repo = os.environ.get("LLBKIT_REPO")
    if not repo or not (Path(repo) / "pants.toml").is_file():
        raise AssertionError("LLBKIT_REPO must name the llbkit repository (pants.toml sets it for "
                             "`./pants test`; set it yourself when running pytest directly)")
    return Path(repo)


def _private_cache(root: Path) -> Path:
    real = cache_dir()
    root.mkdir()
    for entry in real.iterdir():
        if entry.name not in PRIVATE_CACHE_ENTRIES:
            (root / entry.name).symlink_to(entry)
    return root


class Run:
    def __init__(self, argv: Sequence[str], returncode: int, log: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.log = log

    def check(self) -> "Run":
        assert self.returncode == 0, f"{' '.join(self.argv)} failed ({self.returncode}):\n{self.log[-6000:]}"
        return self

    def how_built(self) -> Dict[str, str]:
        """address -> "from cache" | "solved in", from package's log."""
        return {m["address"]: m["how"] for m in _LOG_LINE.finditer(self.log)}


class Checkout:
    """`base/repo-NAME`, a copy of the repo; `pants(...)` runs its `./pants`.

    `pantsd`: run with pantsd (Pants' default) or `--no-pantsd`. `own_store`: a Pants local store
    of its own (no process result cached by other runs); `own_named_caches`: named caches of its
    own too (a fresh machine). `env`: PANTS_* options and the like.
    """

    def __init__(self, base: Path, name: str, *, pantsd: bool = False, own_store: bool = False,
                 own_named_caches: bool = False, env: Optional[Mapping[str, str]] = None) -> None:
        self.repo = base / f"repo-{name}"
        self.cache = _private_cache(base / f"cache-{name}")
        self.daemon = LocalDaemon(self.cache / "buildkitd")
        self.pantsd = pantsd
        self.env = dict(env or {})
        if own_store:
            self.env["PANTS_LOCAL_STORE_DIR"] = str(base / f"store-{name}")
        if own_named_caches:
            self.env["PANTS_NAMED_CACHES_DIR"] = str(base / f"named-caches-{name}")
        shutil.copytree(repo_root(), self.repo, symlinks=True,
                        ignore=lambda _dir, names: [n for n in names if n in COPY_SKIP])

    def pants(self, *args: str, env: Optional[Mapping[str, str]] = None, timeout: float = 900) -> Run:
        argv = ["./pants", "--pantsd" if self.pantsd else "--no-pantsd", *args]
        full_env = dict(os.environ, LLBKIT_CACHE=str(self.cache), **self.env, **(env or {}))
        full_env.pop("LLBKIT_REPO", None)
        proc = subprocess.run(argv, cwd=self.repo, env=full_env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return Run(argv, proc.returncode, proc.stdout + proc.stderr)

    def package(self, *args: str, targets: Sequence[str] = ("testprojects::",),
                env: Optional[Mapping[str, str]] = None) -> Run:
        return self.pants("package", *targets, *args, env=env)

    def image(self, name: str) -> Path:
        return self.repo / "dist" / "testprojects" / f"{name}.oci.tar"

    def dist_digests(self) -> Dict[str, str]:
        dist = self.repo / "dist"
        return {str(p.relative_to(dist)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(dist.rglob("*")) if p.is_file()}

    def clear_dist(self) -> None:
        shutil.rmtree(self.repo / "dist", ignore_errors=True)

    def index_digests(self, names: Sequence[str] = IMAGES) -> Dict[str, str]:
        out = {}
        for name in names:
            record = json.loads((self.repo / "dist/testprojects" / f"{name}.image.json").read_text())
            out[name] = record["index"]["digest"]
        return out

    def pantsd_pids(self) -> List[int]:
        """This checkout's pantsd processes: those its pid files name, and those running in it whose
        pid file is not written yet (a client that gave up waiting for pantsd to start leaves one
        starting, which would outlive the checkout)."""
        pids = set()
        for f in self.repo.glob(".pids/*/pantsd/pid"):
            try:
                pids.add(int(f.read_text().strip()))
            except (OSError, ValueError):
                pass
        repo = str(self.repo.resolve())
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if cmdline.startswith("pantsd [") and os.readlink(proc / "cwd") == repo:
                    pids.add(int(proc.name))
            except OSError:
                continue
        return sorted(p for p in pids if pid_alive(p))

    def stop_pantsd(self) -> None:
        for pid in self.pantsd_pids():
            stop_pid(pid, timeout=15)

    def stop_daemon(self) -> None:
        self.daemon.stop()

    def close(self) -> None:
        self.stop_pantsd()
        self.stop_daemon()
