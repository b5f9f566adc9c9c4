from __future__ import annotations

import pytest

from llbkit.errors import InvalidPlatformError, LLBError
from llbkit.platforms import Platform, format_platform, parse_platform
from llbkit.platforms import as_platform, default_platform, normalize_platform


@pytest.mark.parametrize(
    "spec, want",
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("Linux/AMD64", Platform("linux", "amd64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm64/v9.0", Platform("linux", "arm64", "v9")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/arm/v6", Platform("linux", "arm", "v6")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("linux/armel", Platform("linux", "arm", "v6")),
        ("linux/i386", Platform("linux", "386")),
        ("linux/amd64/v1", Platform("linux", "amd64")),
        ("linux/amd64/v3", Platform("linux", "amd64", "v3")),
        ("macos/arm64", Platform("darwin", "arm64")),
        ("windows(10.0.17763)/amd64", Platform("windows", "amd64", "", "10.0.17763")),
        ("linux/riscv64", Platform("linux", "riscv64")),
    ],
)
def test_parse_normalizes(spec, want):
    assert parse_platform(spec) == want


@pytest.mark.parametrize(
    "spec",
    ["", "linux", "amd64", "linux/", "/amd64", "linux/amd64/v8/extra", "linux/*", "linux/amd 64", "lin ux/amd64",
     "linux/amd46", "plan10/amd64"],
)
def test_malformed_platforms_raise_naming_op_and_value(spec):
    with pytest.raises(InvalidPlatformError) as e:
        parse_platform(spec, op="image")
    assert isinstance(e.value, LLBError)
    assert str(e.value).startswith("image: ")
    assert repr(spec) in str(e.value)


def test_non_string_platform_raises():
    with pytest.raises(InvalidPlatformError, match="marshal: platform must be a string"):
        parse_platform(42, op="marshal")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "p, text",
    [
        (Platform("linux", "amd64"), "linux/amd64"),
        (Platform("linux", "arm", "v7"), "linux/arm/v7"),
        (Platform("windows", "amd64", "", "10.0.17763"), "windows(10.0.17763)/amd64"),
        (Platform("windows", "amd64", "", "1+2", ("b", "a")), "windows(1%2B2+a+b)/amd64"),
        (Platform("", "amd64"), "unknown"),
    ],
)
def test_format(p, text):
    assert format_platform(p) == text


def test_format_parse_round_trip():
    for spec in ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows(10.0.1+f1)/amd64"]:
        assert format_platform(parse_platform(spec)) == spec


def test_normalize_and_as_platform():
    assert normalize_platform(Platform("linux", "aarch64", "8")) == Platform("linux", "arm64")
    assert as_platform(Platform("Linux", "x86_64"), op="x") == Platform("linux", "amd64")
    with pytest.raises(InvalidPlatformError, match="x: platform .* needs both"):
        as_platform(Platform("linux", ""), op="x")


def test_default_platform_is_linux_and_known():
    p = default_platform()
    assert p.os == "linux"
    assert parse_platform(format_platform(p)) == p
