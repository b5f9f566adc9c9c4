import base64
import json

from pants.engine.addresses import Address

from llbkit_pants.dockerfile.job import context_name, env_names, input_metadata, parse_build_args, target_image_name


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


def test_input_metadata_is_gos_map_of_bytes():
    doc = json.loads(input_metadata(b'{"config":{}}'))
    assert base64.b64decode(doc["containerimage.config"]) == b'{"config":{}}'
