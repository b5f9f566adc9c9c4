from __future__ import annotations

import ssl

import pytest

from llbkit.buildkit.connection import TLSConfig, open_channel, parse_address, resolve_address
from llbkit.buildkit.errors import AddressError, TLSConfigError


def test_parse_addresses():
    a = parse_address("unix:///run/buildkit/buildkitd.sock")
    assert (a.scheme, a.path, a.grpc_target) == ("unix", "/run/buildkit/buildkitd.sock", "unix:/run/buildkit/buildkitd.sock")
    t = parse_address("tcp://127.0.0.1:1234")
    assert (t.host, t.port, str(t), t.grpc_target) == ("127.0.0.1", 1234, "tcp://127.0.0.1:1234", "127.0.0.1:1234")
    assert parse_address("tcp://[::1]:99").grpc_target == "[::1]:99"


@pytest.mark.parametrize("bad", ["", "unix://", "tcp://host", "tcp://h:0", "http://x:1", "/run/x.sock", "tcp://h:99999"])
def test_bad_addresses_name_the_value(bad):
    with pytest.raises(AddressError) as ei:
        parse_address(bad)
    assert repr(bad) in str(ei.value)


def test_buildkit_host(monkeypatch):
    monkeypatch.setenv("BUILDKIT_HOST", "tcp://10.0.0.1:1234")
    assert str(resolve_address()) == "tcp://10.0.0.1:1234"
    assert str(resolve_address("unix:///x")) == "unix:///x"
    monkeypatch.delenv("BUILDKIT_HOST")
    assert str(resolve_address()) == "unix:///run/buildkit/buildkitd.sock"


def test_tls_files_checked_and_named(tmp_path):
    with pytest.raises(TLSConfigError, match=r"ca.pem' \(set by --tlscacert or --tlsdir\) does not exist"):
        TLSConfig(ca_cert=str(tmp_path / "ca.pem")).load()
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TLSConfigError, match=r"junk.pem' \(set by --tlscacert or --tlsdir\) is not a PEM certificate"):
        TLSConfig(ca_cert=str(tmp_path / "junk.pem")).load()
    with pytest.raises(TLSConfigError, match="--tlskey"):
        TLSConfig(cert=str(tmp_path / "junk.pem")).load()
    with pytest.raises(TLSConfigError, match="does not exist"):
        TLSConfig.from_dir(tmp_path / "nope")
    with pytest.raises(TLSConfigError, match="neither ca.pem"):
        TLSConfig.from_dir(tmp_path)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    cfg = TLSConfig.from_dir(tmp_path, server_name="buildkitd")
    assert cfg.ca_cert == str(tmp_path / "ca.pem") and cfg.cert is None and cfg.server_name == "buildkitd"


def test_plain_tcp_only_when_asked():
    with pytest.raises(TLSConfigError, match="without TLS"):
        open_channel(parse_address("tcp://127.0.0.1:1"))
    open_channel(parse_address("tcp://127.0.0.1:1"), insecure=True).close()
    with pytest.raises(TLSConfigError, match="tcp:// addresses only"):
        open_channel(parse_address("unix:///x"), TLSConfig(ca_cert="/x"))


def test_tls_dir_takes_buildctl_and_kubernetes_names(tmp_path):
    pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text(pem)
    cfg = TLSConfig.from_dir(tmp_path)
    assert (cfg.ca_cert, cfg.cert, cfg.key) == tuple(str(tmp_path / n) for n in ("ca.crt", "tls.crt", "tls.key"))
    (tmp_path / "ca.pem").write_text(pem)  # buildctl's own names first
    assert TLSConfig.from_dir(tmp_path).ca_cert == str(tmp_path / "ca.pem")
    (tmp_path / "tls.key").unlink()
    with pytest.raises(TLSConfigError, match="holds a client certificate but no key.pem"):
        TLSConfig.from_dir(tmp_path)


def _ssl_error(reason: str) -> "ssl.SSLError":
    e = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    e.reason = reason  # type: ignore[misc]  # what OpenSSL sets; a constructed error has none
    return e


def test_tls_problems_are_told_apart_by_the_local_error():
    from llbkit.buildkit.connection import tls_problem
    from llbkit.buildkit.errors import TLSProblem
    from llbkit.buildkit.rpc.transport import TransportError

    full = TLSConfig(ca_cert="ca", cert="c", key="k")
    ca_only = TLSConfig(ca_cert="ca")
    closed = TransportError("closed before its HTTP/2 settings", "closed")
    # TLS 1.3: the daemon checks the client certificate after our handshake is over
    assert tls_problem(closed, ca_only) is TLSProblem.CLIENT_CERT_REQUIRED
    assert tls_problem(ConnectionResetError(), full) is TLSProblem.CLIENT_CERT_REJECTED
    assert tls_problem(_ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED"), ca_only) is TLSProblem.CLIENT_CERT_REQUIRED
    assert tls_problem(_ssl_error("SSLV3_ALERT_BAD_CERTIFICATE"), full) is TLSProblem.CLIENT_CERT_REJECTED
    unknown_ca = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer")
    unknown_ca.verify_code = 20  # type: ignore[attr-defined]
    assert tls_problem(unknown_ca, full) is TLSProblem.UNKNOWN_SERVER_CA
    mismatch = ssl.SSLCertVerificationError(1, "certificate verify failed: Hostname mismatch")
    mismatch.verify_code = 62  # type: ignore[attr-defined]
    assert tls_problem(mismatch, full) is TLSProblem.SERVER_NAME_MISMATCH
    assert tls_problem(_ssl_error("WRONG_VERSION_NUMBER"), full) is TLSProblem.DAEMON_WITHOUT_TLS
    assert tls_problem(TransportError("closed in the handshake", "tls-closed"), full) is TLSProblem.DAEMON_WITHOUT_TLS
    assert tls_problem(_ssl_error("SOMETHING_ELSE"), full) is TLSProblem.HANDSHAKE
    assert tls_problem(closed, False) is TLSProblem.DAEMON_WANTS_TLS
    assert tls_problem(ConnectionRefusedError(), False) is None
    assert tls_problem(ConnectionRefusedError(), full) is None
    assert tls_problem(None, full) is None
    hint = TLSProblem.CLIENT_CERT_REQUIRED.hint()
    assert "--tlscert" in hint and "--tlskey" in hint
