from __future__ import annotations

from pathlib import Path

import pytest

from llbkit.testutil.buildkitd import Buildkitd, render_config
from llbkit.testutil.certs import TLSFiles


def test_config_isolates_otel_and_disables_cdi() -> None:
    text = render_config(Path("/s/otel.sock"), {"127.0.0.1:5000": {"http": True}})
    assert text.splitlines()[1:] == [
        "[otel]",
        '  socketPath = "/s/otel.sock"',
        "[cdi]",
        "  disabled = true",
        '[registry."127.0.0.1:5000"]',
        "  http = true",
    ]


def test_tls_needs_tcp(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TLS applies to tcp only"):
        Buildkitd(tls=TLSFiles(tmp_path))


def test_client_args_carry_the_tls_files(tmp_path: Path) -> None:
    bk = Buildkitd(tcp=True, tls=TLSFiles(tmp_path))
    bk.addr = "tcp://127.0.0.1:1234"
    assert bk.client_args() == [
        "--addr", "tcp://127.0.0.1:1234",
        "--tlscacert", str(tmp_path / "ca.pem"),
        "--tlscert", str(tmp_path / "client" / "cert.pem"),
        "--tlskey", str(tmp_path / "client" / "key.pem"),
    ]
    assert bk.client_args(client_cert=False) == [
        "--addr", "tcp://127.0.0.1:1234", "--tlscacert", str(tmp_path / "ca.pem"),
    ]
    assert bk.tls_dir == tmp_path / "client"
