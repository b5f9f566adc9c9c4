"""Planning `pants publish` for container_image (no daemon, no registry: the processes are inspected)."""

from __future__ import annotations

import json
import sys
from textwrap import dedent

import pytest
from pants.build_graph.address import Address
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact
from pants.core.goals.publish import PublishProcesses
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.rules import QueryRule
from pants.testutil.rule_runner import RuleRunner

from llbkit_pants import register
from llbkit_pants.goals.publish import (
    PublishContainerImageFieldSet,
    PublishContainerImageRequest,
    llbkit_pythonpath,
)

INDEX = "sha256:" + "1" * 64
MANIFEST = "sha256:" + "2" * 64


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *register.rules(),
            QueryRule(PublishProcesses, [PublishContainerImageRequest]),
            QueryRule(Digest, [CreateDigest]),
        ],
        target_types=register.target_types(),
        aliases=[register.build_file_aliases()],
    )


def _record(fmt: str = "oci") -> bytes:
    return json.dumps({
        "schema": "llbkit.image.v1", "format": fmt,
        "index": {"digest": INDEX, "mediaType": "application/vnd.oci.image.index.v1+json", "size": 1},
        "platforms": [{"platform": "linux/amd64",
                       "manifest": {"digest": MANIFEST, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                    "size": 1}}],
        "tags": [],
    }).encode()


def plan(rule_runner: RuleRunner, build: str, name: str = "img", fmt: str = "oci") -> PublishProcesses:
    rule_runner.write_files({"app/BUILD": dedent(build)})
    tgt = rule_runner.get_target(Address("app", target_name=name))
    ext = "docker.tar" if fmt == "docker" else "oci.tar"
    digest = rule_runner.request(Digest, [CreateDigest([
        FileContent(f"app/{name}.{ext}", b"not read while planning"),
        FileContent(f"app/{name}.image.json", _record(fmt)),
    ])])
    pkg = BuiltPackage(digest, (BuiltPackageArtifact(f"app/{name}.{ext}"), BuiltPackageArtifact(f"app/{name}.image.json")))
    request = PublishContainerImageRequest(PublishContainerImageFieldSet.create(tgt), (pkg,))
    return rule_runner.request(PublishProcesses, [request])


def test_one_push_per_registry_with_every_tag(rule_runner: RuleRunner) -> None:
    rule_runner.set_options([], env={"DOCKER_CONFIG": "/home/me/.docker-alt", "PATH": "/usr/bin"})
    processes = plan(rule_runner, """\
        container_image(name="img", base="scratch", repository="acme/app", image_tags=["1.0", "latest", "1.0"],
                        registries=["registry.example.com", "127.0.0.1:5000", "registry.example.com"])
        """)
    assert [p.names for p in processes] == [
        ("registry.example.com/acme/app:1.0", "registry.example.com/acme/app:latest"),
        ("127.0.0.1:5000/acme/app:1.0", "127.0.0.1:5000/acme/app:latest"),
    ]
    first = processes[0]
    assert first.description == "registry.example.com"
    assert first.process is not None
    assert first.process.process.argv == (
        sys.executable, "-m", "llbkit", "push", "--layout", "app/img.oci.tar",
        "registry.example.com/acme/app:1.0", "registry.example.com/acme/app:latest",
    )
    env = dict(first.process.process.env)
    assert env["DOCKER_CONFIG"] == "/home/me/.docker-alt"  # credentials come from the user's config
    assert env["PYTHONPATH"] == llbkit_pythonpath()
    data = first.get_output_data()
    assert data["digest"] == INDEX and data["registry"] == "registry.example.com"
    assert data["references"] == first.names
    assert [dict(p) for p in data["platforms"]] == [{"platform": "linux/amd64", "digest": MANIFEST}]


def test_output_data_names_the_publisher_and_target(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"app/BUILD": 'container_image(name="img", base="scratch")\n'})
    tgt = rule_runner.get_target(Address("app", target_name="img"))
    data = PublishContainerImageFieldSet.create(tgt).get_output_data()
    assert data["publisher"] == "llbkit" and data["target"] == Address("app", target_name="img")


def test_docker_format_pushes_its_manifest(rule_runner: RuleRunner) -> None:
    processes = plan(rule_runner, """\
        container_image(name="img", base="scratch", output_format="docker", registries=["r.example.com"])
        """, fmt="docker")
    (only,) = processes
    assert only.names == ("r.example.com/app/img:latest",)  # repository defaults to path/name
    assert only.process is not None and "app/img.docker.tar" in only.process.process.argv
    assert only.get_output_data()["digest"] == MANIFEST


def test_skip_push_plans_no_process(rule_runner: RuleRunner) -> None:
    processes = plan(rule_runner, """\
        container_image(name="img", base="scratch", registries=["r.example.com"], skip_push=True)
        """)
    (only,) = processes
    assert only.process is None
    assert "skip_push" in (only.description or "")


def test_no_registries_is_an_error_naming_target_field_and_fix(rule_runner: RuleRunner) -> None:
    with pytest.raises(ExecutionError) as e:
        plan(rule_runner, 'container_image(name="img", base="scratch")\n')
    message = str(e.value)
    assert "Invalid field `registries` in container_image target app:img" in message
    assert 'registries=["registry.example.com"]' in message and "skip_push=True" in message
