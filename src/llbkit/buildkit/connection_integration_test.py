"""What a failed connection says, against real daemons: which side refused what in TLS, a daemon
that accepts TCP but never answers, and buildctl's alternative TLS directory names."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from llbkit.buildkit import Client
from llbkit.buildkit.connection import TLSConfig
from llbkit.buildkit.errors import (
    DaemonTimeoutError,
    OptionNames,
    TLSError,
    TLSProblem,
    option_names,
    use_option_names,
)
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.certs import make_tls_files
from llbkit.testutil.procs import silent_tcp_listener


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_tls_files(tmp_path_factory.mktemp("other-ca"))


@pytest.fixture(scope="module")
def plain_tcp_buildkitd() -> Iterator[Buildkitd]:
    daemon = Buildkitd(tcp=True, name="buildkitd(tcp, no TLS)").start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    with silent_tcp_listener() as address:
        yield address


def test_a_client_certificate_from_another_ca_is_reported_as_rejected(buildkitd_arm64_tls, other_ca) -> None:
    tls = TLSConfig(ca_cert=str(buildkitd_arm64_tls.ca_cert), cert=str(other_ca.client_cert),
                    key=str(other_ca.client_key))
    with Client(buildkitd_arm64_tls.addr, tls=tls, timeout=10) as c:
        with pytest.raises(TLSError) as ei:
            c.info()
    assert ei.value.problem is TLSProblem.CLIENT_CERT_REJECTED, ei.value
    message = str(ei.value)
    assert "rejected the client certificate" in message and "--tlscert" in message, message
    assert "Is buildkitd running" not in message


def test_plain_tcp_to_a_tls_daemon_says_the_daemon_speaks_tls(buildkitd_arm64_tls) -> None:
    with Client(buildkitd_arm64_tls.addr, insecure=True, timeout=10) as c:
        with pytest.raises(TLSError) as ei:
            c.info()
    assert ei.value.problem is TLSProblem.DAEMON_WANTS_TLS, ei.value
    message = str(ei.value)
    assert "speaks TLS" in message and "--tlsdir" in message, message


def test_tls_to_a_plain_tcp_daemon_says_the_daemon_does_not_speak_tls(plain_tcp_buildkitd, buildkitd_arm64_tls) -> None:
    tls = TLSConfig(ca_cert=str(buildkitd_arm64_tls.ca_cert), cert=str(buildkitd_arm64_tls.client_cert),
                    key=str(buildkitd_arm64_tls.client_key))
    with Client(plain_tcp_buildkitd.addr, tls=tls, timeout=10) as c:
        with pytest.raises(TLSError) as ei:
            c.info()
    assert ei.value.problem is TLSProblem.DAEMON_WITHOUT_TLS, ei.value
    assert "does not speak TLS" in str(ei.value) and "--insecure-tcp" in str(ei.value)


def test_buildctl_alternative_tls_dir_names_are_accepted(buildkitd_arm64_tls, tmp_path: Path) -> None:
    d = tmp_path / "k8s-secret"
    d.mkdir()
    shutil.copy(buildkitd_arm64_tls.ca_cert, d / "ca.crt")
    shutil.copy(buildkitd_arm64_tls.client_cert, d / "tls.crt")
    shutil.copy(buildkitd_arm64_tls.client_key, d / "tls.key")
    tls = TLSConfig.from_dir(d)
    assert (tls.ca_cert, tls.cert, tls.key) == (str(d / "ca.crt"), str(d / "tls.crt"), str(d / "tls.key"))
    with Client(buildkitd_arm64_tls.addr, tls=tls, timeout=10) as c:
        assert c.list_workers()


def test_a_daemon_that_never_answers_times_out_naming_the_timeout_setting(silent_listener: str) -> None:
    with Client(silent_listener, insecure=True, timeout=2) as c:
        with pytest.raises(DaemonTimeoutError) as ei:
            c.info()
    message = str(ei.value)
    assert silent_listener in message and "Deadline Exceeded" in message and "within 2 s" in message, message
    assert "--timeout" in message and ei.value.timeout == 2


def test_a_frontend_names_its_own_settings_in_connection_errors(silent_listener: str, buildkitd_arm64_tls) -> None:
    before = option_names()
    use_option_names(OptionNames(timeout="[tool].answer_timeout", tls_cert="[tool].cert", tls_key="[tool].key"))
    try:
        with Client(silent_listener, insecure=True, timeout=1) as c:
            with pytest.raises(DaemonTimeoutError) as ei:
                c.info()
        assert "[tool].answer_timeout" in str(ei.value) and "--timeout" not in str(ei.value)
        tls = TLSConfig(ca_cert=str(buildkitd_arm64_tls.ca_cert))
        with Client(buildkitd_arm64_tls.addr, tls=tls, timeout=10) as c:
            with pytest.raises(TLSError) as ti:
                c.info()
        assert "[tool].cert" in str(ti.value) and "--tlscert" not in str(ti.value)
    finally:
        use_option_names(before)
