"""Benchmark: `pants package` of `container_image` targets as cacheable Pants processes.

Not a timed test: it prints figures, each as a ratio against a reference measured in the same
run (record them in benchmarks/RESULTS.md). Run from the repo root:

    LLBKIT_REPO=$PWD PYTHONPATH=src:testprojects python3.9 benchmarks/pants_native.py [--quick]

It works in copies of this repo (`testprojects/checkout.py`, real `./pants`), each with a Pants
local store of its own, on two fixture buildkitd daemons (both native amd64, unix sockets) and,
for part 3, a BuildGrid REAPI cache on 127.0.0.1. Everything lives under one temp dir, removed
at the end; every pantsd and daemon is stopped by PID. `--quick` uses smaller counts.

1. Parallel solves: N images (20), each a busybox run step `sleep S && echo TOKEN-i > /x` (S=5,
   a fresh token per round, so nothing is cached), `./pants --no-pantsd package bench20::` with
   `--process-execution-local-parallelism=P` (20) and `--buildkit-concurrency=C` (5 solves per
   worker at most), after a warm-up of the same targets with `sleep 0` (Pants bootstrap, base
   pulled on both workers). In flight: F = min(P, 2 x C, N); ideal = N x S / F; the ratios are
   wall / ideal, and the RUN phase / ideal: the RUNs' processes are sampled on the host every
   50 ms, giving how many ran at once and the time from the first RUN's start to the last one's
   end (what the solves in flight achieve, without Pants' start-up and cache work). R (3) rounds, each alternating the solved run with the same command when all N
   are cached (Pants' own cost, the reference); min / median / max. Also how the images were
   spread over the workers (each image.json's `platforms[*].worker`).
2. Warm no-op under pantsd: M images (50; `copy` of a small `files` target to a per-image path
   + `run("true")`) against M `archive(format="tar")` targets of the same file, in one checkout:
   each set packaged once, then R (5) alternating no-op runs of each; medians and the ratio
   llbkit / archive. `/tmp/llbkit-*` entries are listed before the warm-up, before and after
   the no-op runs: new ones are reported (other sessions on the machine may create some too).
3. Fully remote-cached fresh checkout: checkout A packages both sets with remote cache writes;
   checkout B (own local store and named caches, no auto-start, a dead worker address) packages
   the images with remote cache reads: wall time and how many came "from cache"; checkout C,
   set up as B, packages the archives from the same cache: the reference. A, B and C run with
   Pants' remote RPC concurrency lowered to 4 + 4 (see RPC_LIMITS: the BuildGrid fixture's limit).
4. Cold `package` against Pants' docker backend (`--docker`; without it, or when dockerd cannot
   be had, the part says so and is skipped): for each K (50 and 200; `--cold-images`), K
   `container_image` targets and K equivalent `docker_image` targets (one Dockerfile each: `FROM
   busybox`, `COPY dock/f.txt /srv/i/`: the context is the repo root, `RUN echo TOKEN-i > /x`),
   in one checkout with both backends enabled. dockerd is Debian's docker.io (installed with apt
   when missing and run as root), started with a data root, exec root, socket and pid file of its
   own under the temp dir, its BuildKit on (`DOCKER_BUILDKIT=1`); its RUNs need a bridge (Pants
   2.17's `docker_image` cannot ask for `--network=none`), so it gets one of its own, made for
   the run and deleted after it, with no iptables rules and no NAT (no route off the machine).
   llbkit builds on one fixture buildkitd. A warm-up round of each side pulls the base; then R
   (`--cold-rounds`, 2) alternating rounds, each with a fresh token so every RUN is a cache miss
   on both sides: `./pants --no-pantsd package` of each set; medians and the ratio llbkit /
   docker backend (goal <= 0.8). The two BuildKits differ (dockerd 20.10 embeds its own, older
   one): the ratio is for what a user would switch between.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as _platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from checkout import Checkout, Run
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.reapi import CacheServer

BUSYBOX = "127.0.0.1:5050/llbkit/busybox:latest"  # the samples' registry, started by ./pants
DEAD_WORKERS = '--buildkit-workers=["tcp://127.0.0.1:9"]'
PARALLELISM = 20
CONCURRENCY = 5  # per worker: with 2 workers, 10 solves in flight at most
# The BuildGrid fixture admits max(5, 5 x CPUs) concurrent RPCs (10 here) and rejects more with
# RESOURCE_EXHAUSTED; Pants' default is 128 store + 128 cache RPCs, and a rejected read turns a
# hit into a local run (which fails against the dead worker). 4 + 4 stay under the limit.
RPC_LIMITS = {"PANTS_REMOTE_STORE_RPC_CONCURRENCY": "4", "PANTS_REMOTE_CACHE_RPC_CONCURRENCY": "4"}


def write(co: Checkout, rel: str, text: str) -> None:
    path = co.repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_bench20(co: Checkout, n: int, sleep: float, token: str) -> None:
    write(co, "bench20/BUILD", "".join(
        f'container_image(name="img{i}", base="{BUSYBOX}", platforms=["linux/amd64"],\n'
        f'                steps=[run("sleep {sleep:g} && echo {token}-{i} > /x")])\n' for i in range(n)))


def write_sets(co: Checkout, n: int) -> None:
    """img50/: n images copying f.txt to /srv/i/ (distinct LLB) then `run("true")`; arc50/: n tars."""
    for d in ("img50", "arc50"):
        write(co, f"{d}/f.txt", "a small file\n")
    write(co, "img50/BUILD", 'files(name="f", sources=["f.txt"])\n' + "".join(
        f'container_image(name="img{i}", base="{BUSYBOX}", platforms=["linux/amd64"],\n'
        f'                steps=[copy("f.txt", "/srv/{i}/"), run("true")])\n' for i in range(n)))
    write(co, "arc50/BUILD", 'files(name="f", sources=["f.txt"])\n' + "".join(
        f'archive(name="arc{i}", format="tar", files=[":f"])\n' for i in range(n)))


def timed(co: Checkout, *args: str, targets: Sequence[str], timeout: float = 900) -> Tuple[float, Run]:
    t0 = time.perf_counter()
    run = co.pants("package", *targets, *args, timeout=timeout)
    wall = time.perf_counter() - t0
    run.check()
    return wall, run


def how_counts(run: Run) -> Counter:
    return Counter(run.how_built().values())


def remote_warnings(run: Run) -> int:
    return sum(1 for line in run.log.splitlines()
               if "[WARN]" in line and ("remote" in line.lower() or "cache" in line.lower()))


def tmp_llbkit() -> Set[str]:
    return {p.name for p in Path("/tmp").iterdir() if p.name.startswith("llbkit-")}


def new_tmp(before: Set[str]) -> str:
    """`/tmp/llbkit-*` entries made since `before` and still there, with their mtime; those whose
    `.llbkit-owner` names another process (other sessions' fixtures) are only counted."""
    ours, others = [], 0
    for name in sorted(tmp_llbkit() - before):
        try:
            owner = int((Path("/tmp", name, ".llbkit-owner").read_text().split() or ["0"])[0])
        except (OSError, ValueError):
            owner = 0
        if owner and owner != os.getpid():
            others += 1
            continue
        try:
            ours.append(f"{name} ({time.strftime('%H:%M:%S', time.localtime(Path('/tmp', name).stat().st_mtime))})")
        except OSError:
            pass  # removed meanwhile
    return f"{', '.join(ours) or 'none'}" + (f" (+{others} of other processes' fixtures)" if others else "")


def spread(values: Sequence[float]) -> str:
    v = sorted(values)
    return f"{v[0]:.2f} / {statistics.median(v):.2f} / {v[-1]:.2f}"


class RunSampler(threading.Thread):
    """Counts, every 50 ms, the RUN processes of one round (the containers' `sh -c "sleep ... &&
    echo TOKEN-i"`, visible in the host's /proc): how many ran at once, and how long the RUN
    phase lasted from the first RUN's start to the last one's end. It sees the solves in flight
    on the daemons directly, without Pants' own start-up and cache work."""

    def __init__(self, token: str) -> None:
        super().__init__(daemon=True)
        self.token = token.encode()
        self.samples: List[Tuple[float, int]] = []
        self.done = threading.Event()

    def _count(self) -> int:
        n = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"sh") and any(self.token in a for a in argv[1:]):
                n += 1
        return n

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.monotonic(), self._count()))
            time.sleep(0.05)

    def stop(self) -> Tuple[int, float]:
        """(most RUNs at once, seconds from the first RUN seen to the last)."""
        self.done.set()
        self.join()
        busy = [t for t, k in self.samples if k]
        return max((k for _, k in self.samples), default=0), (busy[-1] - busy[0]) if busy else 0.0


