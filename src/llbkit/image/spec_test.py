from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from llbkit.errors import LlbkitError
from llbkit.image import (
    CacheMount,
    ContextSource,
    CopyStep,
    ImageSpec,
    ImageSpecError,
    RegistryBase,
    RunStep,
    SecretMount,
    SpecBase,
    TmpfsMount,
    parse_port,
    parse_signal,
    parse_user,
    validate_spec,
)


def spec(**kw: Any) -> ImageSpec:
    return ImageSpec(name="//app:img", **kw)


def bad(match: str, **kw: Any) -> None:
    with pytest.raises(ImageSpecError, match=match) as info:
        validate_spec(spec(**kw))
    assert isinstance(info.value, LlbkitError)
    assert "//app:img" in str(info.value)


def test_specs_are_frozen_hashable_and_normalized_to_tuples() -> None:
    s = spec(env={"A": "1", "B": "2"}, platforms=["linux/amd64"], steps=[RunStep(["true"])])
    assert s.env == (("A", "1"), ("B", "2")) and s.platforms == ("linux/amd64",)
    assert s == spec(env=[("A", "1"), ("B", "2")], platforms=("linux/amd64",), steps=(RunStep(("true",)),))
    hash(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "x"  # type: ignore[misc]
    validate_spec(s)


def test_a_full_valid_spec() -> None:
    validate_spec(
        spec(
            base=RegistryBase("docker.io/library/python:3.12-slim@sha256:" + "a" * 64),
            steps=[
                CopyStep(ContextSource("ctx", "app/bin.pex"), "/app/", chmod="0755", chown="app:app"),
                RunStep("apt-get update", mounts=[CacheMount("/var/cache/apt", sharing="locked")]),
                RunStep(["/app/bin.pex"], network="none", secrets=[SecretMount("token")],
                        mounts=[TmpfsMount("/tmp")]),
            ],
            env={"PORT": "8080", "lower.dotted": "ok"},
            workdir="/app", user="1000:1000", entrypoint=["/app/bin.pex"], cmd=["serve"],
            labels={"a": "b"}, annotations={"c": "d"}, exposed_ports=["8080", "8080/tcp", "53/udp", "7000-7002"],
            volumes=["/data"], stop_signal="SIGTERM", platforms=["linux/amd64", "linux/arm64/v8"],
            repository="acme/app", tags=["1.4.0", "latest"], registries=["registry.example.com", "127.0.0.1:5000"],
            output_format="docker",
        )
    )


@pytest.mark.parametrize("value", ["linux", "linux/amd64/v1/x", "linux/nosucharch", "*/amd64", "plan9x/amd64"])
def test_malformed_platforms(value: str) -> None:
    bad(rf"field 'platforms': invalid platform '{re.escape(value)}'.*e\.g\. 'linux/amd64'", platforms=[value])


def test_repeated_platform() -> None:
    bad(r"field 'platforms': repeated platform 'linux/x86_64'.*'linux/amd64'",
        platforms=["linux/amd64", "linux/x86_64"])


@pytest.mark.parametrize("value", ["http", "0", "65536", "80/xyz", "80-70", "8080/", "-1", ""])
def test_malformed_ports(value: str) -> None:
    bad(r"field 'exposed_ports': invalid port .*use PORT\[/tcp\|/udp\|/sctp\]", exposed_ports=[value])


def test_port_parsing() -> None:
    assert parse_port("8080") == ["8080/tcp"]
    assert parse_port("53/UDP") == ["53/udp"]
    assert parse_port("7000-7002/tcp") == ["7000/tcp", "7001/tcp", "7002/tcp"]


@pytest.mark.parametrize("value", ["SIGTERM", "TERM", "sigkill", "15", "SIGRTMIN+3", "RTMAX-1"])
def test_signals_docker_accepts(value: str) -> None:
    assert parse_signal(value) == value
    validate_spec(spec(stop_signal=value))


@pytest.mark.parametrize("value", ["SIGFOO", "0", "65", "", "-15", "SIG"])
def test_malformed_signals(value: str) -> None:
    bad(r"field 'stop_signal': invalid stop signal .*'SIGTERM'", stop_signal=value)


@pytest.mark.parametrize("value", ["app", "1000", "1000:1000", "app:staff", "app:1000", "_svc$"])
def test_users_docker_accepts(value: str) -> None:
    parse_user(value)
    validate_spec(spec(user=value))


@pytest.mark.parametrize("value", ["", ":", "app:", ":grp", "a:b:c", "my user", "99999999999", "-x"])
def test_malformed_users(value: str) -> None:
    bad(r"field 'user': invalid user .*'uid:gid'", user=value)


def test_malformed_chown_names_the_step() -> None:
    bad(r"field 'steps\[0\].chown': invalid user 'a b'",
        steps=[CopyStep(ContextSource("c", "f"), "/f", chown="a b")])


@pytest.mark.parametrize(
    "path,problem",
    [
        ("/etc/passwd", "relative to the build context.*drop the leading '/'"),
        ("../secret", "stay inside the build context"),
        ("a/../../b", "stay inside the build context"),
        ("*.txt", "exact paths, not patterns"),
        ("", "non-empty string"),
    ],
)
def test_copy_sources_are_relative_and_do_not_escape(path: str, problem: str) -> None:
    bad(rf"field 'steps\[0\].source.path': .*{problem}", steps=[CopyStep(ContextSource("c", path), "/app/")])


@pytest.mark.parametrize("chmod", ["rwx", "999", "0o644", 0o17777, True])
def test_bad_chmod(chmod: Any) -> None:
    bad(r"field 'steps\[0\].chmod': invalid mode", steps=[CopyStep(ContextSource("c", "f"), "/f", chmod=chmod)])


def test_absolute_paths_where_required() -> None:
    bad(r"field 'volumes': a volume must be an absolute path, got 'data': start it with '/', e.g. '/data'",
        volumes=["data"])
    bad(r"field 'steps\[0\].mounts\[0\].target': a cache mount target must be an absolute path",
        steps=[RunStep("true", mounts=[CacheMount("cache")])])
    bad(r"field 'steps\[0\].mounts\[0\].target': a tmpfs mount target must be an absolute path",
        steps=[RunStep("true", mounts=[TmpfsMount("tmp")])])
    bad(r"field 'steps\[0\].mounts\[0\].target': a secret mount target must be an absolute path, got "
        r"'run/s': start it with '/', e.g. '/run/s'",
        steps=[RunStep("true", secrets=[SecretMount("s", "run/s")])])
    bad(r"field 'steps\[0\].mounts\[0\].id': invalid secret id 'a/b'",
        steps=[RunStep("true", secrets=[SecretMount("a/b")])])
    bad(r"field 'steps\[0\].mounts\[0\].target': cannot mount over the root",
        steps=[RunStep("true", mounts=[TmpfsMount("/")])])
    bad(r"two mounts at the same target",
        steps=[RunStep("true", mounts=[TmpfsMount("/x")], secrets=[SecretMount("s", "/x/")])])


@pytest.mark.parametrize("name", ["", "A=B", "MY VAR", "TAB\t"])
def test_bad_env_names(name: str) -> None:
    bad(r"field 'env'", env={name: "v"})


def test_other_fields() -> None:
    bad(r"field 'base': invalid base image reference 'Busybox'", base=RegistryBase("Busybox"))
    bad(r"field 'entrypoint': expected a list of strings.*\['/app/bin.pex'\]", entrypoint="/app/bin.pex")
    bad(r"field 'output_format': unknown output format 'tar': choose one of oci, docker", output_format="tar")
    bad(r"field 'tags': invalid tag '-x'", tags=["-x"])
    bad(r"field 'repository': invalid repository 'acme/app:1'", repository="acme/app:1")
    bad(r"field 'registries': invalid registry 'https://r'", registries=["https://r"])
    bad(r"field 'steps\[0\].network': unknown network mode 'bridge'", steps=[RunStep("true", network="bridge")])
    bad(r"field 'steps\[0\].mounts\[0\].sharing'", steps=[RunStep("true", mounts=[CacheMount("/c", sharing="x")])])
    bad(r"field 'steps\[0\].command': empty command", steps=[RunStep("  ")])
    bad(r"field 'steps\[0\]': unsupported step", steps=["RUN true"])


def test_errors_in_a_spec_base_name_that_base() -> None:
    parent = ImageSpec(name="//base:img", user="a b")
    with pytest.raises(ImageSpecError, match=r"^//base:img: field 'user'"):
        validate_spec(ImageSpec(name="//child:img", base=SpecBase(parent)))


def test_cyclic_base_chain_by_name() -> None:
    a = ImageSpec(name="//a:img")
    b = ImageSpec(name="//b:img", base=SpecBase(a))
    a_again = ImageSpec(name="//a:img", base=SpecBase(b))
    with pytest.raises(ImageSpecError, match=r"cyclic base chain //a:img -> //b:img -> //a:img"):
        validate_spec(a_again)


def test_field_errors_carry_their_parts() -> None:
    with pytest.raises(ImageSpecError) as e:
        validate_spec(ImageSpec(name="//app:img", exposed_ports=("http",)))
    err = e.value
    assert (err.spec_name, err.field, err.value) == ("//app:img", "exposed_ports", "http")
    assert err.problem == "invalid port" and "8080/tcp" in err.fix
    assert str(err).startswith("//app:img: field 'exposed_ports': invalid port 'http': ")
    with pytest.raises(ImageSpecError) as e:
        validate_spec(ImageSpec(name="//app:img", base=RegistryBase("Bad Ref")))
    assert (e.value.field, e.value.value) == ("base", "Bad Ref") and "docker.io/library" in e.value.fix


@pytest.mark.parametrize("chmod, parsed", [
    ("0644", 0o644), ("755", 0o755), ("4755", 0o4755), (0o640, 0o640),
    ("u+x,go-w", "u+x,go-w"), ("a=rX", "a=rX"), ("g=u", "g=u"), ("+x", "+x"), ("u=rwx,go=rx,u+s", "u=rwx,go=rx,u+s"),
])
def test_chmod_octal_or_symbolic(chmod: Any, parsed: Any) -> None:
    from llbkit.image import parse_chmod
    assert parse_chmod(chmod) == parsed


@pytest.mark.parametrize("chmod", ["x", "u+x,", "u+q", "u+x go-w", "8"])
def test_bad_symbolic_chmod(chmod: str) -> None:
    bad(r"field 'steps\[0\].chmod': invalid mode", steps=[CopyStep(ContextSource("c", "f"), "/f", chmod=chmod)])


def test_ordered_steps_are_validated() -> None:
    from llbkit.image import EnvStep, UserStep, WorkdirStep
    bad(r"field 'steps\[0\].env': invalid variable name", steps=[EnvStep({"A B": "1"})])
    bad(r"field 'steps\[0\].user': invalid user", steps=[UserStep("a:b:c")])
    bad(r"field 'steps\[0\].path': invalid working directory", steps=[WorkdirStep("")])
    validate_spec(ImageSpec(name="x", steps=[UserStep("$APP_USER")], user="${U:-1000}"))  # checked once expanded


def test_copy_from_cycles_are_errors() -> None:
    from llbkit.image import ImageSource
    inner = ImageSpec(name="//a:a", steps=[CopyStep(ImageSource(ImageSpec(name="//a:a"), "/x"), "/y")])
    with pytest.raises(ImageSpecError, match=r"cyclic copy sources //a:a -> //a:a"):
        validate_spec(ImageSpec(name="//a:a", steps=[CopyStep(ImageSource(inner, "/x"), "/y")]))
