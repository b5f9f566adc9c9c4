from __future__ import annotations

import pytest

from llbkit.buildkit.session.secrets import SecretError, SecretSource, SecretStore


def test_sources(tmp_path):
    f = tmp_path / "s"
    f.write_bytes(b"from-file")
    store = SecretStore(
        {"file": SecretSource(file=str(f)), "env": SecretSource(env="TOK"), "raw": b"bytes"},
        environ={"TOK": "from-env"},
    )
    assert store.get("file") == b"from-file"
    assert store.get("env") == b"from-env"
    assert store.get("raw") == b"bytes"
    assert store.get("nope") is None
    assert "bytes" not in repr(store) and "bytes" not in repr(SecretSource(value=b"bytes"))


def test_errors_name_the_source_not_the_value(tmp_path):
    store = SecretStore({"f": SecretSource(file=str(tmp_path / "missing")), "e": SecretSource(env="UNSET_X")}, environ={})
    with pytest.raises(SecretError, match="cannot read"):
        store.get("f")
    with pytest.raises(SecretError, match="UNSET_X is not set"):
        store.get("e")
    with pytest.raises(SecretError):
        SecretSource()
    with pytest.raises(SecretError):
        SecretSource(file="a", env="b")
