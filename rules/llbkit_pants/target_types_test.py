from __future__ import annotations

from textwrap import dedent

import pytest
from pants.build_graph.address import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from llbkit_pants import register
from llbkit.image import CacheMount, SecretMount, TmpfsMount
from llbkit_pants.build_file_helpers import CopyStep, RunStep
from llbkit_pants.target_types import (
    ContainerImageOutputFormatField,
    ContainerImageStepsField,
    ContainerImageTagsField,
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        target_types=register.target_types(),
        aliases=[register.build_file_aliases()],
    )


def test_steps_from_build_file_helpers(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "app/BUILD": dedent(
                """\
                container_image(
                    name="app",
                    base="docker.io/library/python:3.12-slim",
                    steps=[
                        copy(":bin", "/app/"),
                        copy("config.yaml", "/etc/app/config.yaml", chmod="0644", chown="1000:1000"),
                        run("apt-get update", mounts=[cache_mount("/var/cache/apt", sharing="locked")]),
                        run(["/app/bin.pex", "--selfcheck"], network="none",
                            secrets=[secret_mount("token")], mounts=[tmpfs_mount("/tmp")]),
                    ],
                )
                """
            )
        }
    )
    tgt = rule_runner.get_target(Address("app", target_name="app"))
    steps = tgt[ContainerImageStepsField].value
    assert steps == (
        CopyStep(":bin", "/app/"),
        CopyStep("config.yaml", "/etc/app/config.yaml", chmod="0644", chown="1000:1000"),
        RunStep("apt-get update", mounts=(CacheMount("/var/cache/apt", sharing="locked"),)),
        RunStep(
            ("/app/bin.pex", "--selfcheck"),
            mounts=(TmpfsMount("/tmp"),),
            network="none",
            secrets=(SecretMount("token", required=True),),  # secret_mount() defaults to required
        ),
    )
    assert tgt[ContainerImageOutputFormatField].value == "oci"
    assert tgt[ContainerImageTagsField].value == ("latest",)


def test_a_step_that_is_not_copy_or_run_names_target_field_and_fix(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"app/BUILD": 'container_image(name="app", base="scratch", steps=["echo hi"])'}
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("app", target_name="app"))
    message = str(e.value)
    assert "'steps' field in target app:app" in message
    assert "'echo hi'" in message
    assert 'run("echo hello")' in message


def test_unknown_output_format_is_refused(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"app/BUILD": 'container_image(name="app", base="scratch", output_format="tarball")'}
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("app", target_name="app"))
    assert "output_format" in str(e.value) and "tarball" in str(e.value)


def test_run_rejects_a_mount_that_is_not_a_mount_helper() -> None:
    from llbkit_pants.build_file_helpers import run

    with pytest.raises(TypeError, match="cache_mount"):
        run("true", mounts=["/cache"])


def test_a_misspelt_helper_argument_says_how_the_helper_is_called(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"app/BUILD": 'container_image(name="app", base="scratch", steps=[copy("a", "/a", mode="0644")])'}
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("app", target_name="app"))
    message = str(e.value)
    assert "app/BUILD" in message
    assert "copy(): got an unexpected keyword argument 'mode'" in message
    assert "copy(source, dest, *, chmod=None, chown=None)" in message


@pytest.mark.parametrize("chmod, fragments", [
    ("755", ('chmod=755 is an int', 'chmod="0755"', "0o755")),
    ("0o755", ('chmod=493 is an int', 'chmod="0755"')),
])
def test_int_chmod_is_refused_with_the_string_to_write(rule_runner: RuleRunner, chmod: str, fragments) -> None:
    rule_runner.write_files({"app/BUILD": f'container_image(name="app", base="scratch", '
                                          f'steps=[copy("f", "/f", chmod={chmod})])\n'})
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("app", target_name="app"))
    for f in fragments:
        assert f in str(e.value), str(e.value)


def test_ordered_step_helpers(rule_runner: RuleRunner) -> None:
    from llbkit_pants.build_file_helpers import CopyFromStep, EnvStep, UserStep, WorkdirStep
    rule_runner.write_files({"app/BUILD": dedent("""\
        container_image(name="app", base="scratch", steps=[
            set_env({"A": "1", "B": "$A"}), set_user("app"), set_workdir("/w"),
            copy_from(":b", "/out", "/in", chmod="u+x"),
        ])
        """)})
    steps = rule_runner.get_target(Address("app", target_name="app"))[ContainerImageStepsField].value
    assert steps == (EnvStep((("A", "1"), ("B", "$A"))), UserStep("app"), WorkdirStep("/w"),
                     CopyFromStep(":b", "/out", "/in", "u+x"))