def part1(co: Checkout, workers: Dict[str, str], n: int, sleep: float, rounds: int) -> None:
    opts = (f"--process-execution-local-parallelism={PARALLELISM}", f"--buildkit-concurrency={CONCURRENCY}")
    seen = tmp_llbkit()
    write_bench20(co, n, 0, "WARM-" + secrets.token_hex(6))
    warm, run = timed(co, *opts, targets=["bench20::"])
    assert how_counts(run)["solved in"] == n, run.log[-4000:]
    walls: List[float] = []
    cached_walls: List[float] = []
    spread_: Counter = Counter()
    retried = 0
    peaks: List[int] = []
    spans: List[float] = []
    for _ in range(rounds):
        token = "TOKEN-" + secrets.token_hex(6)
        write_bench20(co, n, sleep, token)
        sampler = RunSampler(token)
        sampler.start()
        wall, run = timed(co, *opts, targets=["bench20::"])
        peak, span = sampler.stop()
        peaks.append(peak)
        spans.append(span)
        assert how_counts(run)["solved in"] == n, run.log[-4000:]
        walls.append(wall)
        cached, run = timed(co, *opts, targets=["bench20::"])
        assert how_counts(run)["from cache"] == n, run.log[-4000:]
        cached_walls.append(cached)
        for f in sorted((co.repo / "dist/bench20").glob("*.image.json")):
            record = json.loads(f.read_text())
            for p in record["platforms"]:
                spread_[workers.get(p.get("worker"), str(p.get("worker")))] += 1
            retried += sum(len(b.get("attempts", [])) > 1 for b in record.get("builds", []))
    slots = min(PARALLELISM, 2 * CONCURRENCY, n)
    ideal = n * sleep / slots
    net = [w - c for w, c in zip(walls, cached_walls)]
    print(f"1. parallel solves: {n} images x run(sleep {sleep:g}), 2 workers, "
          f"--process-execution-local-parallelism={PARALLELISM} --buildkit-concurrency={CONCURRENCY}, "
          f"--no-pantsd, {rounds} rounds (min / median / max)")
    print(f"   warm-up (same targets, sleep 0, solved):          {warm:7.2f} s")
    print(f"   wall time, all {n} solved:                        {spread(walls)} s")
    print(f"   same command, all {n} cached (Pants' own cost):   {spread(cached_walls)} s")
    print(f"   ideal = {n} x {sleep:g} s / {slots} in flight = {ideal:.2f} s "
          f"(whole rounds: ceil({n}/{slots}) x {sleep:g} s = {-(-n // slots) * sleep:.2f} s)")
    print(f"   ratio wall / ideal: {spread([w / ideal for w in walls])}x; "
          f"(wall - cached) / ideal: {spread([x / ideal for x in net])}x (target <= 1.3)")
    print(f"   RUNs in flight at once (sampled on the host every 50 ms): {' / '.join(str(k) for k in (min(peaks), int(statistics.median(peaks)), max(peaks)))} (slots: {slots})")
    print(f"   RUN phase, first RUN start to last RUN end: {spread(spans)} s; ratio to the ideal: "
          f"{spread([x / ideal for x in spans])}x (target <= 1.3; Pants' start-up and cache work excluded)")
    print(f"   images per worker (all rounds): {dict(sorted(spread_.items()))}; platform builds retried: {retried}")
    print(f"   /tmp/llbkit-* new during part 1 ({(rounds + 1) * n} solves) and still there: {new_tmp(seen)}")


