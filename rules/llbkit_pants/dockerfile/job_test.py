from pants.engine.addresses import Address

from llbkit_pants.dockerfile.job import context_name, env_names, oci_layout_context, parse_build_args, target_image_name
from llbkit_pants.dockerfile.layout_base import layout_name


def test_context_name_is_the_frontends_lookup_key():
    # dockerui.NamedContext: reference.FamiliarString, ":latest" trimmed.
    assert context_name("busybox") == "busybox"
    assert context_name("docker.io/library/busybox:latest") == "busybox"
    assert context_name("busybox:1.36") == "busybox:1.36"
    assert context_name("docker.io/acme/app:2") == "acme/app:2"
    assert context_name("127.0.0.1:5050/llbkit/busybox:latest") == "127.0.0.1:5050/llbkit/busybox"
    assert context_name("127.0.0.1:5050/llbkit/busybox:1") == "127.0.0.1:5050/llbkit/busybox:1"


def test_build_args_from_values_and_environment():
    env = {"GIT_SHA": "abc"}
    assert parse_build_args(["A=1", "GIT_SHA", "UNSET", "A=2", "E="], env) == {
        "A": "2", "GIT_SHA": "abc", "UNSET": None, "E": ""}
    assert env_names(["A=1", "GIT_SHA", "UNSET"]) == ("GIT_SHA", "UNSET")


def test_target_image_name_is_a_valid_reference():
    from llbkit.reference import parse_reference

    name = target_image_name(Address("testprojects/Chain_x", target_name="Base.img"))
    assert name == "llbkit-target/testprojects/chain_x/base.img"
    parse_reference(name)


def test_oci_layout_context_names_the_session_store_the_client_serves():
    # dockerui.NamedContext `oci-layout`: the reference's name (reference.Parse, not normalized)
    # is the store id, asked for as the session content store "oci:" + id, which
    # llbkit.builder.oci_layouts.store_id gives the layout served under the same name.
    from llbkit.builder.oci_layouts import _NAME, store_id

    store = layout_name(Address("testprojects/Chain_x", target_name="Base.img"))
    digest = "sha256:" + "ab" * 32
    value = oci_layout_context(store, digest)
    assert value == f"oci-layout://{store}@{digest}"
    name, _, dgst = value[len("oci-layout://"):].partition("@")
    assert _NAME.fullmatch(name) and dgst == digest and store_id(name) == f"oci:{store}"


# -- the plan rule, with its Gets mocked --------------------------------------------------------

import pytest  # noqa: E402
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest  # noqa: E402
from pants.engine.fs import EMPTY_DIGEST  # noqa: E402
from pants.engine.target import InvalidFieldException, WrappedTarget, WrappedTargetRequest  # noqa: E402
from pants.testutil.option_util import create_subsystem  # noqa: E402
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks  # noqa: E402

from llbkit_pants.dockerfile.job import DockerfilePlan, DockerfilePlanRequest, dockerfile_plan  # noqa: E402
from llbkit_pants.dockerfile.model import Dockerfile  # noqa: E402
from llbkit_pants.dockerfile.parser import DockerfileError, ParsedDockerfile, ParsedDockerfileRequest  # noqa: E402
from llbkit_pants.dockerfile.subsystem import DockerfileSubsystem  # noqa: E402
from llbkit_pants.dockerfile.target_types import DockerfileImageTarget  # noqa: E402
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem  # noqa: E402

TEXT = "ARG BASE=busybox:1.36\nFROM $BASE AS build\nARG VERSION\nFROM build AS runtime\nCOPY --from=alpine:3 /x /x\n"
COMMANDS = [
    {"cmd": "ARG", "value": ["BASE=busybox:1.36"], "start_line": 1},
    {"cmd": "FROM", "value": ["$BASE", "AS", "build"], "start_line": 2},
    {"cmd": "ARG", "value": ["VERSION"], "start_line": 3},
    {"cmd": "FROM", "value": ["build", "AS", "runtime"], "start_line": 4},
    {"cmd": "COPY", "value": ["/x", "/x"], "flags": ["--from=alpine:3"], "start_line": 5},
]


