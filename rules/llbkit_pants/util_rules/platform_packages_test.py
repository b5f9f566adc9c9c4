"""The `complete_platforms` field as image_spec reads it (no daemon)."""

from __future__ import annotations

import pytest
from pants.build_graph.address import Address
from pants.engine.target import InvalidFieldException

from llbkit_pants.util_rules.image_spec import _complete_platform_files

IMAGE = Address("app", target_name="img")
PLATFORMS = ("linux/amd64", "linux/arm64")


def test_platforms_are_normalized_and_sorted() -> None:
    value = {"linux/aarch64": "//platforms:arm64", "linux/x86_64": ":amd64"}
    assert _complete_platform_files(IMAGE, value, PLATFORMS) == (
        ("linux/amd64", ":amd64"), ("linux/arm64", "//platforms:arm64"))
    assert _complete_platform_files(IMAGE, None, PLATFORMS) == ()


@pytest.mark.parametrize("value, fragments", [
    ({"linux/s390x": ":s390x"}, ["`complete_platforms`", "app:img", "'linux/s390x' is not one of the platforms",
                                 "linux/amd64, linux/arm64"]),
    ({"linux": ":x"}, ["`complete_platforms`", "'linux' is not a platform", "linux/arm64"]),
    ({"linux/arm64": "platform.json"}, ["must be the address of a `file` target"]),
    ({"linux/arm64": ":a", "linux/aarch64": ":b"}, ["names linux/arm64 again"]),
])
def test_bad_entries_name_the_field_the_target_and_the_fix(value: dict, fragments: list) -> None:
    with pytest.raises(InvalidFieldException) as e:
        _complete_platform_files(IMAGE, value, PLATFORMS)
    for f in fragments:
        assert f in str(e.value), str(e.value)
