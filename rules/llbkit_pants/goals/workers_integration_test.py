"""`pants buildkit-workers` against the fixture daemons: a unix socket and TCP with mutual TLS."""

from __future__ import annotations

import json

from pants.testutil.rule_runner import RuleRunner

from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    buildkitd_amd64,
    buildkitd_arm64_tls,
    buildkitd_tls_files,
    pytest_runtest_makereport,
)
from llbkit_pants import register
from llbkit_pants.goals.workers import BuildKitWorkers


def test_both_daemons_with_their_native_and_emulated_platforms(
    buildkitd_amd64: Buildkitd, buildkitd_arm64_tls: Buildkitd
) -> None:
    rule_runner = RuleRunner(rules=register.rules(), target_types=register.target_types(),
                             aliases=[register.build_file_aliases()])
    workers = [buildkitd_amd64.addr, buildkitd_arm64_tls.addr]
    options = [f"--buildkit-workers={json.dumps(workers)}", f"--buildkit-tls-dir={buildkitd_arm64_tls.tls_dir}"]
    result = rule_runner.run_goal_rule(BuildKitWorkers, global_args=options, args=["--output-format=json"])
    assert result.exit_code == 0, result.stderr
    amd, arm = json.loads(result.stdout)
    assert (amd["address"], amd["reachable"], amd["native"]) == (buildkitd_amd64.addr, True, "linux/amd64")
    assert "linux/arm64" in amd["emulated"]  # qemu binfmt on this host
    assert (arm["address"], arm["reachable"], arm["native"]) == (buildkitd_arm64_tls.addr, True, "linux/arm64")
    assert amd["version"] and amd["version"] == arm["version"]  # what Info answers (a go-installed build says v0.0.0+unknown)

    table = rule_runner.run_goal_rule(BuildKitWorkers, global_args=options)
    assert table.exit_code == 0
    assert [line.split()[1] for line in table.stdout.splitlines()[1:]] == ["linux/amd64", "linux/arm64"]