def part2(co: Checkout, n: int, reps: int) -> None:
    write_sets(co, n)
    # Bases locked, as a hermetic repo has them: a no-op then resolves nothing.
    co.pants("generate-lockfiles", "--resolve=container-images").check()
    seen0 = tmp_llbkit()
    warm_img, run = timed(co, targets=["img50::"])
    assert how_counts(run)["solved in"] == n, run.log[-4000:]
    warm_arc, _ = timed(co, targets=["arc50::"])
    seen1, warm_new, pids0 = tmp_llbkit(), new_tmp(seen0), co.pantsd_pids()
    img: List[float] = []
    arc: List[float] = []
    for _ in range(reps):
        t, run = timed(co, targets=["img50::"])
        # Nothing solved; an unchanged image is served from pantsd's memory (nothing logged) or
        # from Pants' cache ("from cache").
        assert how_counts(run)["solved in"] == 0, run.log[-4000:]
        img.append(t)
        arc.append(timed(co, targets=["arc50::"])[0])
    seen2, noop_new = tmp_llbkit(), new_tmp(seen1)
    pids = co.pantsd_pids()
    mi, ma = statistics.median(img), statistics.median(arc)
    print(f"2. warm no-op under one pantsd (pid {pids}, same pantsd throughout: {pids == pids0}): {n} container_image vs {n} archive targets, "
          f"{reps} alternating runs each")
    print(f"   warm-up (first package, pantsd start for images): images {warm_img:.2f} s, archives {warm_arc:.2f} s")
    print(f"   ./pants package img50:: ({n} images)    min / median / max {spread(img)} s")
    print(f"   ./pants package arc50:: ({n} archives)  min / median / max {spread(arc)} s  (the reference)")
    print(f"   ratio llbkit / archive: {mi / ma:.2f}x of the medians; per pair {spread([a / b for a, b in zip(img, arc)])}x "
          "(target <= 1.2)")
    print(f"   /tmp/llbkit-*: {len(seen0)} before the warm-up, {len(seen1)} before the no-op runs, "
          f"{len(seen2)} after")
    print(f"   new during the warm-up and still there: {warm_new}")
    print(f"   new during the no-op runs and still there: {noop_new}")


