"""Benchmark: a two-platform image on a pool of two workers, on one worker, and each platform alone.

Not a timed test: it prints numbers (record them in benchmarks/RESULTS.md). Run from the repo root:

    PYTHONPATH=src python benchmarks/pool_parallel.py [--repeat 3] [--work 2]

It starts its own daemons (as the test fixtures do: a buildkitd native to linux/amd64 that emulates
arm64, a buildkitd native to linux/arm64, and a registry seeded with busybox) and stops them by PID
at the end. The image is busybox plus one run step that does ``--work`` seconds of waiting plus a
short CPU loop and writes ``uname -m``; every timed build uses a fresh token in the run so nothing
comes from the cache (the base image is pulled once, in a warm-up build, before timing).

For each configuration it prints the wall time (best and median of ``--repeat``) of
``build_multiplatform`` up to the written OCI index tar:

- ``two workers``: amd64 on the amd64 worker, arm64 on the arm64 worker, in parallel;
- ``one worker``: both platforms on the amd64 worker (arm64 emulated), in parallel;
- ``amd64 alone`` / ``arm64 alone``: one platform on its native worker.

``parallel efficiency`` = slowest single platform alone / two-platform image on two workers
(1.0: the second platform costs nothing). It also checks that the two-worker and one-worker
builds of the same image give the same index digest.
"""

from __future__ import annotations

import argparse
import os
import platform as _platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

from llbkit import llb
from llbkit.buildkit import ImageConfig, PlatformJob, WorkerConfig, WorkerPool, build_multiplatform
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.busybox_image import busybox_image
from llbkit.testutil.registry import Registry

PLATFORMS = ("linux/amd64", "linux/arm64")


def jobs(busybox_ref: str, token: str, work: float, platforms: Sequence[str] = PLATFORMS) -> List[PlatformJob]:
    script = (f"sleep {work} && i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
              f"echo {token} > /token && uname -m > /arch")
    out = []
    for p in platforms:
        st = llb.image(busybox_ref, platform=p).run(["/bin/sh", "-c", script]).root()
        out.append(PlatformJob(p, st.marshal(platform=p), ImageConfig(cmd=["cat", "/arch"]).to_json_bytes(p)))
    return out


def timed(fn: Callable[[], object], repeat: int) -> List[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=float, default=2.0, help="seconds of sleep in the run step (default 2)")
    args = ap.parse_args(list(argv) or None)

    amd = Buildkitd(name="bench_amd64")
    arm = Buildkitd(name="bench_arm64", platform="linux/arm64")
    reg = Registry(name="bench_registry")
    out = Path(tempfile.mkdtemp(prefix="llbkit-bench-pool-"))
    try:
        for d in (amd, arm, reg):
            d.start()
        reg.seed_busybox(busybox_image())
        amd_cfg, arm_cfg = WorkerConfig(amd.addr, name="amd64"), WorkerConfig(arm.addr, name="arm64")
        pools = {"two": WorkerPool([amd_cfg, arm_cfg]), "one": WorkerPool([amd_cfg])}
        counter = [0]

        def build(pool: str, platforms: Sequence[str] = PLATFORMS, token: str = "") -> str:
            counter[0] += 1
            tok = token or secrets.token_hex(8)
            res = build_multiplatform(pools[pool], jobs(reg.busybox_ref, tok, args.work, platforms),
                                      out / f"img{counter[0]}.tar")
            return res.digest

        build("two")  # warm-up: pull busybox on both daemons, and arm64 on the amd64 one
        build("one")
        rows: Dict[str, List[float]] = {
            "two-platform image, two workers": timed(lambda: build("two"), args.repeat),
            "two-platform image, one worker (arm64 emulated)": timed(lambda: build("one"), args.repeat),
            "amd64 alone (native worker)": timed(lambda: build("two", ["linux/amd64"]), args.repeat),
            "arm64 alone (native worker)": timed(lambda: build("two", ["linux/arm64"]), args.repeat),
        }
        same = secrets.token_hex(8)
        d_two, d_one = build("two", token=same), build("one", token=same)
        for p in pools.values():
            p.close()
    finally:
        for d in (amd, arm, reg):
            d.stop()
        for f in out.glob("*"):
            f.unlink()
        out.rmdir()

    print(f"llbkit pool benchmark - Python {_platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{_platform.machine()}; run step: sleep {args.work}s + a 20,000-step shell loop; "
          f"best / median of {args.repeat}")
    print()
    width = max(len(k) for k in rows)
    for name, ts in rows.items():
        print(f"  {name:<{width}}  {min(ts):6.2f} s  {statistics.median(ts):6.2f} s")
    two = min(rows["two-platform image, two workers"])
    one = min(rows["two-platform image, one worker (arm64 emulated)"])
    slowest = max(min(rows["amd64 alone (native worker)"]), min(rows["arm64 alone (native worker)"]))
    print()
    print(f"  parallel efficiency (slowest platform alone / two workers): {slowest / two:.2f}")
    print(f"  two workers vs one worker: {one / two:.2f}x")
    print(f"  same index digest on two workers and on one: {d_two == d_one} ({d_two})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
