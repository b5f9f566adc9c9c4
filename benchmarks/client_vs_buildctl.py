"""llbkit's client (`python -m llbkit build`) against buildctl, on one buildkitd, in one run.

Run from the repo root (it starts its own buildkitd and a registry holding busybox, and stops
them by PID at the end):

    PYTHONPATH=src python benchmarks/client_vs_buildctl.py                 # full size: 1 GiB
    PYTHONPATH=src python benchmarks/client_vs_buildctl.py --size 64MiB --reps 2 --sleep 1

What it measures, each client as its own process, the same definition bytes on stdin, in
alternating pairs (llbkit, then buildctl), each figure printed as min / median / max next to
buildctl's from the same run, with the ratio of the medians:

(0) a cached tiny build (a scratch image with one file, already in the daemon's cache): what
    the client itself costs (start-up, imports, connection, session, teardown);
(a) overhead: a RUN `sleep N` (cache disabled for that step) built ``--reps`` times by each
    client, alternating; median wall time, and the overhead above N seconds;
(b) upload: a local context of ``--size`` bytes (``--files`` files, and a variant with
    ``--small-files`` files) sent with ``--local ctx=DIR``; the definition is the local source
    alone. The daemon's cache is pruned (``buildctl prune --all``) before every build, so every
    build sends everything; MB/s = context bytes / wall time of the client process; CPU = the
    client process's user + system time (``wait4``);
(c) memory: the client process's peak RSS (``ru_maxrss`` from ``wait4``, the kernel's figure)
    during (b), and while receiving a ``type=tar`` export of a state holding ``--size`` bytes
    (made by a RUN and cached before the timed builds; MB/s of the export too);
(d) the OCI image export of the Pants backend (``build_multiplatform``, in this process: one
    platform of that cached ``--size`` state, as ``pants package`` writes it) against one
    sequential write of the same number of bytes to the same directory (``dd``-like, 1 MiB
    blocks, fsync), the floor; the bytes this process wrote to storage meanwhile
    (``/proc/self/io`` ``write_bytes``) against the tar's size (one write: 1.0); and buildctl's
    ``type=oci,dest=FILE,rewrite-timestamp=true`` with ``SOURCE_DATE_EPOCH=0``, the same export.

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

def run_client(argv: Sequence[str], stdin: Path, env: Optional[dict] = None) -> Tuple[float, int, float]:
    """Run one client process; returns (wall seconds, peak RSS in KiB, CPU seconds). Fails loudly.

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
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def spread(values: Sequence[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """min / median / max."""
    v = sorted(x * scale for x in values)
    return " / ".join(fmt.format(x) for x in (v[0], statistics.median(v), v[-1]))


def pairs(n: int, ours, theirs) -> Tuple[list, list]:  # type: ignore[no-untyped-def]
    """``n`` alternating pairs (ours first, then theirs): two lists of results."""
    a, b = [], []
    for _ in range(n):
        a.append(ours())
        b.append(theirs())
    return a, b


def report(name: str, ours: Sequence[float], theirs: Sequence[float], unit: str = "s", scale: float = 1.0,
           fmt: str = "{:.3f}", higher_is_better: bool = False) -> None:
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"    {name:<34} llbkit {spread(ours, scale, fmt)} {unit}   buildctl {spread(theirs, scale, fmt)} {unit}"
          f"   ratio {ratio(mo, mt)}" + (" (higher is better)" if higher_is_better else ""))


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

    def run(self, which: str, deffile: Path, *args: str) -> Tuple[float, int, float]:
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


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def sequential_write(path: Path, size: int) -> float:
    """Seconds to write ``size`` bytes to ``path`` in 1 MiB blocks and fsync it: the floor."""
    block = os.urandom(MiB)
    start = time.monotonic()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            left -= f.write(block[:min(left, MiB)])
        f.flush()
        os.fsync(f.fileno())
    took = time.monotonic() - start
    path.unlink()
    return took


def oci_export(bk: Buildkitd, state: llb.State, tmp: Path, size: int, reps: int, cl: "Clients") -> None:
    """(d): the backend's OCI export of one platform vs one sequential write (and buildctl's oci)."""
    from llbkit.buildkit import PlatformJob, WorkerConfig, WorkerPool, build_multiplatform

    definition = state.marshal(platform=PLATFORM)
    d = write_def(state, tmp / "oci.llb")
    dest = tmp / "image.oci.tar"
    def written() -> int:
        for line in open("/proc/self/io"):
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        return 0

    env = dict(cl.env, SOURCE_DATE_EPOCH="0")
    with WorkerPool([WorkerConfig(bk.addr)]) as pool:
        def ours() -> Tuple[float, float, float]:
            t0, c0, w0 = time.monotonic(), time.process_time(), written()
            build_multiplatform(pool, [PlatformJob(PLATFORM, definition, None)], dest)
            took, cpu = time.monotonic() - t0, time.process_time() - c0
            wrote = (written() - w0) / dest.stat().st_size
            assert dest.stat().st_size >= size
            dest.unlink()
            return took, cpu, wrote
        ours()  # warm: the state is cached, only the export is timed below
        rows = []
        for _ in range(reps):  # alternating: ours, the sequential write, buildctl's oci export
            o = ours()
            w = sequential_write(tmp / "seq.bin", size)
            out = tmp / "buildctl.oci.tar"
            bt = run_client(cl.theirs("--output", f"type=oci,dest={out},rewrite-timestamp=true"), d, env)[0]
            out.unlink()
            rows.append((o, w, bt))
    print(f"\n(d) the Pants backend's OCI export of {size / MiB:.0f} MiB (build_multiplatform, one platform, "
          f"cached state), {reps} rounds")
    print(f"    llbkit export             {spread([r[0][0] for r in rows])} s (CPU {spread([r[0][1] for r in rows])} s)")
    print(f"    bytes written / tar size  {spread([r[0][2] for r in rows])}   (one write: 1.00)")
    print(f"    one sequential write      {spread([r[1] for r in rows])} s   (the floor: same bytes, same directory)")
    print(f"    buildctl, same export     {spread([r[2] for r in rows])} s   (type=oci,dest=,rewrite-timestamp=true, SOURCE_DATE_EPOCH=0)")
    mo = statistics.median(r[0][0] for r in rows)
    print(f"    ratio llbkit / sequential write: {ratio(mo, statistics.median(r[1] for r in rows))}; "
          f"llbkit / buildctl oci: {ratio(mo, statistics.median(r[2] for r in rows))}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="context/export size (default 1GiB)")
    ap.add_argument("--files", type=int, default=64, help="files of the large-file context (default 64)")
    ap.add_argument("--small-files", type=int, default=16384,
                    help="files of the many-small-files context (default 16384; 0: skip)")
    ap.add_argument("--reps", type=int, default=3, help="builds per client and measurement (default 3)")
    ap.add_argument("--overhead-reps", type=int, default=5, help="builds per client for (a) (default 5)")
    ap.add_argument("--sleep", type=float, default=3.0, help="seconds the RUN of (a) sleeps (default 3)")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["overhead", "upload", "export", "tar-export"])
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
        run_client([sys.executable, "-m", "llbkit", "build", "--help"], Path(os.devnull), cl.env)
        print(f"llbkit {__version__} client vs buildctl - Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, {platform.machine()}; {version}")
        print(f"size {args.size / MiB:.0f} MiB; {args.reps} pairs per measurement, {args.overhead_reps} for (0) "
              f"and (a); figures are min / median / max; load average {load()}")
        base = llb.image(busybox, platform=PLATFORM)
        n_startup = max(3, args.overhead_reps)

        def startup(argv: Sequence[str], env: Optional[dict] = None) -> float:
            return run_client(argv, Path(os.devnull), env)[0]

        py = [sys.executable, "-m", "llbkit"]
        bc = [str(bk.buildctl_bin), "--addr", bk.addr]
        print(f"\nstart-up, {n_startup} alternating pairs")
        for name, ours, theirs in (
                ("--version", py + ["--version"], [str(bk.buildctl_bin), "--version"]),
                ("--help", py + ["--help"], [str(bk.buildctl_bin), "--help"]),
                ("workers", py + ["workers", "--addr", bk.addr], bc + ["debug", "workers"])):
            a, b = pairs(n_startup, lambda: startup(ours, cl.env), lambda: startup(theirs))
            report(name, a, b, "ms", 1000, "{:.0f}")

        tiny = write_def(llb.scratch().file(llb.mkfile("/hi", 0o644, b"hi")), tmp / "tiny.llb")
        cl.run("llbkit", tiny)
        cl.run("buildctl", tiny)
        a, b = pairs(args.overhead_reps, lambda: cl.run("llbkit", tiny), lambda: cl.run("buildctl", tiny))
        print(f"\n(0) cached tiny build (scratch + one file, in the daemon's cache), {args.overhead_reps} pairs")
        report("wall", [x[0] for x in a], [x[0] for x in b], "ms", 1000, "{:.0f}")
        report("CPU", [x[2] for x in a], [x[2] for x in b], "ms", 1000, "{:.0f}")
        report("peak RSS", [x[1] for x in a], [x[1] for x in b], "MiB", 1 / 1024, "{:.0f}")

        if "overhead" not in args.skip:
            d = write_def(base.run(["/bin/sleep", f"{args.sleep:g}"], ignore_cache=True).root(), tmp / "sleep.llb")
            cl.run("llbkit", d)  # pulls busybox
            cl.run("buildctl", d)
            a, b = pairs(args.overhead_reps, lambda: cl.run("llbkit", d), lambda: cl.run("buildctl", d))
            print(f"\n(a) a real build: RUN sleep {args.sleep:g} (ignore-cache), {args.overhead_reps} pairs")
            report("wall", [x[0] for x in a], [x[0] for x in b])
            report(f"overhead (wall - {args.sleep:g} s)", [x[0] - args.sleep for x in a], [x[0] - args.sleep for x in b])

        if "upload" not in args.skip:
            variants = [(args.files, "large files")]
            if args.small_files:
                variants.append((args.small_files, "small files"))
            d = write_def(llb.local("ctx"), tmp / "local.llb")
            print(f"\n(b) upload of a {args.size / MiB:.0f} MiB context (--local, cache pruned before each build), "
                  f"{args.reps} pairs")
            for nfiles, label in variants:
                ctx = make_context(tmp / f"ctx-{nfiles}", args.size, nfiles)

                def one(which: str) -> Tuple[float, int, float]:
                    cl.prune()
                    return cl.run(which, d, "--local", f"ctx={ctx}")
                a, b = pairs(args.reps, lambda: one("llbkit"), lambda: one("buildctl"))
                print(f"  {nfiles} files ({label})")
                report("throughput", [args.size / 1e6 / x[0] for x in a], [args.size / 1e6 / x[0] for x in b],
                       "MB/s", 1, "{:.0f}", higher_is_better=True)
                report("CPU", [x[2] for x in a], [x[2] for x in b], "s", 1, "{:.2f}")
                report("peak RSS", [x[1] for x in a], [x[1] for x in b], "MiB", 1 / 1024, "{:.0f}")
                shutil.rmtree(ctx)
            cl.prune()

        if "export" not in args.skip:
            n = max(1, args.files)
            per = args.size // n
            mib, rest = divmod(per, MiB)
            script = (f"mkdir /data && for i in $(seq {n}); do head -c {per} /dev/urandom > /data/f$i; done"
                      if rest else
                      f"mkdir /data && for i in $(seq {n}); do dd if=/dev/urandom of=/data/f$i bs=1M count={mib} 2>/dev/null; done")
            data = base.run(["/bin/sh", "-c", script]).root()
            state = llb.scratch().file(llb.copy(data, "/data", "/data"))
            d = write_def(state, tmp / "export.llb")
            cl.run("buildctl", d)  # make the data once; the timed builds only export it
        if "export" not in args.skip and "tar-export" not in args.skip:

            def tar_export(which: str) -> Tuple[float, int, float]:
                out = tmp / f"out-{which}.tar"
                r = cl.run(which, d, "--output", f"type=tar,dest={out}")
                assert out.stat().st_size >= args.size, (which, out.stat().st_size)
                out.unlink()
                return r
            a, b = pairs(args.reps, lambda: tar_export("llbkit"), lambda: tar_export("buildctl"))
            print(f"\n(c) receiving a type=tar export of {args.size / MiB:.0f} MiB ({n} files, cached state), "
                  f"{args.reps} pairs")
            report("throughput", [args.size / 1e6 / x[0] for x in a], [args.size / 1e6 / x[0] for x in b],
                   "MB/s", 1, "{:.0f}", higher_is_better=True)
            report("peak RSS", [x[1] for x in a], [x[1] for x in b], "MiB", 1 / 1024, "{:.0f}")
        if "export" not in args.skip:
            oci_export(bk, state, tmp, args.size, args.reps, cl)
        return 0
    finally:
        bk.stop()
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
