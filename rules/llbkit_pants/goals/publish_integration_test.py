"""`pants publish` against real registries: the packaged bytes land under every tag, digests equal.

A scratch image is packaged on the `buildkitd_amd64` fixture and published through the publish
framework's own rules (its `InteractiveProcess`es run `python -m llbkit push`) to the plain
`registry` fixture and to `registry_auth`, whose credentials only a Docker config.json written
here holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent
from typing import Any, Dict, List, Tuple

import pytest
from pants.build_graph.address import Address
from pants.core.goals import package as core_package
from pants.core.goals import publish as core_publish
from pants.core.goals.package import Package
from pants.core.goals.publish import PublishProcesses, PublishProcessesRequest, _PublishJsonEncoder
from pants.core.target_types import FilesGeneratorTarget, FileTarget
from pants.engine.rules import QueryRule
from pants.testutil.rule_runner import RuleRunner, mock_console

from llbkit.oci.types import sha256_digest
from llbkit.testutil import skopeo
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.errors import CommandError
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    buildkitd_amd64,
    busybox_image,
    pytest_runtest_makereport,
    registry,
    registry_auth,
)
from llbkit.testutil.registry import Registry
from llbkit_pants import register
from llbkit_pants.goals.package import ContainerImagePackageFieldSet
from llbkit_pants.goals.publish import PublishContainerImageFieldSet


@pytest.fixture
def rule_runner(tmp_path: Path) -> RuleRunner:
    runner = RuleRunner(
        rules=[*register.rules(), *core_package.rules(), *core_publish.rules(),
               QueryRule(PublishProcesses, [PublishProcessesRequest])],
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget],
        aliases=[register.build_file_aliases()],
    )
    runner.write_files({"app/hello.txt": f"hello from {tmp_path.name}\n"})
    return runner


def publish(rule_runner: RuleRunner, daemon: Buildkitd, env: Dict[str, str], name: str) -> Tuple[List[Dict[str, Any]], str]:
    """What `pants publish app:NAME --output=FILE` does: package, plan with the publish framework's
    own rule, run each process (RuleRunner cannot hand a goal's InteractiveProcess a terminal, so
    this runs them itself on a mock console). Returns the output data (`published` and
    `exit_code` included) and what the processes printed."""
    rule_runner.set_options(
        [f"--buildkit-workers=['{daemon.addr}']", "--buildkit-auto-start=false"],
        env=env, env_inherit={"PATH", "HOME"},
    )
    tgt = rule_runner.get_target(Address("app", target_name=name))
    processes = rule_runner.request(PublishProcesses, [PublishProcessesRequest(
        (ContainerImagePackageFieldSet.create(tgt),), (PublishContainerImageFieldSet.create(tgt),))])
    out: List[Dict[str, Any]] = []
    printed = ""
    for pub in processes:
        if pub.process is None:
            out.append(json.loads(json.dumps(pub.get_output_data(published=False, status="skipped"),
                                              cls=_PublishJsonEncoder)))
            continue
        with mock_console(rule_runner.options_bootstrapper) as (_, stdio):
            res = rule_runner.run_interactive_process(pub.process)
            printed += stdio.get_stdout() + stdio.get_stderr()
        data = pub.get_output_data(exit_code=res.exit_code, published=res.exit_code == 0)
        out.append(json.loads(json.dumps(data, cls=_PublishJsonEncoder)))
    return out, printed


def package(rule_runner: RuleRunner, daemon: Buildkitd, name: str) -> str:
    """`pants package app:NAME`; the index digest its dist/app/NAME.image.json records."""
    result = rule_runner.run_goal_rule(
        Package, global_args=[f"--buildkit-workers=['{daemon.addr}']", "--buildkit-auto-start=false"],
        args=[f"app:{name}"], env_inherit={"PATH", "HOME"},
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(Path(rule_runner.build_root, "dist", "app", f"{name}.image.json").read_text())
    return record["index"]["digest"]


def write_build(rule_runner: RuleRunner, registries: str) -> None:
    rule_runner.write_files({"app/BUILD": dedent(f"""\
        files(name="files", sources=["hello.txt"])
        container_image(
            name="img", base="scratch", steps=[copy("hello.txt", "/hello.txt")],
            repository="llbkit-test/publish", image_tags=["1.0", "latest"],
            registries={registries},
        )
        """)})


def test_publish_pushes_the_packaged_index_under_every_tag(
    rule_runner: RuleRunner, buildkitd_amd64: Buildkitd, registry: Registry, registry_auth: Registry,
    tmp_path: Path,
) -> None:
    config_dir = registry_auth.docker_config(tmp_path / "docker")  # the only place the password is
    write_build(rule_runner, f'["{registry.host}", "{registry_auth.host}"]')
    index = package(rule_runner, buildkitd_amd64, "img")
    data, printed = publish(rule_runner, buildkitd_amd64, {"DOCKER_CONFIG": str(config_dir)}, "img")

    assert sorted(d["registry"] for d in data) == sorted([registry.host, registry_auth.host])
    for entry in data:
        assert entry["publisher"] == "llbkit" and entry["published"] is True, entry
        assert entry["digest"] == index
        creds = (registry_auth.username, registry_auth.password) if entry["registry"] == registry_auth.host else None
        for ref in entry["references"]:
            raw = skopeo.inspect_raw(ref, creds=creds)
            assert sha256_digest(raw) == index, ref  # every tag names exactly the packaged index
        assert entry["references"] == [f"{entry['registry']}/llbkit-test/publish:1.0",
                                       f"{entry['registry']}/llbkit-test/publish:latest"]
    assert "blob(s) uploaded" in printed and "0 blob(s) uploaded" not in printed, printed

    # Publishing again uploads nothing: every blob is already there.
    again, printed = publish(rule_runner, buildkitd_amd64, {"DOCKER_CONFIG": str(config_dir)}, "img")
    assert [d["digest"] for d in again] == [index, index]
    assert printed.count("0 blob(s) uploaded") == 2, printed  # once per registry


def test_publish_without_credentials_fails_with_an_auth_error(
    rule_runner: RuleRunner, buildkitd_amd64: Buildkitd, registry_auth: Registry, tmp_path: Path
) -> None:
    empty = tmp_path / "no-creds"
    empty.mkdir()
    (empty / "config.json").write_text('{"auths": {}}\n')
    write_build(rule_runner, f'["{registry_auth.host}"]')
    (entry,), printed = publish(rule_runner, buildkitd_amd64, {"DOCKER_CONFIG": str(empty)}, "img")
    assert entry["published"] is False and entry["exit_code"] == 1
    assert f"registry {registry_auth.host} refused" in printed and "docker login" in printed, printed
    assert "Traceback" not in printed


def test_skip_push_pushes_nothing(
    rule_runner: RuleRunner, buildkitd_amd64: Buildkitd, registry: Registry, tmp_path: Path
) -> None:
    rule_runner.write_files({"app/BUILD": dedent(f"""\
        files(name="files", sources=["hello.txt"])
        container_image(name="skipped", base="scratch", steps=[copy("hello.txt", "/hello.txt")],
                        repository="llbkit-test/skipped", registries=["{registry.host}"], skip_push=True)
        """)})
    (entry,), _ = publish(rule_runner, buildkitd_amd64, {}, "skipped")
    assert entry["published"] is False and entry["names"] == ["app:skipped"]
    with pytest.raises(CommandError):  # the repository does not exist on the registry
        skopeo.inspect_raw(f"{registry.host}/llbkit-test/skipped:latest")
