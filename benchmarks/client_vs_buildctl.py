"""llbkit's client (`python -m llbkit build`) against buildctl, on one buildkitd, in one run.

Run from the repo root (it starts its own buildkitd and a registry holding busybox, and stops
them by PID at the end):

    PYTHONPATH=src python benchmarks/client_vs_buildctl.py                 # full size: 1 GiB
    PYTHONPATH=src python benchmarks/client_vs_buildctl.py --size 64MiB --reps 2 --sleep 1

What it measures, each client as its own process, the same definition bytes on stdin:

(a) overhead: a RUN `sleep N` (cache disabled for that step) built ``--reps`` times by each
    client, alternating; median wall time, and the overhead above N seconds;
(b) upload: a local context of ``--size`` bytes (``--files`` files, and a variant with
    ``--small-files`` files) sent with ``--local ctx=DIR``; the definition is the local source
    alone. The daemon's cache is pruned (``buildctl prune --all``) before every build, so every
    build sends everything; MB/s = context bytes / wall time of the client process;
(c) memory: the client process's peak RSS (``ru_maxrss`` from ``wait4``, the kernel's figure)
    during (b), and while receiving a ``type=tar`` export of a state holding ``--size`` bytes
    (made by a RUN and cached before the timed builds; MB/s of the export too).

First, start-up: ``--version``, ``--help`` and listing the workers (``llbkit workers``,
``buildctl debug workers``). llbkit runs as installed: bytecode cached (in a temporary
PYTHONPYCACHEPREFIX), not recompiled by every process.

Ratios are ours / buildctl's (for times and memory lower is better; for MB/s higher is better).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from llbkit import __version__, llb
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.busybox_image import busybox_image
from llbkit.testutil.registry import Registry

PLATFORM = "linux/amd64"
MiB = 1 << 20


def parse_size(text: str) -> int:
    units = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
    t = text.strip().lower()
    num = t.rstrip("kmgib")
    unit = t[len(num):]
    if unit.endswith("b") and not unit.endswith("ib"):
        unit = unit[:-1]
    if unit not in units or not num:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: e.g. 1GiB, 64MiB, 500M")
    return int(float(num) * units[unit])


# -- running a client and watching its memory ------------------------------------------------

def run_client(argv: Sequence[str], stdin: Path, env: Optional[dict] = None) -> Tuple[float, int]:
    """Run one client process; returns (wall seconds, peak RSS in KiB). Fails loudly.

    The peak RSS is the kernel's own figure for the process (``ru_maxrss`` from ``wait4``),
    measured the same way for both clients."""
    with open(stdin, "rb") as inp:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), stdin=inp, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        err: List[bytes] = []
        t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        t.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        t.join()
    if proc.returncode != 0:
        raise SystemExit(f"client failed ({proc.returncode}): {' '.join(argv)}\n"
                         f"{b''.join(err).decode(errors='replace')}")
    return wall, usage.ru_maxrss


class Clients:
    def __init__(self, bk: Buildkitd, buildctl: Path, pycache: str) -> None:
        self.bk = bk
        self.buildctl = buildctl
        self.env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1] / "src")
        self.env["PYTHONPATH"] = src + os.pathsep + self.env.get("PYTHONPATH", "")
        # As installed: bytecode compiled once and cached (outside the tree), not recompiled by
        # every process as PYTHONDONTWRITEBYTECODE would have it.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = pycache

    def ours(self, *args: str) -> List[str]:
        return [sys.executable, "-m", "llbkit", "build", "--addr", self.bk.addr, "--progress", "quiet", *args]

    def theirs(self, *args: str) -> List[str]:
        return [str(self.buildctl), "--addr", self.bk.addr, "build", "--progress", "quiet", *args]

    def run(self, which: str, deffile: Path, *args: str) -> Tuple[float, int]:
        argv = self.ours(*args) if which == "llbkit" else self.theirs(*args)
        return run_client(argv, deffile, self.env)

    def prune(self) -> None:
        self.bk.buildctl("prune", "--all")


# -- inputs ----------------------------------------------------------------------------------

def make_context(root: Path, total: int, files: int) -> Path:
    """``files`` files of ``total // files`` seeded random bytes, 100 per directory."""
    size = total // files
    rnd = random.Random(1234)
    block = rnd.randbytes(min(size, 16 * MiB) + 4096)
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        with open(d / f"f{i:06d}", "wb") as f:
            left, off = size, i % 4096  # a different slice per file: not one repeated content
            while left:
                n = min(left, len(block) - off)
                f.write(block[off:off + n])
                left -= n
                off = 0
    return root


