"""Benchmark: build and marshal LLB graphs of about 100, 1,000 and 10,000 ops; print the figures.

Not a timed test: it prints numbers (record them in benchmarks/RESULTS.md). Run from the repo root:

    PYTHONPATH=src python benchmarks/llb_marshal.py [--other-python PATH] [--buildctl PATH]

For each size it reports:

- build: constructing the states (best of --repeat runs);
- marshal: ``state.marshal(platform=...)`` (best of --repeat), and ``ops/s`` = ops / marshal time;
- bytes: the size of the serialized ``pb.Definition``;
- stable: the sha256 of the definition bytes is the same when marshaling the same graph twice, a
  freshly built graph, in a subprocess of this interpreter with another ``PYTHONHASHSEED`` and, with
  ``--other-python``, in a subprocess of that interpreter;
- peak: tracemalloc's peak while building and marshaling (a separate, untimed run);
- reference, measured in the same run on the same bytes: ``llb.dump`` (Python) and ``buildctl debug
  dump-llb`` (Go, one process: start, parse, print the same JSON), with buildctl's bare start-up
  (``buildctl --version``) for scale. buildctl is found as the test fixtures find it (or
  ``--buildctl``); without it the reference columns are skipped.

The graphs are a deterministic, realistic mix: an image source plus a few more sources, chains of
runs with env, working dirs and cache/tmpfs/bind mounts, file ops (mkdir, mkfile, copies from
other states, from diffs and from other images), merges and diffs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from llbkit import llb

PLATFORM = "linux/amd64"
SIZES = (100, 1_000, 10_000)


def _sh(script: str) -> List[str]:
    return ["/bin/sh", "-c", script]


def build_graph(target_ops: int) -> llb.State:
    """A state whose definition has about ``target_ops`` ops (deterministic for a given target)."""
    base = llb.image("docker.io/library/busybox:1.36", platform=PLATFORM)
    ctx = llb.local("context", exclude_patterns=["**/*.pyc"], shared_key_hint="bench")
    head = base
    count = 3  # base, ctx (first copied in unit 0) and the terminal op
    i = 0
    while count < target_ops:
        work = f"/w{i % 4}"
        a = (
            head.dir(work)
            .add_env("STEP", str(i))
            .run(
                _sh(f"echo step {i} >> {work}/out && cat /in/n >> {work}/out 2>/dev/null || true"),
                mounts=[llb.cache("/root/.cache", f"bench-{i % 5}", sharing="shared"), llb.tmpfs("/tmp")],
            )
            .root()
        )
        actions = (
            llb.mkdir(f"/d{i}", 0o755, make_parents=True)
            .mkfile(f"/d{i}/n", 0o644, f"{i}\n".encode())
            .copy(a, f"{work}/out", f"/d{i}/out", create_dest_path=True)
        )
        count += 2
        if i == 0:
            actions = actions.copy(ctx, "/", "/d0/ctx", dir_contents_only=True, create_dest_path=True)
        if i % 10 == 9:  # another image now and then
            lib = llb.image(f"registry.example/lib{i}:1.0", platform=PLATFORM)
            actions = actions.copy(lib, "/usr/lib/*.so", f"/d{i}/lib/", allow_wildcard=True,
                                   allow_empty_wildcard=True, create_dest_path=True)
            count += 1
        files = llb.scratch().file(actions)
        b = a.run(
            _sh(f"ls /src > /out/listing-{i}"),
            mounts=[llb.bind("/src", files, readonly=True), llb.bind("/out", llb.scratch())],
        )
        count += 1
        if i % 3 == 2:
            changes = llb.diff(head, a)
            head = llb.merge([b.root(), b.get_mount("/out"), changes])
            count += 2
        else:
            head = llb.merge([b.root(), files])
            count += 1
        i += 1
    return head


def marshal(state: llb.State) -> llb.Definition:
    return state.marshal(PLATFORM, local_unique_id="bench")


def definition_sha(size: int) -> str:
    return hashlib.sha256(marshal(build_graph(size)).to_bytes()).hexdigest()


def best_of(repeat: int, fn: Callable[[], object]) -> Tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def subprocess_shas(python: str, sizes: List[int], hashseed: str) -> Dict[int, str]:
    """The definition sha256 per size, computed by ``python`` running this script."""
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = subprocess.run(
        [python, __file__, "--emit-shas", ",".join(map(str, sizes))],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return {int(k): v for k, v in json.loads(out).items()}


def python_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def find_buildctl(explicit: Optional[str]) -> Optional[str]:
    if explicit:
        return explicit
    try:
        from llbkit.testutil.tools import find_tool

        return str(find_tool("buildctl"))
    except Exception:  # noqa: BLE001 - the reference is optional
        return shutil.which("buildctl")


def time_process(argv: List[str], data: bytes, repeat: int) -> Tuple[float, bytes]:
    def run() -> bytes:
        return subprocess.run(argv, input=data, capture_output=True, check=True).stdout

    t, out = best_of(repeat, run)
    return t, out  # type: ignore[return-value]


def peak_memory(size: int) -> int:
    tracemalloc.start()
    try:
        marshal(build_graph(size)).to_bytes()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="target op counts")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per figure (best is kept)")
    ap.add_argument("--other-python", help="another interpreter to check digest stability with")
    ap.add_argument("--buildctl", help="buildctl for the reference figures (default: as the fixtures)")
    ap.add_argument("--no-reference", action="store_true", help="skip the buildctl reference")
    ap.add_argument("--emit-shas", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    if args.emit_shas:  # subprocess mode: print the digests and stop
        print(json.dumps({n: definition_sha(n) for n in map(int, args.emit_shas.split(","))}))
        return 0

    import google.protobuf

    print(f"llbkit LLB marshal benchmark - Python {platform.python_version()} "
          f"({platform.python_implementation()}), protobuf {google.protobuf.__version__} "
          f"({_protobuf_backend()}), {os.cpu_count()} CPUs, {platform.machine()}")
    print(f"timings: best of {args.repeat}; platform {PLATFORM}")

    checks = {f"subprocess, this Python, PYTHONHASHSEED=12345": subprocess_shas(sys.executable, sizes, "12345")}
    if args.other_python:
        label = f"subprocess, Python {python_version(args.other_python)}"
        checks[label] = subprocess_shas(args.other_python, sizes, "random")
    buildctl = None if args.no_reference else find_buildctl(args.buildctl)

    rows = []
    for size in sizes:
        build_t, state = best_of(args.repeat, lambda: build_graph(size))
        marshal_t, d = best_of(args.repeat, lambda: marshal(state))  # type: ignore[arg-type]
        bytes_t, data = best_of(args.repeat, lambda: d.to_bytes())  # type: ignore[union-attr]
        sha = hashlib.sha256(data).hexdigest()  # type: ignore[arg-type]
        again = hashlib.sha256(marshal(state).to_bytes()).hexdigest()  # type: ignore[arg-type]
        rebuilt = definition_sha(size)
        differing = [name for name, shas in checks.items() if shas[size] != sha]
        if again != sha:
            differing.append("second marshal")
        if rebuilt != sha:
            differing.append("rebuilt graph")
        row = {
            "target": size,
            "ops": len(d),  # type: ignore[arg-type]
            "build_s": build_t,
            "marshal_s": marshal_t,
            "to_bytes_s": bytes_t,
            "bytes": len(data),  # type: ignore[arg-type]
            "sha": sha,
            "stable": not differing,
            "differing": differing,
            "peak": peak_memory(size),
            "kinds": _kinds(d),  # type: ignore[arg-type]
        }
        dump_t, text = best_of(args.repeat, lambda: llb.dump(d))  # type: ignore[arg-type]
        row["dump_s"] = dump_t
        if buildctl:
            t, out = time_process([buildctl, "debug", "dump-llb"], data, args.repeat)  # type: ignore[arg-type]
            row["buildctl_dump_s"] = t
            row["buildctl_same_json"] = out.decode() == text
        rows.append(row)

    print()
    print(f"{'ops':>7} {'build':>9} {'marshal':>9} {'ops/s':>9} {'to_bytes':>9} {'bytes':>10} "
          f"{'peak MiB':>9}  digests")
    for r in rows:
        print(f"{r['ops']:>7} {_ms(r['build_s'])} {_ms(r['marshal_s'])} "
              f"{r['ops'] / r['marshal_s']:>9,.0f} {_ms(r['to_bytes_s'])} {r['bytes']:>10,} "
              f"{r['peak'] / 2**20:>9.1f}  "
              + ("stable" if r["stable"] else "UNSTABLE: " + ", ".join(r["differing"])))
    print()
    print("op mix: " + "; ".join(
        f"{r['ops']} ops: " + ", ".join(f"{k} {n}" for k, n in r["kinds"]) for r in rows))
    print()
    print("digest stability: each size's definition sha256 compared across: second marshal of the "
          "same graph, a freshly built graph, " + "; ".join(checks))
    for r in rows:
        print(f"  {r['ops']:>6} ops: sha256:{r['sha']}")

    print()
    print("reference (same run, same definition bytes; not a like-for-like comparison):")
    if buildctl:
        start_t, _ = time_process([buildctl, "--version"], b"", args.repeat)
        print(f"  buildctl start-up alone (`buildctl --version`): {start_t * 1e3:.1f} ms")
    print(f"{'ops':>7} {'llb.dump':>10} {'buildctl dump-llb':>18} {'same JSON':>10} "
          f"{'marshal / buildctl dump-llb':>28}")
    for r in rows:
        if buildctl:
            ref = f"{r['buildctl_dump_s'] * 1e3:>15.1f} ms {str(r['buildctl_same_json']):>10} " \
                  f"{r['marshal_s'] / r['buildctl_dump_s']:>27.2f}x"
        else:
            ref = "(buildctl not found)"
        print(f"{r['ops']:>7} {r['dump_s'] * 1e3:>7.1f} ms {ref}")
    ok = all(r["stable"] for r in rows) and all(r.get("buildctl_same_json", True) for r in rows)
    return 0 if ok else 1


def _kinds(d: llb.Definition) -> List[Tuple[str, int]]:
    counts: Dict[str, int] = {}
    for op in d.ops:
        kind = op.kind or "terminal"
        counts[kind] = counts.get(kind, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:>6.1f} ms"


def _protobuf_backend() -> str:
    try:
        from google.protobuf.internal import api_implementation

        return api_implementation.Type()
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
