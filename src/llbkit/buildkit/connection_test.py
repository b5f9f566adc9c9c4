from __future__ import annotations

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


def test_tls_problems_are_told_apart_by_what_grpc_says():
    from llbkit.buildkit.connection import tls_problem
    from llbkit.buildkit.errors import TLSProblem

    full = TLSConfig(ca_cert="ca", cert="c", key="k")
    ca_only = TLSConfig(ca_cert="ca")
    assert tls_problem("Socket closed", ca_only) is TLSProblem.CLIENT_CERT_REQUIRED
    assert tls_problem("Secure read failed", full) is TLSProblem.CLIENT_CERT_REJECTED
    assert tls_problem("CERTIFICATE_VERIFY_FAILED", full) is TLSProblem.UNKNOWN_SERVER_CA
    assert tls_problem("WRONG_VERSION_NUMBER", full) is TLSProblem.DAEMON_WITHOUT_TLS
    assert tls_problem("Socket closed", False) is TLSProblem.DAEMON_WANTS_TLS
    assert tls_problem("Connection refused", False) is None
    hint = TLSProblem.CLIENT_CERT_REQUIRED.hint()
    assert "--tlscert" in hint and "--tlskey" in hint
