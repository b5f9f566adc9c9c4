"""Secret options and the secrets an image mounts (no daemon)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llbkit.builder.secrets import MissingSecretError, parse_secret, parse_secrets, secrets_for
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


def test_only_mounted_secrets_are_served_including_the_base_chains(tmp_path: Path) -> None:
    f = tmp_path / "npmrc"
    f.write_text("x")
    configured = parse_secrets(["token=env:APP_TOKEN", f"npmrc=file:{f}", "unused=env:OTHER"])
    spec = _spec(SecretMount("token", required=True), SecretMount("npmrc", required=True),
                 SecretMount("maybe", required=False))
    got = secrets_for(spec, configured, environ={"APP_TOKEN": "v"})
    assert sorted(got) == ["npmrc", "token"]


def test_missing_secrets_name_target_id_and_option(tmp_path: Path) -> None:
    spec = _spec(SecretMount("token", required=True), SecretMount("npmrc", required=True))
    with pytest.raises(MissingSecretError) as e:
        secrets_for(spec, parse_secrets(["token=env:APP_TOKEN"]), target="app:img",
                    option="[buildkit].secrets", environ={"APP_TOKEN": "v"})
    assert "app:img" in str(e.value) and "'npmrc'" in str(e.value) and "[buildkit].secrets" in str(e.value)
    with pytest.raises(MissingSecretError, match="APP_TOKEN, which is not set"):
        secrets_for(spec, parse_secrets(["token=env:APP_TOKEN", "npmrc=env:N"]), environ={"N": "1"})
    with pytest.raises(MissingSecretError, match="does not exist"):
        secrets_for(spec, parse_secrets(["token=env:T", f"npmrc=file:{tmp_path}/missing"]), environ={"T": "1"})


def test_buildctl_secret_syntax_is_parsed_by_the_same_parser() -> None:
    assert parse_secret("id=npmrc,src=/etc/npmrc") == ("npmrc", SecretSource(file="/etc/npmrc"))
    assert parse_secret("id=token,env=APP_TOKEN") == ("token", SecretSource(env="APP_TOKEN"))
    for text in ("id=x,src=/a,env=B", "src=/a", "id=x,src=/a,extra=1", "id=x,type=ssh,src=/a"):
        with pytest.raises(ValueError, match="expected id=ID,src=FILE or id=ID,env=VARIABLE"):
            parse_secret(text)
