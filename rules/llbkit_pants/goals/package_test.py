"""`pants package` errors caught before any daemon or registry is contacted."""

from __future__ import annotations

from textwrap import dedent
from typing import List

import pytest
from pants.core.goals import package as core_package
from pants.core.goals.package import Package
from pants.build_graph.address import Address as PantsAddress
from pants.build_graph.build_file_aliases import BuildFileAliases
from pants.engine.internals.parametrize import Parametrize
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from llbkit_pants import register
from llbkit_pants.goals.package import ContainerImagePackageFieldSet, explain_no_worker
from llbkit_pants.util_rules.process_errors import ProcessFailure

IMAGE = dedent("""\
    container_image(name="img", base="scratch",
                    steps=[run("cat /run/secrets/token", secrets=[secret_mount("token")])])
    """)


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(rules=[*core_package.rules(), *register.rules()], target_types=register.target_types(),
                        aliases=[register.build_file_aliases(),
                                 BuildFileAliases(objects={"parametrize": Parametrize})])
    runner.write_files({"app/BUILD": IMAGE})
    return runner


def package_error(rule_runner: RuleRunner, options: List[str], env=None) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ExecutionError) as e:
        rule_runner.run_goal_rule(Package, global_args=options, args=["app:img"], env=env)
    return str(e.value)


def test_a_required_secret_that_is_not_configured_names_target_secret_and_option(rule_runner: RuleRunner) -> None:
    message = package_error(rule_runner, ["--buildkit-workers=['unix:///nonexistent/buildkitd.sock']"])
    assert "app:img mounts secret 'token', which is not configured: add it to [buildkit].secrets" in message


def test_a_secret_from_an_unset_variable_is_named_not_read(rule_runner: RuleRunner) -> None:
    message = package_error(rule_runner, ["--buildkit-workers=['unix:///nonexistent/buildkitd.sock']",
                                          "--buildkit-secrets=['token=env:LLBKIT_TEST_UNSET_TOKEN']"])
    assert "from environment variable LLBKIT_TEST_UNSET_TOKEN, which is not set" in message


@pytest.mark.parametrize("option, fragment", [
    ("--buildkit-workers=['http://x']", "invalid [buildkit].workers 'http://x': invalid buildkitd address 'http://x'"),
    ("--buildkit-secrets=['token']", "invalid [buildkit].secrets 'token': expected ID=env:VARIABLE"),
    ("--buildkit-max-attempts=0", "invalid [buildkit].max_attempts 0: it must be at least 1"),
    ("--buildkit-progress=tty", "Invalid choice 'tty'"),
    ("--buildkit-platforms=['linux']", "invalid [buildkit].platforms 'linux'"),
])
def test_bad_options_are_clear_errors(rule_runner: RuleRunner, option: str, fragment: str) -> None:
    assert fragment in package_error(rule_runner, [option])


def test_no_worker_errors_say_which_setting_fixes_them() -> None:
    workers = [
        ["unix:///run/bk.sock", "can only emulate linux/arm64 (native linux/amd64) and emulation is disallowed "
                                "(allow emulation, or add a worker native to linux/arm64)", "EMULATION_DISALLOWED"],
        ["tcp://10.0.0.6:1234", "unreachable: connection refused", "UNREACHABLE"],
    ]
    message = "no worker can build linux/arm64:" + "".join(f"\n  - {w}: {r}" for w, r, _ in workers)
    failure = ProcessFailure("no_worker", message, {"platform": "linux/arm64", "workers": workers})
    text = explain_no_worker(failure, allow_emulation=False)
    assert "tcp://10.0.0.6:1234: unreachable: connection refused" in text
    assert "check the addresses in [buildkit].workers" in text
    assert "[buildkit].allow_emulation = true" in text


def test_parametrized_variants_get_their_own_output_paths(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"multi/BUILD": dedent("""\
        container_image(name="img", base="scratch",
                        platforms=parametrize(amd=["linux/amd64"], arm=["linux/arm64"]))
        container_image(name="custom", base="scratch", output_path="images/custom.oci.tar")
        """)})
    paths = set()
    for params in ({"platforms": "amd"}, {"platforms": "arm"}):
        tgt = rule_runner.get_target(PantsAddress("multi", target_name="img", parameters=params))
        paths.add(ContainerImagePackageFieldSet.create(tgt).output_paths())
    assert paths == {("multi/img@platforms=amd.oci.tar", "multi/img@platforms=amd.image.json"),
                     ("multi/img@platforms=arm.oci.tar", "multi/img@platforms=arm.image.json")}
    custom = rule_runner.get_target(PantsAddress("multi", target_name="custom"))
    assert ContainerImagePackageFieldSet.create(custom).output_paths() == (
        "images/custom.oci.tar", "images/custom.image.json")
