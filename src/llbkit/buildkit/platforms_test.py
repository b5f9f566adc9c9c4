from __future__ import annotations

from types import SimpleNamespace

import pytest

from llbkit import llb
from llbkit.buildkit.platforms import (
    UnsupportedPlatformError,
    check_platforms,
    definition_platforms,
    platform_supported,
)

WORKER = ("linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/arm64", "linux/386")


def test_definition_platforms():
    st = llb.image("busybox", platform="linux/arm64").run(["true"]).root()
    assert definition_platforms(st.marshal(platform="linux/arm64")) == ["linux/arm64"]
    amd = llb.image("busybox", platform="linux/amd64")
    both = amd.file(llb.copy(llb.image("busybox", platform="linux/s390x"), "/bin", "/x"))
    assert definition_platforms(both.marshal(platform="linux/amd64").to_bytes()) == ["linux/amd64", "linux/s390x"]
    assert definition_platforms(llb.scratch().marshal()) == []


@pytest.mark.parametrize("platform,ok", [
    ("linux/amd64", True), ("linux/amd64/v2", True), ("linux/x86_64", True), ("linux/arm64", True),
    ("linux/arm64/v8", True), ("linux/aarch64", True), ("linux/386", True), ("linux/s390x", False),
    ("linux/arm/v7", False), ("windows/amd64", False), ("linux/amd64/v4", False),
])
def test_platform_supported(platform, ok):
    assert platform_supported(platform, WORKER) is ok


def test_check_platforms_message():
    client = SimpleNamespace(address="unix:///run/bk.sock",
                             list_workers=lambda: [SimpleNamespace(platforms=WORKER)])
    check_platforms(client, ["linux/amd64", "linux/arm64"])
    check_platforms(client, [])
    with pytest.raises(UnsupportedPlatformError) as e:
        check_platforms(client, ["linux/amd64", "linux/s390x"])
    msg = str(e.value)
    assert msg.startswith("cannot build for linux/s390x: buildkitd at unix:///run/bk.sock has no worker")
    assert "linux/arm64" in msg and "native: linux/amd64" in msg and "\n" not in msg
    assert e.value.platform == "linux/s390x" and e.value.supported == WORKER