def part3(base: Path, workers_env: Dict[str, str], n: int) -> None:
    seen = tmp_llbkit()
    with CacheServer(name="bench buildgrid") as cache:
        a = Checkout(base, "a", own_store=True,
                     env={**cache.pants_env(read=False, write=True), **RPC_LIMITS, **workers_env})
        try:
            write_sets(a, n)
            wall_a, run = timed(a, targets=["img50::", "arc50::"])
            assert how_counts(run)["solved in"] == n, run.log[-4000:]
            warn_a = remote_warnings(run)
        finally:
            a.close()
        walls: Dict[str, float] = {}
        runs: Dict[str, Run] = {}
        for name, target in (("b", "img50::"), ("c", "arc50::")):
            co = Checkout(base, name, own_store=True, own_named_caches=True,
                          env={**cache.pants_env(read=True, write=False), **RPC_LIMITS})
            try:
                write_sets(co, n)
                walls[name], runs[name] = timed(co, DEAD_WORKERS, "--no-buildkit-auto-start", targets=[target])
                assert co.daemon.pid() is None
            finally:
                co.close()
    how = how_counts(runs["b"])
    warns = {k: remote_warnings(r) for k, r in runs.items()}
    print(f"3. fresh checkout, remote cache only (BuildGrid on 127.0.0.1; own store and named caches, "
          f"no auto-start, {DEAD_WORKERS})")
    print(f"   checkout A, both sets cold, remote writes:   {wall_a:7.2f} s")
    print(f"   checkout B, ./pants package img50::           {walls['b']:7.2f} s  "
          f"({how['from cache']}/{n} images from cache, {how['solved in']} solved)")
    print(f"   checkout C, ./pants package arc50:: (ref.)    {walls['c']:7.2f} s")
    print(f"   ratio B / C: {walls['b'] / walls['c']:.2f}x")
    print(f"   remote cache warnings in the logs: A {warn_a}, B {warns['b']}, C {warns['c']} "
          f"(Pants RPC concurrency {RPC_LIMITS['PANTS_REMOTE_STORE_RPC_CONCURRENCY']} store + "
          f"{RPC_LIMITS['PANTS_REMOTE_CACHE_RPC_CONCURRENCY']} cache)")
    print(f"   /tmp/llbkit-* new during part 3 (A solved {n} images) and still there: {new_tmp(seen)}")


