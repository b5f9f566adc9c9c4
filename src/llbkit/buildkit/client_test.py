from __future__ import annotations

from llbkit import llb
from llbkit.buildkit.client import _definition_platform


def test_an_image_config_takes_the_platform_the_definition_was_marshaled_for():
    d = llb.image("busybox", platform="linux/arm64").run("true").root().marshal(platform="linux/arm64")
    assert _definition_platform(d) == "linux/arm64"


def test_no_platform_is_guessed_for_mixed_or_raw_definitions():
    amd = llb.image("busybox", platform="linux/amd64")
    arm = llb.image("busybox", platform="linux/arm64")
    mixed = llb.merge([amd, arm]).marshal(platform="linux/amd64")
    assert _definition_platform(mixed) is None
    assert _definition_platform(b"raw definition bytes") is None
