"""Fields -> ImageSpec, base chains, build contexts, inferred dependencies and errors (no daemon)."""

from __future__ import annotations

from textwrap import dedent
from typing import Dict, Tuple

import pytest
from pants.build_graph.address import Address
from pants.core.target_types import (
    FilesGeneratorTarget,
    FileTarget,
    GenericTarget,
    ResourcesGeneratorTarget,
    ResourceTarget,
)
from pants.engine.addresses import Addresses
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.rules import QueryRule
from pants.engine.target import DependenciesRequest
from pants.testutil.rule_runner import RuleRunner

from llbkit.image import ContextSource, CopyStep, RegistryBase, RunStep, ScratchBase, SpecBase
from llbkit_pants import register
from llbkit_pants.target_types import ContainerImageDependenciesField
from llbkit_pants.util_rules.image_spec import ContainerImageSpec, ContainerImageSpecRequest


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *register.rules(),
            QueryRule(ContainerImageSpec, [ContainerImageSpecRequest]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(Addresses, [DependenciesRequest]),
        ],
        target_types=[
            *register.target_types(), FilesGeneratorTarget, FileTarget, ResourcesGeneratorTarget, ResourceTarget,
            GenericTarget,
        ],
        aliases=[register.build_file_aliases()],
    )


def image_spec(rule_runner: RuleRunner, path: str, name: str) -> ContainerImageSpec:
    return rule_runner.request(ContainerImageSpec, [ContainerImageSpecRequest(Address(path, target_name=name))])


def context_files(rule_runner: RuleRunner, image: ContainerImageSpec) -> Dict[str, bytes]:
    contents = rule_runner.request(DigestContents, [image.context])
    return {fc.path: fc.content for fc in contents}


def expect_error(rule_runner: RuleRunner, files: Dict[str, str], path: str, name: str, *fragments: str) -> str:
    rule_runner.write_files(files)
    with pytest.raises(ExecutionError) as e:
        image_spec(rule_runner, path, name)
    message = str(e.value)
    for f in fragments:
        assert f in message, message
    return message


