from __future__ import annotations

import os
import subprocess

from llbkit.daemon import log_tail, pid_alive, process_cmdline, read_pid_file, running_pid, stop_pid


def test_pid_file_liveness_markers_and_stop(tmp_path):
    proc = subprocess.Popen(["sh", "-c", "sleep 60; :", "--marker-xyz"])
    pid_file = tmp_path / "d.pid"
    pid_file.write_text(f"{proc.pid}\n")
    try:
        assert pid_alive(proc.pid) and "--marker-xyz" in process_cmdline(proc.pid)
        assert read_pid_file(pid_file) == proc.pid
        assert running_pid(pid_file, ["--marker-xyz"]) == proc.pid
        assert running_pid(pid_file, ["another-daemon"]) is None  # a reused PID is not ours
        stop_pid(proc.pid, 5.0, pid_file)
        proc.wait(5)
        assert not pid_file.exists() and not pid_alive(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
    (tmp_path / "bad.pid").write_text("x")
    assert read_pid_file(tmp_path / "bad.pid") is None and read_pid_file(tmp_path / "none") is None
    assert pid_alive(os.getpid())


def test_log_tail(tmp_path):
    log = tmp_path / "d.log"
    assert log_tail(log) == "(no log)"
    log.write_text("")
    assert log_tail(log) == "(empty log)"
    log.write_text("".join(f"{i}\n" for i in range(30)))
    assert log_tail(log, 3) == "27\n28\n29"
