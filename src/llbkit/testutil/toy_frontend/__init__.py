"""A real custom BuildKit frontend for tests: ``main.go`` here (a JSON spec to LLB, written
against BuildKit's gateway client), built with the Go toolchain and packaged as a frontend
image in a fixture registry.

::

    ref = push_toy_frontend(buildkitd, registry, work)   # "127.0.0.1:PORT/toy-frontend@sha256:..."
    FrontendCall("gateway.v0", (("source", ref),))

The binary is built once per source content into ``$LLBKIT_CACHE/toy-frontend/<hash>/`` (Go's
module cache supplies BuildKit's module; the module proxy only when it lacks it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from llbkit.testutil.errors import FixtureError
from llbkit.testutil.tools import cache_dir

__all__ = ["SOURCE_DIR", "build_toy_frontend", "push_toy_frontend"]

SOURCE_DIR = Path(__file__).parent
_SOURCES = ("main.go", "go.mod", "go.sum")
_GO_DIRS = ("/usr/local/go/bin", "/usr/lib/go/bin")


def _go() -> str:
    found = shutil.which("go") or next((str(Path(d) / "go") for d in _GO_DIRS if (Path(d) / "go").is_file()), None)
    if found is None:
        raise FixtureError("the toy frontend needs the Go toolchain (`go`), which is not on PATH nor in "
                           "/usr/local/go/bin: install Go (https://go.dev/dl/) to run this test")
    return found


def build_toy_frontend() -> Path:
    """The toy frontend's static linux/amd64 binary, built if its sources changed."""
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    out_dir = cache_dir() / "toy-frontend" / h.hexdigest()[:16]
    binary = out_dir / "toy-frontend"
    if binary.is_file():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "src"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for name in _SOURCES:  # a copy: the test sandbox may be read-only, and Go writes nothing there then
        shutil.copyfile(SOURCE_DIR / name, work / name)
    env = dict(os.environ, CGO_ENABLED="0", GOOS="linux", GOARCH="amd64", GOFLAGS="-mod=mod")
    tmp = out_dir / "toy-frontend.tmp"
    res = subprocess.run([_go(), "build", "-trimpath", "-o", str(tmp), "."], cwd=work, env=env,
                         capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise FixtureError(f"building the toy frontend failed:\n{res.stderr[-3000:]}")
    os.replace(tmp, binary)
    return binary


def push_toy_frontend(daemon: Any, registry: Any, work: Path, tag: str = "1") -> str:
    """Package the toy frontend as an image (the binary as its entrypoint), push it to
    ``registry`` with ``daemon`` and return its reference pinned by digest."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(build_toy_frontend(), work / "toy-frontend")
    (work / "toy-frontend").chmod(0o755)
    (work / "Dockerfile").write_text('FROM scratch\nCOPY toy-frontend /bin/toy-frontend\n'
                                     'ENTRYPOINT ["/bin/toy-frontend"]\n')
    name = registry.ref("toy-frontend", tag)
    meta = work / "metadata.json"
    daemon.build_dockerfile(work, outputs=[f"type=image,name={name},push=true"],
                            extra_args=["--metadata-file", str(meta)])
    digest = json.loads(meta.read_text())["containerimage.digest"]
    return f"{name.rsplit(':', 1)[0]}@{digest}"
