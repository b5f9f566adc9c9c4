"""A throw-away CA with a server and a client certificate, made with the ``openssl`` CLI.

Layout (the client dir is what ``buildctl --tlsdir`` reads)::

    DIR/ca.pem  DIR/ca-key.pem
    DIR/server/cert.pem  DIR/server/key.pem       subjectAltName IP:127.0.0.1, DNS:localhost
    DIR/client/ca.pem  DIR/client/cert.pem  DIR/client/key.pem

Keys are ECDSA P-256 (fast to make), certificates valid for a few days.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from llbkit.testutil.errors import FixtureError
from llbkit.testutil.tools import find_tool

_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {sans}
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class TLSFiles:
    """Paths of a CA and the server and client certificates it signed."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server" / "cert.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server" / "key.pem"

    @property
    def client_dir(self) -> Path:
        """``ca.pem``, ``cert.pem``, ``key.pem``: the layout ``buildctl --tlsdir`` expects."""
        return self.dir / "client"

    @property
    def client_cert(self) -> Path:
        return self.client_dir / "cert.pem"

    @property
    def client_key(self) -> Path:
        return self.client_dir / "key.pem"


def _run(openssl: Path, args: Sequence[str], cwd: Path) -> None:
    try:
        subprocess.run(
            [str(openssl), *args], cwd=str(cwd), check=True, capture_output=True, timeout=60
        )
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip()
        raise FixtureError(f"openssl {args[0]} failed making test certificates: {err}") from e


def _sans(hosts: Sequence[str]) -> str:
    out = []
    for h in hosts:
        is_ip = all(p.isdigit() for p in h.split(".")) or ":" in h
        out.append(f"IP:{h}" if is_ip else f"DNS:{h}")
    return ", ".join(out)


def make_tls_files(
    dest: Path,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    days: int = 7,
    openssl: Optional[Path] = None,
) -> TLSFiles:
    """Make a CA, a server certificate for ``hosts`` and a client certificate under ``dest``."""
    openssl = openssl or find_tool("openssl")
    files = TLSFiles(Path(dest))
    d = files.dir
    for sub in (d, files.server_cert.parent, files.client_dir):
        sub.mkdir(parents=True, exist_ok=True)
    cnf = d / "openssl.cnf"
    cnf.write_text(_CONFIG.format(sans=_sans(hosts)))
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(openssl, ["req", "-x509", "-config", str(cnf), "-extensions", "ca_ext", *newkey,
                   "-keyout", str(files.ca_key), "-out", str(files.ca_cert),
                   "-days", str(days), "-subj", "/CN=llbkit test CA"], d)
    for kind, cert, key, cn in (
        ("server", files.server_cert, files.server_key, hosts[0]),
        ("client", files.client_cert, files.client_key, "llbkit test client"),
    ):
        csr = d / f"{kind}.csr"
        _run(openssl, ["req", "-new", "-config", str(cnf), *newkey, "-keyout", str(key),
                       "-out", str(csr), "-subj", f"/CN={cn}"], d)
        _run(openssl, ["x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert),
                       "-CAkey", str(files.ca_key), "-set_serial", "0x" + secrets.token_hex(8),
                       "-days", str(days), "-extfile", str(cnf), "-extensions", f"{kind}_ext",
                       "-out", str(cert)], d)
        csr.unlink()
    (files.client_dir / "ca.pem").write_bytes(files.ca_cert.read_bytes())
    for key in (files.ca_key, files.server_key, files.client_key):
        os.chmod(key, 0o600)
    return files
