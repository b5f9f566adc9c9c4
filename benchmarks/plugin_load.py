"""What loading the llbkit plugin adds to Pants' start-up.

Run from the repo root (it copies the repo with `testprojects/checkout.py` and runs its `./pants`):

    LLBKIT_REPO=$PWD PYTHONPATH=src:testprojects python3.9 benchmarks/plugin_load.py [--pairs 5]

1. `./pants --no-pantsd list src::` in one checkout, with the llbkit backend and without it
   (`--backend-packages=-['llbkit_pants']`; `src/` has no `container_image` target, so both
   parse the same BUILD files), in alternating pairs: the difference is what the plugin costs
   a Pants process (importing the backend, registering its rules, options and target types).
2. Importing `llbkit_pants.register` (and calling its `rules()`) in Pants' own interpreter after
   the backends Pants loads anyway (`pants.core`, `pants.backend.python`), in a fresh process
   each time, and which `llbkit` modules that loads (none should be: the library is imported
   where it is used).

Figures are min / median / max; the load average is printed with them (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

from checkout import Checkout
from llbkit.testutil.procs import remove_tree

PROBE = """
import sys, time
import pants.backend.python.register, pants.core.register
t = time.perf_counter()
import llbkit_pants.register as r
r.rules(); r.target_types(); r.build_file_aliases()
print(time.perf_counter() - t, sorted(m for m in sys.modules if m.startswith(("llbkit.", "grpc", "google.protobuf"))))
"""


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def spread(values: List[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    v = sorted(x * scale for x in values)
    return " / ".join(fmt.format(x) for x in (v[0], statistics.median(v), v[-1]))


def plugin_site_packages() -> str:
    """Where grpcio and protobuf are for Pants' interpreter (Pants resolves `[GLOBAL].plugins` there
    itself; the probe runs Pants' interpreter directly, so it is told)."""
    import google.protobuf
    import grpc

    dirs = {os.path.dirname(os.path.dirname(grpc.__file__)),
            os.path.dirname(os.path.dirname(os.path.dirname(google.protobuf.__file__)))}
    return os.pathsep.join(sorted(dirs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    print(f"llbkit plugin load - Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average {load()}")
    base = Path(tempfile.mkdtemp(prefix="llbkit-plugin-bench-"))
    co = Checkout(base, "p", pantsd=False)
    try:
        off = ["--backend-packages=-['llbkit_pants']"]
        co.pants("list", "src::").check()  # warm: Pants' venv, plugins resolved, bytecode
        co.pants(*off, "list", "src::").check()
        walls = {"with": [], "without": []}
        for _ in range(args.pairs):
            for which, extra in (("with", []), ("without", off)):
                t = time.monotonic()
                co.pants(*extra, "list", "src::").check()
                walls[which].append(time.monotonic() - t)
        diffs = [a - b for a, b in zip(walls["with"], walls["without"])]
        print(f"\n1. ./pants --no-pantsd list src:: ({args.pairs} alternating pairs), seconds")
        print(f"   with the llbkit backend      {spread(walls['with'])}")
        print(f"   without it (reference)       {spread(walls['without'])}")
        print(f"   difference per pair          {spread(diffs)}   (target <= 0.10)")
        print(f"   ratio of medians             {statistics.median(walls['with']) / statistics.median(walls['without']):.3f}x")

        pants_python = co.cache / "pants-2.17.1" / "bin" / "python"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(co.repo / "rules"), str(co.repo / "src"), plugin_site_packages()]))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        times, loaded = [], ""
        for _ in range(max(5, args.pairs)):
            out = subprocess.run([str(pants_python), "-c", PROBE], env=env, check=True,
                                 capture_output=True, text=True).stdout.split(" ", 1)
            times.append(float(out[0]))
            loaded = out[1].strip()
        print(f"\n2. import llbkit_pants.register + rules() after Pants' own backends, fresh process x{len(times)}")
        print(f"   {spread(times, 1000, '{:.0f}')} ms; library modules it loads: {loaded}")
        print(f"\nload average now {load()}")
        return 0
    finally:
        co.close()
        remove_tree(base)


if __name__ == "__main__":
    sys.exit(main())
