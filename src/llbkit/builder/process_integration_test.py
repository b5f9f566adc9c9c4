"""``python -m llbkit.builder.process solve`` as the Pants backend runs it, against the fixture
daemon and registry: machine settings from ``--settings DIR``, scheduling events as
``[llbkit] `` lines, failures as one final ``[llbkit-error] {JSON}`` line, and a process killed
mid-RUN leaves no output and no RUN behind on the daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import llbkit
import llbkit.builder.process  # noqa: F401 - run as `python -m`; importing it puts it in the test's sources
from llbkit.builder import ExportOptions, MachineSettings, SolveJob, WorkerSetting, resolve_bases
from llbkit.builder.settings import SETTINGS_FILE
from llbkit.image import ContextSource, CopyStep, ImageSpec, RegistryBase, RunStep, SecretMount, plan
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.procs import pid_gone
from llbkit.testutil.registry import Registry

SRC = str(Path(llbkit.__file__).resolve().parent.parent)
AMD64 = "linux/amd64"


def _settings_dir(tmp_path: Path, *workers: str, **kw: Any) -> Path:
    d = tmp_path / "settings"
    d.mkdir(exist_ok=True)
    settings = MachineSettings(workers=tuple(WorkerSetting(w) for w in workers), auto_start=False,
                               environment={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                            "HOME": str(tmp_path / "home")}, **kw)
    (d / SETTINGS_FILE).write_text(settings.to_json())
    return d


def _job_dir(tmp_path: Path, spec: ImageSpec, secrets: Sequence[Any] = ()) -> Path:
    refs = [spec.base.normalized] if isinstance(spec.base, RegistryBase) else []
    bases = resolve_bases(refs, list(spec.platforms), None)
    lowered = plan(spec, base_configs=bases, context_digest="sha256:" + "e1" * 32, source_date_epoch=0)
    job = SolveJob.of(spec.name, lowered, ExportOptions(record_tags=("it/proc:1",)), secrets=secrets,
                      has_context=True)
    d = tmp_path / "job"
    d.mkdir()
    for name, data in job.files().items():
        (d / name).write_bytes(data)
    return d


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "hello.txt").write_text("hello\n")
    return ctx


def _argv(tmp_path: Path, job: Path, settings: Path) -> List[str]:
    out = tmp_path / "out"
    return [sys.executable, "-m", "llbkit.builder.process", "solve", str(job), "--settings", str(settings),
            "--image", str(out / "image.tar"), "--record", str(out / "image.json"),
            "--context", str(_context(tmp_path))]


def _env() -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC)


def _solve(tmp_path: Path, job: Path, settings: Path) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(_argv(tmp_path, job, settings), env=_env(), capture_output=True, text=True,
                          timeout=300)


def _error_line(stderr: str) -> Dict[str, Any]:
    last = stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("[llbkit-error] "), stderr
    return json.loads(last[len("[llbkit-error] "):])


def _spec(registry: Registry, *steps: Any, name: str = "//it:proc") -> ImageSpec:
    return ImageSpec(name=name, base=RegistryBase(registry.busybox_ref), steps=steps, platforms=(AMD64,))


def test_solve_writes_both_outputs_and_reports_scheduling(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    spec = _spec(registry, CopyStep(ContextSource("context", "app/hello.txt"), "/app/"),
                 RunStep("cat /app/hello.txt > /app/copy.txt"))
    res = _solve(tmp_path, _job_dir(tmp_path, spec), _settings_dir(tmp_path, buildkitd_amd64.addr))
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["image.json", "image.tar"]
    record = json.loads((out / "image.json").read_bytes())
    assert record["tags"] == ["it/proc:1"] and record["builds"][0]["worker"] == buildkitd_amd64.addr
    assert (out / "image.tar").stat().st_size > 0
    events = [line for line in res.stderr.splitlines() if line.startswith("[llbkit] ")]
    assert any(f"{AMD64}: building on {buildkitd_amd64.addr} (native)" in line for line in events), res.stderr
    assert "[llbkit-error]" not in res.stderr


def test_an_unconfigured_required_secret_is_a_missing_secret_error(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    spec = _spec(registry, RunStep("cat /run/secrets/token", secrets=(SecretMount("token", required=True),)))
    job = _job_dir(tmp_path, spec, secrets=[("token", True)])
    res = _solve(tmp_path, job, _settings_dir(tmp_path, buildkitd_amd64.addr, secrets={"other": {"value": "x"}}))
    assert res.returncode == 1
    err = _error_line(res.stderr)
    assert err["kind"] == "missing_secret" and err["secret"] == "token"
    assert "//it:proc" in err["message"] and "'token'" in err["message"]
    assert not (tmp_path / "out" / "image.tar").exists()


def test_a_dead_worker_is_a_no_worker_error_with_platform_and_workers(
    registry: Registry, tmp_path: Path
) -> None:
    gone = f"unix://{tmp_path}/gone.sock"
    res = _solve(tmp_path, _job_dir(tmp_path, _spec(registry, RunStep("true"))), _settings_dir(tmp_path, gone))
    assert res.returncode == 1
    err = _error_line(res.stderr)
    assert err["kind"] == "no_worker" and err["platform"] == AMD64
    assert [w for w, _, _ in err["workers"]] == [gone] and "unreachable" in err["workers"][0][1]
    assert err["workers"][0][2] == "UNREACHABLE"  # a NoWorkerReason name, for the backend's hints
    assert gone in err["message"]
    assert not (tmp_path / "out" / "image.tar").exists() and not (tmp_path / "out" / "image.json").exists()


def test_resolve_bases_prints_json_and_needs_no_worker(registry: Registry, tmp_path: Path) -> None:
    from llbkit.builder import resolved_from_json

    settings = _settings_dir(tmp_path)  # no workers and no auto-start: asking one would fail
    res = subprocess.run([sys.executable, "-m", "llbkit.builder.process", "resolve-bases", "--settings",
                          str(settings), "--platform", AMD64, "--platform", "linux/arm64", registry.busybox_ref],
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = resolved_from_json(res.stdout)
    assert got == resolve_bases([registry.busybox_ref], [AMD64, "linux/arm64"], None)
    assert got[(registry.busybox_ref, AMD64)].digest == got[(registry.busybox_ref, "linux/arm64")].digest


# -- SIGKILL mid-RUN ------------------------------------------------------------------------------

def _ppid(pid: int) -> Optional[int]:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> List[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _runs_under(pid: int, daemon_pid: int) -> bool:
    """Whether ``pid``'s parent chain reaches ``daemon_pid`` through a runc process."""
    seen_runc = False
    p: Optional[int] = _ppid(pid)
    while p and p > 1:
        if p == daemon_pid:
            return seen_runc
        seen_runc = seen_runc or any("runc" in Path(a).name for a in _cmdline(p)[:1])
        p = _ppid(p)
    return False


