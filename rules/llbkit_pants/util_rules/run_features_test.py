"""`add()`, `bind_mount()`, `ssh_mount()`, `secret_env()`, cache mount options and entitlements:
BUILD-file helpers -> ImageSpec, inferred dependencies and errors (no daemon)."""

from __future__ import annotations

from textwrap import dedent

import pytest
from pants.build_graph.address import Address
from pants.core.target_types import FilesGeneratorTarget, FileTarget
from pants.engine.addresses import Addresses
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.rules import QueryRule
from pants.engine.target import DependenciesRequest
from pants.testutil.rule_runner import RuleRunner

from llbkit.image import (
    AddStep,
    BindMount,
    CacheMount,
    ContextSource,
    RegistryBase,
    RunStep,
    SecretMount,
    SpecBase,
    SshMount,
    UrlSource,
)
from llbkit_pants import register
from llbkit_pants.target_types import ContainerImageDependenciesField
from llbkit_pants.util_rules.image_spec import ContainerImageSpec, ContainerImageSpecRequest

SUM = "sha256:" + "ab" * 32


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[*register.rules(), QueryRule(ContainerImageSpec, [ContainerImageSpecRequest]),
               QueryRule(Addresses, [DependenciesRequest])],
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget],
        aliases=[register.build_file_aliases()],
    )


def _spec(rule_runner: RuleRunner, name: str = "app") -> ContainerImageSpec:
    return rule_runner.request(ContainerImageSpec, [ContainerImageSpecRequest(Address("app", target_name=name))])


def _error(rule_runner: RuleRunner, build: str, *fragments: str, options=()) -> str:
    rule_runner.write_files({"app/BUILD": dedent(build)})
    if options:
        rule_runner.set_options(list(options))
    with pytest.raises(ExecutionError) as e:
        _spec(rule_runner)
    message = str(e.value)
    for f in fragments:
        assert f in message, message
    return message


def test_helpers_become_library_steps(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({
        "app/vendor.tar.gz": "not really a tar",
        "app/src/main.c": "int main;\n",
        "app/BUILD": dedent(f"""\
            files(name="files", sources=["vendor.tar.gz", "src/*"])
            container_image(name="builder", base="scratch", steps=[run(["/bin/true"])])
            container_image(
                name="app",
                base="registry.example.com/busybox:1.36",
                steps=[
                    add("https://example.com/tool.sh", "/usr/local/bin/tool", checksum="{SUM}", chmod="0755"),
                    add("vendor.tar.gz", "/opt/"),
                    run("make", mounts=[
                        bind_mount(":builder", "/build", path="/out"),
                        bind_mount("src", "/src"),
                        bind_mount("registry.example.com/tools@{SUM}", "/tools", readwrite=True),
                        cache_mount("/cache", uid=1000, gid=1000, mode=0o750),
                        cache_mount("/seeded", source=":builder", path="/out"),
                        ssh_mount(),
                    ], secrets=[secret_env("API_TOKEN", id="token")], network="host", security="insecure"),
                ],
            )
            """),
    })
    rule_runner.set_options(['--buildkit-entitlements=["network.host", "security.insecure"]',
                             '--buildkit-ssh=["default"]'])
    image = _spec(rule_runner)
    url, tar, run = image.spec.steps
    assert url == AddStep(UrlSource("https://example.com/tool.sh", SUM), "/usr/local/bin/tool", "0755")
    assert tar == AddStep(ContextSource("context", "app/vendor.tar.gz"), "/opt/")
    assert isinstance(run, RunStep) and (run.network, run.security) == ("host", "insecure")
    build, src, tools, cache, seeded, ssh = run.mounts
    assert isinstance(build, BindMount) and isinstance(build.source, SpecBase)
    assert build.source.spec.name == "app:builder" and build.path == "/out" and not build.readwrite
    assert src == BindMount("/src", ContextSource("context", "app/src"))
    assert tools == BindMount("/tools", RegistryBase(f"registry.example.com/tools@{SUM}"), readwrite=True)
    assert cache == CacheMount("/cache", uid=1000, gid=1000, mode=0o750)
    assert isinstance(seeded.source, SpecBase) and seeded.path == "/out"
    assert ssh == SshMount("default", required=True)
    assert run.secrets == (SecretMount("token", required=True, env="API_TOKEN"),)
    tgt = rule_runner.get_target(Address("app", target_name="app"))
    deps = rule_runner.request(Addresses, [DependenciesRequest(tgt[ContainerImageDependenciesField])])
    assert Address("app", target_name="builder") in deps
    assert Address("app", target_name="files", relative_file_path="src/main.c") in deps
    assert Address("app", target_name="files", relative_file_path="vendor.tar.gz") in deps


def test_network_host_needs_the_entitlement(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[run(["/bin/true"]), run(["/bin/x"], network="host")])
        """, "container_image target app:app", "steps[1].network", "network.host", "'host'",
           '[buildkit] entitlements = ["network.host"]', "or drop network='host'")


def test_security_insecure_needs_its_own_entitlement(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[run(["/bin/x"], security="insecure")])
        """, "steps[0].security", "security.insecure", options=['--buildkit-entitlements=["network.host"]'])


def test_unknown_security_mode(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[run(["/bin/x"], security="privileged")])
        """, "`steps`", "steps[0].security", "unknown security mode 'privileged'", "sandbox, insecure")


def test_ssh_mount_needs_a_configured_agent(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[run(["/bin/x"], mounts=[ssh_mount("github")])])
        """, "steps[0].mounts[0]", "ssh agent 'github'", '[buildkit] ssh = ["github"]', "required=False")


def test_add_url_needs_a_checksum(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[add("https://example.com/x.tgz", "/opt/")])
        """, "steps[0].source.checksum", "needs its sha256 checksum", "sha256sum")


def test_bind_mount_of_a_tagged_registry_image_is_a_path(rule_runner: RuleRunner) -> None:
    # Only a digest makes a registry image: anything else is a path of the repo, which must exist.
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[run(["/bin/x"], mounts=[bind_mount("busybox", "/b")])])
        """, "no file or directory 'app/busybox'")


def test_bind_mount_of_the_image_itself(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch", steps=[run(["/bin/x"], mounts=[bind_mount(":app", "/me")])])
        """, "this container_image itself")


def test_cache_mount_source_and_owner_conflict(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="b", base="scratch")
        container_image(name="app", base="scratch",
                        steps=[run(["/bin/x"], mounts=[cache_mount("/c", source=":b", uid=1000)])])
        """, "steps[0].mounts[0].source", "cannot be combined with")


def test_bad_mount_values_name_the_field(rule_runner: RuleRunner) -> None:
    _error(rule_runner, """\
        container_image(name="app", base="scratch",
                        steps=[run(["/bin/x"], secrets=[secret_env("BAD NAME", id="t")])])
        """, "steps[0].mounts[0].env", "invalid environment variable name 'BAD NAME'")


def test_helper_misuse_says_how_it_is_called(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"app/BUILD": 'container_image(name="app", base="scratch", '
                                          'steps=[run("x", mounts=[bind_mount("/mnt")])])\n'})
    with pytest.raises(ExecutionError) as e:
        _spec(rule_runner)
    assert "bind_mount(source, target, *, path='/', readwrite=False)" in str(e.value)
