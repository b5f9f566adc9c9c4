"""`check_options`: each bad `[buildkit]` value is refused naming the option, the value and the fix
(the end-to-end messages, as `pants package` prints them, are in testprojects' bad-input catalogue)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from llbkit_pants.subsystems.buildkit import BuildKitOptionError, check_options


def _options(**overrides: Any) -> SimpleNamespace:
    values = dict(workers=[], platforms=["linux/amd64"], max_attempts=3, connect_timeout=5.0,
                  source_date_epoch=0, tls_dir=None, tls_ca=None, tls_cert=None, tls_key=None,
                  cache_from=[], cache_to=[], secrets=[], concurrency=0, entitlements=[], ssh=[])
    values.update(overrides)
    return SimpleNamespace(**values)


def test_good_options_pass() -> None:
    check_options(_options(workers=["unix:///run/b.sock", "tcp://10.0.0.6:1234=linux/arm64"],
                           cache_from=["type=registry,ref=r.example.com/c", "r.example.com/c2"],
                           cache_to=["type=inline", "type=local,dest=/tmp/c"],
                           secrets=["a=env:A", "b=file:~/b"], tls_cert="c.pem", tls_key="k.pem"))


@pytest.mark.parametrize("overrides, option, fragments", [
    (dict(workers=["foo"]), "workers", ["'foo'", "unix://PATH or tcp://HOST:PORT"]),
    (dict(workers=["unix:///x=amd64"]), "workers", ["os/arch"]),
    (dict(platforms=["amd64"]), "platforms", ["os/arch"]),
    (dict(platforms=[]), "platforms", ["at least one"]),
    (dict(max_attempts=0), "max_attempts", ["at least 1"]),
    (dict(connect_timeout=0.0), "connect_timeout", ["positive"]),
    (dict(source_date_epoch=-5), "source_date_epoch", ["0 or more"]),
    (dict(tls_dir="/certs", tls_ca="/ca.pem"), "tls_dir", ["not both"]),
    (dict(tls_key="k.pem"), "tls_key", ["[buildkit].tls_cert"]),
    (dict(cache_from=["type=nope"]), "cache_from", ["'nope'", "type=registry", "type=local", "type=s3"]),
    (dict(cache_from=["type=inline"]), "cache_from", ["'inline'", "type=registry"]),
    (dict(cache_to=["type=nope"]), "cache_to", ["type=inline"]),
    (dict(cache_to=["type=registry"]), "cache_to", ["ref="]),
    (dict(secrets=["token"]), "secrets", ["ID=env:VARIABLE"]),
    (dict(secrets=["t=env:A", "t=env:B"]), "secrets", ["twice"]),
])
def test_each_bad_value_names_its_option(overrides: dict, option: str, fragments: list) -> None:
    with pytest.raises(BuildKitOptionError) as err:
        check_options(_options(**overrides))
    message = str(err.value)
    assert message.startswith(f"invalid [buildkit].{option} "), message
    assert err.value.option == option
    for f in fragments:
        assert f in message, (f, message)
    assert "--import-cache" not in message and "--export-cache" not in message, message