def _sleeping(argv: List[str], daemon_pid: int) -> List[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()
            and _cmdline(int(d)) == argv and _runs_under(int(d), daemon_pid)]


def test_sigkill_mid_run_leaves_no_output_and_the_run_is_gone_from_the_daemon(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    # A duration of its own (and so a RUN no other build shares or has cached).
    seconds = str(317000 + time.time_ns() % 100000)
    spec = _spec(registry, RunStep(f"exec sleep {seconds}"), name="//it:killed")
    argv = _argv(tmp_path, _job_dir(tmp_path, spec), _settings_dir(tmp_path, buildkitd_amd64.addr))
    with open(tmp_path / "stderr.log", "wb") as err:
        proc = subprocess.Popen(argv, env=_env(), stderr=err)
    try:
        deadline = time.monotonic() + 120
        while not _sleeping(["sleep", seconds], buildkitd_amd64.pid):
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
            assert time.monotonic() < deadline, "the RUN never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert pid_gone(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = tmp_path / "out"
    assert not (out / "image.tar").exists() and not (out / "image.json").exists()
    # nothing but the killed process's temporary dirs (the sandbox they are in is discarded)
    assert all(p.name.startswith(".llbkit-") for p in out.iterdir()), list(out.iterdir())
    assert not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))
    deadline = time.monotonic() + 5
    while _sleeping(["sleep", seconds], buildkitd_amd64.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleeping(["sleep", seconds], buildkitd_amd64.pid), "the RUN outlived its build process"


def test_a_dockerfile_job_is_solved_with_its_local_dirs_given_by_flag(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    from llbkit.builder.job import FrontendCall, JobPlatform

    df_dir, ctx = tmp_path / "df", _context(tmp_path)
    df_dir.mkdir()
    (df_dir / "app.Dockerfile").write_text(f"FROM {registry.busybox_ref}\nCOPY app/hello.txt /hello.txt\n")
    call = FrontendCall("dockerfile.v0", (("filename", "app.Dockerfile"),))
    job = SolveJob("//app:df", (JobPlatform(AMD64, b"", b"", frontend=call),), ExportOptions(),
                   local_dirs=("context", "dockerfile"))
    d = tmp_path / "job"
    d.mkdir()
    for name, data in job.files().items():
        (d / name).write_bytes(data)
    settings = _settings_dir(tmp_path, buildkitd_amd64.addr)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "llbkit.builder.process", "solve", str(d), "--settings", str(settings),
            "--image", str(out / "image.tar"), "--record", str(out / "image.json"),
            "--local", f"context={ctx}", "--local", f"dockerfile={df_dir}"]
    res = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    record = json.loads((out / "image.json").read_text())
    assert record["platforms"][0]["platform"] == AMD64
    # without the dockerfile dir: a typed error naming it, and no outputs
    out2 = tmp_path / "out2"
    argv2 = [a.replace(str(out), str(out2)) for a in argv[:-2]]
    res = subprocess.run(argv2, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    err = _error_line(res.stderr)
    assert err["kind"] == "missing_input" and err["input"] == "dockerfile" and "--local" in err["message"]
    assert not (out2 / "image.tar").exists()
    # a Dockerfile syntax error: BuildKit's message, and where it points as fields
    (df_dir / "app.Dockerfile").write_text(f"FROM {registry.busybox_ref}\nBOGUS x\n")
    res = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    err = _error_line(res.stderr)
    assert "unknown instruction: BOGUS" in err["message"] and err["sources"] == [["app.Dockerfile", 2, 2]]
