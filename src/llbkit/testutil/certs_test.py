from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from llbkit.testutil.certs import make_tls_files
from llbkit.testutil.tools import find_tool


def _openssl(*args: str) -> str:
    res = subprocess.run([str(find_tool("openssl")), *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_ca_signs_a_server_and_a_client_certificate(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    _openssl("verify", "-CAfile", str(tls.ca_cert), "-purpose", "sslserver", str(tls.server_cert))
    _openssl("verify", "-CAfile", str(tls.ca_cert), "-purpose", "sslclient", str(tls.client_cert))
    server = _openssl("x509", "-noout", "-text", "-in", str(tls.server_cert))
    assert "IP Address:127.0.0.1" in server and "DNS:localhost" in server
    client = _openssl("x509", "-noout", "-text", "-in", str(tls.client_cert))
    assert "TLS Web Client Authentication" in client


def test_client_dir_has_buildctl_layout_and_keys_are_private(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    assert sorted(p.name for p in tls.client_dir.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert (tls.client_dir / "ca.pem").read_bytes() == tls.ca_cert.read_bytes()
    for key in (tls.ca_key, tls.server_key, tls.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The key matches the certificate.
    assert _openssl("x509", "-noout", "-pubkey", "-in", str(tls.client_cert)) == _openssl(
        "pkey", "-pubout", "-in", str(tls.client_key)
    )