def plan(fields, build_args=(), env=None) -> DockerfilePlan:
    address = Address("app", target_name="img")
    tgt = DockerfileImageTarget({"platforms": ["linux/amd64", "linux/arm64"], **fields}, address)
    parsed = ParsedDockerfile(address, "app/Dockerfile", TEXT, EMPTY_DIGEST,
                              Dockerfile.parse("app/Dockerfile", COMMANDS, TEXT))
    return run_rule_with_mocks(
        dockerfile_plan,
        rule_args=[DockerfilePlanRequest(address), create_subsystem(BuildKitSubsystem, platforms=["linux/amd64"]),
                   create_subsystem(DockerfileSubsystem, build_args=list(build_args))],
        mock_gets=[
            MockGet(output_type=ParsedDockerfile, input_types=(ParsedDockerfileRequest,), mock=lambda _: parsed),
            MockGet(output_type=WrappedTarget, input_types=(WrappedTargetRequest,), mock=lambda _: WrappedTarget(tgt)),
            MockGet(output_type=EnvironmentVars, input_types=(EnvironmentVarsRequest,),
                    mock=lambda req: EnvironmentVars({k: v for k, v in (env or {}).items() if k in req.requested})),
        ],
    )


def test_plan_pins_every_registry_image_and_takes_args_from_options_target_and_environment() -> None:
    p = plan({"extra_build_args": ["VERSION", "BASE=debian:12"], "target_stage": "runtime"},
             build_args=["UNDECLARED=x", "VERSION=from-option"], env={"VERSION": "from-env"})
    assert p.refs == ("docker.io/library/alpine:3", "docker.io/library/debian:12")
    assert dict(p.build_args) == {"BASE": "debian:12", "VERSION": "from-env"}  # UNDECLARED is not passed
    assert p.platforms == ("linux/amd64", "linux/arm64") and p.stage == "runtime"


@pytest.mark.parametrize("fields, env, fragment", [
    ({"extra_build_args": ["VERSOIN=1"]}, {}, "build argument 'VERSOIN' (in `extra_build_args`) is declared by no ARG"),
    ({"target_stage": "release"}, {}, "target stage 'release' is not a stage of the Dockerfile (its named stages: build, runtime)"),
    ({"extra_build_args": ["VERSION"]}, {}, "build argument 'VERSION' takes its value from the environment, where it is not set"),
])
def test_plan_errors_name_the_target_and_the_fix(fields, env, fragment) -> None:
    with pytest.raises(DockerfileError) as e:
        plan(fields, env=env)
    assert "dockerfile_image app:img" in str(e.value) and fragment in str(e.value)


@pytest.mark.parametrize("enabled, network, fragment", [
    ([], None, "app/Dockerfile:3: `RUN --network=host` needs the network.host entitlement, which is not enabled: "
               'enable it in pants.toml: [buildkit] entitlements = ["network.host"].'),
    (["network.host"], None, "app/Dockerfile:2: `RUN --security=insecure` needs the security.insecure entitlement"),
    (["network.host", "security.insecure"], "host", None),
    (["security.insecure"], "host", "Invalid field `build_network` in dockerfile_image target app:img: 'host' needs "
                                    "the network.host entitlement"),
])
def test_a_dockerfiles_entitlements_must_be_enabled(enabled, network, fragment) -> None:
    from llbkit_pants.dockerfile.job import _enabled_entitlements

    df = Dockerfile.parse("app/Dockerfile", [
        {"cmd": "FROM", "value": ["busybox"], "start_line": 1},
        {"cmd": "RUN", "value": ["true"], "flags": ["--security=insecure"], "start_line": 2},
        {"cmd": "RUN", "value": ["true"], "flags": ["--network=host"], "start_line": 3},
    ], "")
    buildkit = create_subsystem(BuildKitSubsystem, entitlements=enabled)
    address = Address("app", target_name="img")
    if fragment is None:
        assert _enabled_entitlements(address, "app/Dockerfile", df, network, buildkit) == (
            "network.host", "security.insecure")
    else:
        with pytest.raises(DockerfileError if network is None else InvalidFieldException) as e:
            _enabled_entitlements(address, "app/Dockerfile", df, network, buildkit)
        assert fragment in str(e.value)