def write_def(state: llb.State, path: Path) -> Path:
    path.write_bytes(state.marshal(platform=PLATFORM).to_bytes())
    return path


# -- report helpers ----------------------------------------------------------------------------

def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="context/export size (default 1GiB)")
    ap.add_argument("--files", type=int, default=64, help="files of the large-file context (default 64)")
    ap.add_argument("--small-files", type=int, default=16384,
                    help="files of the many-small-files context (default 16384; 0: skip)")
    ap.add_argument("--reps", type=int, default=3, help="builds per client and measurement (default 3)")
    ap.add_argument("--overhead-reps", type=int, default=5, help="builds per client for (a) (default 5)")
    ap.add_argument("--sleep", type=float, default=3.0, help="seconds the RUN of (a) sleeps (default 3)")
    ap.add_argument("--skip", action="append", default=[], choices=["overhead", "upload", "export"])
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="llbkit-bench-"))
    bk = Buildkitd(name="bench-buildkitd")
    reg = Registry(name="bench-registry")
    try:
        reg.start()
        busybox = reg.seed_busybox(busybox_image())
        bk.start()
        assert bk.buildctl_bin is not None
        version = f"buildctl from {bk.buildctl_bin.parent.parent.name}"
        cl = Clients(bk, bk.buildctl_bin, str(tmp / "pycache"))
        run_client([sys.executable, "-m", "llbkit", "--help"], Path(os.devnull), cl.env)  # compile once
        print(f"llbkit {__version__} client vs buildctl - Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, {platform.machine()}; {version}")
        print(f"size {args.size / MiB:.0f} MiB; {args.reps} reps per measurement (median), "
              f"{args.overhead_reps} for the overhead")
        base = llb.image(busybox, platform=PLATFORM)

        # start-up alone
        t_ours = statistics.median(run_client([sys.executable, "-m", "llbkit", "--version"], Path(os.devnull), cl.env)[0] for _ in range(5))
        t_theirs = statistics.median(run_client([str(bk.buildctl_bin), "--version"], Path(os.devnull))[0] for _ in range(5))
        print(f"\nprocess start-up alone (--version, median of 5): llbkit {t_ours * 1000:.0f} ms, "
              f"buildctl {t_theirs * 1000:.0f} ms")

        def startup(argv: Sequence[str], env: Optional[dict] = None) -> float:
            return statistics.median(run_client(argv, Path(os.devnull), env)[0] for _ in range(7))

        py = [sys.executable, "-m", "llbkit"]
        bc = [str(bk.buildctl_bin), "--addr", bk.addr]
        rows = [("--help", startup(py + ["--help"], cl.env), startup([str(bk.buildctl_bin), "--help"])),
                ("workers", startup(py + ["workers", "--addr", bk.addr], cl.env),
                 startup(bc + ["debug", "workers"]))]
        print("\nstart-up, median of 7         llbkit   buildctl   ratio")
        for name, a, b in rows:
            print(f"    {name:<28} {a * 1000:>6.0f} ms {b * 1000:>6.0f} ms  {ratio(a, b):>6}")

        if "overhead" not in args.skip:
            d = write_def(base.run(["/bin/sleep", f"{args.sleep:g}"], ignore_cache=True).root(), tmp / "sleep.llb")
            cl.run("llbkit", d)  # pulls busybox
            cl.run("buildctl", d)
            walls = {"llbkit": [], "buildctl": []}
            for _ in range(args.overhead_reps):
                for which in ("llbkit", "buildctl"):
                    walls[which].append(cl.run(which, d)[0])
            mo, mt = statistics.median(walls["llbkit"]), statistics.median(walls["buildctl"])
            print(f"\n(a) overhead: RUN sleep {args.sleep:g} (ignore-cache), median of {args.overhead_reps}")
            print(f"    {'client':<9} {'wall':>8} {'overhead':>9}  all walls")
            for which, m in (("llbkit", mo), ("buildctl", mt)):
                print(f"    {which:<9} {m:>7.2f}s {m - args.sleep:>8.2f}s  "
                      + " ".join(f"{w:.2f}" for w in walls[which]))
            print(f"    ratio llbkit/buildctl: wall {ratio(mo, mt)}, overhead {ratio(mo - args.sleep, mt - args.sleep)}")

        uploads = []
        if "upload" not in args.skip:
            variants = [(args.files, "large files")]
            if args.small_files:
                variants.append((args.small_files, "small files"))
            d = write_def(llb.local("ctx"), tmp / "local.llb")
            for nfiles, label in variants:
                ctx = make_context(tmp / f"ctx-{nfiles}", args.size, nfiles)
                res = {"llbkit": [], "buildctl": []}
                for _ in range(args.reps):
                    for which in ("llbkit", "buildctl"):
                        cl.prune()
                        res[which].append(cl.run(which, d, "--local", f"ctx={ctx}"))
                uploads.append((nfiles, label, res))
                shutil.rmtree(ctx)
            cl.prune()
            print(f"\n(b) upload of a {args.size / MiB:.0f} MiB context (--local, cache pruned before each build), median of {args.reps}")
            print(f"    {'context':<28} {'llbkit':>10} {'buildctl':>10} {'ratio':>7}   peak RSS llbkit / buildctl")
            for nfiles, label, res in uploads:
                mbs = {w: args.size / 1e6 / statistics.median(t for t, _ in r) for w, r in res.items()}
                rss = {w: max(m for _, m in r) for w, r in res.items()}
                desc = f"{nfiles} files ({label})"
                print(f"    {desc:<28} {mbs['llbkit']:>6.0f} MB/s {mbs['buildctl']:>5.0f} MB/s "
                      f"{ratio(mbs['llbkit'], mbs['buildctl']):>7}   {fmt_mib(rss['llbkit'])} / "
                      f"{fmt_mib(rss['buildctl'])} ({ratio(rss['llbkit'], rss['buildctl'])})")

        if "export" not in args.skip:
            n = max(1, args.files)
            per = args.size // n
            mib, rest = divmod(per, MiB)
            script = (f"mkdir /data && for i in $(seq {n}); do head -c {per} /dev/urandom > /data/f$i; done"
                      if rest else
                      f"mkdir /data && for i in $(seq {n}); do dd if=/dev/urandom of=/data/f$i bs=1M count={mib} 2>/dev/null; done")
            data = base.run(["/bin/sh", "-c", script]).root()
            d = write_def(llb.scratch().file(llb.copy(data, "/data", "/data")), tmp / "export.llb")
            cl.run("buildctl", d)  # make the data once; the timed builds only export it
            res = {"llbkit": [], "buildctl": []}
            for _ in range(args.reps):
                for which in ("llbkit", "buildctl"):
                    out = tmp / f"out-{which}.tar"
                    res[which].append(cl.run(which, d, "--output", f"type=tar,dest={out}"))
                    got = out.stat().st_size
                    assert got >= args.size, (which, got)
                    out.unlink()
            mbs = {w: args.size / 1e6 / statistics.median(t for t, _ in r) for w, r in res.items()}
            rss = {w: max(m for _, m in r) for w, r in res.items()}
            print(f"\n(c) receiving a type=tar export of {args.size / MiB:.0f} MiB ({n} files, cached state), median of {args.reps}")
            print(f"    llbkit {mbs['llbkit']:.0f} MB/s, buildctl {mbs['buildctl']:.0f} MB/s "
                  f"(ratio {ratio(mbs['llbkit'], mbs['buildctl'])}); peak RSS llbkit "
                  f"{fmt_mib(rss['llbkit'])}, buildctl {fmt_mib(rss['buildctl'])} "
                  f"(ratio {ratio(rss['llbkit'], rss['buildctl'])})")
        if uploads:
            print("\n(c) peak RSS while uploading: see (b)")
        return 0
    finally:
        bk.stop()
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
