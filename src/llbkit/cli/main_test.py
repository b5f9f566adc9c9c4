from __future__ import annotations

import pytest

from llbkit.cli.commands import parse_duration, parse_size
from llbkit.cli.main import main
from llbkit.errors import LlbkitError
from llbkit import llb


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_command_prints_help(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "COMMAND" in err


def test_usage_error(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["build", "--progress", "fancy"])
    assert ei.value.code == 2
    assert "llbkit: error:" in capsys.readouterr().err


def test_unreachable_daemon_one_paragraph(capsys, tmp_path):
    code, _, err = run(capsys, "workers", "--addr", f"unix://{tmp_path}/no.sock", "--timeout", "3")
    assert code == 1
    assert err.startswith(f"llbkit: error: cannot connect to buildkitd at unix://{tmp_path}/no.sock")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_specs_before_connecting(capsys, tmp_path):
    d = tmp_path / "d.llb"
    d.write_bytes(llb.scratch().file(llb.mkdir("/x", 0o755)).marshal(platform="linux/amd64").to_bytes())
    addr = f"unix://{tmp_path}/no.sock"
    code, _, err = run(capsys, "build", str(d), "--addr", addr, "--output", "type=nope")
    assert code == 1 and "unknown type 'nope'" in err
    code, _, err = run(capsys, "build", str(d), "--addr", addr, "--local", "ctx=/does/not/exist")
    assert code == 1 and "is not a directory" in err
    code, _, err = run(capsys, "build", str(d), "--addr", addr, "--secret", "id=x")
    assert code == 1 and "id=ID,src=FILE" in err
    code, _, err = run(capsys, "build", str(tmp_path / "missing.llb"), "--addr", addr)
    assert code == 1 and "missing.llb" in err and "Traceback" not in err
    (tmp_path / "junk.llb").write_bytes(b"\xff\xff\xff")
    code, _, err = run(capsys, "build", str(tmp_path / "junk.llb"), "--addr", addr)
    assert code == 1 and "pb.Definition" in err
    code, _, err = run(capsys, "build", str(d), "--addr", "http://x")
    assert code == 1 and "unix://PATH or tcp://HOST:PORT" in err


def test_dump_llb(capsys, tmp_path):
    d = llb.scratch().file(llb.mkdir("/x", 0o755)).marshal(platform="linux/amd64")
    (tmp_path / "d.llb").write_bytes(d.to_bytes())
    code, out, _ = run(capsys, "dump-llb", str(tmp_path / "d.llb"))
    assert code == 0 and out == llb.dump(d)
    code, out, _ = run(capsys, "dump-llb", "--dot", str(tmp_path / "d.llb"))
    assert code == 0 and out.startswith("digraph {")


def test_sizes_and_durations():
    assert parse_size("10GB", "--x") == 10 * 10**9 and parse_size("2GiB", "--x") == 2 * 2**30
    assert parse_size("512", "--x") == 512
    assert parse_duration("1h30m", "--x") == 5400 and parse_duration("90", "--x") == 90
    with pytest.raises(LlbkitError, match="--x"):
        parse_size("lots", "--x")
    with pytest.raises(LlbkitError, match="duration"):
        parse_duration("1d", "--x")
