"""The code of llbkit's build processes, as content: a code change is a cache-key change.

Every build process (`llbkit.builder.process`) runs llbkit's own sources, put into its sandbox
under `.llbkit-code/` as a digest, so Pants' cache key covers exactly the code that produced a
result. The interpreter is the one Pants runs on (it has the plugin's `protobuf`; llbkit speaks
gRPC with its own code, not grpcio); its path is machine-specific and reaches the process out of
band (see `util_rules.machine`), while its identity, `LLBKIT_RUNTIME` (CPython and protobuf
versions), is in the key.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Tuple

import llbkit
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, collect_rules, rule

CODE_DIR = ".llbkit-code"


@dataclass(frozen=True)
class SolverCode:
    """llbkit's sources under `CODE_DIR`, and the runtime's identity."""

    digest: Digest
    runtime: str
    code_id: str = ""  # `llbkit.code_cache.code_digest` of the sources, so no process hashes them


def _is_solver_source(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return (rel.endswith(".py") and not name.endswith("_test.py") and name != "conftest.py"
            and not rel.startswith("testutil/") and "/testdata/" not in f"/{rel}")


@lru_cache(maxsize=None)
def _sources() -> Tuple[Tuple[str, bytes], ...]:
    # The plugin's own package files, read once per Pants process (as Pants' backends read their
    # bundled scripts); editing them restarts pantsd, whose watcher covers `pythonpath`.
    root = Path(llbkit.__file__).parent
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if _is_solver_source(rel):
            out.append((f"{CODE_DIR}/llbkit/{rel}", p.read_bytes()))
    return tuple(out)


@lru_cache(maxsize=None)
def code_id() -> str:
    """The sources' `llbkit.code_cache.code_digest`, as the build process would compute it from
    the files under `CODE_DIR`."""
    from llbkit.code_cache import files_digest

    return files_digest((path[len(CODE_DIR) + 1:], data) for path, data in _sources())


def runtime_identity() -> str:
    import google.protobuf

    return (f"{platform.python_implementation().lower()}-{'.'.join(map(str, sys.version_info[:3]))} "
            f"protobuf-{google.protobuf.__version__}")


@rule(desc="Collect llbkit's build code")
async def solver_code() -> SolverCode:
    digest = await Get(Digest, CreateDigest(FileContent(path, data) for path, data in _sources()))
    return SolverCode(digest, runtime_identity(), code_id())


def rules():
    return collect_rules()