def test_fields_become_an_image_spec(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({
        "app/hello.txt": "hello\n",
        "app/conf/a.yaml": "a: 1\n",
        "app/unused.txt": "not copied\n",
        "app/BUILD": dedent("""\
            files(name="files", sources=["*.txt", "conf/*.yaml"])
            container_image(
                name="app",
                base="registry.example.com/busybox:1.36",
                steps=[copy("hello.txt", "/app/"), copy("conf", "conf/", chmod="0644"), run("cat /app/hello.txt")],
                env={"PORT": "8080"}, workdir="/app", user="1000:1000", entrypoint=["/app/run"], cmd=["serve"],
                exposed_ports=["8080/tcp"], volumes=["/data"], stop_signal="SIGTERM",
                platforms=["linux/amd64", "linux/arm64"], image_tags=["1.0"],
            )
            """),
    })
    image = image_spec(rule_runner, "app", "app")
    spec = image.spec
    assert spec.name == "app:app"
    assert spec.base == RegistryBase("registry.example.com/busybox:1.36")
    assert spec.steps == (
        CopyStep(ContextSource("context", "app/hello.txt", files=(("", False),)), "/app/"),
        CopyStep(ContextSource("context", "app/conf", files=(("a.yaml", False),)), "conf/", chmod="0644"),
        RunStep("cat /app/hello.txt"),
    )
    assert spec.env == (("PORT", "8080"),) and spec.workdir == "/app" and spec.user == "1000:1000"
    assert spec.platforms == ("linux/amd64", "linux/arm64") and spec.tags == ("1.0",)
    assert spec.repository == "app/app"
    # The context holds exactly the files the copies name.
    assert context_files(rule_runner, image) == {"app/hello.txt": b"hello\n", "app/conf/a.yaml": b"a: 1\n"}
    assert image.context_digest and image.context_digest.startswith("sha256:")


def test_base_chain_composes_specs_and_infers_dependencies(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({
        "base/etc/os-release": "ID=test\n",
        "base/BUILD": dedent("""\
            files(name="etc", sources=["etc/*"])
            container_image(name="base", base="scratch", steps=[copy(":etc", "/etc/")], workdir="/app")
            """),
        "app/msg.txt": "hi\n",
        "app/BUILD": dedent("""\
            files(name="files", sources=["msg.txt"])
            container_image(name="app", base="//base:base", steps=[copy("msg.txt", "msg.txt")])
            """),
    })
    image = image_spec(rule_runner, "app", "app")
    assert image.chain == (Address("app", target_name="app"), Address("base", target_name="base"))
    assert isinstance(image.spec.base, SpecBase)
    base = image.spec.base.spec
    assert base.base == ScratchBase() and base.workdir == "/app"
    (copy_etc,) = base.steps
    assert isinstance(copy_etc, CopyStep) and copy_etc.source.path == ".llbkit-targets/base_etc"
    assert context_files(rule_runner, image) == {
        "app/msg.txt": b"hi\n",
        ".llbkit-targets/base_etc/etc/os-release": b"ID=test\n",  # relative to the target's dir
    }
    tgt = rule_runner.get_target(Address("app", target_name="app"))
    deps = rule_runner.request(Addresses, [DependenciesRequest(tgt[ContainerImageDependenciesField])])
    assert Address("base", target_name="base") in deps
    assert Address("app", target_name="files", relative_file_path="msg.txt") in deps


def _image(fields: str, files: str = "") -> Dict[str, str]:
    build = 'files(name="files", sources=["f.txt"])\n' if not files else files
    return {"img/f.txt": "x\n", "img/BUILD": build + f'container_image(name="img", base="scratch", {fields})\n'}


@pytest.mark.parametrize(
    "fields, fragments",
    [
        ('platforms=["linux"]', ("`platforms`", "img:img", "'linux'", "linux/amd64")),
        ('exposed_ports=["80/xyz"]', ("`exposed_ports`", "'80/xyz'", "tcp, udp or sctp")),
        ('stop_signal="SIGFOO"', ("`stop_signal`", "'SIGFOO'", "SIGTERM")),
        ('user="a:b:c"', ("`user`", "'a:b:c'", "uid:gid")),
        ('image_tags=["-bad"]', ("`image_tags`", "'-bad'", "128 letters")),
        ('steps=[run("true", network="bogus")]', ("`steps`", "'bogus'", "default, none, host")),
        ('steps=[copy("f.txt", "/x", chmod="999")]', ("`steps`", "'999'", "octal")),
        ('volumes=["data"]', ("`volumes`", "'data'", "'/data'")),
    ],
)
def test_invalid_values_name_alias_target_value_and_fix(rule_runner: RuleRunner, fields: str, fragments) -> None:
    expect_error(rule_runner, _image(fields), "img", "img", "container_image target img:img", *fragments)


def test_unknown_output_format_is_rejected(rule_runner: RuleRunner) -> None:
    expect_error(rule_runner, _image('output_format="tarball"'), "img", "img", "output_format", "tarball", "oci")


def test_copy_source_no_target_owns_suggests_files(rule_runner: RuleRunner) -> None:
    files = _image('steps=[copy("f.txt", "/f.txt")]', files="# no files target\n")
    expect_error(rule_runner, files, "img", "img", "`steps`", "'f.txt'", "not owned by a `files` or `resources` target",
                 'files(name="files", sources=[\'f.txt\'])')


@pytest.mark.parametrize(
    "source, fragments",
    [
        ("/etc/passwd", ("relative to the BUILD file's directory", "'etc/passwd'")),
        ("../other/f.txt", ("leaves the BUILD file's directory", "files(")),
        ("missing.txt", ("no file or directory", "img/missing.txt")),
        ("*.txt", ("is a pattern",)),
    ],
)
def test_bad_copy_paths(rule_runner: RuleRunner, source: str, fragments) -> None:
    expect_error(rule_runner, _image(f'steps=[copy("{source}", "/x/")]'), "img", "img", "`steps`", *fragments)


def test_copy_of_a_target_without_files_or_package(rule_runner: RuleRunner) -> None:
    files = _image('steps=[copy(":other", "/x/")]', files='target(name="other")\n')
    expect_error(rule_runner, files, "img", "img", "`steps`", "`target` target", "files/resources")


def test_base_that_is_not_a_container_image(rule_runner: RuleRunner) -> None:
    files = {"img/f.txt": "x\n", "img/BUILD": dedent("""\
        files(name="files", sources=["f.txt"])
        container_image(name="img", base=":files")
        """)}
    expect_error(rule_runner, files, "img", "img", "`base`", "img:img", "`files` target, not a `container_image`",
                 "scratch")


def test_cyclic_base_chain(rule_runner: RuleRunner) -> None:
    files = {"img/BUILD": dedent("""\
        container_image(name="a", base=":b")
        container_image(name="b", base=":c")
        container_image(name="c", base=":a")
        """)}
    expect_error(rule_runner, files, "img", "a", "`base`", "cyclic base chain img:a -> img:b -> img:c -> img:a")


@pytest.mark.parametrize(
    "fields, fragments",
    [
        # Unknown values of enumerated fields name the choices.
        ('steps=[run("true", mounts=[cache_mount("/c", sharing="exclusive")])]',
         ("`steps`", "'exclusive'", "shared, private, locked")),
        # Malformed values.
        ('platforms=["linux/amd64", "linux/x86_64"]', ("`platforms`", "'linux/x86_64'", "list each platform once")),
        ('exposed_ports=["70000"]', ("`exposed_ports`", "'70000'", "1..65535")),
        ('exposed_ports=["8080-80"]', ("`exposed_ports`", "'8080-80'", "below its start")),
        ('stop_signal="0"', ("`stop_signal`", "'0'", "1..64")),
        ('user=":1000"', ("`user`", "':1000'", "USER or USER:GROUP")),
        ('steps=[copy("f.txt", "/x", chown="root:")]', ("`steps`", "'root:'", "uid:gid")),
        ('repository="Acme/App"', ("`repository`", "'Acme/App'", "acme/app")),
        ('registries=["https://registry.example.com"]',
         ("`registries`", "'https://registry.example.com'", "HOST[:PORT]")),
        ('env={"A=B": "1"}', ("`env`", "'A=B'", "'='")),
        # Destination paths that must be absolute.
        ('steps=[run("true", mounts=[cache_mount("var/cache")])]', ("`steps`", "'var/cache'", "'/var/cache'")),
        ('steps=[run("true", mounts=[tmpfs_mount("tmp")])]', ("`steps`", "'tmp'", "'/tmp'")),
        ('steps=[run("true", secrets=[secret_mount("token", "run/token")])]', ("`steps`", "'run/token'", "'/run/token'")),
        ('steps=[run("true", mounts=[cache_mount("/")])]', ("`steps`", "'/'", "root filesystem")),
        ('volumes=["./data"]', ("`volumes`", "'./data'", "'/data'")),
    ],
)
def test_more_invalid_values_name_alias_target_value_and_fix(rule_runner: RuleRunner, fields: str, fragments) -> None:
    expect_error(rule_runner, _image(fields), "img", "img", "container_image target img:img", *fragments)


def test_malformed_registry_base(rule_runner: RuleRunner) -> None:
    files = {"img/BUILD": 'container_image(name="img", base="Busybox:latest")\n'}
    expect_error(rule_runner, files, "img", "img", "Invalid field `base` in container_image target img:img",
                 "'Busybox:latest'", "docker.io/library/python:3.12-slim")


@pytest.mark.parametrize(
    "source, fragments",
    [
        ("./../f.txt", ("leaves the BUILD file's directory",)),
        ("sub/../../f.txt", ("leaves the BUILD file's directory",)),
        ("//img:missing", ("img:missing", "copy() source '//img:missing'", "does not exist")),
    ],
)
def test_more_bad_copy_sources(rule_runner: RuleRunner, source: str, fragments) -> None:
    expect_error(rule_runner, _image(f'steps=[copy("{source}", "/x/")]'), "img", "img", *fragments)


def test_copy_source_owned_by_a_non_files_target_suggests_files(rule_runner: RuleRunner) -> None:
    files = _image('steps=[copy("f.txt", "/f.txt")]', files='target(name="other", dependencies=[])\n')
    expect_error(rule_runner, files, "img", "img", "not owned by a `files` or `resources` target",
                 'files(name="files", sources=[\'f.txt\'])')


def test_base_target_that_does_not_exist(rule_runner: RuleRunner) -> None:
    files = {"img/BUILD": 'container_image(name="img", base=":nope")\n'}
    expect_error(rule_runner, files, "img", "img", "img:nope from the `base` field of img:img does not exist")


def test_self_base_is_a_cycle(rule_runner: RuleRunner) -> None:
    files = {"img/BUILD": 'container_image(name="a", base=":a")\n'}
    expect_error(rule_runner, files, "img", "a", "`base`", "cyclic base chain img:a -> img:a", "scratch")


def test_copy_of_the_image_itself(rule_runner: RuleRunner) -> None:
    expect_error(rule_runner, _image('steps=[copy(":img", "/x/")]'), "img", "img", "`steps`",
                 "is this container_image itself")


def test_ordered_steps_and_what_pants_knows_of_modes(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({
        "app/bin/run.sh": "#!/bin/sh\n",
        "app/bin/data.txt": "d\n",
        "app/BUILD": dedent("""\
            files(name="files", sources=["bin/*"])
            container_image(
                name="app", base="scratch", user="root",
                steps=[run("adduser app"), set_user("app"), set_workdir("/home/app"),
                       set_env({"PATH": "/home/app/bin:$PATH"}), copy("bin", "bin/", chmod="u+x,go-w")],
            )
            """),
    })
    import os
    os.chmod(os.path.join(rule_runner.build_root, "app/bin/run.sh"), 0o755)
    from llbkit.image import EnvStep, UserStep, WorkdirStep
    spec = image_spec(rule_runner, "app", "app").spec
    assert spec.steps == (
        RunStep("adduser app"), UserStep("app"), WorkdirStep("/home/app"),
        EnvStep({"PATH": "/home/app/bin:$PATH"}),
        CopyStep(ContextSource("context", "app/bin", files=(("data.txt", False), ("run.sh", True))), "bin/",
                 chmod="u+x,go-w"),
    )


def test_copy_from_another_image_and_a_pinned_registry_image(rule_runner: RuleRunner) -> None:
    digest = "sha256:" + "ab" * 32
    rule_runner.write_files({
        "b/src.txt": "s\n",
        "b/BUILD": dedent("""\
            files(name="files", sources=["src.txt"])
            container_image(name="builder", base="scratch", steps=[copy("src.txt", "/out/")])
            """),
        "app/BUILD": dedent(f"""\
            container_image(name="app", base="scratch", steps=[
                copy_from("//b:builder", "/out/src.txt", "/app/"),
                copy_from("registry.example.com/tools@{digest}", "/bin/tool", "/bin/"),
            ])
            """),
    })
    from llbkit.image import ImageSource
    image = image_spec(rule_runner, "app", "app")
    first, second = image.spec.steps
    assert isinstance(first.source, ImageSource) and first.source.image.name == "b:builder"
    assert first.source.path == "/out/src.txt" and first.dest == "/app/"
    assert second.source == ImageSource(f"registry.example.com/tools@{digest}", "/bin/tool")
    assert context_files(rule_runner, image) == {"b/src.txt": b"s\n"}  # the builder's context joins
    tgt = rule_runner.get_target(Address("app", target_name="app"))
    deps = rule_runner.request(Addresses, [DependenciesRequest(tgt[ContainerImageDependenciesField])])
    assert Address("b", target_name="builder") in deps


@pytest.mark.parametrize("steps, fragments", [
    ('copy(":builder", "/app/")', ("`steps`", "is a `container_image` target", "copy_from(':builder'",
                                  "base=':builder'")),
    ('copy_from(":files", "/x", "/y")', ("is a `files` target, not a `container_image`", "copy(':files'")),
    ('copy_from("registry.example.com/tools:1", "/x", "/y")', ("pinned by digest", "tools:1@sha256:")),
    ('copy_from(":img", "/x", "/y")', ("cyclic copy_from()", "img:img -> img:img")),
    ('copy_from(":builder", "out", "/y")', ("a path in an image must be absolute", "'/out'")),
])
def test_copy_from_errors(rule_runner: RuleRunner, steps: str, fragments: Tuple[str, ...]) -> None:
    files = 'files(name="files", sources=["f.txt"])\ncontainer_image(name="builder", base="scratch")\n'
    expect_error(rule_runner, _image(f"steps=[{steps}]", files), "img", "img", *fragments)


def test_copy_from_cycles_through_bases_are_errors(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"c/BUILD": dedent("""\
        container_image(name="a", base="scratch", steps=[copy_from(":b", "/x", "/x")])
        container_image(name="b", base=":a")
        """)})
    with pytest.raises(ExecutionError) as e:
        image_spec(rule_runner, "c", "a")
    assert "cyclic copy_from() c:a -> c:b" in str(e.value) and "built on c:a" in str(e.value)


@pytest.mark.parametrize("target, shown", [("/etc/passwd", "'/etc/passwd'"), ("../../../outside", "outside")])
def test_symlinks_pants_cannot_follow_are_errors_naming_link_and_target(
        rule_runner: RuleRunner, target: str, shown: str) -> None:
    import os
    rule_runner.write_files({"img/d/f.txt": "f\n", "img/BUILD": 'container_image(name="img", base="scratch", '
                             'steps=[copy("d", "/d/")])\n'})
    os.symlink(target, os.path.join(rule_runner.build_root, "img/d/link"))
    expect_error(rule_runner, {}, "img", "img", "`steps`", "img:img", "the symlink img/d/link points to", shown,
                 "relative link")


def test_files_under_a_copy_source() -> None:
    from pants.engine.fs import DigestEntries, Directory, FileDigest, FileEntry, SymlinkEntry
    from llbkit_pants.util_rules.image_spec import _files_under
    fd = FileDigest("0" * 64, 1)
    entries = DigestEntries([FileEntry("a/x.sh", fd, True), FileEntry("a/sub/y", fd, False),
                             FileEntry("ab/z", fd, False), SymlinkEntry("a/l", "x.sh"), Directory("a/empty")])
    assert _files_under(entries, "a") == (("sub/y", False), ("x.sh", True))  # symlinks stay symlinks
    assert _files_under(entries, "a/x.sh") == (("", True),)


def test_symlink_problems_from_the_engines_text() -> None:
    from llbkit_pants.util_rules.image_spec import symlink_problem
    absolute = 'Exception: Failed to read link "/tmp/root/svc/d/link": Absolute symlink: "/etc/passwd"'
    assert symlink_problem(absolute, "svc/d") == ("svc/d/link", "/etc/passwd")
    escaping = ('While expanding link "svc/d/up": Globs may not traverse outside of the buildroot: '
                '"svc/d/../../../x"')
    assert symlink_problem(escaping, "svc/d") == ("svc/d/up", "svc/d/../../../x")
    assert symlink_problem("some other failure", "svc") is None
