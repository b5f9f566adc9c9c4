"""`pants llb` prints what `package` would solve (no daemon: scratch bases need none)."""

from __future__ import annotations

from textwrap import dedent

import pytest
from pants.build_graph.address import Address
from pants.core.target_types import FilesGeneratorTarget, FileTarget
from pants.engine.rules import QueryRule
from pants.testutil.rule_runner import RuleRunner

from llbkit import llb
from llbkit.image import plan
from llbkit_pants import register
from llbkit_pants.goals.llb import Llb
from llbkit_pants.util_rules.image_spec import ContainerImageSpec, ContainerImageSpecRequest


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[*register.rules(), QueryRule(ContainerImageSpec, [ContainerImageSpecRequest])],
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget],
        aliases=[register.build_file_aliases()],
    )
    runner.write_files({
        "img/hello.txt": "hello\n",
        "img/BUILD": dedent("""\
            files(name="files", sources=["hello.txt"])
            container_image(
                name="one", base="scratch",
                steps=[copy("hello.txt", "/app/"), run(["/bin/true"], network="none")],
                env={"A": "1"}, workdir="/app",
            )
            container_image(name="two", base=":one", platforms=["linux/amd64", "linux/arm64"],
                            steps=[run("echo two")])
            """),
    })
    return runner


def expected(rule_runner: RuleRunner, name: str, epoch: int = 0, fmt: str = "json"):
    image = rule_runner.request(ContainerImageSpec, [ContainerImageSpecRequest(Address("img", target_name=name))])
    lowered = plan(image.spec, context_digest=image.context_digest, source_date_epoch=epoch,
                   default_platforms=("linux/amd64",))
    render = llb.to_dot if fmt == "dot" else llb.dump
    return [(lw.platform, render(lw.definition)) for lw in lowered]


def test_prints_the_dump_of_the_definition_package_solves(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(Llb, args=["img:one"])
    assert result.exit_code == 0
    ((platform, dump),) = expected(rule_runner, "one")
    assert platform == "linux/amd64"  # [buildkit].platforms' default
    assert result.stdout == dump
    # It is the real definition: the copy's build context and the run are in it.
    assert '"identifier":"local://context"' in dump
    assert "/bin/true" in result.stdout


def test_source_date_epoch_is_lowered_as_package_does(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(Llb, global_args=["--buildkit-source-date-epoch=1700000000"], args=["img:one"])
    ((_, dump),) = expected(rule_runner, "one", epoch=1700000000)
    assert result.stdout == dump
    assert result.stdout != expected(rule_runner, "one", epoch=0)[0][1]  # the option is honoured


def test_several_platforms_are_headed_and_dot_format(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(Llb, args=["--format=dot", "img:two"])
    assert result.exit_code == 0
    parts = expected(rule_runner, "two", fmt="dot")
    assert [p for p, _ in parts] == ["linux/amd64", "linux/arm64"]
    assert result.stdout == "".join(f"# img:two {p}\n{text}" for p, text in parts)
    assert result.stdout.count("digraph") == 2


def test_no_container_image_targets(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(Llb, args=["img:files"])
    assert result.exit_code == 1
    assert "No container_image or dockerfile_image targets" in result.stderr
