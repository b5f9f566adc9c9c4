"""`pants buildkit-workers` without a daemon: unreachable workers and bad options are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pants.testutil.rule_runner import RuleRunner

from llbkit.buildkit.pool import WorkerStatus
from llbkit.buildkit.types import BuildkitVersion
from llbkit_pants import register
from llbkit.builder.process import worker_rows
from llbkit_pants.goals.workers import BuildKitWorkers, render_table


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=register.rules(), target_types=register.target_types(),
                      aliases=[register.build_file_aliases()])


def test_an_unreachable_worker_is_shown_with_its_error_and_fails(rule_runner: RuleRunner, tmp_path: Path) -> None:
    gone = f"unix://{tmp_path}/gone.sock"
    result = rule_runner.run_goal_rule(
        BuildKitWorkers, global_args=[f"--buildkit-workers=['{gone}=linux/arm64']"],
        args=["--output-format=json"])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["address"] == gone and row["reachable"] is False and row["error"]
    assert row["native"] == "linux/arm64"  # as configured, even when unreachable
    assert "[buildkit].workers" in result.stderr


def test_a_bad_worker_option_is_a_clear_error(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(BuildKitWorkers, global_args=["--buildkit-workers=['http://x']"])
    assert result.exit_code == 2
    assert "invalid [buildkit].workers 'http://x': invalid buildkitd address 'http://x'" in result.stderr


def test_table_lists_native_and_emulated_platforms() -> None:
    rows = worker_rows([
        WorkerStatus("unix:///run/bk.sock", "unix:///run/bk.sock", ("linux/amd64", "linux/arm64"),
                     BuildkitVersion("github.com/moby/buildkit", "v0.32.2", "abc"), True),
        WorkerStatus("arm", "tcp://10.0.0.6:1234", (), None, False, "connection refused"),
    ])
    lines = render_table(rows).splitlines()
    assert lines[0].split() == ["ADDRESS", "NATIVE", "EMULATED", "VERSION", "STATUS"]
    assert lines[1].split() == ["unix:///run/bk.sock", "linux/amd64", "linux/arm64", "v0.32.2", "reachable"]
    assert lines[2].startswith("tcp://10.0.0.6:1234 (arm)") and lines[2].endswith("unreachable: connection refused")