# -- part 4: Pants' docker backend on its own dockerd ---------------------------------------

DOCKER = "/usr/bin/docker"  # Debian's CLI, the same version as its dockerd (the BuildKit it drives)


BRIDGE = f"llbkitb{os.getpid() % 1000}"
BRIDGE_ADDRESS = f"10.213.{os.getpid() % 250}.1/24"


def _bridge(up: bool) -> bool:
    cmds = ([["ip", "link", "add", "name", BRIDGE, "type", "bridge"],
             ["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], ["ip", "link", "set", BRIDGE, "up"]]
            if up else [["ip", "link", "del", BRIDGE]])
    return all(subprocess.run(c, capture_output=True).returncode == 0 for c in cmds)


def start_dockerd(root: Path) -> "Tuple[Optional[subprocess.Popen], str]":
    """dockerd with everything of its own under ``root``; (process, unix socket) or (None, why)."""
    if shutil.which("dockerd") is None or not os.path.exists(DOCKER):
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return None, "no dockerd here, and installing Debian's docker.io needs root and apt-get"
        print("   installing Debian's docker.io with apt-get ...", flush=True)
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io"]):
            done = subprocess.run(cmd, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return None, f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-300:]}"
    if os.geteuid() != 0:
        return None, "dockerd needs root"
    root.mkdir(parents=True, exist_ok=True)
    if shutil.which("ip") is None or not _bridge(True):
        _bridge(False)
        return None, f"could not make the bridge {BRIDGE} for dockerd's RUNs (needs iproute2 and root)"
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "w")
    proc = subprocess.Popen(
        ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{sock}", f"--bridge={BRIDGE}",
         "--iptables=false", "--ip-masq=false", "--containerd-namespace=llbkit-bench",
         "--containerd-plugins-namespace=llbkit-bench-plugins"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        ok = subprocess.run([DOCKER, "-H", f"unix://{sock}", "version"], capture_output=True).returncode == 0
        if ok:
            return proc, f"unix://{sock}"
        time.sleep(0.5)
    stop_dockerd(proc)
    return None, f"dockerd did not come up in 60 s (see its log, {root / 'dockerd.log'})"


def stop_dockerd(proc: "Optional[subprocess.Popen]") -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _bridge(False)


def write_cold_sets(co: Checkout, n: int, token: str) -> None:
    """cold/: n container_image targets; dock/: n docker_image targets doing the same."""
    for d in ("cold", "dock"):
        write(co, f"{d}/f.txt", "a small file\n")
    write(co, "cold/BUILD", 'files(name="f", sources=["f.txt"])\n' + "".join(
        f'container_image(name="img{i}", base="{BUSYBOX}", platforms=["linux/amd64"],\n'
        f'                steps=[copy("f.txt", "/srv/{i}/"), run("echo {token}-{i} > /x")])\n'
        for i in range(n)))
    write(co, "dock/BUILD", 'files(name="f", sources=["f.txt"])\n' + "".join(
        f'docker_image(name="img{i}", source="Dockerfile.{i}", dependencies=[":f"])\n'
        for i in range(n)))
    for i in range(n):
        write(co, f"dock/Dockerfile.{i}", f"FROM {BUSYBOX}\nCOPY dock/f.txt /srv/{i}/\nRUN echo {token}-{i} > /x\n")


def part4(base: Path, worker: str, counts: Sequence[int], rounds: int, enabled: bool) -> None:
    print("4. cold package vs Pants' docker backend")
    if not enabled:
        print("   skipped: run with --docker (it installs Debian's docker.io when missing, as root, and "
              "starts a dockerd of its own)")
        return
    proc, where = start_dockerd(base / "dockerd")
    if proc is None:
        print(f"   skipped: {where}")
        return
    backends = '--backend-packages=+["pants.backend.docker"]'
    env = {"PANTS_BUILDKIT_WORKERS": json.dumps([worker]), "PANTS_BUILDKIT_AUTO_START": "false",
           "PANTS_DOCKER_EXECUTABLE_SEARCH_PATHS": '["/usr/bin"]',
           "PANTS_DOCKER_ENV_VARS": json.dumps([f"DOCKER_HOST={where}", "DOCKER_BUILDKIT=1"])}
    co = Checkout(base, "docker", own_store=True, env=env)
    try:
        version = subprocess.run([DOCKER, "-H", where, "version", "--format", "{{.Server.Version}}"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"   dockerd {version} (pid {proc.pid}, BuildKit on) vs llbkit on one buildkitd; "
              f"--no-pantsd, {rounds} alternating rounds after a warm-up (min / median / max)")
        for n in counts:
            write_cold_sets(co, n, "WARM-" + secrets.token_hex(6))
            timed(co, backends, targets=["cold::"], timeout=3600)
            timed(co, backends, targets=["dock::"], timeout=3600)
            ours: List[float] = []
            theirs: List[float] = []
            for _ in range(rounds):
                write_cold_sets(co, n, "TOKEN-" + secrets.token_hex(6))
                t, run = timed(co, backends, targets=["cold::"], timeout=3600)
                assert how_counts(run)["solved in"] == n, run.log[-4000:]
                ours.append(t)
                t, run = timed(co, backends, targets=["dock::"], timeout=3600)
                theirs.append(t)
            mo, mt = statistics.median(ours), statistics.median(theirs)
            print(f"   {n:4d} images: llbkit {spread(ours)} s, docker backend {spread(theirs)} s; "
                  f"ratio {mo / mt:.2f}x of the medians (goal <= 0.8)", flush=True)
    finally:
        co.close()
        stop_dockerd(proc)


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts (8 x sleep 3; 10 targets; 3 runs)")
    ap.add_argument("--noop-images", type=int, default=None, help="images (and archives) of part 2 (default 50)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of part 1 (default 3)")
    ap.add_argument("--skip", action="append", default=[], choices=["1", "2", "3", "4"])
    ap.add_argument("--docker", action="store_true",
                    help="run part 4 (Pants' docker backend on a dockerd of its own; installs docker.io if missing)")
    ap.add_argument("--cold-images", type=int, action="append", default=None,
                    help="images per set in part 4 (repeatable; default 50 and 200)")
    ap.add_argument("--cold-rounds", type=int, default=2, help="rounds of part 4 (default 2)")
    args = ap.parse_args(list(argv) or None)
    n1, sleep, n, reps = (8, 3.0, 10, 3) if args.quick else (20, 5.0, 50, 5)
    n = args.noop_images or n
    if not os.environ.get("LLBKIT_REPO"):
        os.environ["LLBKIT_REPO"] = str(Path(__file__).resolve().parent.parent)
    base = make_temp_dir("bench-pants-native", need_socket_room=len("/cache-x/buildkitd/buildkitd.sock"))
    tempfile.tempdir = str(base)  # the fixtures' own temp dirs go under it too
    start = tmp_llbkit()
    daemons = [Buildkitd(name=f"bench worker {i}") for i in (1, 2)]
    co = None
    print(f"llbkit Pants-native benchmark - Python {_platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{_platform.machine()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    try:
        for d in daemons:
            d.start()
        names = {d.addr: f"worker{i}" for i, d in enumerate(daemons, 1)}
        workers_env = {"PANTS_BUILDKIT_WORKERS": json.dumps([d.addr for d in daemons]),
                       "PANTS_BUILDKIT_AUTO_START": "false"}
        co = Checkout(base, "w", own_store=True, env=workers_env)
        if "1" not in args.skip:
            print(flush=True)
            part1(co, names, n1, sleep, args.rounds)
        co.pantsd = True
        if "2" not in args.skip:
            print(flush=True)
            part2(co, n, reps)
        co.close()
        if "3" not in args.skip:
            print(flush=True)
            part3(base, workers_env, n)
        if "4" not in args.skip:
            print(flush=True)
            part4(base, daemons[0].addr, args.cold_images or ([10] if args.quick else [50, 200]),
                  args.cold_rounds, args.docker)
    finally:
        if co is not None:
            co.close()
        for d in daemons:
            d.stop()
        tempfile.tempdir = None
        remove_tree(base)
    time.sleep(1)
    print(f"\n/tmp/llbkit-* new since the start and still there after cleanup: {new_tmp(start)}; "
          f"load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
