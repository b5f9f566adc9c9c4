"""Secret options and the secrets an image mounts (no daemon)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llbkit.builder.secrets import mounted_secrets, parse_secret, parse_secrets
from llbkit.buildkit.session import SecretSource
from llbkit.image import ImageSpec, RegistryBase, RunStep, SecretMount, SpecBase


def test_parse_secret_sources() -> None:
    assert parse_secret("token=env:APP_TOKEN") == ("token", SecretSource(env="APP_TOKEN"))
    sid, src = parse_secret("npmrc=file:~/.npmrc")
    assert sid == "npmrc" and src.file == os.path.expanduser("~/.npmrc") and not src.file.startswith("~")


@pytest.mark.parametrize("text", ["token", "token=APP_TOKEN", "=env:X", "token=ssm:x", "token=env:", "a/b=env:X"])
def test_bad_secret_options_say_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="expected ID=env:VARIABLE or ID=file:PATH"):
        parse_secret(text)


def test_a_secret_configured_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="configured twice"):
        parse_secrets(["t=env:A", "t=env:B"])


def _spec(*mounts: SecretMount) -> ImageSpec:
    parent = ImageSpec(name="//base:img", base=RegistryBase("busybox"),
                       steps=(RunStep("true", secrets=(mounts[0],)),))
    return ImageSpec(name="//app:img", base=SpecBase(parent), steps=(RunStep("true", secrets=mounts[1:]),))


def test_the_mounts_of_the_whole_base_chain_are_found() -> None:
    spec = _spec(SecretMount("token", required=True), SecretMount("npmrc", required=True),
                 SecretMount("maybe", required=False))
    assert sorted((m.id, m.required) for m in mounted_secrets(spec)) == [
        ("maybe", False), ("npmrc", True), ("token", True)]


def test_buildctl_secret_syntax_is_parsed_by_the_same_parser() -> None:
    assert parse_secret("id=npmrc,src=/etc/npmrc") == ("npmrc", SecretSource(file="/etc/npmrc"))
    assert parse_secret("id=token,env=APP_TOKEN") == ("token", SecretSource(env="APP_TOKEN"))
    for text in ("id=x,src=/a,env=B", "src=/a", "id=x,src=/a,extra=1", "id=x,type=ssh,src=/a"):
        with pytest.raises(ValueError, match="expected id=ID,src=FILE or id=ID,env=VARIABLE"):
            parse_secret(text)
